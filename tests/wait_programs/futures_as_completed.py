"""futures-as-completed: `waiter` blocks iterating
`concurrent.futures.as_completed([f1, f2])` on two futures whose tasks
(workers `pool_0`, `pool_1`) never finish."""
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed

import _ready


def task(forever):
    forever.wait()


def waiter_main(futures):
    for fut in as_completed(futures):  # BLOCKS
        fut.result()


def main(ready_path):
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pool")
    forever = threading.Event()
    futures = [pool.submit(task, forever), pool.submit(task, forever)]
    waiter = _ready.start("waiter", waiter_main, futures)
    _ready.wait_blocked(waiter, check=lambda: all(len(f._waiters) == 1 for f in futures))
    _ready.write_ready(ready_path)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])

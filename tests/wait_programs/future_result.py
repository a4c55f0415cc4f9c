"""future-result: `waiter` blocks in `fut.result()` on a future from a
ThreadPoolExecutor whose task (running in worker `pool_0`) never finishes."""
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import _ready


def task(forever):
    forever.wait()


def waiter_main(fut):
    return fut.result()  # BLOCKS


def main(ready_path):
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pool")
    fut = pool.submit(task, threading.Event())
    waiter = _ready.start("waiter", waiter_main, fut)
    _ready.wait_blocked(waiter, check=lambda: fut.running() and len(fut._condition._waiters) == 1)
    _ready.write_ready(ready_path)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])

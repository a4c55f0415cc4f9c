"""pool-idle-worker: `waiter` is an idle concurrent.futures.ThreadPoolExecutor
worker waiting for work (in the pool's work-queue get()).

The worker thread is created by the pool (as `pool_0`); its first task renames
it to `waiter` and returns, and it then waits for the next work item forever.
There is no frame from this file on the waiter's stack."""
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import _ready


def rename_me():
    threading.current_thread().name = "waiter"


def main(ready_path):
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pool")
    pool.submit(rename_me).result()
    (waiter,) = pool._threads
    assert waiter.name == "waiter"
    _ready.wait_blocked(waiter, check=pool._work_queue.empty)
    _ready.write_ready(ready_path)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])

"""queue-get: `waiter` blocks in `q.get()` on an empty queue.Queue."""
import queue
import sys

import _ready


def waiter_main(q):
    return q.get()  # BLOCKS


def main(ready_path):
    q = queue.Queue()
    waiter = _ready.start("waiter", waiter_main, q)
    _ready.wait_blocked(waiter, check=lambda: len(q.not_empty._waiters) == 1)
    _ready.write_ready(ready_path)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])

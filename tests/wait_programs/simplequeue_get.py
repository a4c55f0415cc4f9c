"""simplequeue-get: `waiter` blocks in `q.get()` on an empty queue.SimpleQueue
(implemented in C: no library Python frame)."""
import queue
import sys

import _ready


def waiter_main(q):
    return q.get()  # BLOCKS


def main(ready_path):
    q = queue.SimpleQueue()
    waiter = _ready.start("waiter", waiter_main, q)
    _ready.wait_blocked(waiter, check=q.empty)
    _ready.write_ready(ready_path)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])

"""queue-put: `waiter` blocks in `q.put(item)` on a full queue.Queue(maxsize=1)."""
import queue
import sys

import _ready


def waiter_main(q):
    q.put("second")  # BLOCKS


def main(ready_path):
    q = queue.Queue(maxsize=1)
    q.put("first")
    waiter = _ready.start("waiter", waiter_main, q)
    _ready.wait_blocked(waiter, check=lambda: len(q.not_full._waiters) == 1)
    _ready.write_ready(ready_path)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])

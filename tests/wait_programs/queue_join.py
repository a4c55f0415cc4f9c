"""queue-join: `waiter` blocks in `q.join()` on a queue.Queue holding an item
for which task_done() is never called."""
import queue
import sys

import _ready


def waiter_main(q):
    q.join()  # BLOCKS


def main(ready_path):
    q = queue.Queue()
    q.put("job")
    waiter = _ready.start("waiter", waiter_main, q)
    _ready.wait_blocked(waiter, check=lambda: len(q.all_tasks_done._waiters) == 1)
    _ready.write_ready(ready_path)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])

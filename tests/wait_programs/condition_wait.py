"""condition-wait: `waiter` blocks in `cond.wait()` on a threading.Condition
that is never notified."""
import sys
import threading

import _ready


def waiter_main(cond):
    with cond:
        cond.wait()  # BLOCKS


def main(ready_path):
    cond = threading.Condition()
    waiter = _ready.start("waiter", waiter_main, cond)
    _ready.wait_blocked(waiter, check=lambda: len(cond._waiters) == 1)
    _ready.write_ready(ready_path)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])

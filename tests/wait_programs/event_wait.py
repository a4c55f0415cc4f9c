"""event-wait: `waiter` blocks in `event.wait()` on a threading.Event that is
never set."""
import sys
import threading

import _ready


def waiter_main(event):
    event.wait()  # BLOCKS


def main(ready_path):
    event = threading.Event()
    waiter = _ready.start("waiter", waiter_main, event)
    _ready.wait_blocked(waiter, check=lambda: len(event._cond._waiters) == 1)
    _ready.write_ready(ready_path)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])

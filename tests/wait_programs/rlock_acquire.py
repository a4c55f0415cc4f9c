"""rlock-acquire: `waiter` blocks in `with rlock:` on a threading.RLock held
by `holder`."""
import sys
import threading

import _ready


def holder_main(rlock, held):
    with rlock:
        held.set()
        threading.Event().wait()


def waiter_main(rlock):
    with rlock:  # BLOCKS
        pass


def main(ready_path):
    rlock = threading.RLock()
    held = threading.Event()
    _ready.start("holder", holder_main, rlock, held)
    held.wait()
    waiter = _ready.start("waiter", waiter_main, rlock)
    _ready.wait_blocked(waiter, check=lambda: repr(rlock).startswith("<locked"))
    _ready.write_ready(ready_path)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])

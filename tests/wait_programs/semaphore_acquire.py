"""semaphore-acquire: `waiter` blocks in `with sem:` on a threading.Semaphore(1)
held by `holder`."""
import sys
import threading

import _ready


def holder_main(sem, held):
    with sem:
        held.set()
        threading.Event().wait()


def waiter_main(sem):
    with sem:  # BLOCKS
        pass


def main(ready_path):
    sem = threading.Semaphore(1)
    held = threading.Event()
    _ready.start("holder", holder_main, sem, held)
    held.wait()
    waiter = _ready.start("waiter", waiter_main, sem)
    _ready.wait_blocked(waiter, check=lambda: len(sem._cond._waiters) == 1)
    _ready.write_ready(ready_path)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])

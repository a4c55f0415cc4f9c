"""lock-acquire-call: `waiter` blocks in an explicit `lock.acquire()` on a
threading.Lock held by `holder`."""
import sys
import threading

import _ready


def holder_main(lock, held):
    lock.acquire()
    held.set()
    threading.Event().wait()


def waiter_main(lock):
    lock.acquire()  # BLOCKS
    lock.release()


def main(ready_path):
    lock = threading.Lock()
    held = threading.Event()
    _ready.start("holder", holder_main, lock, held)
    held.wait()
    waiter = _ready.start("waiter", waiter_main, lock)
    _ready.wait_blocked(waiter, check=lock.locked)
    _ready.write_ready(ready_path)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])

"""barrier-wait: `waiter` blocks in `barrier.wait()` on a threading.Barrier(2)
that no other party ever reaches."""
import sys
import threading

import _ready


def waiter_main(barrier):
    barrier.wait()  # BLOCKS


def main(ready_path):
    barrier = threading.Barrier(2)
    waiter = _ready.start("waiter", waiter_main, barrier)
    _ready.wait_blocked(waiter, check=lambda: barrier.n_waiting == 1)
    _ready.write_ready(ready_path)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])

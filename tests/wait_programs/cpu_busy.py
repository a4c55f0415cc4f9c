"""cpu-busy: `waiter` spins in pure Python forever (no wait at all)."""
import sys

import _ready


def waiter_main(counter):
    while True:
        # the marker below names the line the waiter spins on
        counter[0] += 1  # BLOCKS


def main(ready_path):
    counter = [0]
    waiter = _ready.start("waiter", waiter_main, counter)
    _ready.wait_busy(waiter, progress=lambda: counter[0])
    _ready.write_ready(ready_path)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])

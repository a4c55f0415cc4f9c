"""sleep: `waiter` sleeps in `time.sleep(60)` in an endless loop."""
import sys
import time

import _ready


def waiter_main(interval):
    while True:
        time.sleep(interval)  # BLOCKS


def main(ready_path):
    waiter = _ready.start("waiter", waiter_main, 60)
    _ready.wait_blocked(waiter)
    _ready.write_ready(ready_path)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])

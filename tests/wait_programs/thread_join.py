"""thread-join: `waiter` blocks in `t.join()` on a thread (`sleeper`) that
never ends."""
import sys
import threading

import _ready


def sleeper_main():
    threading.Event().wait()


def waiter_main(thread):
    thread.join()  # BLOCKS


def main(ready_path):
    sleeper = _ready.start("sleeper", sleeper_main)
    waiter = _ready.start("waiter", waiter_main, sleeper)
    _ready.wait_blocked(waiter, check=sleeper.is_alive)
    _ready.write_ready(ready_path)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])

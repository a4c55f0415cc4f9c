"""select: `waiter` blocks in `select.select([r], [], [])` on the read end of
a pipe that is never written to.

(File named select_.py, not select.py: a select.py next to the other programs
would shadow the stdlib module for every script in this directory.)"""
import os
import select
import sys

import _ready


def waiter_main(rfd):
    return select.select([rfd], [], [])  # BLOCKS


def main(ready_path):
    rfd, _wfd = os.pipe()  # wfd stays open, nothing is ever written
    waiter = _ready.start("waiter", waiter_main, rfd)
    _ready.wait_blocked(waiter)
    _ready.write_ready(ready_path)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])

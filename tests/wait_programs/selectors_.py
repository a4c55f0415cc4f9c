"""selectors: `waiter` blocks in `selectors.DefaultSelector().select()` on the
read end of a pipe that is never written to.

(File named selectors_.py, not selectors.py: a selectors.py next to the other
programs would shadow the stdlib module for every script in this directory.)"""
import os
import selectors
import sys

import _ready


def waiter_main(sel):
    return sel.select()  # BLOCKS


def main(ready_path):
    rfd, _wfd = os.pipe()  # wfd stays open, nothing is ever written
    sel = selectors.DefaultSelector()
    sel.register(rfd, selectors.EVENT_READ)
    waiter = _ready.start("waiter", waiter_main, sel)
    _ready.wait_blocked(waiter)
    _ready.write_ready(ready_path)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])

"""file-read: `waiter` blocks in `f.read(1)` on a buffered binary file object
(os.fdopen) wrapping the read end of a pipe whose write end is kept open and
never written to."""
import os
import sys

import _ready


def waiter_main(f):
    return f.read(1)  # BLOCKS


def main(ready_path):
    rfd, _wfd = os.pipe()  # wfd stays open, nothing is ever written
    f = os.fdopen(rfd, "rb")
    waiter = _ready.start("waiter", waiter_main, f)
    _ready.wait_blocked(waiter)
    _ready.write_ready(ready_path)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])

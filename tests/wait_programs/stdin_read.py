"""stdin-read: `waiter` blocks in `sys.stdin.readline()`.

Self-contained whatever stdin the program was started with: fd 0 is replaced
(os.dup2) by the read end of a pipe whose write end this process keeps open
and never writes to; sys.stdin keeps wrapping fd 0."""
import os
import sys

import _ready


def waiter_main(stdin):
    return stdin.readline()  # BLOCKS


def main(ready_path):
    rfd, _wfd = os.pipe()  # wfd stays open, nothing is ever written
    os.dup2(rfd, 0)
    os.close(rfd)
    waiter = _ready.start("waiter", waiter_main, sys.stdin)
    _ready.wait_blocked(waiter)
    _ready.write_ready(ready_path)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])

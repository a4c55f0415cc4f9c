"""poll: `waiter` blocks in `select.poll().poll()` on the read end of a pipe
that is never written to."""
import os
import select
import sys

import _ready


def waiter_main(poller):
    return poller.poll()  # BLOCKS


def main(ready_path):
    rfd, _wfd = os.pipe()  # wfd stays open, nothing is ever written
    poller = select.poll()
    poller.register(rfd, select.POLLIN)
    waiter = _ready.start("waiter", waiter_main, poller)
    _ready.wait_blocked(waiter)
    _ready.write_ready(ready_path)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])

"""socket-accept: `waiter` blocks in `srv.accept()` on a listening TCP socket
on 127.0.0.1 that nobody connects to."""
import socket
import sys

import _ready


def waiter_main(srv):
    return srv.accept()  # BLOCKS


def main(ready_path):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    waiter = _ready.start("waiter", waiter_main, srv)
    _ready.wait_blocked(waiter)
    _ready.write_ready(ready_path, address=srv.getsockname())
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])

"""socket-recv: `waiter` blocks in `conn.recv(4096)` on an accepted TCP
connection over 127.0.0.1 whose peer socket (kept open in the main thread)
never sends anything."""
import socket
import sys

import _ready


def waiter_main(conn):
    return conn.recv(4096)  # BLOCKS


def main(ready_path):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    peer = socket.create_connection(srv.getsockname())
    conn, _addr = srv.accept()
    waiter = _ready.start("waiter", waiter_main, conn)
    _ready.wait_blocked(waiter)
    _ready.write_ready(ready_path, address=srv.getsockname())
    _ready.forever()
    peer.close()


if __name__ == "__main__":
    main(sys.argv[1])

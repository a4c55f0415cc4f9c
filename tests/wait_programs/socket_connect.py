"""socket-connect: `waiter` blocks in `sock.connect(addr)` to a listener on
127.0.0.1 with listen(0) whose accept queue is already full (one connection
made and never accepted), so the kernel drops the SYNs.

Linux gives up after tcp_syn_retries (default 6: about 130 s) with
TimeoutError/OSError; the waiter then retries with a new socket, so it is in
connect() all the time except for a few microseconds every ~2 minutes."""
import socket
import sys

import _ready


def syn_sent_to(port):
    """True if /proc/net/tcp shows a connection in SYN_SENT (st 02) to ``port``."""
    with open("/proc/self/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return any(r[2].endswith(f":{port:04X}") and r[3] == "02" for r in rows)


def waiter_main(addr):
    while True:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.connect(addr)  # BLOCKS
        except OSError:
            sock.close()
        else:
            raise RuntimeError("connect() unexpectedly succeeded")


def main(ready_path):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)  # accept queue holds one connection
    addr = srv.getsockname()
    filler = socket.create_connection(addr)  # fills the accept queue, never accepted
    waiter = _ready.start("waiter", waiter_main, addr)
    _ready.wait_blocked(waiter, check=lambda: syn_sent_to(addr[1]))
    _ready.write_ready(ready_path, address=addr)
    _ready.forever()
    filler.close()


if __name__ == "__main__":
    main(sys.argv[1])

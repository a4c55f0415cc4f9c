"""socket-send: `waiter` blocks in `sock.sendall(8 MiB)` on a TCP connection
over 127.0.0.1 whose peer (the accepted socket, kept open in the main thread)
never reads; both socket buffers are made small so they fill at once."""
import socket
import sys

import _ready

PAYLOAD = b"x" * (8 << 20)


def send_queue(port):
    """Bytes queued for sending (tx_queue in /proc/net/tcp) on local ``port``."""
    with open("/proc/self/net/tcp") as f:
        for r in (line.split() for line in f.readlines()[1:]):
            if r[1].endswith(f":{port:04X}"):
                return int(r[4].split(":")[0], 16)
    return 0


def waiter_main(sock, payload):
    sock.sendall(payload)  # BLOCKS


def main(ready_path):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited by accept()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sock.connect(srv.getsockname())
    peer, _addr = srv.accept()  # never read from
    waiter = _ready.start("waiter", waiter_main, sock, PAYLOAD)
    port = sock.getsockname()[1]
    _ready.wait_blocked(waiter, check=lambda: send_queue(port) > 0)
    _ready.write_ready(ready_path, address=srv.getsockname())
    _ready.forever()
    peer.close()


if __name__ == "__main__":
    main(sys.argv[1])

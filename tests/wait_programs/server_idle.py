"""server-idle: `waiter` runs `socketserver.TCPServer.serve_forever()` (as the
thread's target, the usual idiom) on 127.0.0.1 and nobody connects.

serve_forever polls with a 0.5 s timeout, so the thread wakes briefly twice a
second; there is no frame from this file on the waiter's stack."""
import socketserver
import sys
import threading

import _ready


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        pass


def main(ready_path):
    server = socketserver.TCPServer(("127.0.0.1", 0), Handler)
    waiter = threading.Thread(target=server.serve_forever, name="waiter", daemon=True)
    waiter.start()
    shut_down = server._BaseServer__is_shut_down
    _ready.wait_blocked(waiter, check=lambda: not shut_down.is_set())
    _ready.write_ready(ready_path, address=server.server_address)
    _ready.forever()


if __name__ == "__main__":
    main(sys.argv[1])

"""A thread-per-request server whose database went silent: 10,000 request threads pile up.

The order service answers every request in a thread of its own (request-1,
request-2, ...) and every request borrows a connection from one
`ConnectionPool`, under the pool's plain Lock `pool._lock`.  The thread
refresher reconnects the pool: it takes `pool._lock` and, still holding it,
opens a new connection to the database and waits for its greeting with
`sock.recv()`, no timeout.  The database (the daemon thread database, a server
on 127.0.0.1) has accepted the connection and stalled: it never sends a byte.
So the refresher waits in `recv()` forever while it holds the lock, and the
server keeps taking requests: each new request thread waits for `pool._lock`
behind it, until there are 10,000 of them -- the process that leaked thousands
of threads.  The main thread, the dispatcher, then joins the requests.  Not a
deadlock: one lock held across I/O that never ends.

THREADDOC_SAMPLE_REQUESTS sets the number of request threads (default 10,000):
the benchmark uses it.  Ready once every request thread is asleep at
`with self._lock:` (one look at all stacks per round, not one per thread).
"""

import os
import socket
import sys
import threading
import time

from _ready import signal_ready, wait_until_blocked
from _stacks import wait_until_waiting_at

REQUESTS = int(os.environ.get("THREADDOC_SAMPLE_REQUESTS", "10000"))
# A request thread runs a few frames deep: 256 KiB of stack is plenty, and 10,000
# threads then reserve 2.5 GiB of address space instead of 80 GiB at the 8 MiB default.
REQUEST_STACK_SIZE = 256 * 1024
READY_LIMIT = 600.0  # seconds; creating 10,000 threads on a loaded machine takes a while


class ConnectionPool:
    def __init__(self, address):
        self._lock = threading.Lock()
        self._address = address
        self._connections = []

    def _connect(self):
        sock = socket.create_connection(self._address)
        greeting = sock.recv(1024)  # the database speaks first
        if not greeting.startswith(b"READY"):
            raise ConnectionError(greeting)
        return sock

    def refresh(self):
        with self._lock:
            for old in self._connections:
                old.close()
            self._connections = [self._connect()]

    def borrow(self):
        with self._lock:
            return self._connections.pop()


def serve_without_answering(listener):
    stalled = []
    while True:
        connection, _ = listener.accept()
        stalled.append(connection)  # greet nobody, answer nothing, close nothing


def handle_request(pool, number, replies):
    connection = pool.borrow()
    replies.append((number, connection.getpeername()))


def all_waiting_at_the_pool(requests):
    """True if every request's innermost frame is `ConnectionPool.borrow` at `with self._lock:`."""
    frames = sys._current_frames()
    for request in requests:
        frame = frames.get(request.ident)
        if frame is None or frame.f_code.co_name != "borrow" or frame.f_code.co_filename != __file__:
            return False
    return True


def announce_when_stuck(ready_path, refresher, requests):
    wait_until_waiting_at(refresher, "_connect", __file__, "sock.recv(")
    deadline = time.monotonic() + READY_LIMIT
    while not all_waiting_at_the_pool(requests):
        if time.monotonic() > deadline:
            raise RuntimeError("the request threads never all waited for the pool")
        time.sleep(0.05)
    wait_until_blocked(requests, limit=READY_LIMIT)
    signal_ready(ready_path)


def main(ready_path):
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=serve_without_answering, args=(listener,), name="database",
                     daemon=True).start()
    pool = ConnectionPool(listener.getsockname())
    refresher = threading.Thread(target=pool.refresh, name="refresher", daemon=True)
    refresher.start()
    while not pool._lock.locked():  # the refresh has begun before the first request comes in
        time.sleep(0.01)
    threading.stack_size(REQUEST_STACK_SIZE)
    replies = []
    requests = []
    for number in range(1, REQUESTS + 1):
        request = threading.Thread(target=handle_request, args=(pool, number, replies),
                                   name=f"request-{number}")
        request.start()
        requests.append(request)
    threading.stack_size(0)
    threading.Thread(target=announce_when_stuck, args=(ready_path, refresher, requests),
                     name="ready-announcer", daemon=True).start()
    for request in requests:
        request.join()
    print(len(replies))


if __name__ == "__main__":
    main(sys.argv[1])

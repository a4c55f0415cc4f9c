"""A price service whose cache refresh holds the cache lock across a network call.

The thread cache-refresher rebuilds the price cache from the pricing upstream:
it takes `cache_lock`, clears the cache, and fetches the new prices over a
plain socket -- `socket.create_connection()` and `sock.recv()`, no timeout --
before it lets go of the lock.  The upstream has accepted the connection and
stalled: it never answers.  So the refresher waits in `recv()` forever while
it holds `cache_lock`, and every request that wants a price (request-1,
request-2) waits for the lock behind it.  Nothing here is a deadlock: one
lock is held across I/O that never ends.  The main thread joins the requests.

The stalled upstream is the daemon thread pricing-upstream, a server on
127.0.0.1 that accepts connections and never sends a byte.  (A helper daemon
thread announces readiness once all this is in place, then ends.)
"""

import json
import socket
import sys
import threading
import time

from _ready import signal_ready
from _stacks import wait_until_waiting_at

cache_lock = threading.Lock()
prices = {}


def serve_without_answering(listener):
    stalled = []
    while True:
        connection, _ = listener.accept()
        stalled.append(connection)  # read nothing, answer nothing, close nothing


def fetch_prices(upstream):
    sock = socket.create_connection(upstream)
    sock.sendall(b"GET /prices HTTP/1.0\r\nHost: pricing\r\n\r\n")
    reply = sock.recv(65536)
    return json.loads(reply.split(b"\r\n\r\n", 1)[1])


def refresh_cache(upstream):
    with cache_lock:
        prices.clear()
        prices.update(fetch_prices(upstream))


def handle_request(sku, replies):
    with cache_lock:
        replies.append((sku, prices.get(sku)))


def announce_when_stuck(ready_path, refresher, requests):
    wait_until_waiting_at(refresher, "fetch_prices", __file__, "sock.recv(")
    for request in requests:
        wait_until_waiting_at(request, "handle_request", __file__, "with cache_lock:")
    signal_ready(ready_path)


def main(ready_path):
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=serve_without_answering, args=(listener,), name="pricing-upstream",
                     daemon=True).start()
    refresher = threading.Thread(target=refresh_cache, args=(listener.getsockname(),),
                                 name="cache-refresher", daemon=True)
    refresher.start()
    while not cache_lock.locked():  # the refresh has begun before the first request comes in
        time.sleep(0.01)
    replies = []
    requests = [threading.Thread(target=handle_request, args=(sku, replies), name=f"request-{number}")
                for number, sku in enumerate(("sku-100", "sku-200"), 1)]
    for request in requests:
        request.start()
    threading.Thread(target=announce_when_stuck, args=(ready_path, refresher, requests),
                     name="ready-announcer", daemon=True).start()
    for request in requests:
        request.join()
    print(replies)


if __name__ == "__main__":
    main(sys.argv[1])

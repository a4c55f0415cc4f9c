"""A web worker whose request handler waits for a cache warm-up that crashed.

At start-up the thread cache-warmer loads the product catalogue into the price
cache and then sets the Event `warm`; request handlers wait for `warm` before
they serve.  One catalogue entry has no price: the load raises KeyError, the
exception ends the warmer thread, and `warm.set()`, which comes after the load
with no `try/finally`, is never called.  The thread request-handler waits in
`warm.wait()`, with no timeout, forever; the main thread joins it and hangs
behind it.  (A helper daemon thread announces readiness once all this is in
place, then ends.)
"""

import sys
import threading

from _ready import signal_ready, wait_until_blocked
from _stacks import wait_until_dead, wait_until_waiting_in

CATALOGUE = [
    {"sku": "sku-100", "price": 9.5},
    {"sku": "sku-200", "price": 24.0},
    {"sku": "sku-300"},  # the price was not exported
    {"sku": "sku-400", "price": 12.0},
]

warm = threading.Event()
price_cache = {}


def warm_cache(catalogue):
    for entry in catalogue:
        price_cache[entry["sku"]] = entry["price"]
    warm.set()  # Bug: skipped when the load raises (no try/finally)


def handle_requests(skus, replies):
    warm.wait()
    for sku in skus:
        replies.append((sku, price_cache.get(sku)))


def announce_when_stuck(ready_path, warmer, handler):
    wait_until_dead(warmer)
    main_thread = threading.main_thread()
    wait_until_waiting_in(handler, "wait", "threading.py")
    wait_until_waiting_in(main_thread, "join", "threading.py")
    wait_until_blocked([handler, main_thread])
    if warm.is_set():
        raise RuntimeError("the cache was warmed after all")
    signal_ready(ready_path)


def main(ready_path):
    replies = []
    warmer = threading.Thread(target=warm_cache, args=(CATALOGUE,), name="cache-warmer")
    handler = threading.Thread(target=handle_requests, args=(["sku-100", "sku-400"], replies),
                               name="request-handler")
    warmer.start()
    handler.start()
    threading.Thread(target=announce_when_stuck, args=(ready_path, warmer, handler),
                     name="ready-announcer", daemon=True).start()
    handler.join()
    print(replies)


if __name__ == "__main__":
    main(sys.argv[1])

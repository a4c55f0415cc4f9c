"""Six request handlers contending for one lock, all making progress: nothing is hung.

Every handler counts the hits of its page in a shared `HitCounter`, whose
`record()` takes one Lock for a short critical section.  Six threads hammer it
without pause, so at any instant several of them wait for the lock; a
reporter thread takes the totals twice a second.  The lock changes hands
thousands of times a second: contention, not a deadlock.  A diagnoser must not
call this a deadlock.
"""

import collections
import sys
import threading
import time

from _ready import signal_ready

PAGES = ("/", "/search", "/cart", "/checkout", "/account", "/help")


class HitCounter:
    def __init__(self):
        self._lock = threading.Lock()
        self._hits = collections.Counter()

    def record(self, page):
        with self._lock:
            self._hits[page] += 1

    def totals(self):
        with self._lock:
            return dict(self._hits)


def serve(counter, page):
    while True:
        counter.record(page)


def report(counter, reports, interval):
    while True:
        totals = counter.totals()
        reports.append(f"{sum(totals.values())} hits on {len(totals)} pages")
        del reports[:-10]
        time.sleep(interval)


def main(ready_path):
    counter = HitCounter()
    reports = []
    handlers = [
        threading.Thread(target=serve, args=(counter, page), name=f"handler-{index}", daemon=True)
        for index, page in enumerate(PAGES, 1)
    ]
    for handler in handlers:
        handler.start()
    threading.Thread(target=report, args=(counter, reports, 0.5), name="reporter", daemon=True).start()
    while len(counter.totals()) < len(PAGES) or not reports:  # every handler has counted a hit
        time.sleep(0.01)
    signal_ready(ready_path)
    for handler in handlers:
        handler.join()


if __name__ == "__main__":
    main(sys.argv[1])

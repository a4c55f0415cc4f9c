"""Reentrant locks do not prevent lock-order deadlocks.

A shop guards its catalog and its price rules with two RLocks, so that helpers
can take a lock their caller already holds.  The repricer locks the catalog,
calls `_reprice_item()`, which re-enters the catalog lock (fine: it is an
RLock) and then needs the price rules.  The rules-sync thread locks the price
rules, calls `_apply_rules()`, which re-enters the rules lock and then needs
the catalog.  Each thread holds its first RLock twice and waits for the other
thread's: a lock-order deadlock, right next to two harmless re-entries.  The
main thread joins both and hangs behind them.
"""

import sys
import threading

from _ready import signal_ready, wait_until_blocked

catalog_lock = threading.RLock()
pricing_lock = threading.RLock()
both_hold_their_first_lock = threading.Barrier(2)

catalog = {"kettle": 40.0, "toaster": 25.0}
price_rules = {"kettle": 0.9}


def reprice_catalog():
    with catalog_lock:
        for item in list(catalog):
            _reprice_item(item)


def _reprice_item(item):
    with catalog_lock:
        both_hold_their_first_lock.wait()
        with pricing_lock:
            catalog[item] *= price_rules.get(item, 1.0)


def sync_price_rules():
    with pricing_lock:
        _apply_rules({"toaster": 0.8})


def _apply_rules(new_rules):
    with pricing_lock:
        price_rules.update(new_rules)
        both_hold_their_first_lock.wait()
        with catalog_lock:
            for item, factor in new_rules.items():
                catalog[item] = round(catalog[item] * factor, 2)


def main(ready_path):
    workers = [
        threading.Thread(target=reprice_catalog, name="repricer"),
        threading.Thread(target=sync_price_rules, name="rules-sync"),
    ]
    for worker in workers:
        worker.start()
    wait_until_blocked(workers)
    signal_ready(ready_path)
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main(sys.argv[1])

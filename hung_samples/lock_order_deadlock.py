"""Two tellers move money between the same two accounts in opposite directions.

Each takes the lock of the account it debits, then the lock of the account it
credits: teller-1 holds `ledger_lock` and waits for `audit_lock`, teller-2
holds `audit_lock` and waits for `ledger_lock`.  The classic lock-order
deadlock; the main thread then joins teller-1 and hangs behind it.
"""

import sys
import threading

from _ready import signal_ready, wait_until_blocked

ledger_lock = threading.Lock()
audit_lock = threading.Lock()
both_hold_their_first_lock = threading.Barrier(2)

balances = {"ledger": 100, "audit": 0}


def post_to_audit():
    with ledger_lock:
        balances["ledger"] -= 10
        both_hold_their_first_lock.wait()
        with audit_lock:
            balances["audit"] += 10


def reconcile_ledger():
    with audit_lock:
        balances["audit"] -= 10
        both_hold_their_first_lock.wait()
        with ledger_lock:
            balances["ledger"] += 10


def main(ready_path):
    tellers = [
        threading.Thread(target=post_to_audit, name="teller-1"),
        threading.Thread(target=reconcile_ledger, name="teller-2"),
    ]
    for teller in tellers:
        teller.start()
    wait_until_blocked(tellers)
    signal_ready(ready_path)
    for teller in tellers:
        teller.join()


if __name__ == "__main__":
    main(sys.argv[1])

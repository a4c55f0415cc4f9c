"""Two transfers between the same two bank accounts, in opposite directions.

`Account.transfer` locks the account it debits (`self._lock`), then the account
it credits (`other._lock`).  Thread alice-to-bob runs `alice.transfer(bob, ...)`
while bob-to-alice runs `bob.transfer(alice, ...)`: each holds the lock of its
own account and waits for the other's.  The locks are attributes of two
instances of one class, so the two threads wait on the very same line, each for
the lock the other took one line earlier.  The main thread joins the transfers
and hangs behind them.
"""

import sys
import threading

from _ready import signal_ready, wait_until_blocked

both_accounts_debited = threading.Barrier(2)


class InsufficientFunds(Exception):
    pass


class Account:
    def __init__(self, owner, balance):
        self.owner = owner
        self.balance = balance
        self._lock = threading.Lock()

    def transfer(self, other, amount):
        with self._lock:
            if self.balance < amount:
                raise InsufficientFunds(f"{self.owner} cannot pay {amount}")
            self.balance -= amount
            both_accounts_debited.wait()
            with other._lock:
                other.balance += amount

    def __repr__(self):
        return f"Account({self.owner!r}, {self.balance})"


def main(ready_path):
    alice = Account("alice", 100)
    bob = Account("bob", 100)
    transfers = [
        threading.Thread(target=alice.transfer, args=(bob, 30), name="alice-to-bob"),
        threading.Thread(target=bob.transfer, args=(alice, 20), name="bob-to-alice"),
    ]
    for transfer in transfers:
        transfer.start()
    wait_until_blocked(transfers)
    assert alice._lock.locked() and bob._lock.locked(), "each transfer holds its debit lock"
    signal_ready(ready_path)
    for transfer in transfers:
        transfer.join()


if __name__ == "__main__":
    main(sys.argv[1])

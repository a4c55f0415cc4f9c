"""Two halves of a data migration that each wait for the other to finish.

A migration copies users and orders in two threads, migrate-users and
migrate-orders.  Each step copies its table, then joins its peer step's thread
before it marks the migration complete, so that "complete" is only ever
written once both tables are copied.  Both steps do that: each joins the other
and neither ever finishes.  No lock is involved, only `Thread.join`.  The
peers are wired up after both threads exist, and the steps begin once both
threads are started (a thread cannot be joined before it starts); the main
thread joins the users step and hangs behind the pair.
"""

import sys
import threading

from _ready import signal_ready, wait_until_blocked


class MigrationStep:
    def __init__(self, table, rows, target, all_started):
        self.table = table
        self.rows = rows
        self.target = target
        self.all_started = all_started
        self.peer = None  # the other step's thread, set once both threads exist
        self.thread = threading.Thread(target=self.run, name=f"migrate-{table}")

    def run(self):
        self.all_started.wait()
        self.target[self.table] = [dict(row) for row in self.rows]
        self.peer.join()
        self.target["complete"] = True


def main(ready_path):
    target = {}
    all_started = threading.Event()
    users = MigrationStep("users", [{"id": 1, "name": "ada"}], target, all_started)
    orders = MigrationStep("orders", [{"id": 7, "user": 1}], target, all_started)
    users.peer, orders.peer = orders.thread, users.thread
    steps = [users.thread, orders.thread]
    for step in steps:
        step.start()
    all_started.set()
    wait_until_blocked(steps)
    assert {"users", "orders"} <= set(target) and "complete" not in target, "both wait for the other"
    signal_ready(ready_path)
    users.thread.join()


if __name__ == "__main__":
    main(sys.argv[1])

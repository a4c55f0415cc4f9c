"""A batch job that never exits: its metrics poller has no way to stop.

The job starts a background thread, metrics-poller, that samples the job's
counters every 50 ms for the dashboard, `while True`, with no stop flag.  The
job then imports its records and its main code returns.  But metrics-poller
is not a daemon thread, so the interpreter, on its way out, waits for it in
`threading._shutdown`, forever: the script is done and the process never
ends.  (A helper daemon thread announces readiness once the main thread is
there, then ends.)
"""

import sys
import threading
import time

from _ready import signal_ready
from _stacks import wait_until_waiting_in

counters = {"imported": 0, "rejected": 0}
dashboard = {}


def poll_metrics():
    while True:
        dashboard.update(counters, sampled_at=time.time())
        time.sleep(0.05)


def import_records(records):
    for record in records:
        if record.get("email"):
            counters["imported"] += 1
        else:
            counters["rejected"] += 1


def announce_when_stuck(ready_path):
    main_thread = threading.main_thread()
    while main_thread.is_alive():  # until the script has finished
        time.sleep(0.01)
    wait_until_waiting_in(main_thread, "_shutdown", "threading.py")
    signal_ready(ready_path)


def main(ready_path):
    threading.Thread(target=poll_metrics, name="metrics-poller").start()
    threading.Thread(target=announce_when_stuck, args=(ready_path,), name="ready-announcer",
                     daemon=True).start()
    import_records([{"email": "ada@example.com"}, {"email": ""}, {"email": "grace@example.com"}])
    print(f"imported {counters['imported']}, rejected {counters['rejected']}")


if __name__ == "__main__":
    main(sys.argv[1])

"""A statistics job that computes while holding the results lock; readers queue behind it.

The thread cruncher rebuilds the running statistics of a sensor feed under
`results_lock`, so that readers never see half-updated numbers.  The feed is a
generator that never ends (the batch size was forgotten), so the computation
goes on forever, all CPU, lock held.  reader-1 and reader-2 want a consistent
copy of the results and wait for `results_lock`.  That is not a deadlock:
the cruncher runs and makes progress, and the readers are blocked behind it.
A diagnoser must not call it one.
"""

import itertools
import math
import sys
import threading
import time

from _ready import signal_ready, wait_until_blocked

results_lock = threading.Lock()
results = {"count": 0, "mean": 0.0, "peak": 0.0}


def sensor_feed():
    for tick in itertools.count():
        yield 20.0 + 5.0 * math.sin(tick / 50.0)


def rebuild_statistics(readings):
    with results_lock:
        total = 0.0
        for count, value in enumerate(readings, 1):
            total += value
            results["count"] = count
            results["mean"] = total / count
            results["peak"] = max(results["peak"], value)


def read_results(copies):
    with results_lock:
        copies.append(dict(results))


def main(ready_path):
    cruncher = threading.Thread(target=rebuild_statistics, args=(sensor_feed(),), name="cruncher",
                                daemon=True)
    cruncher.start()
    while results["count"] == 0:  # the cruncher holds results_lock and is computing
        time.sleep(0.01)
    copies = []
    readers = [threading.Thread(target=read_results, args=(copies,), name=f"reader-{index}")
               for index in (1, 2)]
    for reader in readers:
        reader.start()
    wait_until_blocked(readers)
    assert results_lock.locked() and not copies, "the readers wait for the cruncher"
    signal_ready(ready_path)
    for reader in readers:
        reader.join()


if __name__ == "__main__":
    main(sys.argv[1])

"""105 workers wait for an event nobody sets: more than faulthandler's 100 threads."""

import os
import sys
import threading

sys.path.insert(0, os.environ["THREADDOC_HUNG_SAMPLES"])
from _ready import signal_ready, wait_until_blocked

WORKERS = 105


def main(ready_path):
    never_set = threading.Event()
    workers = [threading.Thread(target=never_set.wait, name=f"waiter-{number}")
               for number in range(WORKERS)]
    for worker in workers:
        worker.start()
    wait_until_blocked(workers)
    signal_ready(ready_path)
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main(sys.argv[1])

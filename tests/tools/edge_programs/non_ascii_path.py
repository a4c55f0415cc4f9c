"""Run from a file named with non-ASCII letters: faulthandler escapes them (\\xe9, \\u20ac)."""

import os
import sys
import threading

sys.path.insert(0, os.environ["THREADDOC_HUNG_SAMPLES"])
from _ready import signal_ready, wait_until_blocked


def wait_for_payment(paid):
    paid.wait()


def main(ready_path):
    paid = threading.Event()
    worker = threading.Thread(target=wait_for_payment, args=(paid,), name="caisse")
    worker.start()
    wait_until_blocked([worker])
    signal_ready(ready_path)
    worker.join()


if __name__ == "__main__":
    main(sys.argv[1])

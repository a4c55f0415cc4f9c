"""A worker recurses 150 frames deep and blocks there: deeper than faulthandler's 100 frames."""

import os
import sys
import threading

sys.path.insert(0, os.environ["THREADDOC_HUNG_SAMPLES"])
from _ready import hang_forever, signal_ready, wait_until_blocked

DEPTH = 150


def descend(depth):
    if depth == 0:
        hang_forever()
    descend(depth - 1)


def main(ready_path):
    worker = threading.Thread(target=descend, args=(DEPTH,), name="descender")
    worker.start()
    wait_until_blocked([worker])
    signal_ready(ready_path)
    worker.join()


if __name__ == "__main__":
    main(sys.argv[1])

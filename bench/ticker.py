"""The benchmark's ticker: a thread in the target that logs every pause of the process.

It wakes every millisecond and appends each gap longer than PAUSE_SECONDS between two of
its ticks to a log ("<monotonic start> <gap>" per line): a diagnosis that pauses the
process shows up there as one gap as long as the pause, on the clock the benchmark reads
too (CLOCK_MONOTONIC is system-wide).

    python bench/ticker.py SCRIPT READY_PATH   # run SCRIPT READY_PATH with a ticker in it

runs a hung sample (which signals readiness by writing READY_PATH) as `__main__`, with
the ticker logging to READY_PATH.pauses.
"""

import os
import runpy
import sys
import threading
import time

PAUSE_SECONDS = 0.01


def tick(log_path):
    with open(log_path, "a", buffering=1) as log:
        last = time.monotonic()
        while True:
            time.sleep(0.001)
            now = time.monotonic()
            if now - last > PAUSE_SECONDS:
                log.write(f"{last:.6f} {now - last:.6f}\n")
            last = now


def start_ticker(log_path):
    threading.Thread(target=tick, args=(log_path,), name="ticker", daemon=True).start()


def run_with_ticker(script, ready_path):
    start_ticker(ready_path + ".pauses")
    sys.argv = [script, ready_path]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))  # the sample's own helpers
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    run_with_ticker(sys.argv[1], sys.argv[2])

"""Benchmark target: N threads blocked on one lock held by the main thread, and a ticker.

    python many_threads_on_one_lock.py N READY_PATH

The ticker thread wakes every millisecond and appends each gap longer than
PAUSE_SECONDS between two of its ticks to READY_PATH.pauses ("<monotonic start> <gap>"
per line): a diagnosis that pauses the process shows up there as one gap as long as
the pause, on the clock the benchmark reads too (CLOCK_MONOTONIC is system-wide).
"""

import os
import sys
import threading
import time

gate = threading.Lock()
PAUSE_SECONDS = 0.01


def wait_for_gate():
    with gate:
        pass


def tick(log_path):
    with open(log_path, "a", buffering=1) as log:
        last = time.monotonic()
        while True:
            time.sleep(0.001)
            now = time.monotonic()
            if now - last > PAUSE_SECONDS:
                log.write(f"{last:.6f} {now - last:.6f}\n")
            last = now


def main(count, ready_path):
    gate.acquire()
    workers = [threading.Thread(target=wait_for_gate, name=f"worker-{i}", daemon=True)
               for i in range(count)]
    for worker in workers:
        worker.start()
    while len(threading.enumerate()) < count + 1:
        threading.Event().wait(0.01)
    threading.Thread(target=tick, args=(ready_path + ".pauses",), name="ticker", daemon=True).start()
    partial = ready_path + ".partial"
    with open(partial, "w") as handle:
        handle.write("ready")
    os.replace(partial, ready_path)
    threading.Event().wait()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])

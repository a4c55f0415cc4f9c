"""Benchmark target: N threads blocked on one lock held by the main thread, and a ticker.

    python many_threads_on_one_lock.py N READY_PATH

The ticker thread (bench/ticker.py) appends each pause of the process to
READY_PATH.pauses.
"""

import os
import sys
import threading

from ticker import start_ticker

gate = threading.Lock()
# The workers are one frame deep: 256 KiB of stack each is plenty, and 10,000 of them then
# reserve 2.5 GiB of address space instead of 80 GiB at the 8 MiB default.
WORKER_STACK_SIZE = 256 * 1024


def wait_for_gate():
    with gate:
        pass


def main(count, ready_path):
    gate.acquire()
    threading.stack_size(WORKER_STACK_SIZE)
    workers = [threading.Thread(target=wait_for_gate, name=f"worker-{i}", daemon=True)
               for i in range(count)]
    for worker in workers:
        worker.start()
    threading.stack_size(0)
    while len(threading.enumerate()) < count + 1:
        threading.Event().wait(0.01)
    start_ticker(ready_path + ".pauses")
    partial = ready_path + ".partial"
    with open(partial, "w") as handle:
        handle.write("ready")
    os.replace(partial, ready_path)
    threading.Event().wait()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])

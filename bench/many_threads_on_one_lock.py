"""Benchmark target: N threads blocked on one lock held by the main thread.

    python many_threads_on_one_lock.py N READY_PATH
"""

import os
import sys
import threading

gate = threading.Lock()


def wait_for_gate():
    with gate:
        pass


def main(count, ready_path):
    gate.acquire()
    workers = [threading.Thread(target=wait_for_gate, name=f"worker-{i}", daemon=True)
               for i in range(count)]
    for worker in workers:
        worker.start()
    while len(threading.enumerate()) < count + 1:
        threading.Event().wait(0.01)
    partial = ready_path + ".partial"
    with open(partial, "w") as handle:
        handle.write("ready")
    os.replace(partial, ready_path)
    threading.Event().wait()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])

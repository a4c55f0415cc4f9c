"""A pre-fork server whose new worker process hangs on its first statistics update.

The thread stats-flusher ships the request counters to the metrics collector:
it takes the module global `stats_lock`, snapshots the counters, and, still
inside the `with`, waits for the collector's acknowledgement (the Event
`collector_acked`, no timeout), which never comes.  Meanwhile the main thread
forks a worker process with `os.fork()`.  The child gets a copy of the
parent's memory, `stats_lock` included -- locked -- but not the thread that
holds it: only the thread that called fork() exists in the child.  The
worker's first act is to count itself in the statistics (`with stats_lock:`),
so it waits for a lock that no thread of its process will ever release.  The
parent's main thread waits for the worker to exit (`os.waitpid()`).

(Python 3.12 and later warn about this very thing: "This process is
multi-threaded, use of fork() may lead to deadlocks in the child.")

The parent writes the child's PID to `<ready file>.child`, then "ready" to the
ready file, once the child is asleep on the lock.  (A helper daemon thread in
the parent announces readiness, then ends.)  The child stays in the parent's
process group: kill the group to stop both (Ctrl-C does, as it signals the
whole foreground group).  Killing the parent alone leaves the child behind:
its only thread is stuck on the lock, so nothing in it can notice.
"""

import os
import sys
import threading
import time

from _ready import signal_ready
from _stacks import wait_until_process_blocked

stats_lock = threading.Lock()
counters = {"requests": 0, "workers_started": 0}
collector_acked = threading.Event()


def flush_stats_forever(sent):
    while True:
        with stats_lock:
            sent.append(dict(counters))
            collector_acked.wait()  # the acknowledgement is lost: the lock is never released
            collector_acked.clear()


def count(name):
    with stats_lock:
        counters[name] += 1


def worker_main(status_pipe):
    os.write(status_pipe, b"up")  # tell the master this worker is alive
    count("workers_started")
    os._exit(0)  # a real worker would serve requests here


def write_atomically(path, text):
    with open(path + ".partial", "w") as handle:
        handle.write(text)
    os.replace(path + ".partial", path)


def announce_when_stuck(ready_path, worker_pid, status_pipe):
    if os.read(status_pipe, 2) != b"up":
        raise RuntimeError(f"worker {worker_pid} did not start")
    wait_until_process_blocked(worker_pid)  # asleep in `with stats_lock:`, its only wait
    write_atomically(ready_path + ".child", str(worker_pid))
    signal_ready(ready_path)


def main(ready_path):
    sent = []
    threading.Thread(target=flush_stats_forever, args=(sent,), name="stats-flusher", daemon=True).start()
    while not sent:  # a flush is in progress when the worker is forked (the race, made certain)
        time.sleep(0.01)
    status_read, status_write = os.pipe()
    worker_pid = os.fork()
    if worker_pid == 0:
        os.close(status_read)
        worker_main(status_write)
    os.close(status_write)
    threading.Thread(target=announce_when_stuck, args=(ready_path, worker_pid, status_read),
                     name="ready-announcer", daemon=True).start()
    os.waitpid(worker_pid, 0)


if __name__ == "__main__":
    main(sys.argv[1])

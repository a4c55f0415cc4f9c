"""A metrics exporter that deadlocks on shutdown: it joins its flusher while holding a lock.

The flusher thread sends buffered metrics every 50 ms and, once asked to stop,
flushes one last time; every flush takes `state_lock` to swap the buffer.
`shutdown()` takes `state_lock` so that no metric is recorded after the stop
request, asks the flusher to stop, and joins it without letting go of the lock.
The flusher's final flush waits for `state_lock`, held by the main thread that
waits for the flusher to end: a deadlock through `Thread.join`.  (As the main
thread is the one stuck, a helper thread announces readiness, then ends.)
"""

import sys
import threading

from _ready import signal_ready, wait_until_blocked

state_lock = threading.Lock()
stop_requested = threading.Event()
pending = []
sent = []


def record(metric, value):
    with state_lock:
        if stop_requested.is_set():
            raise RuntimeError("the exporter is shut down")
        pending.append((metric, value))


def flush():
    with state_lock:
        batch = pending[:]
        del pending[:]
    if batch:
        sent.append(batch)


def flush_periodically():
    while not stop_requested.wait(timeout=0.05):
        flush()
    flush()


def shutdown(flusher):
    with state_lock:
        stop_requested.set()
        flusher.join()


def announce_when_stuck(ready_path, threads):
    stop_requested.wait()
    wait_until_blocked(threads)
    assert state_lock.locked() and all(thread.is_alive() for thread in threads)
    signal_ready(ready_path)


def main(ready_path):
    flusher = threading.Thread(target=flush_periodically, name="metrics-flusher")
    flusher.start()
    record("requests", 1)
    record("latency_ms", 12)
    threading.Thread(target=announce_when_stuck, args=(ready_path, [threading.main_thread(), flusher]),
                     name="ready-announcer", daemon=True).start()
    shutdown(flusher)


if __name__ == "__main__":
    main(sys.argv[1])

"""A pre-fork server whose three worker processes all deadlock the same way.

Like gunicorn, the master process forks its workers ("fork" start method of
`multiprocessing`) and then only waits for them to exit.  Each worker runs
the same code: a request-handler thread serves a request (it takes the
worker's `session_lock`, then `config_lock` to read a setting) while the
config-reloader thread applies the configuration the master just wrote (it
takes `config_lock`, then `session_lock` to drop the sessions the new
configuration invalidates): the opposite order.  At start-up both run at once
(a Barrier makes the unlucky timing certain), so every worker ends in the
same lock-order deadlock, its main thread joining its two stuck threads, and
the master waits in `join()` for ever.

Each worker has a helper daemon thread that tells the master, through an
Event, once the worker's two threads sleep on their second lock.  Once all
three have, a helper daemon thread in the master writes the workers' PIDs
to `<ready file>.pids` (one a line), then "ready" to the ready file, and
ends.  A watchdog thread in each worker ends it when the master is gone, so
that no worker outlives it.
"""

import multiprocessing
import os
import sys
import threading
import time

from _ready import signal_ready
from _stacks import wait_until_waiting_at, wait_until_waiting_in

WORKERS = 3


class Worker:
    def __init__(self):
        self.session_lock = threading.Lock()
        self.config_lock = threading.Lock()
        self.both_busy = threading.Barrier(2)
        self.sessions = {"alice": "eu", "bob": "us"}
        self.config = {"regions": ["eu", "us"], "page_size": 50}

    def handle_request(self, user):
        with self.session_lock:
            region = self.sessions.get(user)
            self.both_busy.wait()
            with self.config_lock:
                return region, self.config["page_size"]

    def reload_config(self, new_config):
        with self.config_lock:
            self.config = new_config
            self.both_busy.wait()
            with self.session_lock:  # drop the sessions of regions no longer served
                self.sessions = {user: region for user, region in self.sessions.items()
                                 if region in new_config["regions"]}


def report_when_deadlocked(handler, reloader, deadlocked):
    wait_until_waiting_at(handler, "handle_request", __file__, "with self.config_lock")
    wait_until_waiting_at(reloader, "reload_config", __file__, "with self.session_lock")
    deadlocked.set()


def watch_parent(parent_pid):
    while os.getppid() == parent_pid:
        time.sleep(0.1)
    os._exit(1)  # the master is gone: nobody will send this worker requests any more


def run_worker(master_pid, deadlocked):
    threading.Thread(target=watch_parent, args=(master_pid,), name="master-watchdog", daemon=True).start()
    worker = Worker()
    handler = threading.Thread(target=worker.handle_request, args=("alice",), name="request-handler")
    reloader = threading.Thread(target=worker.reload_config, args=({"regions": ["eu"], "page_size": 50},),
                                name="config-reloader")
    handler.start()
    reloader.start()
    threading.Thread(target=report_when_deadlocked, args=(handler, reloader, deadlocked),
                     name="deadlock-reporter", daemon=True).start()
    handler.join()
    reloader.join()


def announce_when_stuck(ready_path, workers, events):
    for event in events:
        event.wait()
    wait_until_waiting_in(threading.main_thread(), "join", "process.py")
    with open(ready_path + ".pids.partial", "w") as pids:
        pids.write("".join(f"{worker.pid}\n" for worker in workers))
    os.replace(ready_path + ".pids.partial", ready_path + ".pids")
    signal_ready(ready_path)


def main(ready_path):
    context = multiprocessing.get_context("fork")
    events = [context.Event() for _ in range(WORKERS)]
    workers = [context.Process(target=run_worker, args=(os.getpid(), event), name=f"worker-{index}")
               for index, event in enumerate(events, 1)]
    for worker in workers:
        worker.start()
    threading.Thread(target=announce_when_stuck, args=(ready_path, workers, events), name="ready-announcer",
                     daemon=True).start()
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main(sys.argv[1])

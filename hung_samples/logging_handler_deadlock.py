"""A custom logging handler that takes an application lock: a lock-order deadlock with logging.

`SessionTagHandler.emit()` tags each log line with the user of the session
that logged it, looked up in the session registry under `registry_lock`.
`logging.Handler.handle()` holds the handler's own lock (an RLock the logging
module creates for every handler) while it calls `emit()`.  So the thread
http-worker, logging a request, holds the handler lock and waits for
`registry_lock`; the thread login holds `registry_lock` while it opens a
session and logs that through the same handler, waiting for the handler lock.
One of the two locks lives inside the logging module, where nobody looks for
it.  The main thread joins both and hangs behind them.
"""

import logging
import sys
import threading

from _ready import signal_ready, wait_until_blocked

registry_lock = threading.Lock()
sessions = {}  # thread ident -> user name
both_hold_their_lock = threading.Barrier(2)

log = logging.getLogger("shop")


class SessionTagHandler(logging.Handler):
    def __init__(self, stream):
        super().__init__()
        self.stream = stream

    def emit(self, record):
        message = self.format(record)
        both_hold_their_lock.wait()
        with registry_lock:
            user = sessions.get(record.thread, "anonymous")
        self.stream.write(f"[{user}] {message}\n")


def handle_request(path):
    log.info("GET %s", path)


def log_in(user):
    with registry_lock:
        sessions[threading.get_ident()] = user
        both_hold_their_lock.wait()
        log.info("session opened for %s", user)


def main(ready_path):
    handler = SessionTagHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(threadName)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    workers = [
        threading.Thread(target=handle_request, args=("/orders",), name="http-worker"),
        threading.Thread(target=log_in, args=("ada",), name="login"),
    ]
    for worker in workers:
        worker.start()
    wait_until_blocked(workers)
    assert registry_lock.locked(), "login holds the registry"
    signal_ready(ready_path)
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main(sys.argv[1])

"""A checksum service that waits for a result its worker process cannot produce.

The service hashes uploads in a worker process (a ProcessPoolExecutor with one
worker) and streams each upload to the worker through a pipe the worker
inherits: the task reads the pipe to its end and returns the digest.  The
service submits the task, then waits for the digest with `future.result()`,
and only after that would it write the upload into the pipe and close it:
the two steps are in the wrong order.  The worker process waits for data
that will never be written, the parent waits for a result that will never
come.

The pipe needs a fork (the worker inherits its read end), so the pool asks
for the "fork" start method; the worker also reports, through an Event it
inherits, that it has begun the job.  A watchdog thread in the worker ends it when
its parent is gone, so that it never outlives the service.  (A helper daemon
thread in the parent announces readiness once both are stuck, then ends.)
"""

import hashlib
import multiprocessing
import os
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from _ready import signal_ready
from _stacks import wait_until_process_blocked, wait_until_waiting_in

upload_in, upload_out = os.pipe()  # the worker reads upload_in; the service writes upload_out
upload_stream = None  # in the worker: upload_in, opened
job_started = None  # in the worker: set once it has begun the job


def watch_parent(parent_pid):
    while os.getppid() == parent_pid:
        time.sleep(0.1)
    os._exit(1)  # the service is gone: nobody will ever ask this worker for anything


def start_worker(parent_pid, started):
    global upload_stream, job_started
    job_started = started
    os.close(upload_out)  # the service alone writes the upload
    upload_stream = os.fdopen(upload_in, "rb")
    threading.Thread(target=watch_parent, args=(parent_pid,), name="parent-watchdog", daemon=True).start()


def checksum_upload():
    job_started.set()
    digest = hashlib.sha256()
    for chunk in iter(lambda: upload_stream.read(65536), b""):
        digest.update(chunk)
    return digest.hexdigest()


def announce_when_stuck(ready_path, started):
    started.wait()
    (worker,) = multiprocessing.active_children()
    wait_until_process_blocked(worker.pid)
    wait_until_waiting_in(threading.main_thread(), "result", "_base.py")
    signal_ready(ready_path)


def main(ready_path):
    context = multiprocessing.get_context("fork")
    started = context.Event()
    with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=start_worker,
                             initargs=(os.getpid(), started)) as pool:
        future = pool.submit(checksum_upload)
        threading.Thread(target=announce_when_stuck, args=(ready_path, started), name="ready-announcer",
                         daemon=True).start()
        digest = future.result()
        with os.fdopen(upload_out, "wb") as upload:
            upload.write(b"region,revenue\neu,1200\nus,3400\n")
    print(digest)


if __name__ == "__main__":
    main(sys.argv[1])

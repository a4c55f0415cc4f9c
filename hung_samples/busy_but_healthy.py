"""A healthy service under load: nothing here is hung.

Two workers hash data as fast as they can (CPU-bound, contending for the GIL),
a third takes short jobs from a queue, and an HTTP server thread idles waiting
for requests on a loopback port.  A diagnoser must call this `no-hang`.
"""

import hashlib
import http.server
import queue
import sys
import threading

from _ready import signal_ready


def crunch(seed):
    digest = seed
    while True:
        for _ in range(1000):
            digest = hashlib.sha256(digest).digest()


def take_jobs(jobs):
    while True:
        job = jobs.get()
        sum(range(job))
        jobs.task_done()


def feed_jobs(jobs):
    while True:
        jobs.put(10000)


def main(ready_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, name="http-server", daemon=True).start()
    for index in range(2):
        threading.Thread(target=crunch, args=(str(index).encode(),), name=f"cruncher-{index}",
                         daemon=True).start()
    jobs = queue.Queue(maxsize=100)
    threading.Thread(target=take_jobs, args=(jobs,), name="job-taker", daemon=True).start()
    jobs.put(1)
    jobs.join()  # the job machinery works before we call ourselves ready
    signal_ready(ready_path)
    feed_jobs(jobs)


if __name__ == "__main__":
    main(sys.argv[1])

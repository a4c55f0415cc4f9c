"""A report exporter working through a long list of slow jobs: slow, not hung.

The thread exporter exports reports one after another.  For each one it asks
the storage backend for the report's rows over a socket (the backend, a
thread standing in for a remote server, takes about 0.3 s to answer) and
records the job as done, holding the exporter's `progress_lock` all the
while, so that nobody ever sees a job half recorded; then it formats the
rows (a little CPU).  The thread status-reporter takes that lock once a
second to note how far the export has got, and so waits behind the job in
flight.  Any single look shows a thread inside a lock, waiting on a socket,
and often another thread waiting for that lock; yet jobs complete three
times a second.  The main thread joins the exporter.  A diagnoser must call
this `no-hang`.
"""

import socket
import sys
import threading
import time

from _ready import signal_ready

JOBS = [f"report-{number:06d}" for number in range(100000)]  # some eight hours of work


class Exporter:
    def __init__(self, backend):
        self._backend = backend
        self.progress_lock = threading.Lock()
        self.done = []
        self.reports = []

    def export(self, job):
        with self.progress_lock:
            self._backend.sendall(job.encode() + b"\n")
            rows = self._receive_rows()
            self.done.append(job)
        self.reports.append(self._format(rows))
        del self.reports[:-10]

    def _receive_rows(self):
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = self._backend.recv(4096)
            if not chunk:
                raise ConnectionError("the backend hung up")
            reply += chunk
        return reply.decode().split(",")

    @staticmethod
    def _format(rows):
        return "\n".join(f"{index:>5} {row.strip():>12}" for index, row in enumerate(rows * 2000))

    def export_all(self, jobs):
        for job in jobs:
            self.export(job)


def serve_slowly(connection):
    """The storage backend: answers every request, after a while."""
    with connection:
        for request in connection.makefile("rb"):
            time.sleep(0.3)
            name = request.decode().strip()
            connection.sendall(f"{name},1200,3400,5600\n".encode())


def report_status(exporter, reports):
    while True:
        with exporter.progress_lock:
            reports.append(f"{len(exporter.done)} of {len(JOBS)} reports exported")
            del reports[:-10]
        time.sleep(1.0)


def main(ready_path):
    client, server = socket.socketpair()
    client.settimeout(10.0)
    threading.Thread(target=serve_slowly, args=(server,), name="storage-backend", daemon=True).start()
    exporter = Exporter(client)
    worker = threading.Thread(target=exporter.export_all, args=(JOBS,), name="exporter")
    worker.start()
    reports = []
    threading.Thread(target=report_status, args=(exporter, reports), name="status-reporter",
                     daemon=True).start()
    while len(exporter.done) < 3 or not reports:  # jobs complete, and the status is reported
        time.sleep(0.05)
    signal_ready(ready_path)
    worker.join()


if __name__ == "__main__":
    main(sys.argv[1])

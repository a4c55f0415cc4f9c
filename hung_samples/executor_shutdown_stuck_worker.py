"""A nightly publisher stuck at the end of its `with ThreadPoolExecutor(...)` block.

`publish_report` uploads the report to the archive on a pool of upload
workers: `upload` sends the file and waits for the archive to acknowledge it
(`reply.wait()`, no timeout).  The acknowledgement is lost, so the reply
never arrives and the upload never ends.  The publisher does not wait for
the upload's result, but leaving the `with` block calls `shutdown(wait=True)`,
which joins every worker: the main thread hangs in the shutdown, behind
upload_0.  (A helper daemon thread announces readiness once both are stuck,
then ends.)
"""

import hashlib
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from _ready import signal_ready, wait_until_blocked
from _stacks import wait_until_waiting_in


class PendingReply:
    """The archive's answer to one request, delivered by its connection's reader."""

    def __init__(self, request_id):
        self.request_id = request_id
        self._arrived = threading.Event()
        self.status = None

    def deliver(self, status):
        self.status = status
        self._arrived.set()

    def wait(self):
        self._arrived.wait()
        return self.status


class ArchiveClient:
    def __init__(self):
        self.sent = []
        self.replies = {}

    def send(self, name, data):
        request_id = len(self.sent) + 1
        self.sent.append((request_id, name, hashlib.sha256(data).hexdigest()))
        self.replies[request_id] = PendingReply(request_id)
        return self.replies[request_id]  # the acknowledgement is lost on the way back


def upload(archive, name, data):
    reply = archive.send(name, data)
    status = reply.wait()
    return f"{name}: {status}"


def publish_report(archive, name, data):
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="upload") as pool:
        pool.submit(upload, archive, name, data)
        print(f"publishing {name} ({len(data)} bytes)")


def announce_when_stuck(ready_path):
    main_thread = threading.main_thread()
    wait_until_waiting_in(main_thread, "shutdown", "thread.py")
    workers = [t for t in threading.enumerate() if t.name.startswith("upload")]
    for worker in workers:
        wait_until_waiting_in(worker, "wait", "threading.py")
    wait_until_blocked(workers)
    signal_ready(ready_path)


def main(ready_path):
    threading.Thread(target=announce_when_stuck, args=(ready_path,), name="ready-announcer",
                     daemon=True).start()
    publish_report(ArchiveClient(), "report-2024-06-30.csv", b"region,revenue\neu,1200\nus,3400\n")


if __name__ == "__main__":
    main(sys.argv[1])

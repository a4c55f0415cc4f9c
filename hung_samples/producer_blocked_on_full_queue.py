"""A log shipper whose ingest thread waits for room on a queue nobody empties any more.

The thread ingest reads the application's log records and puts them on
`outbox`, a bounded queue (maxsize 4), so that memory stays bounded while the
uploader catches up.  The thread uploader takes the records off the queue,
encodes each as JSON and ships it.  The third record carries raw bytes, which
`json.dumps()` rejects with TypeError: the exception ends the uploader thread.
From then on nothing takes records off `outbox`: it fills up, and ingest waits
in `put()` for room that never comes.  The main thread joins ingest and hangs
behind it.  (A helper daemon thread announces readiness once all this is in
place, then ends.)
"""

import json
import sys
import threading
from queue import Queue

from _ready import signal_ready, wait_until_blocked
from _stacks import wait_until_dead, wait_until_waiting_in

OUTBOX_SIZE = 4

outbox = Queue(maxsize=OUTBOX_SIZE)
shipped = []


def read_log_records(count):
    for number in range(count):
        record = {"seq": number, "level": "INFO", "message": f"request {number} served"}
        if number == 2:
            record["payload"] = b"\x89PNG\r\n"  # a handler logged an upload's first bytes
        yield record


def ingest_logs(records):
    for record in records:
        outbox.put(record)


def upload_records():
    while True:
        record = outbox.get()
        shipped.append(json.dumps(record))


def announce_when_stuck(ready_path, ingest, uploader):
    wait_until_dead(uploader)
    main_thread = threading.main_thread()
    wait_until_waiting_in(ingest, "put", "queue.py")
    wait_until_waiting_in(main_thread, "join", "threading.py")
    wait_until_blocked([ingest, main_thread])
    if not outbox.full():
        raise RuntimeError(f"expected a full outbox, it holds {outbox.qsize()} records")
    signal_ready(ready_path)


def main(ready_path):
    uploader = threading.Thread(target=upload_records, name="uploader")
    ingest = threading.Thread(target=ingest_logs, args=(read_log_records(100),), name="ingest")
    uploader.start()
    ingest.start()
    threading.Thread(target=announce_when_stuck, args=(ready_path, ingest, uploader),
                     name="ready-announcer", daemon=True).start()
    ingest.join()
    print(f"shipped {len(shipped)} records")


if __name__ == "__main__":
    main(sys.argv[1])

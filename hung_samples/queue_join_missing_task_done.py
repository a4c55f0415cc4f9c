"""A search indexer whose batch never completes: one code path forgets `task_done()`.

The main thread puts a batch of documents on the queue `documents` and waits
for the batch with `documents.join()`, which returns once `task_done()` has
been called once for every item put.  The worker thread indexer takes the
documents off one by one and calls `task_done()` after indexing each -- except
on the path that skips a blank document, whose `continue` jumps over the call.
The batch holds one blank document, so the queue's count of unfinished tasks
stops at 1: the indexer has consumed every item and waits in `get()` for more,
and the main thread waits in `join()` forever.  (A helper daemon thread
announces readiness once both are stuck, then ends.)
"""

import queue
import sys
import threading

from _ready import signal_ready, wait_until_blocked
from _stacks import wait_until_waiting_in

BATCH = [
    ("doc-1", "Refund policy for annual plans"),
    ("doc-2", "Resetting a forgotten password"),
    ("doc-3", "   "),
    ("doc-4", "Exporting invoices as CSV"),
    ("doc-5", "Annual plans and seat counts"),
]

documents = queue.Queue()
search_index = {}


def index_documents():
    while True:
        doc_id, text = documents.get()
        if not text.strip():
            continue  # Bug: a blank document is never marked done (no documents.task_done())
        for word in text.lower().split():
            search_index.setdefault(word, set()).add(doc_id)
        documents.task_done()


def announce_when_stuck(ready_path, indexer):
    main_thread = threading.main_thread()
    wait_until_waiting_in(main_thread, "join", "queue.py")
    wait_until_waiting_in(indexer, "get", "queue.py")
    wait_until_blocked([indexer, main_thread])
    if not documents.empty() or documents.unfinished_tasks != 1:
        raise RuntimeError(f"expected one unfinished task, got {documents.unfinished_tasks}")
    signal_ready(ready_path)


def main(ready_path):
    indexer = threading.Thread(target=index_documents, name="indexer", daemon=True)
    indexer.start()
    threading.Thread(target=announce_when_stuck, args=(ready_path, indexer), name="ready-announcer",
                     daemon=True).start()
    for document in BATCH:
        documents.put(document)
    documents.join()
    print(f"indexed {len(BATCH)} documents, {len(search_index)} words")


if __name__ == "__main__":
    main(sys.argv[1])

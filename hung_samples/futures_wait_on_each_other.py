"""A CSV import whose two stages wait for each other's futures.

The importer runs two stages side by side on a pool of two workers (stage_0,
stage_1) and keeps their futures in `pending`, by stage name, so that stages
can use each other's output.  `parse_rows` needs the column types, so it waits
for `pending["schema"]`; `infer_schema` guesses the column types from parsed
rows, so it waits for `pending["rows"]`.  Each was written when the other
stage was still a plain function call.  Both are running, each waits for the
other's result: a ring of two futures that will never be set.  The main
thread waits for the parsed rows and hangs behind them.
"""

import csv
import io
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from _ready import signal_ready, wait_until_blocked
from _stacks import wait_until_waiting_in

UPLOAD = "id,name,signed_up,plan\n1,Ada,2024-01-05,pro\n2,Linus,2024-02-11,free\n3,Grace,2024-03-02,team\n"

pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="stage")
pending = {}  # stage name -> its future
# The stages start once the importer has registered all of them in `pending`.
stages_registered = threading.Event()


def read_upload(text):
    return list(csv.reader(io.StringIO(text)))


def parse_rows(text):
    stages_registered.wait()
    header, *records = read_upload(text)
    schema = pending["schema"].result()
    return [{column: schema[column](value) for column, value in zip(header, record)} for record in records]


def infer_schema(text):
    stages_registered.wait()
    header, *_ = read_upload(text)
    rows = pending["rows"].result()
    return {column: int if all(row[column].isdigit() for row in rows) else str for column in header}


def announce_when_stuck(ready_path):
    workers = [t for t in threading.enumerate() if t.name.startswith("stage")]
    for worker in workers:
        wait_until_waiting_in(worker, "result", "_base.py")
    wait_until_blocked(workers)
    wait_until_waiting_in(threading.main_thread(), "result", "_base.py")
    assert len(workers) == 2 and all(future.running() for future in pending.values())
    signal_ready(ready_path)


def main(ready_path):
    pending["rows"] = pool.submit(parse_rows, UPLOAD)
    pending["schema"] = pool.submit(infer_schema, UPLOAD)
    stages_registered.set()
    threading.Thread(target=announce_when_stuck, args=(ready_path,), name="ready-announcer",
                     daemon=True).start()
    for row in pending["rows"].result():
        print(row)


if __name__ == "__main__":
    main(sys.argv[1])

"""A script whose main code has finished while its export job is still working: not a hang.

The main code starts the thread exporter, which writes every ledger entry to
the archive format (all CPU: a checksum per entry, progress counted in
`progress`), and returns.  The exporter is not a daemon thread, so the
interpreter waits for it in `threading._shutdown`, as it should: the export
is long (the ledger here never ends) but it moves forward every instant.
A diagnoser must call this `no-hang`, and say that the script has finished
and is waiting for the exporter.  (A helper daemon thread announces
readiness once the main thread waits there and the export has moved on,
then ends.)
"""

import itertools
import sys
import threading
import time
import zlib

from _ready import signal_ready
from _stacks import wait_until_waiting_in

progress = {"entries": 0, "checksum": 0}


def ledger_entries():
    for number in itertools.count(1):
        yield f"{number:012d};2024-06-30;account-{number % 977};{number * 7 % 100003 / 100:.2f}\n"


def export_ledger(entries):
    checksum = 0
    for count, entry in enumerate(entries, 1):
        checksum = zlib.crc32(entry.encode(), checksum)
        progress["entries"] = count
        progress["checksum"] = checksum


def announce_when_waiting(ready_path):
    main_thread = threading.main_thread()
    while main_thread.is_alive():  # until the script has finished
        time.sleep(0.01)
    wait_until_waiting_in(main_thread, "_shutdown", "threading.py")
    before = progress["entries"]
    while progress["entries"] <= before + 1000:  # the export moves on meanwhile
        time.sleep(0.01)
    signal_ready(ready_path)


def main(ready_path):
    threading.Thread(target=export_ledger, args=(ledger_entries(),), name="exporter").start()
    threading.Thread(target=announce_when_waiting, args=(ready_path,), name="ready-announcer",
                     daemon=True).start()
    print("export started; it will finish on its own")


if __name__ == "__main__":
    main(sys.argv[1])

"""A nightly integrity sweep on four threads, all CPU-bound: busy, not hung.

Four verifier threads each take a share of an export's records and check
every record's Adler-32 checksum, computed in pure Python, against the one
stored with it, counting the records they have checked; when they reach the
end of their share they start over (the sweep runs until stopped).  Pure
Python holds the GIL, so the four take turns: at any instant one of them runs
and the others wait for the GIL, handed over every few milliseconds.  Every
verifier moves on, record after record.  The main thread joins them.  A
diagnoser must call this `no-hang` (busy, contending for the GIL).
"""

import sys
import threading
import time
import zlib

from _ready import signal_ready

VERIFIERS = 4


def adler32(data):
    low, high = 1, 0
    for byte in data:
        low = (low + byte) % 65521
        high = (high + low) % 65521
    return (high << 16) | low


def make_export(count):
    records = [(f"order-{number},customer-{number * 7 % 1000},{number * 13 % 997}.99\n" * 4).encode()
               for number in range(count)]
    return [(record, zlib.adler32(record)) for record in records]


def verify(share, checked, index):
    while True:
        for record, stored in share:
            if adler32(record) != stored:
                raise ValueError(f"record {record[:20]!r} is corrupt")
            checked[index] += 1


def main(ready_path):
    export = make_export(2000)
    checked = [0] * VERIFIERS
    verifiers = [
        threading.Thread(target=verify, args=(export[index::VERIFIERS], checked, index),
                         name=f"verifier-{index + 1}")
        for index in range(VERIFIERS)
    ]
    for verifier in verifiers:
        verifier.start()
    first = list(checked)
    while not all(now > then > 0 for now, then in zip(checked, first)):
        time.sleep(0.01)  # every verifier has checked records, and is still checking more
        if not all(first):
            first = list(checked)
    signal_ready(ready_path)
    for verifier in verifiers:
        verifier.join()


if __name__ == "__main__":
    main(sys.argv[1])

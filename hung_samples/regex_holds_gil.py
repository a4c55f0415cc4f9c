"""A review-moderation service frozen by one regular expression that backtracks for ever.

The thread moderator takes customer reviews from a queue and accepts only
those made of words and spaces, checked with `^(\\w+\\s?)*$`.  The nested
quantifier lets the engine split a run of letters into words in exponentially
many ways; on a text that does not match, it tries them all.  A review ending
in "!" therefore takes the match millions of years: `re` runs it in C and
never lets go of the GIL.  So every other thread is frozen too, although it
is not waiting for anything of its own: the heartbeat thread, which tells the
supervisor every 50 ms that the service is alive (a byte down a pipe), is
stuck waiting for the GIL, and so would be a request handler.  The main
thread joins the moderator.  One thread burns a CPU in one C call; its
Python stack never changes.

Readiness cannot come from inside: no thread of this process can run Python
once the match is under way.  So, before it queues the reviews, the sample
starts a watcher process (`_outside.py`) that reads the heartbeat pipe and
watches the moderator through /proc, and writes the ready file once the
heartbeat has been silent for half a second while the moderator ran (state R)
and used CPU all along; then the watcher exits.
"""

import os
import queue
import re
import sys
import threading
import time

from _outside import start_watcher

WORDS_ONLY = re.compile(r"^(\w+\s?)*$")

REVIEWS = [
    "Arrived on time and works as described",
    "Great value for the price",
    "Thanks for the quick delivery everything arrived in perfect condition and the support team was lovely!",
]


def moderate(reviews, accepted, rejected):
    while True:
        review = reviews.get()
        if WORDS_ONLY.match(review):
            accepted.append(review)
        else:
            rejected.append(review)
        reviews.task_done()


def beat(supervisor_fd):
    while True:
        try:
            os.write(supervisor_fd, b".")
        except OSError:
            return  # no supervisor is listening any more
        time.sleep(0.05)


def main(ready_path):
    supervisor_read, supervisor_write = os.pipe()
    threading.Thread(target=beat, args=(supervisor_write,), name="heartbeat", daemon=True).start()
    reviews = queue.Queue()
    accepted, rejected = [], []
    moderator = threading.Thread(target=moderate, args=(reviews, accepted, rejected), name="moderator")
    moderator.start()
    start_watcher(ready_path, moderator, supervisor_read, "computing")
    os.close(supervisor_read)  # the watcher has its own copy
    for review in REVIEWS:
        reviews.put(review)
    moderator.join()


if __name__ == "__main__":
    main(sys.argv[1])

"""A comment exporter that deadlocks on itself 5,000 replies deep.

`CommentStore.export()` holds the store's plain Lock `self._lock` while it
renders a discussion, so that no comment is edited under its feet, and
`_render()` walks the replies recursively: one frame per level.  The discussion
is a 5,000-reply chain (two users answering each other, as flame wars go), so
the program raises the recursion limit as such a program has to.  At the
bottom, the last reply is by an author whose name is not in the exporter's
cache: `_render()` asks `author_name()`, which takes `self._lock` too.  The
thread exporter holds the lock since `export()`, 5,000 frames up, and waits
for it again at the bottom: a self-deadlock.  The main thread joins exporter
and hangs behind it.
"""

import sys
import threading

from _ready import signal_ready
from _stacks import wait_until_waiting_at

DEPTH = 5000
# Each reply is a frame of `_render`: room for the whole chain, with some to spare.  (The
# C stack a thread has by default, 8 MiB, holds it on 3.8-3.10 too, where every Python
# call also nests in C.)
sys.setrecursionlimit(DEPTH + 1000)


class CommentStore:
    def __init__(self, authors):
        self._lock = threading.Lock()
        self._authors = dict(authors)
        self._names = {}  # author id -> display name, filled while exporting

    def author_name(self, author_id):
        with self._lock:
            return self._authors.get(author_id, "[deleted]")

    def export(self, discussion):
        with self._lock:
            self._names = dict(self._authors)
            lines = []
            self._render(discussion, 0, lines)
            return lines

    def _render(self, comment, depth, lines):
        name = self._names.get(comment["author"])
        if name is None:
            name = self.author_name(comment["author"])
        lines.append("  " * depth + f"{name}: {comment['text']}")
        for reply in comment["replies"]:
            self._render(reply, depth + 1, lines)


def flame_war(depth):
    """A chain of `depth` replies, the last one by a newcomer (author 3)."""
    bottom = {"author": 3, "text": "what is this thread about?", "replies": []}
    comment = bottom
    for level in range(depth - 1, 0, -1):
        comment = {"author": level % 2 + 1, "text": f"no, you are wrong ({level})", "replies": [comment]}
    return comment


def main(ready_path):
    store = CommentStore({1: "ada", 2: "grace"})
    exporter = threading.Thread(target=store.export, args=(flame_war(DEPTH),), name="exporter")
    exporter.start()
    wait_until_waiting_at(exporter, "author_name", __file__, "with self._lock:")
    signal_ready(ready_path)
    exporter.join()


if __name__ == "__main__":
    main(sys.argv[1])

"""A tree walker that re-enters its RLock at every level, and a lookup stuck behind it.

`MountIndex.scan()` walks a tree of mount points recursively, taking the
index's RLock at every level (four levels deep: the owner re-enters its own
lock, which is what an RLock is for).  At the leaf it polls a network share
that never comes online, sleeping 50 ms between polls, still holding the
lock.  The thread lookup wants the index too and waits for the RLock.  That is
not a deadlock: the indexer is alive and polling, and lookup is merely blocked
behind it (a lock held during a wait).  The main thread joins lookup.
"""

import sys
import threading
import time

from _ready import signal_ready, wait_until_blocked


class Mount:
    def __init__(self, path, children=(), online=True):
        self.path = path
        self.children = list(children)
        self.online = online
        self.polls = 0


class MountIndex:
    def __init__(self, root, poll_interval):
        self._lock = threading.RLock()
        self._root = root
        self._poll_interval = poll_interval
        self._paths = {}

    def scan(self, mount=None):
        mount = mount or self._root
        with self._lock:
            self._paths[mount.path] = mount
            if mount.children:
                for child in mount.children:
                    self.scan(child)
            else:
                self._wait_until_online(mount)

    def _wait_until_online(self, mount):
        while not mount.online:
            mount.polls += 1
            time.sleep(self._poll_interval)

    def lookup(self, path):
        with self._lock:
            return self._paths.get(path)


def find(index, path, found):
    found.append(index.lookup(path))


def main(ready_path):
    share = Mount("/srv/data/archive/nfs-share", online=False)
    root = Mount("/srv", [Mount("/srv/data", [Mount("/srv/data/archive", [share])])])
    index = MountIndex(root, poll_interval=0.05)
    indexer = threading.Thread(target=index.scan, name="indexer", daemon=True)
    indexer.start()
    while share.polls == 0:  # the indexer is at the leaf, holding the lock four times
        time.sleep(0.01)
    found = []
    lookup = threading.Thread(target=find, args=(index, "/srv/data", found), name="lookup")
    lookup.start()
    wait_until_blocked([lookup])
    assert lookup.is_alive() and not found, "lookup waits for the index"
    signal_ready(ready_path)
    lookup.join()


if __name__ == "__main__":
    main(sys.argv[1])

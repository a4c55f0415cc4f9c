"""A photo service whose process pool never returns: one task deadlocked inside its worker.

The service renders the thumbnails of four albums with `pool.map()` on a
`multiprocessing.Pool` of two worker processes ("fork" start method), and
waits for the results.  Each task works on two threads of its own: the
resizer fills the thumbnail cache (`cache_lock`) and then records the count
in the album index (`index_lock`); the indexer rebuilds the index
(`index_lock`) and, if the album was renamed, moves its cached thumbnails to
the new name (`cache_lock`): the opposite order.  For the renamed album both
threads take their first lock at once (a Barrier makes the unlucky timing
certain) and each waits for the other's: a lock-order deadlock inside a worker
process.  The task's thread joins them for ever, so the pool never gets the
result, and the service's main thread waits in `pool.map()` for ever.  The
other worker finishes the remaining albums and idles.

Each task has a helper daemon thread that, should the task's two threads
both sleep on their second lock, tells the parent through an Event the
workers inherit.  A helper daemon thread in the parent announces readiness
once that is so and the main thread sleeps in `pool.map()`, then ends.  A
watchdog thread in each worker ends it when its parent is gone, so that it
never outlives the service.
"""

import multiprocessing
import os
import sys
import threading
import time

from _ready import signal_ready
from _stacks import is_at, wait_until_blocked, wait_until_waiting_in

ALBUMS = [
    {"name": "holidays-2023", "photos": 48, "renamed": False},
    {"name": "garden-2024", "photos": 31, "renamed": True},
    {"name": "birthday", "photos": 12, "renamed": False},
    {"name": "hiking", "photos": 77, "renamed": False},
]

deadlocked = None  # in the workers: an Event, set once a task's threads deadlock


class AlbumRenderer:
    def __init__(self, album):
        self.album = album
        self.cache_lock = threading.Lock()
        self.index_lock = threading.Lock()
        self.both_busy = threading.Barrier(2)
        self.cache = {}
        self.index = {}

    def resize(self):
        with self.cache_lock:
            self.cache[self.album["name"]] = [f"thumb-{photo}.jpg" for photo in range(self.album["photos"])]
            self.both_busy.wait()
            with self.index_lock:
                self.index["thumbnails"] = len(self.cache[self.album["name"]])

    def reindex(self):
        with self.index_lock:
            self.index["photos"] = self.album["photos"]
            self.both_busy.wait()
            if self.album["renamed"]:  # the cache is keyed by the album's name: move the thumbnails
                with self.cache_lock:
                    self.cache["renamed-" + self.album["name"]] = self.cache.pop(self.album["name"], [])


def report_if_deadlocked(resizer, indexer):
    while resizer.is_alive() and indexer.is_alive():
        if (is_at(resizer, "resize", __file__, "with self.index_lock")
                and is_at(indexer, "reindex", __file__, "with self.cache_lock")):
            wait_until_blocked([resizer, indexer])
            if (is_at(resizer, "resize", __file__, "with self.index_lock")
                    and is_at(indexer, "reindex", __file__, "with self.cache_lock")):
                deadlocked.set()
                return
        time.sleep(0.01)


def render_album(album):
    renderer = AlbumRenderer(album)
    resizer = threading.Thread(target=renderer.resize, name="resizer")
    indexer = threading.Thread(target=renderer.reindex, name="indexer")
    resizer.start()
    indexer.start()
    threading.Thread(target=report_if_deadlocked, args=(resizer, indexer), name="deadlock-reporter",
                     daemon=True).start()
    resizer.join()
    indexer.join()
    return {"album": album["name"], "thumbnails": renderer.index.get("thumbnails")}


def watch_parent(parent_pid):
    while os.getppid() == parent_pid:
        time.sleep(0.1)
    os._exit(1)  # the service is gone: nobody will ever ask this worker for anything


def start_worker(parent_pid, event):
    global deadlocked
    deadlocked = event
    threading.Thread(target=watch_parent, args=(parent_pid,), name="parent-watchdog", daemon=True).start()


def announce_when_stuck(ready_path, event):
    event.wait()
    wait_until_waiting_in(threading.main_thread(), "map", "pool.py")
    signal_ready(ready_path)


def main(ready_path):
    context = multiprocessing.get_context("fork")
    event = context.Event()
    with context.Pool(2, initializer=start_worker, initargs=(os.getpid(), event)) as pool:
        threading.Thread(target=announce_when_stuck, args=(ready_path, event), name="ready-announcer",
                         daemon=True).start()
        results = pool.map(render_album, ALBUMS)
    print(results)


if __name__ == "__main__":
    main(sys.argv[1])

"""A configuration cache that deadlocks on its own lock through a helper method.

`ConfigCache.get()` takes `self._lock` (a plain, non-reentrant Lock) and, on a
miss, calls the private helper `_reload()`, which was written to be called on
its own and so takes `self._lock` too.  The thread config-reader already holds
the lock and waits for it one frame deeper: a self-deadlock no other thread
takes part in.  The main thread joins config-reader and hangs behind it.
"""

import sys
import threading

from _ready import signal_ready, wait_until_blocked


def load_settings():
    return {"timeout": 30, "retries": 3, "region": "eu-west-1"}


class ConfigCache:
    def __init__(self, loader):
        self._loader = loader
        self._lock = threading.Lock()
        self._values = {}

    def get(self, key):
        with self._lock:
            if key not in self._values:
                self._reload()
            return self._values[key]

    def _reload(self):
        with self._lock:
            self._values = dict(self._loader())


def read_timeout(cache, settings):
    settings["timeout"] = cache.get("timeout")


def main(ready_path):
    cache = ConfigCache(load_settings)
    settings = {}
    reader = threading.Thread(target=read_timeout, args=(cache, settings), name="config-reader")
    reader.start()
    wait_until_blocked([reader])
    assert cache._lock.locked() and reader.is_alive() and not settings, "config-reader is stuck"
    signal_ready(ready_path)
    reader.join()


if __name__ == "__main__":
    main(sys.argv[1])

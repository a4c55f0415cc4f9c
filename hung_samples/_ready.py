"""Readiness for the samples: announce a state only once it is really reached."""

import os
import threading
import time


def _state(native_id):
    try:
        with open(f"/proc/self/task/{native_id}/stat") as stat:
            # The state follows the parenthesised command name, which may hold spaces.
            return stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "?"


def wait_until_blocked(threads, checks=5, interval=0.01, limit=30.0):
    """Return once every thread has been asleep in the kernel for `checks` looks in a row."""
    deadline = time.monotonic() + limit
    streak = 0
    while streak < checks:
        if time.monotonic() > deadline:
            raise RuntimeError("threads never blocked: %s" % [t.name for t in threads])
        asleep = all(_state(t.native_id) in ("S", "D") for t in threads)
        streak = streak + 1 if asleep else 0
        time.sleep(interval)


def signal_ready(path):
    """Write "ready" atomically, so a reader never sees a partial file."""
    partial = path + ".partial"
    with open(partial, "w") as handle:
        handle.write("ready")
    os.replace(partial, path)


def hang_forever():
    threading.Event().wait()

"""An ingest worker busy-waits for a configuration that a dead thread was to load.

At start-up the thread config-loader parses the service's settings and then
sets the module global `config_loaded`.  The thread ingest-worker must not
start before that, and waits for it the cheap-looking way: it spins on the
flag.  The loader dies of an exception (a malformed value in the settings:
"timeout = 30s"), so the flag is never set: the worker spins for ever at the
same lines of the same frame, burning a CPU.  The main thread joins the
worker.  Busy, yet hung: the CPU time grows, the stack never changes.
"""

import os
import sys
import threading
import time

from _ready import signal_ready
from _stacks import is_in, wait_until_dead

SETTINGS = "batch_size = 500\ntimeout = 30s\nsink = warehouse\n"

config = {}
config_loaded = False


def load_config(text):
    global config_loaded
    for line in text.splitlines():
        key, value = (part.strip() for part in line.split("="))
        config[key] = int(value) if key in ("batch_size", "timeout") else value
    config_loaded = True


def wait_for_config():
    while not config_loaded:
        pass  # the loader will be done any moment now


def ingest(batches):
    wait_for_config()
    while True:
        batches.append(config["batch_size"])
        time.sleep(config["timeout"])


def cpu_seconds(thread):
    """The scheduler state of `thread` ("R", "S"...) and the CPU time it has used."""
    with open(f"/proc/self/task/{thread.native_id}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return fields[0], (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # state, utime + stime


def wait_until_spinning(thread, seconds=0.2, limit=30.0):
    """Return once `thread` has stayed in wait_for_config for `seconds`, running and using CPU."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        _, start = cpu_seconds(thread)
        looks = []
        for _ in range(int(seconds / 0.01)):
            looks.append(is_in(thread, "wait_for_config", __file__))
            time.sleep(0.01)
        state, end = cpu_seconds(thread)
        if all(looks) and state == "R" and end > start:
            return
    raise RuntimeError(f"{thread.name} never spun in wait_for_config")


def main(ready_path):
    loader = threading.Thread(target=load_config, args=(SETTINGS,), name="config-loader", daemon=True)
    worker = threading.Thread(target=ingest, args=([],), name="ingest-worker")
    worker.start()
    loader.start()
    wait_until_dead(loader)
    wait_until_spinning(worker)
    signal_ready(ready_path)
    worker.join()


if __name__ == "__main__":
    main(sys.argv[1])

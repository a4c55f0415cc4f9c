"""Readiness by stack: announce a wait only once a thread is asleep inside the call that waits.

`_ready.wait_until_blocked` says that a thread sleeps; these helpers also say
where: in `threading._shutdown` once the script has finished, in
`ThreadPoolExecutor.shutdown` at the end of a `with` block, in `Future.result`;
or, for a call into C such as `sock.recv()`, at the very line that makes it.
They read the stacks of the sample's own threads (`sys._current_frames()`).
"""

import linecache
import sys
import threading
import time

from _ready import wait_until_blocked


def is_in(thread, function, filename):
    """True if `thread` is running `function` of a file whose name ends with `filename`."""
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        code = frame.f_code
        if code.co_name == function and code.co_filename.endswith(filename):
            return True
        frame = frame.f_back
    return False


def wait_until_waiting_in(thread, function, filename, limit=30.0):
    """Return once `thread` has been asleep in the kernel inside `function` for a while."""
    deadline = time.monotonic() + limit
    while True:
        if is_in(thread, function, filename):
            wait_until_blocked([thread], limit=max(deadline - time.monotonic(), 0.1))
            if is_in(thread, function, filename):
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{thread.name} never waited in {function} ({filename})")
        time.sleep(0.01)


def is_at(thread, function, filename, code):
    """True if `thread` is running `function` (of a file ending with `filename`) at a line holding `code`."""
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        path = frame.f_code.co_filename
        if frame.f_code.co_name == function and path.endswith(filename):
            return code in linecache.getline(path, frame.f_lineno)
        frame = frame.f_back
    return False


def wait_until_waiting_at(thread, function, filename, code, limit=30.0):
    """Return once `thread` has been asleep in the kernel at the line of `function` holding `code`.

    For a call into C (`sock.recv()`, `lock.acquire()`, `with lock:`), where the
    innermost Python frame is the caller's: the thread sleeps in that very call.
    """
    deadline = time.monotonic() + limit
    while True:
        if is_at(thread, function, filename, code):
            wait_until_blocked([thread], limit=max(deadline - time.monotonic(), 0.1))
            if is_at(thread, function, filename, code):
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{thread.name} never waited at {code!r} in {function} ({filename})")
        time.sleep(0.01)


def wait_until_dead(thread, limit=30.0):
    """Return once `thread` has ended (e.g. died of an exception); it must have been started."""
    thread.join(limit)
    if thread.is_alive():
        raise RuntimeError(f"{thread.name} is still alive after {limit:g}s")


def thread_named(name, limit=30.0):
    """The live thread called `name`, once some code has started it."""
    deadline = time.monotonic() + limit
    while True:
        for thread in threading.enumerate():
            if thread.name == name:
                return thread
        if time.monotonic() > deadline:
            raise RuntimeError(f"no thread {name} was started")
        time.sleep(0.01)


def process_state(pid):
    """The scheduler state of process `pid` ("R", "S", "D"...), "?" once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "?"


def wait_until_process_blocked(pid, checks=5, interval=0.01, limit=30.0):
    """Return once the main thread of process `pid` has been asleep for `checks` looks in a row."""
    deadline = time.monotonic() + limit
    streak = 0
    while streak < checks:
        if time.monotonic() > deadline:
            raise RuntimeError(f"process {pid} never blocked")
        streak = streak + 1 if process_state(pid) in ("S", "D") else 0
        time.sleep(interval)

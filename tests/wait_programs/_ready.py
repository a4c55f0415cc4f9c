"""Shared readiness helper for the wait-state fixture programs.

Every program in this directory is run as a script with one argument, the path
of a "ready file".  It puts exactly one thread named ``waiter`` into a wait
state, calls :func:`wait_blocked` (or :func:`wait_busy` for the CPU-bound
fixture) to make sure the waiter really is in that state, then
:func:`write_ready` and :func:`forever`.

Readiness is decided without sleep-and-hope:

* the kernel state of the waiter's task (``/proc/self/task/<tid>/stat``) must
  be in ``states`` (default ``S``, interruptible sleep) on ``consecutive``
  samples taken ``interval`` seconds apart;
* the waiter's innermost Python frame (``sys._current_frames()``) must be the
  same (file, function, line) on all of those samples and, when the program
  marks its blocking line with ``# BLOCKS``, it must be in the program file at
  that line or in a library frame called from it;
* an optional program-specific ``check()`` must be true on every sample
  (e.g. ``lock.locked()`` or ``len(cond._waiters) == 1``).

Works with the standard library only, on CPython 3.8 to 3.13.
"""
import json
import os
import sys
import threading
import time

__all__ = [
    "blocking_line",
    "forever",
    "start",
    "task_state",
    "wait_blocked",
    "wait_busy",
    "write_ready",
]


def start(name, target, *args):
    """Start a daemon thread called ``name`` running ``target(*args)``."""
    t = threading.Thread(target=target, args=args, name=name, daemon=True)
    t.start()
    return t


def task_state(native_id):
    """Kernel state letter (R, S, D, T, Z, ...) of one thread of this process."""
    with open(f"/proc/self/task/{native_id}/stat", "rb") as f:
        data = f.read()
    # The comm field may contain spaces or ')': the state follows the last ')'.
    return data[data.rindex(b")") + 2:data.rindex(b")") + 3].decode()


def blocking_line(path):
    """Line number (1-based) of the line marked ``# BLOCKS`` in ``path``, or None."""
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.rstrip().endswith("# BLOCKS"):
                return n
    return None


def _main_file():
    main = sys.modules.get("__main__")
    return os.path.abspath(getattr(main, "__file__", "") or "")


def _stack(thread):
    """List of (filename, function, line) of ``thread``, innermost first."""
    frame = sys._current_frames().get(thread.ident)
    out = []
    while frame is not None:
        out.append((os.path.abspath(frame.f_code.co_filename),
                    frame.f_code.co_name, frame.f_lineno))
        frame = frame.f_back
    return out


def _at_blocking_line(stack, main_file, line):
    for filename, _func, lineno in stack:
        if filename == main_file:
            return lineno == line
    return False


def wait_blocked(thread, check=None, states=("S",), consecutive=5,
                 interval=0.01, timeout=15.0, stable=True):
    """Return once ``thread`` is settled in its wait; raise RuntimeError on timeout.

    See the module docstring for the conditions.  ``stable=False`` drops the
    "same innermost frame on every sample" condition (for waits that wake up
    periodically, like a poll loop with a timeout).
    """
    main_file = _main_file()
    line = blocking_line(main_file) if main_file else None
    deadline = time.monotonic() + timeout
    streak = 0
    last_top = None
    last = None
    while True:
        if not thread.is_alive():
            raise RuntimeError("waiter thread died")
        state = task_state(thread.native_id)
        stack = _stack(thread)
        top = stack[0] if stack else None
        ok = (state in states and top is not None
              and (line is None or _at_blocking_line(stack, main_file, line))
              and (check is None or check()))
        last = (state, top)
        if not ok:
            streak, last_top = 0, None
        elif stable and last_top is not None and top != last_top:
            streak, last_top = 1, top
        else:
            streak, last_top = streak + 1, top
            if streak >= consecutive:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"waiter not blocked after {timeout:.0f}s (last state/frame: {last!r})")
        time.sleep(interval)


def wait_busy(thread, progress, consecutive=5, interval=0.01, timeout=15.0):
    """Return once ``thread`` is running Python code: ``progress()`` (a counter
    the thread increments) must advance on ``consecutive`` samples in a row and
    the thread must be seen in kernel state R at least once meanwhile.
    (A CPU-bound thread is in S whenever it waits for the GIL, so R is not
    required on every sample.)"""
    deadline = time.monotonic() + timeout
    streak, seen_r, prev = 0, False, progress()
    while True:
        time.sleep(interval)
        state = task_state(thread.native_id)
        cur = progress()
        if cur > prev:
            streak += 1
            seen_r = seen_r or state == "R"
        else:
            streak, seen_r = 0, False
        prev = cur
        if streak >= consecutive and seen_r:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("busy thread not seen running")


def write_ready(path, **info):
    """Write ``ready`` to ``path`` (atomically).  Extra ``info`` (e.g. a child
    PID) is written as JSON to ``path + '.info'`` first."""
    info.setdefault("pid", os.getpid())
    waiter = [t for t in threading.enumerate() if t.name == "waiter"]
    if waiter:
        info.setdefault("waiter_native_id", waiter[0].native_id)
    main_file = _main_file()
    if main_file:
        info.setdefault("blocking_line", blocking_line(main_file))
    tmp = path + ".info.tmp"
    with open(tmp, "w") as f:
        json.dump(info, f)
    os.replace(tmp, path + ".info")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("ready")
    os.replace(tmp, path)


def forever():
    """Block the calling (main) thread forever."""
    threading.Event().wait()

"""Readiness seen from outside, for samples in which no thread can run Python any more.

When one thread holds the GIL inside a long call into C (a regular expression
that backtracks for ever, a function of a `ctypes.PyDLL` library that blocks),
every other thread of the sample is frozen, its readiness checks included.
So, before it makes that call, the sample starts this script as a watcher
process and hands it the read end of a pipe on which a heartbeat thread of
the sample writes a byte every 50 ms.  The watcher then looks at the thread
from outside, through /proc, and writes the ready file once, for half a
second (ten heartbeats) in a row:

  * the heartbeat has been silent, after having ticked at least once: no
    thread of the sample could take the GIL in all that time (a thread running
    Python code hands the GIL over every 5 ms), and
  * the thread is where it should be: "computing" -- running (state R) at
    every look, its CPU time growing; or "syscall N" -- asleep (state S) at
    every look in system call number N (first field of
    /proc/PID/task/TID/syscall), whose first argument is the given fd.

Then it exits.  It gives up (exit status 1, no ready file) after a minute, or
as soon as the sample is gone.  The launcher process forks the watcher and
exits at once, so the sample waits for it (no zombie is left behind) and the
watcher belongs to no one: it stays in the sample's process group, so killing
the group kills it too.

    python _outside.py PID TID HEARTBEAT_FD READY_PATH computing
    python _outside.py PID TID HEARTBEAT_FD READY_PATH syscall NUMBER FD
"""

import os
import select
import subprocess
import sys
import time

WINDOW = 0.5  # seconds of silence and of the expected state before "ready"
LOOK = 0.02  # seconds between looks
GIVE_UP = 60.0  # seconds
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def start_watcher(ready_path, thread, heartbeat_fd, *expect):
    """Start the watcher for `thread` of this process; return once it watches.

    `expect` is ("computing",) or ("syscall", NUMBER, FD).  The caller closes
    its own copy of `heartbeat_fd` afterwards if it likes.
    """
    command = [sys.executable, os.path.abspath(__file__), str(os.getpid()), str(thread.native_id),
               str(heartbeat_fd), ready_path] + [str(part) for part in expect]
    launcher = subprocess.Popen(command, pass_fds=(heartbeat_fd,), stdin=subprocess.DEVNULL)
    if launcher.wait(timeout=30) != 0:
        raise RuntimeError("the readiness watcher did not start")


def stat_fields(pid, tid=None):
    """Fields 3.. of /proc/PID[/task/TID]/stat (state first), or None once it is gone."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        with open(path) as stat:
            # The state follows the parenthesised command name, which may hold spaces.
            return stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def syscall_of(pid, tid):
    """The words of /proc/PID/task/TID/syscall: ["running"], or the number and arguments."""
    try:
        with open(f"/proc/{pid}/task/{tid}/syscall") as syscall:
            return syscall.read().split()
    except OSError:
        return []


def heard_heartbeat(fd):
    """True if the heartbeat wrote anything since the last look (waits up to LOOK).

    None once the pipe is closed: the sample has gone (or closed its end).
    """
    readable, _, _ = select.select([fd], [], [], LOOK)
    if not readable:
        return False
    return os.read(fd, 4096) != b"" or None


def in_expected_state(pid, tid, expect):
    fields = stat_fields(pid, tid)
    if fields is None:
        return False
    if expect[0] == "computing":
        return fields[0] == "R"
    number, fd = expect[1], expect[2]
    words = syscall_of(pid, tid)
    return fields[0] == "S" and len(words) > 1 and words[0] == number and int(words[1], 16) == int(fd)


def cpu_ticks(pid, tid):
    """utime + stime of the thread, in clock ticks."""
    fields = stat_fields(pid, tid)
    return int(fields[11]) + int(fields[12]) if fields else 0


def watch(pid, tid, heartbeat_fd, ready_path, expect):
    from _ready import signal_ready

    fields = stat_fields(pid)
    if fields is None:
        return 1
    started = fields[19]  # the sample's start time: a reused PID is another process
    deadline = time.monotonic() + GIVE_UP
    ticked = False
    since = None  # when silence and the expected state began
    cpu_since = 0
    while time.monotonic() < deadline:
        fields = stat_fields(pid)
        if fields is None or fields[19] != started:
            return 1  # the sample is gone
        heard = heard_heartbeat(heartbeat_fd)
        if heard is None:
            return 1
        if heard:
            ticked, since = True, None
            continue
        if not ticked or not in_expected_state(pid, tid, expect):
            since = None
            continue
        if since is None:
            since, cpu_since = time.monotonic(), cpu_ticks(pid, tid)
            continue
        long_enough = time.monotonic() - since >= WINDOW
        grew = expect[0] != "computing" or cpu_ticks(pid, tid) - cpu_since >= 0.1 * CLOCK_TICKS
        if long_enough and grew:
            signal_ready(ready_path)
            return 0
    print(f"_outside.py: thread {tid} of {pid} never reached {' '.join(expect)}", file=sys.stderr,
          flush=True)
    return 1


def main(argv):
    pid, tid, heartbeat_fd, ready_path = int(argv[0]), int(argv[1]), int(argv[2]), argv[3]
    expect = argv[4:]
    if os.fork():
        os._exit(0)  # the launcher: the sample waits for it, the watcher carries on alone
    os._exit(watch(pid, tid, heartbeat_fd, ready_path, expect))


if __name__ == "__main__":
    main(sys.argv[1:])

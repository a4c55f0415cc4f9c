"""The guardian's program, run by threaddoc as `python -I -S guardian_process.py HOLD_FD`
(see guardian.py for the mechanism), and what it shares with threaddoc: reading whether the
target is stopped, and continuing it.

It imports a handful of standard modules only, so that it starts in about 10 ms of CPU and
depends on nothing of threaddoc's environment.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time

_SIGSTOP_BIT = 1 << (signal.SIGSTOP - 1)
OWN_PIPE_CLOSE_SECONDS = 0.05  # threaddoc's own copy of the hold pipe closes as it exits
HOLDERS_EXIT_SECONDS = 5.0     # for SIGKILLed py-spy processes to be gone


# --------------------------------------------------------------------------- the target


def process_state(pid: int) -> str:
    """The process's state letter from /proc/PID/stat ("T" stopped, "D" uninterruptible...)."""
    fields = _stat_fields(pid)
    return fields[0] if fields else "?"


def start_ticks(pid: int) -> int | None:
    """When the process started, in clock ticks since boot: with the PID, its identity."""
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields else None
    except (ValueError, IndexError):
        return None


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state first); [] when gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def stop_pending(pid: int) -> bool:
    """A SIGSTOP waits in some thread's (or the process's) pending set."""
    return any(_pending_stop(status) for status in task_statuses(pid))


def _pending_stop(status: bytes) -> bool:
    for key in (b"\nSigPnd:", b"\nShdPnd:"):
        start = status.find(key)
        if start >= 0:
            try:
                if int(status[start + len(key):status.find(b"\n", start + 1)], 16) & _SIGSTOP_BIT:
                    return True
            except ValueError:
                continue
    return False


def task_statuses(pid: int) -> list[bytes]:
    """/proc/PID/task/TID/status of each thread, as bytes; a thread gone meanwhile is left out.
    Opened relative to the task directory with bare descriptors: at thousands of threads a
    path walk and a text file object per thread were most of the time."""
    statuses: list[bytes] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
        tasks = os.open(f"/proc/{pid}/task", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return statuses
    try:
        for tid in tids:
            try:
                fd = os.open(f"{tid}/status", os.O_RDONLY | os.O_CLOEXEC, dir_fd=tasks)
            except OSError:
                continue
            try:
                statuses.append(os.read(fd, _STATUS_BYTES))
            except OSError:
                continue
            finally:
                os.close(fd)
    finally:
        os.close(tasks)
    return statuses


_STATUS_BYTES = 8192  # a status file is about 1.5 KiB


def release_if_left_stopped(pid: int, was_stopped: bool, pending_possible: bool = True) -> bool:
    """Continue a target left stopped, or with a SIGSTOP pending (PTRACE_ATTACH sends one; a
    thread in uninterruptible sleep takes it only when it wakes). SIGCONT discards a
    pending stop. A target that was stopped before we came is left as it was. Without
    `pending_possible` (a py-spy that exited by itself, successfully, with no thread asleep
    in D: every attach's stop was taken and the thread detached) only the state is looked at."""
    if was_stopped:
        return False
    if not (process_state(pid) in ("T", "t") or (pending_possible and stop_pending(pid))):
        return False
    return _continue(pid)


def resume_after_cut_short_attach(pid: int, was_stopped: bool) -> bool:
    """After a py-spy that may have been attached died by a signal (killed on timeout or
    interrupt): SIGCONT whatever the target looks like now. Looking first would race with
    the kernel: a thread can hold the attach's SIGSTOP, dequeued but not yet acted on, and
    look running; a SIGCONT sent now cancels that stop too."""
    return False if was_stopped else _continue(pid)


def _continue(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGCONT)
    except OSError:
        return False
    return True


# --------------------------------------------------------------------------- the guardian process


class _Run:
    """A py-spy run threaddoc announced (no dataclass: that import alone would double the
    guardian's start-up)."""

    def __init__(self, pid: int, blocking: bool, was_stopped: bool) -> None:
        self.pid = pid
        self.blocking = blocking
        self.was_stopped = was_stopped
        self.ticks = start_ticks(pid)  # the target's start time as the run began: its identity


def main(argv: list[str]) -> int:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, signal.SIG_IGN)
    hold, threaddoc = int(argv[1]), os.getppid()
    runs = _runs_open_at_end_of(0)
    if runs:
        _stop_holders(hold, spare=threaddoc)
        for run in runs:
            _leave_as_found(run)
    return 0


def _runs_open_at_end_of(fd: int) -> list[_Run]:
    """Follow threaddoc's messages until it is gone; the runs it never said were done."""
    runs: dict[int, list[_Run]] = {}
    pending = b""
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            return [run for open_runs in runs.values() for run in open_runs]
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            _apply(line.decode("ascii", "replace").split(), runs)


def _apply(words: list[str], runs: dict[int, list[_Run]]) -> None:
    if len(words) == 4 and words[0] == "watch" and all(word.isdigit() for word in words[1:]):
        pid = int(words[1])
        runs.setdefault(pid, []).append(_Run(pid, words[2] == "1", words[3] == "1"))
    elif len(words) == 2 and words[0] == "done" and words[1].isdigit() and runs.get(int(words[1])):
        runs[int(words[1])].pop()


def _stop_holders(hold: int, spare: int) -> None:
    """SIGKILL every process that still holds the hold pipe (py-spy processes threaddoc left
    behind) and wait until they are gone, hence detached from the target. threaddoc itself
    (`spare`), if still exiting, holds it too: it is waited for, never signalled."""
    if _closed_within(hold, OWN_PIPE_CLOSE_SECONDS):
        return
    holders = [pid for pid in _holders_of(hold) if pid != spare]
    killed = [handle for handle in map(_kill, holders) if handle is not None]
    deadline = time.monotonic() + HOLDERS_EXIT_SECONDS
    _closed_within(hold, HOLDERS_EXIT_SECONDS)
    for handle in killed:
        handle.wait_gone(deadline)


def _closed_within(fd: int, seconds: float) -> bool:
    """No process holds the pipe's write end any more (or one did not let go in time)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not poller.poll(remaining * 1000):
            return False
        if not os.read(fd, 4096):
            return True


def _holders_of(fd: int) -> list[int]:
    link = f"pipe:[{os.fstat(fd).st_ino}]"
    return [pid for pid in _all_pids() if pid != os.getpid() and _holds(pid, link)]


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _holds(pid: int, link: str) -> bool:
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for name in names:
        try:
            if os.readlink(f"/proc/{pid}/fd/{name}") == link:
                return True
        except OSError:
            continue
    return False


class _Killed:
    """A process we sent SIGKILL, followed through a pidfd when the kernel has them, so that
    a PID reused meanwhile is never signalled nor waited for."""

    def __init__(self, pid: int, pidfd: int | None) -> None:
        self.pid = pid
        self.pidfd = pidfd

    def wait_gone(self, deadline: float) -> None:
        while time.monotonic() < deadline and not self._gone():
            time.sleep(0.005)
        if self.pidfd is not None:
            os.close(self.pidfd)

    def _gone(self) -> bool:
        if self.pidfd is not None:
            return bool(select.select([self.pidfd], [], [], 0)[0])
        # A zombie has finished exiting, detaching its tracees: its new parent reaps it.
        return process_state(self.pid) in ("Z", "X", "?")


def _kill(pid: int) -> _Killed | None:
    pidfd: int | None
    try:
        pidfd = os.pidfd_open(pid)
    except (OSError, AttributeError):  # gone already, or a kernel (or Python) without pidfds
        pidfd = None
    try:
        if pidfd is not None:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except OSError:
        if pidfd is not None:
            os.close(pidfd)
        return None
    return _Killed(pid, pidfd)


def _leave_as_found(run: _Run) -> None:
    if run.ticks is None or start_ticks(run.pid) != run.ticks:
        return  # the target is gone, and its PID may be another process's now
    if run.blocking:
        resume_after_cut_short_attach(run.pid, run.was_stopped)
    else:
        release_if_left_stopped(run.pid, run.was_stopped)


def open_runs_of(lines: list[str]) -> list[tuple[int, bool, bool]]:
    """The runs `lines` leave open, as (pid, blocking, was_stopped): the protocol, for tests."""
    runs: dict[int, list[_Run]] = {}
    for line in lines:
        _apply(line.split(), runs)
    return [(run.pid, run.blocking, run.was_stopped) for open_runs in runs.values() for run in open_runs]


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""The guardian: a small process that outlives threaddoc just long enough to leave the target
as threaddoc found it, however threaddoc ends, SIGKILL included (which runs no cleanup).

py-spy pauses the target with PTRACE_ATTACH, which sends it SIGSTOP. A py-spy that dies
mid-attach (because threaddoc was killed, or killed it) leaves that SIGSTOP pending, or
taken but not yet acted on, and the target freezes a moment later. So threaddoc starts
this guardian once, at its first py-spy run, and tells it about each run:

* Its stdin is the "life" pipe. Only threaddoc holds the write end (close-on-exec: no child
  inherits it), so end-of-file there means that threaddoc is gone, however it died.
  threaddoc writes `watch PID BLOCKING WAS_STOPPED` before it starts py-spy against PID and
  `done PID` once that py-spy is reaped and the target checked.
* The "hold" pipe: every py-spy inherits its write end (pass_fds). The processes holding
  it are exactly threaddoc's py-spy processes (and whatever a py-spy wrapper execs), found
  by the pipe's inode in /proc/*/fd: no name matching, no guessed PIDs, and no reliance on
  PR_SET_PDEATHSIG, which the kernel clears when py-spy carries file capabilities
  (`setcap cap_sys_ptrace+ep`, as the README suggests).

When threaddoc is gone with a run still open, the guardian SIGKILLs every holder, waits
until each has exited (the kernel detaches a dead tracer's tracees), then sends SIGCONT to
each target of an open blocking run that was not stopped before threaddoc came: SIGCONT
discards a pending SIGSTOP, cancels one a thread has taken but not yet acted on, and ends
a stop already in effect. Then it exits. When threaddoc exits with no run open, the
guardian simply exits.

The guardian's program is guardian_process.py, run as `python -I -S guardian_process.py
HOLD_FD`. It ignores the signals that stop threaddoc (and, in a session of its own, a
terminal's Ctrl-C does not reach it): its job starts when threaddoc's ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from contextlib import suppress

from . import guardian_process

# --------------------------------------------------------------------------- threaddoc's side


class Watch:
    """One py-spy run the guardian knows of: the descriptors py-spy must inherit, and
    `done()` to say that py-spy is reaped and the target was left as it was found."""

    def __init__(self, guardian: Guardian | None, pid: int) -> None:
        self._guardian = guardian
        self._pid = pid
        self.inherited: tuple[int, ...] = guardian.inherited if guardian is not None else ()

    def done(self) -> None:
        if self._guardian is not None:
            self._guardian.send(f"done {self._pid}")


class Guardian:
    """threaddoc's handle on its guardian process, started at the first `watch`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # `threaddoc run` diagnoses in a thread
        self._process: subprocess.Popen[bytes] | None = None
        # Raw descriptors, never closed before threaddoc exits (a file object could be
        # finalized at interpreter shutdown, telling the guardian that threaddoc is gone).
        self._life: int | None = None  # the life pipe's write end: threaddoc's messages
        self._hold: int | None = None  # the hold pipe's write end, inherited by each py-spy

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def inherited(self) -> tuple[int, ...]:
        return (self._hold,) if self._hold is not None else ()

    def watch(self, pid: int, *, blocking: bool, was_stopped: bool) -> Watch:
        """Tell the guardian that a py-spy is about to run against `pid`. Without a guardian
        (it could not be started) the diagnosis goes on: the run's own cleanup remains."""
        with self._lock:
            if not self._running():
                self._start()
            if self._send(f"watch {pid} {int(blocking)} {int(was_stopped)}"):
                return Watch(self, pid)
        return Watch(None, pid)

    def send(self, line: str) -> bool:
        with self._lock:
            return self._send(line)

    def _send(self, line: str) -> bool:
        if self._life is None:
            return False
        try:  # one short write: atomic, so a line is never half sent
            os.write(self._life, line.encode("ascii") + b"\n")
        except OSError:  # it died (killed by someone): carry on without it
            return False
        return True

    def _running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _start(self) -> None:
        self._close()
        if not sys.executable:
            return
        life_read, life_write = os.pipe()
        hold_read, hold_write = os.pipe()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", os.path.abspath(guardian_process.__file__),
                 str(hold_read)],
                stdin=life_read, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                pass_fds=(hold_read,), start_new_session=True)
            self._life, self._hold = life_write, hold_write
        except OSError:
            os.close(life_write)
            os.close(hold_write)
        finally:
            os.close(life_read)
            os.close(hold_read)

    def _close(self) -> None:
        for fd in (self._life, self._hold):
            if fd is not None:
                with suppress(OSError):
                    os.close(fd)
        self._life = self._hold = None
        if self._process is not None:
            with suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=1)  # it exits at end-of-file: reap it
        self._process = None


GUARDIAN = Guardian()

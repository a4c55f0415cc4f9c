"""Running `py-spy dump` against a live process.

py-spy is the one component that attaches to the target: it reads the
interpreter's memory through process_vm_readv and pauses the target (ptrace) only
for the duration of a blocking dump.  Every run is bounded by a timeout, after
which py-spy's own process group is killed; a SIGSTOP its attach left pending is
then cancelled, so the target is never left stopped.  The same happens when threaddoc
is interrupted, and, should threaddoc be killed outright (SIGKILL runs no cleanup), its
guardian process does it (see guardian.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from threaddoc.errors import (
    NoSuchProcess,
    NotPython,
    PermissionDenied,
    PySpyFailed,
    PySpyMissing,
    PySpyTimedOut,
)

from .guardian import GUARDIAN
from .guardian_process import process_state, release_if_left_stopped, resume_after_cut_short_attach
from .waiting import do_waiting_work

__all__ = ["dump", "dump_core", "find_py_spy", "process_state", "release_if_left_stopped"]

KILLED_EXIT_SECONDS = 5.0  # for a SIGKILLed py-spy to be reaped

PERMISSION_REMEDY = (
    "run threaddoc as root (sudo), or give it CAP_SYS_PTRACE, or allow ptrace of your own "
    "processes with `sysctl kernel.yama.ptrace_scope=0`"
)


def find_py_spy(explicit: str | None = None) -> str:
    """The py-spy executable: given, beside our interpreter (same venv), or on PATH."""
    candidates = []
    if explicit:
        candidates.append(explicit)
    else:
        env_value = os.environ.get("THREADDOC_PY_SPY")
        if env_value:
            candidates.append(env_value)
        candidates.append(str(Path(sys.executable).parent / "py-spy"))
        on_path = shutil.which("py-spy")
        if on_path:
            candidates.append(on_path)
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise PySpyMissing(
        "py-spy was not found" + (f" at {explicit}" if explicit else ""),
        "install it into threaddoc's environment with `pip install py-spy`, "
        "or point THREADDOC_PY_SPY at the executable",
    )


def dump(pid: int, py_spy: str, timeout: float, *, blocking: bool = True,
         native: bool = False, asleep: bool = True) -> list[dict[str, Any]]:
    """Run `py-spy dump --json --locals` and return its parsed JSON output.

    A blocking dump pauses the target for the moment it takes (a consistent picture);
    a non-blocking one reads it while it runs. Native frames need a blocking dump.
    `asleep`: a thread of the target was in uninterruptible sleep (D) before the dump, or
    nobody looked; the stop py-spy's attach sends such a thread may outlast py-spy."""
    command = [py_spy, "dump", "--pid", str(pid), "--json", "--locals"]
    if not blocking:
        command.append("--nonblocking")
    elif native:
        command.append("--native")
    was_stopped = process_state(pid) in ("T", "t")
    watch = GUARDIAN.watch(pid, blocking=blocking, was_stopped=was_stopped)

    def leave_target_as_found(returncode: int) -> None:
        if blocking:
            _leave_as_found(pid, was_stopped, cut_short=returncode < 0, clean=returncode == 0 and not asleep)
        watch.done()

    return _run(command, timeout, lambda output: _error_from_output(pid, output),
                inherited=watch.inherited, when_gone=leave_target_as_found)


def _leave_as_found(pid: int, was_stopped: bool, cut_short: bool, clean: bool = False) -> None:
    """py-spy is gone, and detached. One that died by a signal (killed on timeout or
    interrupt) may have died mid-attach: continue the target outright. One that exited
    by itself detached properly; still, a stop left pending by one of its error paths
    would freeze the target later: look, and continue it only if so. After a `clean` run
    (success, no thread asleep in D: every thread took its stop before py-spy read it)
    the target's state is looked at, not every thread's pending signals."""
    if cut_short:
        resume_after_cut_short_attach(pid, was_stopped)
    else:
        release_if_left_stopped(pid, was_stopped, pending_possible=not clean)


def dump_core(core: str, py_spy: str, timeout: float, *, with_locals: bool = True) -> list[dict[str, Any]]:
    """`py-spy dump --core CORE --json [--locals]`: the threads of a core file. py-spy reads
    the Python binary and libraries at the paths the core names."""
    command = [py_spy, "dump", "--core", core, "--json"] + (["--locals"] if with_locals else [])
    return _run(command, timeout, _core_error)


def _core_error(output: str) -> Exception:
    first_line = _first_line(output)
    return PySpyFailed(
        f"py-spy could not read the core file: {first_line}",
        "the core must be complete and written by the kernel (`ulimit -c unlimited`; gdb's gcore is "
        "not read), and the Python binary and libraries it names must be at the same paths here")


def _run(command: list[str], timeout: float, error_of: Callable[[str], Exception], *,
         inherited: Sequence[int] = (), when_gone: Callable[[int], None] | None = None,
         ) -> list[dict[str, Any]]:
    """Run py-spy and parse its JSON. `inherited` descriptors are passed on to it (the
    guardian's hold pipe); `when_gone(returncode)` runs once py-spy is reaped, however
    it ended (negative: by a signal, ours on timeout or interrupt included)."""
    process = _start(command, inherited)
    started = time.monotonic()
    try:
        do_waiting_work()  # while py-spy attaches and reads; its time counts against the timeout
        stdout, stderr = process.communicate(timeout=max(0.0, timeout - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        _kill_group(process, when_gone)
        raise PySpyTimedOut(
            f"py-spy did not finish within {timeout:g}s",
            "the target may be in uninterruptible sleep or very large; retry with a larger --timeout",
        ) from None
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM): py-spy must not outlive us with the target paused.
        _kill_group(process, when_gone)
        raise
    if when_gone is not None:
        when_gone(process.returncode)
    if process.returncode != 0:
        raise error_of(stdout.decode(errors="replace") + stderr.decode(errors="replace"))
    try:
        parsed = json.loads(stdout)
    except ValueError:
        raise PySpyFailed("py-spy printed something that is not JSON",
                          "check that the py-spy on PATH is py-spy >= 0.3.14") from None
    if not isinstance(parsed, list):
        raise PySpyFailed("py-spy printed JSON of an unexpected shape",
                          "check that the py-spy on PATH is py-spy >= 0.3.14")
    return parsed


def _start(command: list[str], inherited: Sequence[int]) -> subprocess.Popen[bytes]:
    env = dict(os.environ, RUST_BACKTRACE="0")
    try:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # its own group: killed as one, and Ctrl-C is ours to handle
            pass_fds=tuple(inherited),
        )
    except OSError as error:
        raise PySpyMissing(f"py-spy could not be started ({error.strerror})",
                           "reinstall it with `pip install --force-reinstall py-spy`") from None


def _kill_group(process: subprocess.Popen[bytes], when_gone: Callable[[int], None] | None) -> None:
    """SIGKILL py-spy's group and reap it. One that cannot be reaped in time (stuck in the
    kernel) is left to the guardian, which waits for it when threaddoc exits."""
    with contextlib.suppress(OSError):
        os.killpg(process.pid, signal.SIGKILL)
    try:
        process.wait(timeout=KILLED_EXIT_SECONDS)
    except subprocess.TimeoutExpired:
        return
    if when_gone is not None:
        when_gone(process.returncode)


def _error_from_output(pid: int, output: str) -> Exception:
    lowered = output.lower()
    if "permission denied" in lowered or "operation not permitted" in lowered:
        return PermissionDenied(f"not allowed to inspect process {pid}", PERMISSION_REMEDY)
    if "check that the process is running" in lowered or "no such process" in lowered:
        return NoSuchProcess(f"process {pid} exited before it could be inspected",
                             "check the PID with `ps -p PID`")
    if "failed to find python version" in lowered or "failed to find a python interpreter" in lowered:
        return NotPython(f"process {pid} does not look like a Python interpreter py-spy can read",
                         "point threaddoc at the python process itself (see `ps -ef`); "
                         "supported targets are CPython 3.8 to 3.13")
    return PySpyFailed(f"py-spy failed: {_first_line(output)}",
                       "retry; if it persists, report it with `py-spy --version` and the target's "
                       "Python version")


def _first_line(output: str) -> str:
    first = next((line.strip() for line in output.splitlines()
                  if line.strip() and not line.startswith("Stack backtrace")), "no output")
    return first.removeprefix("Error: ")

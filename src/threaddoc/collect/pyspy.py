"""Running `py-spy dump` against a live process.

py-spy is the one component that attaches to the target: it reads the
interpreter's memory through process_vm_readv and pauses the target (ptrace) only
for the duration of a blocking dump.  Every run is bounded by a timeout, after
which py-spy's own process group is killed; a SIGSTOP its attach left pending is
then cancelled, so the target is never left stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
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
         native: bool = False) -> list[dict[str, Any]]:
    """Run `py-spy dump --json --locals` and return its parsed JSON output.

    A blocking dump pauses the target for the moment it takes (a consistent picture);
    a non-blocking one reads it while it runs. Native frames need a blocking dump."""
    command = [py_spy, "dump", "--pid", str(pid), "--json", "--locals"]
    if not blocking:
        command.append("--nonblocking")
    elif native:
        command.append("--native")
    return _run(command, timeout, lambda output: _error_from_output(pid, output))


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


def _run(command: list[str], timeout: float, error_of: Callable[[str], Exception]) -> list[dict[str, Any]]:
    env = dict(os.environ, RUST_BACKTRACE="0")
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
    except OSError as error:
        raise PySpyMissing(f"py-spy could not be started ({error.strerror})",
                           "reinstall it with `pip install --force-reinstall py-spy`") from None
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise PySpyTimedOut(
            f"py-spy did not finish within {timeout:g}s",
            "the target may be in uninterruptible sleep or very large; retry with a larger --timeout",
        ) from None
    except BaseException:
        # Interrupted (Ctrl-C): py-spy must not outlive us with the target paused.
        _kill_group(process)
        raise
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


def process_state(pid: int) -> str:
    """The process's state letter from /proc/PID/stat ("T" stopped, "D" uninterruptible...)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"


def release_if_left_stopped(pid: int, was_stopped: bool) -> bool:
    """py-spy attaches with PTRACE_ATTACH, which sends SIGSTOP; killed before the thread took
    it (a thread in uninterruptible sleep takes it only when it wakes), the stop stays
    pending and would freeze the target later. SIGCONT discards a pending stop. A target
    that was stopped before we came is left as it was."""
    if was_stopped or not (process_state(pid) in ("T", "t") or _stop_pending(pid)):
        return False
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGCONT)
        return True
    return False


_SIGSTOP_BIT = 1 << (signal.SIGSTOP - 1)


def _stop_pending(pid: int) -> bool:
    """A SIGSTOP waits in some thread's (or the process's) pending set."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/status", encoding="ascii", errors="replace") as handle:
                for line in handle:
                    if line.startswith(("SigPnd:", "ShdPnd:")) and int(line.split()[1], 16) & _SIGSTOP_BIT:
                        return True
        except (OSError, ValueError, IndexError):
            continue
    return False


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


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

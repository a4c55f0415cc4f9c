"""What the operating system says about the target (psutil and /proc)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Callable, TypeVar

import psutil

from threaddoc.errors import (
    AlreadyTraced,
    NoSuchProcess,
    NotPython,
    PermissionDenied,
    PidReused,
    TargetError,
    TargetExited,
    UnsupportedPython,
    UsageError,
)
from threaddoc.model import ProcessFacts
from threaddoc.redact import redacted_command_line

from .guardian_process import process_state, start_ticks, task_statuses
from .pyspy import PERMISSION_REMEDY

T = TypeVar("T")
D = TypeVar("D")

_PYTHON_NAME = re.compile(r"python(?P<version>[23]\.\d+)?")
_LIBPYTHON = re.compile(r"libpython(?P<version>[23]\.\d+)")

SUPPORTED_PYTHONS = ((3, 8), (3, 13))  # the CPython minors whose interpreters threaddoc reads
SUPPORTED_TEXT = "3.8 to 3.13"


def process_facts(pid: int) -> ProcessFacts:
    """Facts about a live process; refuses what cannot be a Python target."""
    if pid == os.getpid():
        raise UsageError("threaddoc cannot diagnose itself", "pass the PID of the hung program")
    if _is_kernel_thread(pid):
        raise NotPython(f"process {pid} ({_comm(pid)}) is a kernel thread, not a Python program",
                        "point threaddoc at a python process (see `ps -ef | grep python`)")
    try:
        process = psutil.Process(pid)
        with process.oneshot():
            status = process.status()
            if status == psutil.STATUS_ZOMBIE:
                raise NoSuchProcess(f"process {pid} is a zombie (it has exited)",
                                    "its parent has not reaped it yet; there is nothing left to inspect")
            # Secrets passed as arguments (`--password=…`, a DSN) never leave collection.
            cmdline = redacted_command_line(_safe(process.cmdline, []))
            exe = _safe(process.exe, None)
            facts = ProcessFacts(
                pid=pid,
                cmdline=cmdline,
                exe=exe,
                python_version=_python_version(pid, exe),
                username=_safe(process.username, None),
                create_time=_start_time(pid) or _safe(process.create_time, None),
                num_threads=_safe(process.num_threads, None),
                ppid=_safe(process.ppid, None),
                parent_cmdline=_parent_cmdline(process),
            )
    except psutil.NoSuchProcess:
        raise NoSuchProcess(f"no process with PID {pid}", "check the PID with `ps -ef`") from None
    except psutil.AccessDenied:
        raise PermissionDenied(f"not allowed to inspect process {pid}", PERMISSION_REMEDY) from None
    if not facts.cmdline and not facts.exe:
        raise NotPython(f"process {pid} is a kernel thread, not a Python program",
                        "point threaddoc at a python process (see `ps -ef`)")
    if facts.exe is None and _read_maps(pid) is None and _may_trace_anything():
        # py-spy would have no more rights than we have (short of a capability we hold).
        raise PermissionDenied(
            f"not allowed to inspect process {pid} ({_comm(pid)}), although threaddoc has "
            "CAP_SYS_PTRACE: a security policy (SELinux, AppArmor, a seccomp filter) or another "
            "user namespace protects it", "run threaddoc where the process runs (inside its container "
            "or on its host), with ptrace allowed")
    if not _looks_like_python(pid, facts):
        name = os.path.basename(facts.exe or facts.cmdline[0])
        raise NotPython(f"process {pid} ({name}) is not a Python interpreter",
                        "point threaddoc at the python process itself (see `ps -ef | grep python`)")
    refuse_unsupported_python(pid, facts.python_version)
    return facts


def refuse_unsupported_python(pid: int, version: str | None) -> None:
    """py-spy reads CPython 2.7 and 3.6 as well, but threaddoc's rules are for the
    threading, queue and concurrent.futures of 3.8 to 3.13 only: a report on another
    version would be wrong where it is not empty. Say so before anything attaches."""
    minor = _minor(version)
    if minor is None or SUPPORTED_PYTHONS[0] <= minor <= SUPPORTED_PYTHONS[1]:
        return
    raise UnsupportedPython(
        f"process {pid}: CPython {version} is not supported ({SUPPORTED_TEXT})",
        f"`py-spy dump --pid {pid}` prints its stacks; threaddoc diagnoses CPython {SUPPORTED_TEXT}")


def _minor(version: str | None) -> tuple[int, int] | None:
    matched = re.fullmatch(r"(\d+)\.(\d+)", version or "")
    return (int(matched.group(1)), int(matched.group(2))) if matched else None


_PF_KTHREAD = 0x00200000  # task flag of a kernel thread (include/linux/sched.h)


def _is_kernel_thread(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            flags = int(stat.read().rsplit(")", 1)[1].split()[6])
    except (OSError, ValueError, IndexError):
        return False
    return bool(flags & _PF_KTHREAD)


def _comm(pid: int) -> str:
    """The process's name as the kernel keeps it (15 characters), printable only."""
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as handle:
            name = handle.read().strip()
    except OSError:
        return "?"
    return "".join(char if char.isprintable() else "?" for char in name) or "?"


_CAP_SYS_PTRACE = 19


def _may_trace_anything() -> bool:
    """We hold CAP_SYS_PTRACE in our effective set (root, normally)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> _CAP_SYS_PTRACE & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False


# --------------------------------------------------------------------------- during the diagnosis


def identity(pid: int) -> int | None:
    """What tells this process from a later one given the same PID: its start time in clock
    ticks (exact, unlike psutil's create_time float). None if it is gone."""
    return start_ticks(pid)


@contextmanager
def reading(pid: int, started: int | None) -> Iterator[None]:
    """Around each read of the target. Afterwards the process must still be the one the
    diagnosis began with: a PID whose process exited and was given to another between two
    samples would mix two programs in one report. A read that failed is explained by what
    happened to the target, if something did: it exited, or a debugger attached to it."""
    try:
        yield
    except TargetError:
        ensure_same_process(pid, started)
        tracer = tracer_of(pid)
        if tracer is not None:
            raise already_traced(pid, tracer) from None
        raise
    ensure_same_process(pid, started)


def ensure_same_process(pid: int, started: int | None) -> None:
    now = start_ticks(pid)
    if now is None or process_state(pid) in ("Z", "X"):
        raise TargetExited(f"process {pid} exited during the diagnosis",
                           "there is nothing left to diagnose; if it is restarted and hangs again, "
                           "run threaddoc against its new PID") from None
    if started is not None and now != started:
        raise PidReused(f"process {pid} exited during the diagnosis and PID {pid} now belongs to "
                        f"another process ({_comm(pid)}, started since)",
                        "threaddoc does not mix two processes in one report; run it again if the new "
                        "process is the one that hangs") from None


TRACER_LET_GO_SECONDS = 1.0  # a tracer that is just a moment (another py-spy) lets go by then


def refuse_if_traced(pid: int) -> None:
    """ptrace allows one tracer per thread: with gdb or strace attached, py-spy cannot pause
    the target. Another py-spy (a second threaddoc) lets go in a moment: wait for it."""
    deadline = time.monotonic() + TRACER_LET_GO_SECONDS
    tracer = tracer_of(pid)
    while tracer is not None and time.monotonic() < deadline:
        time.sleep(0.02)
        tracer = tracer_of(pid)
    if tracer is not None:
        raise already_traced(pid, tracer)


def already_traced(pid: int, tracer: int) -> AlreadyTraced:
    name = _comm(tracer)
    return AlreadyTraced(
        f"process {pid} is already traced by process {tracer} ({name}), so py-spy cannot attach "
        "to it (a process has one tracer at a time)",
        f"detach that debugger first (gdb: `detach` or quit; strace: stop it), or `kill {tracer}` "
        "if it is stuck, then run threaddoc again")


def tracer_of(pid: int) -> int | None:
    """The PID of the process tracing any thread of `pid` (/proc/PID/task/TID/status
    TracerPid), or None."""
    for status in task_statuses(pid):
        start = status.find(b"\nTracerPid:")
        if start < 0:
            continue
        try:
            tracer = int(status[start + len(b"\nTracerPid:"):status.find(b"\n", start + 1)])
        except ValueError:
            continue
        if tracer:
            return _process_of_thread(tracer)
    return None


def _process_of_thread(tid: int) -> int:
    """TracerPid names the tracing thread; its process (Tgid) is what a user recognises."""
    try:
        with open(f"/proc/{tid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Tgid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return tid


def _safe(call: Callable[[], T], default: D) -> T | D:
    try:
        return call()
    except (psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return default


def _start_time(pid: int) -> float | None:
    """When the process started, to ~10 ms.

    psutil derives it from the boot time in whole seconds, which is too coarse to
    tell whether a source file changed just before or just after the start.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks = int(fields[19])
        booted = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
        return booted + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _looks_like_python(pid: int, facts: ProcessFacts) -> bool:
    if facts.python_version or _PYTHON_NAME.search(os.path.basename(facts.exe or "")):
        return True
    maps = _read_maps(pid)
    # Without access to the maps (not root), let py-spy decide.
    return maps is None or "python" in maps


def _python_version(pid: int, exe: str | None) -> str | None:
    named = _PYTHON_NAME.search(os.path.basename(exe or ""))
    if named and named.group("version"):
        return named.group("version")
    maps = _read_maps(pid)
    if maps:
        linked = _LIBPYTHON.search(maps) or re.search(r"/lib/python([23]\.\d+)t?/", maps)
        if linked:
            return linked.group(1)
    return None


def _read_maps(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as maps:
            return maps.read()
    except OSError:
        return None


def child_pids(pid: int, recursive: bool = False) -> list[int]:
    """Children of a process (all descendants if `recursive`), oldest first."""
    try:
        children = psutil.Process(pid).children(recursive=recursive)
    except psutil.Error:
        return []
    return [child.pid for child in sorted(children, key=_created)]


def _created(process: psutil.Process) -> float:
    try:
        return float(process.create_time())
    except psutil.Error:
        return 0.0


def _parent_cmdline(process: psutil.Process) -> tuple[str, ...]:
    try:
        parent = process.parent()
        return redacted_command_line(parent.cmdline()) if parent is not None else ()
    except psutil.Error:
        return ()


def python_processes_named(name: str, exclude: int) -> list[int]:
    """PIDs of the Python processes whose name or command line contains `name`, oldest
    first: `gunicorn` finds the master and every worker. Processes that vanish or are not
    Python are left out."""
    found = []
    for process in psutil.process_iter(["pid", "name", "cmdline"]):
        info = process.info
        words = [info.get("name") or "", *(info.get("cmdline") or ())]
        if info["pid"] == exclude or not any(name in word for word in words):
            continue
        try:
            process_facts(info["pid"])
        except TargetError:
            continue
        found.append(process)
    return [process.pid for process in sorted(found, key=_created)]

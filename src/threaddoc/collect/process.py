"""What the operating system says about the target (psutil and /proc)."""

from __future__ import annotations

import os
import re
import time
from typing import Callable, TypeVar

import psutil

from threaddoc.errors import NoSuchProcess, NotPython, PermissionDenied, TargetError, UsageError
from threaddoc.model import ProcessFacts

from .pyspy import PERMISSION_REMEDY

T = TypeVar("T")
D = TypeVar("D")

_PYTHON_NAME = re.compile(r"python(?P<version>3\.\d+)?")
_LIBPYTHON = re.compile(r"libpython(?P<version>3\.\d+)")


def process_facts(pid: int) -> ProcessFacts:
    """Facts about a live process; refuses what cannot be a Python target."""
    if pid == os.getpid():
        raise UsageError("threaddoc cannot diagnose itself", "pass the PID of the hung program")
    try:
        process = psutil.Process(pid)
        with process.oneshot():
            status = process.status()
            if status == psutil.STATUS_ZOMBIE:
                raise NoSuchProcess(f"process {pid} is a zombie (it has exited)",
                                    "its parent has not reaped it yet; there is nothing left to inspect")
            cmdline = tuple(_safe(process.cmdline, []))
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
    if not _looks_like_python(pid, facts):
        name = os.path.basename(facts.exe or facts.cmdline[0])
        raise NotPython(f"process {pid} ({name}) is not a Python interpreter",
                        "point threaddoc at the python process itself (see `ps -ef | grep python`)")
    return facts


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
        linked = _LIBPYTHON.search(maps) or re.search(r"/lib/python(3\.\d+)/", maps)
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
        return tuple(parent.cmdline()) if parent is not None else ()
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

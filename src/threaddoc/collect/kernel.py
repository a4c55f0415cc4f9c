"""Per-thread facts from the kernel: state, blocking system call and its arguments.

`read_kernel_states` touches /proc (collection); `kernel_state` turns what was read
into a `KernelState` (pure, also used for recordings).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import psutil

from threaddoc.model import ChildProcess, FileDescriptor, KernelState
from threaddoc.redact import redacted_command_line

# The blocking calls worth naming, by architecture (asm/unistd_64.h, asm-generic/unistd.h).
SYSCALLS: Mapping[str, Mapping[int, str]] = {
    "x86_64": {
        0: "read", 1: "write", 7: "poll", 17: "pread64", 19: "readv", 23: "select", 35: "nanosleep",
        42: "connect", 43: "accept", 44: "sendto", 45: "recvfrom", 46: "sendmsg", 47: "recvmsg",
        61: "wait4", 202: "futex", 230: "clock_nanosleep", 232: "epoll_wait", 247: "waitid",
        270: "pselect6", 271: "ppoll", 281: "epoll_pwait", 288: "accept4", 299: "recvmmsg",
        441: "epoll_pwait2", 449: "futex_waitv",
    },
    "aarch64": {
        22: "epoll_pwait", 63: "read", 64: "write", 65: "readv", 67: "pread64", 72: "pselect6",
        73: "ppoll", 98: "futex", 101: "nanosleep", 115: "clock_nanosleep", 95: "waitid",
        202: "accept", 203: "connect", 206: "sendto", 207: "recvfrom", 211: "sendmsg",
        212: "recvmsg", 242: "accept4", 260: "wait4", 243: "recvmmsg", 441: "epoll_pwait2",
        449: "futex_waitv",
    },
}


def read_kernel_states(pid: int, thread_ids: Iterable[int]) -> dict[str, dict[str, str]]:
    """Raw /proc text for each thread; threads that exited meanwhile are left out."""
    states: dict[str, dict[str, str]] = {}
    # One clock reading for the whole pass (a few ms at most): two more files per thread
    # were a third of the reads at a thousand threads.
    uptime, now = _uptime(), _now_on_sched_clock()
    try:
        # Files named from the task directory: the kernel walks /proc/PID/task once, not
        # four times a thread (an eighth of the time at thousands of threads).
        tasks = os.open(f"/proc/{pid}/task", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return states  # gone: none of its threads can be read
    try:
        for tid in thread_ids:
            entry: dict[str, str] = {}
            for name in ("stat", "syscall", "wchan", "sched"):
                try:
                    entry[name] = read_proc_text(f"{tid}/{name}", tasks).strip()
                except OSError:
                    continue
            if "stat" in entry:
                entry["stat"] = entry["stat"].rsplit(")", 1)[-1].split()[0] if ")" in entry["stat"] else "?"
                entry["sched"] = _exec_start(entry.get("sched", ""))
                entry["uptime"] = uptime
                entry["now"] = now
                states[str(tid)] = entry
    finally:
        os.close(tasks)
    return states


_PROC_READ_BYTES = 16384


def read_proc_text(path: str, directory: int | None = None) -> str:
    """A small /proc file's text (ASCII, anything else replaced), `path` relative to the open
    `directory` if given. Thousands of threads mean thousands of these files: a plain
    descriptor costs half what a text file object does."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=directory)
    try:
        data = os.read(fd, _PROC_READ_BYTES)
        if len(data) == _PROC_READ_BYTES:  # a file longer than one read
            chunks = [data]
            while len(chunks[-1]) == _PROC_READ_BYTES:
                chunks.append(os.read(fd, _PROC_READ_BYTES))
            data = b"".join(chunks)
    finally:
        os.close(fd)
    return data.decode("ascii", errors="replace")


def read_undisturbed(pid: int) -> dict[str, dict[str, str]]:
    """Every thread's kernel state, read before py-spy attaches: its ptrace stop wakes every
    thread, after which the scheduler says they all ran a moment ago and some are caught
    on their way back into their system call."""
    try:
        thread_ids = [int(tid) for tid in os.listdir(f"/proc/{pid}/task") if tid.isdigit()]
    except OSError:
        return {}
    return read_kernel_states(pid, thread_ids)


def _exec_start(sched: str) -> str:
    """`se.exec_start` (milliseconds since boot when the thread last ran), kept alone."""
    for line in sched.splitlines():
        if line.startswith("se.exec_start"):
            return line.split(":", 1)[1].strip()
    return ""


def _now_on_sched_clock() -> str:
    """Now, in seconds, on the clock `se.exec_start` is read on: our own thread is running,
    so its exec_start is now (to a scheduler tick). /proc/uptime runs on another clock,
    which drifts a few tenths of a second from it on some virtual machines."""
    try:
        with open("/proc/thread-self/sched", encoding="ascii", errors="replace") as handle:
            milliseconds = float(_exec_start(handle.read()))
    except (OSError, ValueError):
        return ""
    return f"{milliseconds / 1000.0:.6f}"


def _uptime() -> str:
    try:
        with open("/proc/uptime", encoding="ascii") as handle:
            return handle.read().split()[0]
    except (OSError, IndexError):
        return ""


def machine() -> str:
    return platform.machine()


def kernel_state(raw: Mapping[str, str], arch: str) -> KernelState:
    """`{"stat": "S", "syscall": "202 0x55… 0x189 …", "wchan": "futex_do_wait"}` -> KernelState."""
    name, arguments = _system_call(tuple(raw.get("syscall", "").split()[:7]), arch)
    return KernelState(state=raw.get("stat", "?"), syscall=name, arguments=arguments,
                       wchan=raw.get("wchan", "") if raw.get("wchan", "0") != "0" else "",
                       idle_seconds=_idle_seconds(raw))


# Threads blocked on one lock are in the same call with the same arguments (they differ
# in their stack and instruction pointers, left out of the key): read each call once.
@lru_cache(maxsize=4096)
def _system_call(fields: tuple[str, ...], arch: str) -> tuple[str | None, tuple[int, ...]]:
    """(name, arguments) of /proc/.../syscall's number and six arguments; (None, ()) when
    the thread is not in a system call."""
    if not fields or not fields[0].lstrip("-").isdigit() or int(fields[0]) < 0:
        return None, ()
    number = int(fields[0])
    name = SYSCALLS.get(arch, {}).get(number, f"syscall {number}")
    try:
        # Six arguments follow; then the stack and instruction pointers.
        return name, tuple(int(value, 16) for value in fields[1:7])
    except ValueError:
        return name, ()


def _idle_seconds(raw: Mapping[str, str]) -> float | None:
    """How long ago the thread last ran: now minus `se.exec_start`, when both were read (now
    on the scheduler's clock; recordings made before that have uptime only)."""
    try:
        return max(0.0, float(raw.get("now") or raw["uptime"]) - float(raw["sched"]) / 1000.0)
    except (KeyError, ValueError):
        return None


MAX_FDS = 512
MAX_CHILDREN = 16


def read_open_files(pid: int) -> dict[str, dict[str, str]]:
    """What each open fd points to, and for sockets their endpoints (psutil)."""
    files: dict[str, dict[str, str]] = {}
    try:
        fds = sorted(os.listdir(f"/proc/{pid}/fd"), key=lambda name: int(name) if name.isdigit() else 0)
    except OSError:
        return files
    for fd in fds[:MAX_FDS]:
        try:
            files[fd] = {"target": os.readlink(f"/proc/{pid}/fd/{fd}")}
        except OSError:
            continue
    for connection in _connections(pid):
        entry = files.get(str(connection.fd))
        if entry is not None:
            entry["local"] = _address(connection.laddr)
            if connection.raddr:
                entry["remote"] = _address(connection.raddr)
            if connection.status and connection.status != psutil.CONN_NONE:
                entry["status"] = str(connection.status)
    return files


def _connections(pid: int) -> list[Any]:
    try:
        process = psutil.Process(pid)
        method = getattr(process, "net_connections", None) or process.connections
        return list(method(kind="inet"))
    except (psutil.Error, OSError):
        return []


def _address(address: Any) -> str:
    if not address:
        return ""
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def read_children(pid: int) -> list[dict[str, Any]]:
    """The target's direct children: command line, main thread's kernel state, fds 0-2."""
    children: list[dict[str, Any]] = []
    try:
        processes = psutil.Process(pid).children(recursive=False)[:MAX_CHILDREN]
    except psutil.Error:
        return children
    for child in processes:
        try:
            cmdline = list(redacted_command_line(child.cmdline()))
        except psutil.Error:
            continue
        state = read_kernel_states(child.pid, [child.pid]).get(str(child.pid), {})
        fds = {}
        for fd in ("0", "1", "2"):
            try:
                fds[fd] = os.readlink(f"/proc/{child.pid}/fd/{fd}")
            except OSError:
                continue
        children.append({"pid": child.pid, "cmdline": cmdline, "kernel": state, "fds": fds})
    return children


def open_files(raw: Mapping[str, Mapping[str, str]]) -> dict[int, FileDescriptor]:
    return {
        int(fd): FileDescriptor(int(fd), entry.get("target", "?"), entry.get("local"), entry.get("remote"),
                                entry.get("status"))
        for fd, entry in raw.items() if fd.isdigit()
    }


def child_process(raw: Mapping[str, Any], arch: str) -> ChildProcess:
    kernel = raw.get("kernel") or {}
    return ChildProcess(
        pid=int(raw["pid"]),
        cmdline=tuple(raw.get("cmdline") or ()),
        kernel=kernel_state(kernel, arch) if kernel else None,
        fds={int(fd): target for fd, target in (raw.get("fds") or {}).items() if fd.isdigit()},
    )

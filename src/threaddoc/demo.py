"""`threaddoc demo`: run a bundled hung program, diagnose it, and clean up.

The programs are the package's copy of hung_samples/, the same files the
integration tests run.  The demo proves that attaching works on this host.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from threaddoc.errors import TargetError, UsageError


@dataclass(frozen=True)
class Scenario:
    name: str
    sample: str
    expected_verdict: str
    story: str


SCENARIOS = {
    scenario.name: scenario
    for scenario in (
        Scenario("lock-order", "lock_order_deadlock.py", "deadlock",
                 "two threads take two locks in opposite order"),
        Scenario("bank-transfer", "bank_transfer_deadlock.py", "deadlock",
                 "two transfers lock the same two accounts in opposite order (self._lock vs other._lock)"),
        Scenario("philosophers", "dining_philosophers.py", "deadlock",
                 "three threads, three locks, a ring"),
        Scenario("helper-relock", "helper_reacquires_lock.py", "deadlock",
                 "a method holds a Lock and calls a helper that takes it again"),
        Scenario("join-holding-lock", "join_while_holding_lock.py", "deadlock",
                 "the main thread joins a worker while holding the lock the worker needs"),
        Scenario("logging-handler", "logging_handler_deadlock.py", "deadlock",
                 "a logging handler takes an application lock; a thread logs while holding it"),
        Scenario("nested-submit", "nested_submit_starvation.py", "hang",
                 "a one-worker pool whose task waits on a task it submitted to the same pool"),
        Scenario("gil-held", "ctypes_call_holds_gil.py", "hang",
                 "a C call made through ctypes.PyDLL blocks while holding the GIL"),
        Scenario("busy", "busy_but_healthy.py", "busy",
                 "busy CPU threads, a job queue and an idle HTTP server: busy, nothing is hung"),
        Scenario("healthy", "idle_services.py", "no-hang",
                 "idle services waiting for work: nothing is hung"),
    )
}

READY_TIMEOUT = 30.0


def sample_path(filename: str) -> Path:
    path = Path(str(resources.files("threaddoc.hung_samples").joinpath(filename)))
    if not path.is_file():
        raise UsageError(f"bundled sample {filename} is missing", "reinstall threaddoc")
    return path


def scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        names = ", ".join(SCENARIOS)
        raise UsageError(f"unknown demo scenario {name!r}", f"choose one of: {names}") from None


def running_sample(
    filename: str, python: str = sys.executable
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """Start a bundled sample; see `running_program`."""
    return running_program(sample_path(filename), python)


@contextmanager
def running_program(script: Path, python: str = sys.executable,
                    ready_timeout: float = READY_TIMEOUT) -> Iterator[subprocess.Popen[bytes]]:
    """Start a program that writes "ready" to the path it is given once it is in the
    state to diagnose; yield it then, and kill its process group on exit.

    `ready_timeout` is for programs that take long to get there (thousands of threads)."""
    with tempfile.TemporaryDirectory(prefix="threaddoc-demo-") as workdir:
        ready = Path(workdir) / "ready"
        process = subprocess.Popen(
            [python, str(script), str(ready)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            cwd=workdir,
        )
        try:
            _wait_until_ready(process, ready, ready_timeout)
            yield process
        finally:
            stop(process)


def no_room_for_threads(threads: int) -> str | None:
    """Why the machine cannot take `threads` more threads now, or None if it can. Every
    thread takes a PID: pid_max (32,768 by default) holds three 10,000-thread samples at
    most, other programs' threads included (a margin of 1,000 is kept for them)."""
    limit = min(int(Path(f"/proc/sys/kernel/{name}").read_text()) for name in ("pid_max", "threads-max"))
    used = _threads_on_the_machine()
    if used + threads + 1_000 <= limit:
        return None
    return f"{used:,} threads run on this machine and pid_max/threads-max allow {limit:,}"


def _threads_on_the_machine() -> int:
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with suppress(OSError):
                count += len(os.listdir(f"/proc/{entry}/task"))
    return count


def _wait_until_ready(process: subprocess.Popen[bytes], ready: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None:
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            last = stderr.strip().splitlines()[-1] if stderr.strip() else "no output"
            raise TargetError(f"the demo program exited before it was ready ({last})",
                              "check that this Python can run threads and sockets")
        if time.monotonic() > deadline:
            raise TargetError(f"the demo program was not ready within {timeout:g}s",
                              "the machine may be overloaded; try again")
        time.sleep(0.02)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    if process.stderr is not None:
        process.stderr.close()

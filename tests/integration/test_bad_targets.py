"""The bad-input matrix for live targets: `threaddoc diagnose` pointed at something it
cannot or must not diagnose.

Every row of MATRIX ends with ONE line on stderr that says what is wrong and what to do
(the phrases of the row), nothing on stdout, no traceback, and the documented status: 2
for a usage error, 3 when the target cannot be inspected. Where threaddoc must refuse
before attaching (a kernel thread, PID 1, an unsupported CPython, a traced process), the
py-spy it is given logs each call, and the log must stay empty. A target still running
afterwards must not be left stopped.

Permission denied (as user nobody, and as root without CAP_SYS_PTRACE) and the py-spy
failure variants are in test_bad_input.py; saved dumps (`--from`) have their own tests.

Every process started here is stopped by PID or process group, never by name, and every
subprocess call has a timeout.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import real_py_spy

pytestmark = pytest.mark.integration

EXIT_USAGE = 2
EXIT_CANNOT_INSPECT = 3
SAMPLE = "lock_order_deadlock.py"
READY_SECONDS = 30.0  # for a started process to be in the state the row needs
STOP_SECONDS = 10.0   # for a process we killed to be reaped
PYENV = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"

# A script that hangs on every CPython from 2.7 on: a lock acquired twice.
OLD_PYTHON_HANG = """\
import sys, threading
lock = threading.Lock()
lock.acquire()
open(sys.argv[1], "w").close()
lock.acquire()
"""


@dataclass(frozen=True)
class Case:
    """What a row runs: `threaddoc diagnose ARGS` (behind PREFIX, a command that runs it)."""

    args: tuple[str, ...]
    says: tuple[str, ...] = ()          # phrases the error line must hold
    prefix: tuple[str, ...] = ()
    py_spy_log: Path | None = None      # must stay empty: nothing was attached
    target: int | None = None           # must not be left stopped


@dataclass
class Tools:
    stack: ExitStack
    tmp: Path
    sample_runner: Callable[..., Any]

    def start(self, command: list[str], **options: Any) -> subprocess.Popen[bytes]:
        """A process of our own, in its own group, killed (by group) and reaped at the end."""
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True, **options)
        self.stack.callback(_stop, process)
        return process

    def hung_sample(self, python: str = sys.executable) -> subprocess.Popen[bytes]:
        return self.stack.enter_context(self.sample_runner(SAMPLE, python=python))

    def py_spy(self, body: str) -> tuple[str, Path]:
        """A py-spy wrapper: logs each call, then runs BODY (sh) with the real py-spy as $REAL."""
        log = self.tmp / "py-spy-calls.log"
        path = self.tmp / "py-spy"
        path.write_text(f"#!/bin/sh\nREAL='{real_py_spy()}'\necho \"$*\" >> '{log}'\n{body}")
        path.chmod(0o755)
        return str(path), log


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:  # not reaped, so its group id cannot have been reused
        with suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_SECONDS)


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {READY_SECONDS:g}s", pytrace=False)
        time.sleep(0.01)


# --------------------------------------------------------------------------- the rows' set-ups


def pid_argument(value: str) -> Callable[[Tools], Case]:
    return lambda tools: Case(("diagnose", value))


def no_such_pid(tools: Tools) -> Case:
    with open("/proc/sys/kernel/pid_max") as handle:
        pid_max = int(handle.read())
    pid = next(pid for pid in range(pid_max - 1, pid_max // 2, -1) if not os.path.exists(f"/proc/{pid}"))
    return Case(("diagnose", str(pid)), (f"no process with PID {pid}", "ps"))


def zombie(tools: Tools) -> Case:
    # Exited and not reaped: the Popen is reaped only when the row is over.
    child = tools.start(["true"])
    _wait_for(lambda: _state(child.pid) == "Z", f"process {child.pid} becoming a zombie")
    return Case(("diagnose", str(child.pid)), ("zombie",))


def kernel_thread(tools: Tools) -> Case:
    pid = next((pid for pid in _pids() if _is_kernel_thread(pid)), None)
    if pid is None:
        pytest.skip("no kernel thread is visible here (a PID namespace of its own)")
    path, log = tools.py_spy("exit 1\n")
    return Case(("diagnose", str(pid), "--py-spy", path), ("kernel thread",), py_spy_log=log)


def pid_one(tools: Tools) -> Case:
    # Never attached to here, whatever PID 1 is: a Python PID 1 (a container's) is skipped.
    comm = Path("/proc/1/comm").read_text().strip()
    cmdline = Path("/proc/1/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    if "python" in comm or "python" in os.path.basename(cmdline):
        pytest.skip(f"PID 1 is a Python program here ({cmdline}): it would be diagnosed, not refused")
    path, log = tools.py_spy("exit 1\n")
    return Case(("diagnose", "1", "--py-spy", path), ("process 1",), py_spy_log=log)


def own_pid(tools: Tools) -> Case:
    # The shell's PID becomes threaddoc's as the shell execs it.
    return Case(("diagnose",), ("cannot diagnose itself",), prefix=("sh", "-c", 'exec "$@" "$$"', "sh"))


def parent_shell(tools: Tools) -> Case:
    return Case(("diagnose",), ("is not a Python interpreter",),
                prefix=("sh", "-c", '"$@" "$$"; exit $?', "sh"))


def not_python(tools: Tools) -> Case:
    sleeper = tools.start(["sleep", "600"])
    return Case(("diagnose", str(sleeper.pid)), ("(sleep) is not a Python interpreter",),
                target=sleeper.pid)


def exits_between_samples(tools: Tools) -> Case:
    # The first (non-blocking) sample is read; then the target is killed.
    target = tools.hung_sample()
    path, _ = tools.py_spy(f'"$REAL" "$@"; status=$?\nkill -KILL {target.pid}\nexit $status\n')
    return Case(("diagnose", str(target.pid), "--samples", "3", "--interval", "0.1", "--py-spy", path),
                (f"process {target.pid} exited during the diagnosis",))


def exits_during_the_dump(tools: Tools) -> Case:
    # The blocking dump starts against a process that is gone by the time py-spy reads it.
    target = tools.hung_sample()
    path, _ = tools.py_spy(
        'case " $* " in *" --nonblocking "*) exec "$REAL" "$@" ;; esac\n'
        f'kill -KILL {target.pid}\nexec "$REAL" "$@"\n')
    return Case(("diagnose", str(target.pid), "--samples", "2", "--interval", "0.1", "--py-spy", path),
                (f"process {target.pid} exited during the diagnosis",))


def pid_reused_between_samples(tools: Tools) -> Case:
    """After the first sample the target is killed and reaped, and a new process is started
    at its PID (the kernel hands out ns_last_pid + 1 next); only then does py-spy return."""
    if not os.access("/proc/sys/kernel/ns_last_pid", os.W_OK):
        pytest.skip("needs a writable /proc/sys/kernel/ns_last_pid (root) to give a PID again")
    target = tools.hung_sample()
    first_done, go = tools.tmp / "first-sample-read", tools.tmp / "pid-given-again"
    path, _ = tools.py_spy(
        f'"$REAL" "$@"; status=$?\n: > \'{first_done}\'\n'
        f'for i in $(seq 200); do [ -e \'{go}\' ] && break; sleep 0.05; done\nexit $status\n')
    tools.stack.callback(go.touch)  # however the row ends, the wrapper must not wait on
    tools.stack.enter_context(_reusing_pid(tools, target, first_done, go))
    return Case(("diagnose", str(target.pid), "--samples", "3", "--interval", "0.1", "--py-spy", path),
                (f"process {target.pid} exited during the diagnosis",
                 f"PID {target.pid} now belongs to another process"))


@contextmanager
def _reusing_pid(tools: Tools, target: subprocess.Popen[bytes], first_done: Path,
                 go: Path) -> Iterator[None]:
    """In a thread while threaddoc runs: once the first sample is read, replace the target."""
    problem: list[str] = []

    def replace() -> None:
        deadline = time.monotonic() + READY_SECONDS
        while not first_done.exists():
            if time.monotonic() > deadline:
                problem.append("threaddoc never read a first sample")
                return
            time.sleep(0.005)
        pid = target.pid
        os.killpg(pid, signal.SIGKILL)
        target.wait(timeout=STOP_SECONDS)
        for _ in range(50):  # another fork on the machine may take the PID first: try again
            with open("/proc/sys/kernel/ns_last_pid", "w") as last:
                last.write(str(pid - 1))
            other = tools.start([sys.executable, "-c", "import time; time.sleep(60)"])
            if other.pid == pid:
                break
            _stop(other)
        else:
            problem.append(f"could not start a process at PID {pid}")
        go.touch()

    thread = threading.Thread(target=replace, daemon=True)
    thread.start()
    yield
    thread.join(timeout=READY_SECONDS)
    if problem:
        pytest.fail(problem[0], pytrace=False)


def traced_by_a_debugger(tools: Tools) -> Case:
    target = tools.hung_sample()
    ready = tools.tmp / "holder-ready"
    holder = tools.start([sys.executable, "-c", PTRACE_HOLDER, str(target.pid), str(ready)])
    _wait_for(lambda: ready.exists() or holder.poll() is not None, "the ptrace holder attaching")
    if holder.poll() is not None:
        pytest.skip(f"could not PTRACE_SEIZE the sample (the holder exited {holder.returncode})")
    path, log = tools.py_spy('exec "$REAL" "$@"\n')
    return Case(("diagnose", str(target.pid), "--py-spy", path),
                (f"already traced by process {holder.pid} (ptrace-holder)", "detach"),
                py_spy_log=log, target=target.pid)


def traced_by_strace(tools: Tools) -> Case:
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed")
    target = tools.hung_sample()
    tracer = tools.start([strace, "-f", "-o", os.devnull, "-p", str(target.pid)])
    _wait_for(lambda: _tracer_pid(target.pid) != 0 or tracer.poll() is not None, "strace attaching")
    if tracer.poll() is not None:
        pytest.skip(f"strace could not attach (exit {tracer.returncode})")
    path, log = tools.py_spy('exec "$REAL" "$@"\n')
    return Case(("diagnose", str(target.pid), "--py-spy", path),
                (f"already traced by process {tracer.pid} (strace)",), py_spy_log=log, target=target.pid)


def unsupported_python(version: str) -> Callable[[Tools], Case]:
    def setup(tools: Tools) -> Case:
        found = sorted(PYENV.glob(f"{version}.*/bin/python{version}"))
        if not found:
            pytest.skip(f"CPython {version} is not installed under {PYENV}")
        script, ready = tools.tmp / "hang.py", tools.tmp / "ready"
        script.write_text(OLD_PYTHON_HANG)
        process = tools.start([str(found[-1]), str(script), str(ready)], cwd=tools.tmp)
        _wait_for(lambda: ready.exists() or process.poll() is not None, f"CPython {version} hanging")
        path, log = tools.py_spy('exec "$REAL" "$@"\n')
        return Case(("diagnose", str(process.pid), "--py-spy", path),
                    (f"CPython {version} is not supported (3.8 to 3.13)", "py-spy dump"),
                    py_spy_log=log, target=process.pid)
    return setup


def py_spy_missing(tools: Tools) -> Case:
    target = tools.hung_sample()
    return Case(("diagnose", str(target.pid), "--py-spy", "/nonexistent/py-spy"), ("py-spy", "install"))


def py_spy_failing(tools: Tools) -> Case:
    target = tools.hung_sample()
    path, _ = tools.py_spy("echo 'Error: something broke' >&2\nexit 1\n")
    return Case(("diagnose", str(target.pid), "--py-spy", path), ("py-spy failed",), target=target.pid)


@dataclass(frozen=True)
class BadInput:
    name: str
    setup: Callable[[Tools], Case]
    status: int


MATRIX = [
    BadInput("non-numeric PID", pid_argument("abc"), EXIT_USAGE),
    BadInput("negative PID", pid_argument("-5"), EXIT_USAGE),
    BadInput("zero PID", pid_argument("0"), EXIT_USAGE),
    BadInput("no such PID", no_such_pid, EXIT_CANNOT_INSPECT),
    BadInput("zombie", zombie, EXIT_CANNOT_INSPECT),
    BadInput("kernel thread", kernel_thread, EXIT_CANNOT_INSPECT),
    BadInput("PID 1", pid_one, EXIT_CANNOT_INSPECT),
    BadInput("threaddoc's own PID", own_pid, EXIT_USAGE),
    BadInput("its parent shell", parent_shell, EXIT_CANNOT_INSPECT),
    BadInput("not Python", not_python, EXIT_CANNOT_INSPECT),
    BadInput("exits between samples", exits_between_samples, EXIT_CANNOT_INSPECT),
    BadInput("exits during the dump", exits_during_the_dump, EXIT_CANNOT_INSPECT),
    BadInput("PID reused between samples", pid_reused_between_samples, EXIT_CANNOT_INSPECT),
    BadInput("traced by another debugger", traced_by_a_debugger, EXIT_CANNOT_INSPECT),
    BadInput("traced by strace", traced_by_strace, EXIT_CANNOT_INSPECT),
    BadInput("CPython 2.7", unsupported_python("2.7"), EXIT_CANNOT_INSPECT),
    BadInput("CPython 3.6", unsupported_python("3.6"), EXIT_CANNOT_INSPECT),
    BadInput("CPython 3.7", unsupported_python("3.7"), EXIT_CANNOT_INSPECT),
    BadInput("py-spy missing", py_spy_missing, EXIT_CANNOT_INSPECT),
    BadInput("py-spy failing", py_spy_failing, EXIT_CANNOT_INSPECT),
]


@pytest.mark.parametrize("bad", MATRIX, ids=[bad.name for bad in MATRIX])
def test_bad_live_target(bad, threaddoc, sample_runner, tmp_path):  # type: ignore[no-untyped-def]
    with ExitStack() as stack:
        case = bad.setup(Tools(stack, tmp_path, sample_runner))
        run = threaddoc(list(case.args), prefix=case.prefix)
        state_after = _state(case.target) if case.target is not None else None
    context = run.describe()
    print(f"{bad.name:28} {run.returncode}  {run.stderr.strip()}")  # the matrix, with -s
    assert run.returncode == bad.status, f"expected exit status {bad.status}\n{context}"
    assert run.stdout == "", f"expected nothing on stdout\n{context}"
    assert "Traceback" not in run.stderr, context
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("threaddoc: "), f"expected one line on stderr\n{context}"
    assert " — " in lines[0], f"the line gives no remedy\n{context}"
    assert not any(ord(char) < 32 for char in lines[0]), f"control characters in {lines[0]!r}"
    for phrase in case.says:
        assert phrase in lines[0], f"{phrase!r} is not in the line\n{context}"
    if case.py_spy_log is not None:
        calls = case.py_spy_log.read_text() if case.py_spy_log.exists() else ""
        assert not calls, f"py-spy was run, though threaddoc had to refuse first: {calls!r}"
    assert state_after not in ("T", "t"), f"the target was left stopped ({state_after})\n{context}"


# --------------------------------------------------------------------------- helpers


def _pids() -> Iterator[int]:
    return (int(name) for name in sorted(os.listdir("/proc"), key=lambda n: (len(n), n)) if name.isdigit())


def _is_kernel_thread(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return bool(int(stat.read().rsplit(")", 1)[1].split()[6]) & 0x00200000)  # PF_KTHREAD
    except (OSError, ValueError, IndexError):
        return False


def _tracer_pid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("TracerPid:"))
    except (OSError, StopIteration, ValueError):
        return 0


# A debugger that holds on: PTRACE_SEIZE every thread of the target (without stopping it),
# name itself, say so, and sleep until killed; the kernel detaches it as it dies.
PTRACE_HOLDER = """\
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(15, b"ptrace-holder", 0, 0, 0)  # PR_SET_NAME
pid, ready = int(sys.argv[1]), sys.argv[2]
for tid in sorted(int(t) for t in os.listdir(f"/proc/{pid}/task")):
    if libc.ptrace(0x4206, tid, None, None) != 0:  # PTRACE_SEIZE
        sys.exit(10 + ctypes.get_errno())
open(ready, "w").close()
time.sleep(600)
"""

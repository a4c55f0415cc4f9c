"""`threaddoc run -- CMD`, end to end with real processes.

Each test starts `python -m threaddoc run ...` in a session of its own, with its stdout
and stderr going to files (read while it runs), finds the command it started among its
children by the command line, and at the end kills by process group whatever is left:
threaddoc's group and the command's (the command leads its own).  Every wait has a
timeout.  The samples run under the venv's interpreter: the diagnosis itself is tested
per interpreter elsewhere.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import stat
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from threaddoc.run import EXIT_CANNOT_EXECUTE, EXIT_HUNG_AND_KILLED, EXIT_NOT_FOUND

from .conftest import SAMPLES, threaddoc_env, validate_report

pytestmark = pytest.mark.integration

DEADLOCK = SAMPLES / "lock_order_deadlock.py"
EXIT_USAGE = 2
WAIT = 60.0  # seconds any one step may take on a loaded machine


def wait_until(condition: Callable[[], object], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:g}s: {what}", pytrace=False)
        time.sleep(0.05)


def alive(process: psutil.Process) -> bool:
    """Running and the same process (psutil checks the start time, so a reused PID is not it)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@dataclass
class Supervised:
    """One `threaddoc run ...` and the command it runs."""

    args: tuple[str, ...]
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    started: float = field(default_factory=time.monotonic)
    commands: list[psutil.Process] = field(default_factory=list)

    def stderr(self) -> str:
        return self.stderr_path.read_bytes().decode(errors="replace")

    def stdout(self) -> bytes:
        return self.stdout_path.read_bytes()

    def command(self, argv: Sequence[str]) -> psutil.Process:
        """The command threaddoc started, once it has exec'd `argv`."""
        found: list[psutil.Process] = []

        def started() -> bool:
            for child in psutil.Process(self.process.pid).children():
                with suppress(psutil.Error):
                    if child.cmdline() == list(argv):
                        found.append(child)
                        return True
            return self.process.poll() is not None

        wait_until(started, f"threaddoc started {list(argv)}\n{self.describe()}")
        assert found, f"threaddoc exited without running the command\n{self.describe()}"
        self.commands.append(found[0])
        return found[0]

    def wait(self, timeout: float = WAIT) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"threaddoc did not exit within {timeout:g}s\n{self.describe()}", pytrace=False)

    def wait_for_stderr(self, text: str, count: int = 1, timeout: float = WAIT) -> str:
        wait_until(lambda: self.stderr().count(text) >= count or self.process.poll() is not None,
                   f"{text!r} x{count} on stderr\n{self.describe()}", timeout)
        stderr = self.stderr()
        assert stderr.count(text) >= count, f"threaddoc exited first\n{self.describe()}"
        return stderr

    def describe(self) -> str:
        return (f"`threaddoc {' '.join(self.args)}` (pid {self.process.pid}, exit "
                f"{self.process.poll()}, after {time.monotonic() - self.started:.1f}s)\n"
                f"--- stdout ---\n{self.stdout()[:2000]!r}\n--- stderr ---\n{self.stderr()[-6000:]}")

    def clean_up(self) -> None:
        groups = {self.process.pid, *(command.pid for command in self.commands)}
        with suppress(psutil.Error):
            groups.update(child.pid for child in psutil.Process(self.process.pid).children())
        for group in groups:
            with suppress(OSError):
                os.killpg(group, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


@pytest.fixture
def start_run(tmp_path: Path) -> Iterator[Callable[..., Supervised]]:
    """`start_run(*args)`: `threaddoc run *args`, killed with its command at the end of the test."""
    runs: list[Supervised] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Supervised:
        index = len(runs)
        stdout_path, stderr_path = tmp_path / f"run{index}.out", tmp_path / f"run{index}.err"
        with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
            process = subprocess.Popen([sys.executable, "-m", "threaddoc", "run", *args],
                                       stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                       env=env or threaddoc_env(), start_new_session=True)
        runs.append(Supervised(args, process, stdout_path, stderr_path))
        return runs[-1]

    yield start
    for run in runs:
        run.clean_up()


def deadlock_command(tmp_path: Path) -> tuple[list[str], Path]:
    ready = tmp_path / "ready"
    return [sys.executable, str(DEADLOCK), str(ready)], ready


def tree_of(process: psutil.Process) -> list[psutil.Process]:
    with suppress(psutil.Error):
        return [process, *process.children(recursive=True)]
    return [process]


def assert_all_gone(processes: Sequence[psutil.Process], run: Supervised) -> None:
    left = [process.pid for process in processes if alive(process)]
    assert not left, f"processes {left} were left behind\n{run.describe()}"


# --------------------------------------------------------------------------- (1) hung, --kill


def test_a_hung_command_is_diagnosed_on_stderr_killed_and_leaves_nothing(
        start_run: Callable[..., Supervised], tmp_path: Path) -> None:
    argv, ready = deadlock_command(tmp_path)
    run = start_run("--after", "3s", "--kill", "--", *argv)
    command = run.command(argv)
    wait_until(ready.exists, f"the sample got ready\n{run.describe()}")
    tree = tree_of(command)
    status = run.wait()
    stderr = run.stderr()
    assert status == EXIT_HUNG_AND_KILLED, run.describe()
    assert f"DEADLOCK in process {command.pid}" in stderr, run.describe()
    assert '"teller-1" and "teller-2" wait for each other\'s locks' in stderr
    assert "is still running after 3s" in stderr
    assert f"exit status {EXIT_HUNG_AND_KILLED}" in stderr.splitlines()[-1]
    assert run.stdout() == b"", "the report must not go to the command's stdout"
    assert "Traceback" not in stderr
    assert time.monotonic() - run.started >= 3.0, "diagnosed before --after 3s"
    assert_all_gone(tree, run)


def test_kill_also_stops_descendants_that_left_the_process_group(
        start_run: Callable[..., Supervised], tmp_path: Path) -> None:
    pid_file = tmp_path / "escaped.pid"
    script = ("import subprocess, sys, time\n"
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'],"
              " start_new_session=True)\n"
              "open(sys.argv[1], 'w').write(str(child.pid))\n"
              "time.sleep(300)\n")
    argv = [sys.executable, "-c", script, str(pid_file)]
    run = start_run("--after", "2s", "--kill", "--samples", "1", "--", *argv)
    command = run.command(argv)
    wait_until(lambda: pid_file.exists() and pid_file.read_text(), f"the child started\n{run.describe()}")
    escaped = psutil.Process(int(pid_file.read_text()))
    assert os.getpgid(escaped.pid) != command.pid, "the child did not leave the group"
    try:
        assert run.wait() == EXIT_HUNG_AND_KILLED, run.describe()
        assert_all_gone([command, escaped], run)
    finally:
        with suppress(psutil.Error):
            escaped.kill()


# --------------------------------------------------------------------------- (2) hung, no --kill


def test_without_kill_the_command_runs_on_after_the_report(
        start_run: Callable[..., Supervised], tmp_path: Path) -> None:
    argv, _ = deadlock_command(tmp_path)
    run = start_run("--after", "2s", "--", *argv)
    command = run.command(argv)
    stderr = run.wait_for_stderr("keeps running")
    assert f"DEADLOCK in process {command.pid}" in stderr, run.describe()
    time.sleep(1.0)
    assert alive(command) and run.process.poll() is None, run.describe()
    assert command.status() != psutil.STATUS_STOPPED, "the diagnosis left the command stopped"
    os.killpg(command.pid, signal.SIGKILL)
    # threaddoc exits with the command's status, as a shell reports it: 128 + SIGKILL.
    assert run.wait() == 128 + signal.SIGKILL, run.describe()


# --------------------------------------------------------------------------- (3) normal end


def test_a_finishing_command_passes_through_byte_for_byte_with_its_status() -> None:
    script = ("import sys\n"
              "data = sys.stdin.buffer.read()\n"
              "sys.stdout.buffer.write(b'out:' + data + b'\\x00\\xff\\r\\n')\n"
              "sys.stdout.flush()\n"
              "sys.stderr.buffer.write(b'err\\xfe\\n')\n"
              "sys.exit(7)\n")
    result = subprocess.run([sys.executable, "-m", "threaddoc", "run", "--after", "30s", "--", sys.executable,
                             "-c", script], input=b"in\x01put", capture_output=True, timeout=WAIT,
                            env=threaddoc_env(), check=False)
    assert result.returncode == 7
    assert (result.stdout, result.stderr) == (b"out:in\x01put\x00\xff\r\n", b"err\xfe\n")


def test_the_command_writes_to_threaddocs_own_files_not_to_a_pipe(tmp_path: Path) -> None:
    out, err = tmp_path / "out", tmp_path / "err"
    script = "import os; print(os.readlink('/proc/self/fd/1'), os.readlink('/proc/self/fd/2'))"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        status = subprocess.run([sys.executable, "-m", "threaddoc", "run", "--", sys.executable, "-c",
                                 script], stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                timeout=WAIT, env=threaddoc_env(), check=False).returncode
    assert status == 0, err.read_text()
    assert out.read_text().split() == [str(out), str(err)]


def test_a_command_ended_by_a_signal_exits_128_plus_the_signal() -> None:
    script = "import os, signal; os.kill(os.getpid(), signal.SIGUSR1)"
    result = subprocess.run([sys.executable, "-m", "threaddoc", "run", "--", sys.executable, "-c", script],
                            capture_output=True, timeout=WAIT, env=threaddoc_env(), check=False)
    assert result.returncode == 128 + signal.SIGUSR1, result.stderr
    assert result.stderr == b""


# --------------------------------------------------------------------------- (4) SIGQUIT


def test_sigquit_diagnoses_before_the_duration_and_again_later(
        start_run: Callable[..., Supervised], tmp_path: Path) -> None:
    argv, ready = deadlock_command(tmp_path)
    run = start_run("--after", "10m", "--", *argv)
    command = run.command(argv)
    wait_until(ready.exists, f"the sample got ready\n{run.describe()}")
    assert "DEADLOCK" not in run.stderr()
    os.kill(run.process.pid, signal.SIGQUIT)
    stderr = run.wait_for_stderr("keeps running")
    assert "got SIGQUIT" in stderr and f"DEADLOCK in process {command.pid}" in stderr, run.describe()
    os.kill(run.process.pid, signal.SIGQUIT)
    stderr = run.wait_for_stderr("keeps running", count=2)
    assert stderr.count(f"DEADLOCK in process {command.pid}") == 2, run.describe()
    assert alive(command) and command.status() != psutil.STATUS_STOPPED, run.describe()
    os.killpg(command.pid, signal.SIGKILL)
    assert run.wait() == 128 + signal.SIGKILL


# --------------------------------------------------------------------------- (5) through a shell


def test_a_python_program_under_a_shell_is_found_and_diagnosed(
        start_run: Callable[..., Supervised], tmp_path: Path) -> None:
    python_argv, ready = deadlock_command(tmp_path)
    # `; echo` keeps the shell from exec'ing python: the shell really is in between.
    argv = ["sh", "-c", '"$0" "$@"; echo "python exited $?"', *python_argv]
    run = start_run("--after", "3s", "--kill", "--", *argv)
    shell = run.command(argv)
    wait_until(ready.exists, f"the sample got ready\n{run.describe()}")
    tree = tree_of(shell)
    [python] = [process for process in tree if process.pid != shell.pid]
    assert run.wait() == EXIT_HUNG_AND_KILLED, run.describe()
    assert f"DEADLOCK in process {python.pid}" in run.stderr(), run.describe()
    assert run.stdout() == b"", "the shell went on after python: it was not killed first"
    assert_all_gone(tree, run)


def test_python_children_are_diagnosed_with_the_python_parent_that_waits_on_them(
        start_run: Callable[..., Supervised], tmp_path: Path) -> None:
    # As pytest-xdist's workers are: the parent is the process diagnosed, its stuck child
    # is part of its report.
    child_argv, ready = deadlock_command(tmp_path)
    argv = [sys.executable, "-c", f"import subprocess; subprocess.run({child_argv!r})"]
    run = start_run("--after", "3s", "--kill", "--", *argv)
    parent = run.command(argv)
    wait_until(ready.exists, f"the sample got ready\n{run.describe()}")
    tree = tree_of(parent)
    [child] = [process for process in tree if process.pid != parent.pid]
    assert run.wait() == EXIT_HUNG_AND_KILLED, run.describe()
    stderr = run.stderr()
    assert f"DEADLOCK in process {parent.pid}: \"MainThread\" waits on child process {child.pid}" in stderr, \
        run.describe()
    assert f"  {child.pid}  DEADLOCK: " in stderr, run.describe()
    assert_all_gone(tree, run)


def test_a_hung_pytest_job_is_diagnosed(start_run: Callable[..., Supervised], tmp_path: Path) -> None:
    (tmp_path / "test_hangs.py").write_text(
        "import threading\n"
        "ledger, audit = threading.Lock(), threading.Lock()\n"
        "both = threading.Barrier(2)\n"
        "def post():\n"
        "    with ledger:\n"
        "        both.wait()\n"
        "        with audit:\n"
        "            pass\n"
        "def reconcile():\n"
        "    with audit:\n"
        "        both.wait()\n"
        "        with ledger:\n"
        "            pass\n"
        "def test_transfer():\n"
        "    tellers = [threading.Thread(target=post), threading.Thread(target=reconcile)]\n"
        "    for teller in tellers:\n"
        "        teller.start()\n"
        "    for teller in tellers:\n"
        "        teller.join()\n", encoding="utf-8")
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_hangs.py")]
    run = start_run("--after", "5s", "--kill", "--", *argv)
    pytest_process = run.command(argv)
    assert run.wait() == EXIT_HUNG_AND_KILLED, run.describe()
    assert f"DEADLOCK in process {pytest_process.pid}" in run.stderr(), run.describe()
    assert not alive(pytest_process)


# --------------------------------------------------------------------------- (6) --json-file


def test_json_file_holds_a_valid_report_readable_by_its_owner_only(
        start_run: Callable[..., Supervised], tmp_path: Path) -> None:
    argv, _ = deadlock_command(tmp_path)
    report_path = tmp_path / "report.json"
    report_path.write_text("stale", encoding="utf-8")
    report_path.chmod(0o644)  # an old file readable by all: the report must not stay so
    run = start_run("--after", "2s", "--kill", "--json-file", str(report_path), "--", *argv)
    command = run.command(argv)
    assert run.wait() == EXIT_HUNG_AND_KILLED, run.describe()
    assert stat.S_IMODE(report_path.stat().st_mode) == 0o600
    report = json.loads(report_path.read_text(encoding="utf-8"))
    validate_report(report, f"threaddoc {' '.join(run.args)}")
    assert report["verdict"] == "deadlock"
    assert report["target"]["pid"] == command.pid
    assert [finding["kind"] for finding in report["findings"]] == ["lock-order-deadlock"]
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".report.json")], \
        "a temporary file was left beside the report"


# --------------------------------------------------------------------------- (7) refused


@pytest.mark.parametrize("duration", ["abc", "0", "-5s", "5x", "1m1h", "", "1.5.3s", "inf", "10 s"])
def test_a_bad_duration_is_one_line_and_a_usage_error(duration: str) -> None:
    result = subprocess.run([sys.executable, "-m", "threaddoc", "run", "--after", duration, "--", "true"],
                            capture_output=True, text=True, timeout=WAIT, env=threaddoc_env(), check=False)
    assert result.returncode == EXIT_USAGE, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("threaddoc: ") and "--after" in line and "1h30m" in line, line


@pytest.mark.parametrize(("args", "status", "says"), [
    ((), EXIT_USAGE, "Missing argument"),
    (("--after", "3s"), EXIT_USAGE, "Missing argument"),
    (("--", "threaddoc-no-such-command"), EXIT_NOT_FOUND, "command not found: threaddoc-no-such-command"),
    (("--", "/"), EXIT_CANNOT_EXECUTE, "it is a directory"),
])
def test_a_command_that_cannot_run_is_one_line_with_a_shell_like_status(
        args: tuple[str, ...], status: int, says: str) -> None:
    result = subprocess.run([sys.executable, "-m", "threaddoc", "run", *args], capture_output=True, text=True,
                            timeout=WAIT, env=threaddoc_env(), check=False)
    assert result.returncode == status, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("threaddoc: ") and says in line and " — " in line, line


def test_a_file_that_is_not_executable_exits_126(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n", encoding="utf-8")
    script.chmod(0o644)
    result = subprocess.run([sys.executable, "-m", "threaddoc", "run", "--", str(script)],
                            capture_output=True, text=True, timeout=WAIT, env=threaddoc_env(), check=False)
    assert result.returncode == EXIT_CANNOT_EXECUTE, result.stderr
    [line] = result.stderr.splitlines()
    assert "permission denied" in line and "chmod +x" in line, line


def test_a_json_file_that_cannot_be_written_is_refused_before_the_command_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    result = subprocess.run([sys.executable, "-m", "threaddoc", "run", "--json-file",
                             str(tmp_path / "missing" / "report.json"), "--", "touch", str(marker)],
                            capture_output=True, text=True, timeout=WAIT, env=threaddoc_env(), check=False)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert len(result.stderr.splitlines()) == 1 and not marker.exists()


def test_a_tree_without_python_is_said_in_one_line_and_kill_is_still_honoured(
        start_run: Callable[..., Supervised]) -> None:
    argv = ["sleep", "300"]
    run = start_run("--after", "1s", "--kill", "--", *argv)
    command = run.command(argv)
    assert run.wait() == EXIT_HUNG_AND_KILLED, run.describe()
    [line] = [line for line in run.stderr().splitlines() if "could not diagnose" in line]
    assert "no Python process in its process tree (sleep)" in line, run.describe()
    assert not alive(command)


def test_a_missing_py_spy_is_said_in_one_line_and_the_command_runs_on(
        start_run: Callable[..., Supervised], tmp_path: Path) -> None:
    argv, _ = deadlock_command(tmp_path)
    run = start_run("--after", "1s", "--py-spy", str(tmp_path / "no-py-spy"), "--", *argv)
    command = run.command(argv)
    stderr = run.wait_for_stderr("keeps running")
    [line] = [line for line in stderr.splitlines() if "could not diagnose" in line]
    assert "py-spy was not found" in line and "pip install py-spy" in line, line
    assert alive(command)
    os.killpg(command.pid, signal.SIGTERM)
    assert run.wait() == 128 + signal.SIGTERM


# --------------------------------------------------------------------------- (8) threaddoc told to stop


def test_sigterm_to_threaddoc_stops_the_command_too(
        start_run: Callable[..., Supervised], tmp_path: Path) -> None:
    argv, ready = deadlock_command(tmp_path)
    run = start_run("--", *argv)
    command = run.command(argv)
    wait_until(ready.exists, f"the sample got ready\n{run.describe()}")
    os.kill(run.process.pid, signal.SIGTERM)
    assert run.wait(timeout=20) == 128 + signal.SIGTERM, run.describe()
    assert not alive(command)
    assert "got SIGTERM: passed it on" in run.stderr()


def test_a_command_that_ignores_sigterm_is_killed_after_the_grace_period(
        start_run: Callable[..., Supervised], tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    script = ("import signal, sys, time\n"
              "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
              "open(sys.argv[1], 'w').close()\n"
              "time.sleep(300)\n")
    argv = [sys.executable, "-c", script, str(ready)]
    run = start_run("--", *argv)
    command = run.command(argv)
    wait_until(ready.exists, f"the command got ready\n{run.describe()}")
    os.kill(run.process.pid, signal.SIGTERM)
    told = time.monotonic()
    assert run.wait(timeout=30) == 128 + signal.SIGKILL, run.describe()
    assert 9.0 <= time.monotonic() - told < 25.0, "not killed after the 10 s grace period"
    assert not alive(command)


def test_ctrl_c_is_passed_on_to_the_command(start_run: Callable[..., Supervised], tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    script = ("import sys, time\n"
              "open(sys.argv[1], 'w').close()\n"
              "try:\n"
              "    time.sleep(300)\n"
              "except KeyboardInterrupt:\n"
              "    sys.exit(42)\n")
    argv = [sys.executable, "-c", script, str(ready)]
    run = start_run("--", *argv)
    run.command(argv)
    wait_until(ready.exists, f"the command got ready\n{run.describe()}")
    os.kill(run.process.pid, signal.SIGINT)
    assert run.wait(timeout=20) == 42, run.describe()


def test_sigterm_during_a_diagnosis_leaves_no_py_spy_behind(
        start_run: Callable[..., Supervised], tmp_path: Path) -> None:
    # A py-spy that never finishes (it records its PID, then sleeps in its place).
    pids = tmp_path / "py-spy.pids"
    fake = tmp_path / "py-spy"
    fake.write_text(f'#!/bin/sh\necho $$ >> "{pids}"\nexec sleep 300\n', encoding="utf-8")
    fake.chmod(0o755)
    argv, ready = deadlock_command(tmp_path)
    run = start_run("--py-spy", str(fake), "--timeout", "120", "--", *argv)
    command = run.command(argv)
    wait_until(ready.exists, f"the sample got ready\n{run.describe()}")
    os.kill(run.process.pid, signal.SIGQUIT)
    wait_until(lambda: pids.exists() and pids.read_text().strip(), f"py-spy was started\n{run.describe()}")
    py_spies = [psutil.Process(int(pid)) for pid in pids.read_text().split()]
    try:
        os.kill(run.process.pid, signal.SIGTERM)
        assert run.wait(timeout=30) == 128 + signal.SIGTERM, run.describe()
        assert_all_gone([command, *py_spies], run)
        # Also any py-spy started after the first (the diagnosis retries a failed sample).
        left = [pid for pid in map(int, pids.read_text().split()) if pid_running(pid)]
        assert not left, f"py-spy processes {left} were left behind\n{run.describe()}"
    finally:
        for py_spy in py_spies:
            with suppress(psutil.Error):
                py_spy.kill()


def pid_running(pid: int) -> bool:
    try:
        return alive(psutil.Process(pid))
    except psutil.Error:
        return False


# --------------------------------------------------------------------------- on a terminal


def test_on_a_terminal_input_reaches_the_command_ctrl_backslash_diagnoses_and_ctrl_c_stops(
        tmp_path: Path) -> None:
    # threaddoc leads a session whose controlling terminal is a pty, as under a shell: the
    # terminal's Ctrl-\ and Ctrl-C go to threaddoc's (foreground) group, and the command,
    # in a session of its own, reads the terminal without being stopped (SIGTTIN).
    master, slave = os.openpty()
    script = ("import sys, time\n"
              "print('got', sys.stdin.readline().strip(), flush=True)\n"
              "time.sleep(300)\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "threaddoc", "run", "--samples", "1", "--", sys.executable, "-c", script],
        stdin=slave, stdout=slave, stderr=slave, env=threaddoc_env(), start_new_session=True,
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    screen = Screen(master)
    try:
        os.write(master, b"hello\n")
        screen.wait_for(b"got hello")
        os.write(master, b"\x1c")  # Ctrl-\
        screen.wait_for(b"keeps running")
        assert b"got SIGQUIT" in screen.text and b"no hang found in process" in screen.text, screen.text
        os.write(master, b"\x03")  # Ctrl-C
        status = process.wait(timeout=WAIT)
        # The command died of the SIGINT passed on to it: 128 + 2, as a shell reports it.
        assert status == 128 + signal.SIGINT, screen.text
    finally:
        with suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
        for child in psutil.Process().children(recursive=True):
            with suppress(psutil.Error):
                if script in child.cmdline():
                    child.kill()
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        os.close(master)


class Screen:
    """What a pty shows, read as it comes."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.text = b""

    def wait_for(self, expected: bytes, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while expected not in self.text:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"the terminal never showed {expected!r}:\n{self.text.decode(errors='replace')}",
                            pytrace=False)
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    self.text += os.read(self.master, 65536)
                except OSError:  # the other side closed
                    pytest.fail(f"the terminal closed before {expected!r}:\n"
                                f"{self.text.decode(errors='replace')}", pytrace=False)


def test_a_closed_stderr_does_not_change_the_exit_status() -> None:
    # Started with fd 2 closed, Python has no sys.stderr: the report has nowhere to go, the
    # kill and the status must not suffer.
    result = subprocess.run(
        ["sh", "-c", 'exec "$0" -m threaddoc run --after 1s --kill --samples 1 -- "$0" -c '
                     '"import time; time.sleep(300)" 2>&-', sys.executable],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=WAIT, env=threaddoc_env(), check=False)
    assert result.returncode == EXIT_HUNG_AND_KILLED, result

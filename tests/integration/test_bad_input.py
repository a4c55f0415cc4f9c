"""`threaddoc diagnose` given something it cannot diagnose.

Every case must end with ONE line on stderr (never a traceback), nothing on
stdout, and the documented exit status: 2 for a usage error, 3 when the target
cannot be inspected.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

EXIT_USAGE = 2
EXIT_CANNOT_INSPECT = 3
SAMPLE = "lock_order_deadlock.py"
SAMPLE_PATH = Path(__file__).resolve().parents[2] / "hung_samples" / SAMPLE
SYSTEM_PYTHON = Path("/usr/bin/python3")
NOBODY = 65534
WAIT = 10.0  # seconds to reap a process this module started
READY_WAIT = 30.0  # seconds for a sample to write its ready file
PROBE_WAIT = 30.0  # seconds for a quick `python -c ...` check


def assert_one_line_error(run: Any, status: int) -> str:
    """The run failed with `status`, printed nothing on stdout, and one line on stderr."""
    context = run.describe()
    assert run.returncode == status, f"expected exit status {status}\n{context}"
    assert run.stdout == "", f"expected no report on stdout\n{context}"
    assert "Traceback" not in run.stderr, context
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"expected exactly one line on stderr\n{context}"
    line = lines[0]
    assert line.startswith("threaddoc: "), f"the message should start with 'threaddoc: '\n{context}"
    assert not any(ord(char) < 32 for char in line), f"control characters in {line!r}"
    return line


def proc_state(pid: int) -> str | None:
    """The state letter of /proc/PID/stat, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def wait_for(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def unused_pid() -> int:
    with open("/proc/sys/kernel/pid_max") as handle:
        pid_max = int(handle.read())
    for pid in range(pid_max - 1, pid_max // 2, -1):
        if not os.path.exists(f"/proc/{pid}"):
            return pid
    pytest.fail("found no unused PID")


def write_fake_py_spy(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def hung_sample(sample_runner):  # type: ignore[no-untyped-def]
    """A real hung Python program (under threaddoc's own interpreter)."""
    with sample_runner(SAMPLE) as process:
        yield process


# ----------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize("pid", ["abc", "0", "-5", "1.5", ""])
def test_invalid_pid_is_a_usage_error(threaddoc, pid):  # type: ignore[no-untyped-def]
    assert_one_line_error(threaddoc(["diagnose", pid]), EXIT_USAGE)


def test_missing_pid_is_a_usage_error(threaddoc):  # type: ignore[no-untyped-def]
    assert_one_line_error(threaddoc(["diagnose"]), EXIT_USAGE)


# ----------------------------------------------------------------------------- bad targets


def test_pid_that_does_not_exist(threaddoc):  # type: ignore[no-untyped-def]
    pid = unused_pid()
    line = assert_one_line_error(threaddoc(["diagnose", str(pid)]), EXIT_CANNOT_INSPECT)
    assert str(pid) in line, line


def test_process_that_is_not_python(threaddoc):  # type: ignore[no-untyped-def]
    sleeper = subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        run = threaddoc(["diagnose", str(sleeper.pid)])
        assert sleeper.poll() is None, "sleep exited during the test: the case proved nothing"
    finally:
        if sleeper.returncode is None:
            os.killpg(sleeper.pid, signal.SIGKILL)
        sleeper.wait(timeout=WAIT)
    line = assert_one_line_error(run, EXIT_CANNOT_INSPECT)
    assert str(sleeper.pid) in line, line


def test_zombie_process(threaddoc):  # type: ignore[no-untyped-def]
    # A child that exits while we hold off reaping it stays a zombie; keeping the
    # Popen referenced keeps subprocess from reaping it behind our back.
    child = subprocess.Popen(["true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert wait_for(lambda: proc_state(child.pid) == "Z", WAIT), (
            f"child {child.pid} did not become a zombie (state {proc_state(child.pid)})")
        run = threaddoc(["diagnose", str(child.pid)])
        assert proc_state(child.pid) == "Z", "the zombie was reaped during the test"
    finally:
        child.wait(timeout=WAIT)
    assert_one_line_error(run, EXIT_CANNOT_INSPECT)


# ----------------------------------------------------------------------------- py-spy trouble


def test_py_spy_missing(threaddoc, hung_sample):  # type: ignore[no-untyped-def]
    run = threaddoc(["diagnose", str(hung_sample.pid), "--py-spy", "/nonexistent/py-spy"])
    line = assert_one_line_error(run, EXIT_CANNOT_INSPECT)
    assert "py-spy" in line, line


@pytest.mark.parametrize("body", [
    # Fails with garbage, including a terminal escape sequence that must not reach the terminal.
    "printf 'garbage \\033[31mred\\033[0m %%s\\n' \"$@\"\necho 'Stack backtrace:' >&2\n"
    "echo '   0: junk' >&2\nexit 1\n",
    # Claims success but prints something that is not JSON.
    "echo 'this is not json'\nexit 0\n",
    # Claims success with JSON of the wrong shape.
    "echo '{\"threads\": 1}'\nexit 0\n",
], ids=["exit-1-garbage", "exit-0-not-json", "exit-0-wrong-json"])
def test_py_spy_failing(threaddoc, hung_sample, tmp_path, body):  # type: ignore[no-untyped-def]
    fake = write_fake_py_spy(tmp_path / "py-spy", body)
    run = threaddoc(["diagnose", str(hung_sample.pid), "--py-spy", fake])
    line = assert_one_line_error(run, EXIT_CANNOT_INSPECT)
    assert "py-spy" in line, line
    assert "\x1b" not in run.stderr, f"escape sequence reached stderr: {run.stderr!r}"


def test_py_spy_hanging_is_cut_off_by_timeout(threaddoc, hung_sample, tmp_path):  # type: ignore[no-untyped-def]
    pid_file = tmp_path / "fake.pid"
    fake = write_fake_py_spy(tmp_path / "py-spy", f"echo $$ > '{pid_file}'\nexec sleep 60\n")
    fake_pid: int | None = None
    try:
        run = threaddoc(["diagnose", str(hung_sample.pid), "--py-spy", fake, "--timeout", "1"])
        assert pid_file.exists(), f"the fake py-spy never ran: the case proved nothing\n{run.describe()}"
        fake_pid = int(pid_file.read_text())
        line = assert_one_line_error(run, EXIT_CANNOT_INSPECT)
        assert "py-spy" in line, line
        assert run.seconds < 20, f"threaddoc took {run.seconds:.1f}s with --timeout 1"
        assert wait_for(lambda: proc_state(fake_pid) is None, 5.0), (
            f"the fake py-spy (pid {fake_pid}) outlived threaddoc: state {proc_state(fake_pid)}")
    finally:
        if fake_pid is not None and proc_state(fake_pid) not in (None, "Z"):
            _kill_if_sleep(fake_pid)


def _kill_if_sleep(pid: int) -> None:
    """Clean up a leaked fake py-spy, by PID, after checking that it is still our `sleep`."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            if handle.read().split(b"\0")[:2] != [b"sleep", b"60"]:
                return
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


# ----------------------------------------------------------------------------- permissions


def _as_nobody() -> dict[str, Any]:
    return {"user": NOBODY, "group": NOBODY, "extra_groups": [], "cwd": "/"}


def test_permission_denied(threaddoc, threaddoc_env, sample_runner):  # type: ignore[no-untyped-def]
    if os.geteuid() != 0:
        pytest.skip("needs root: runs threaddoc as user nobody against a root-owned process")
    env = threaddoc_env({"HOME": "/nonexistent"})
    try:
        probe = subprocess.run(
            [sys.executable, "-c", "import threaddoc.cli, threaddoc.collect; "
             "from threaddoc.collect.pyspy import find_py_spy; find_py_spy()"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, env=env,
            **_as_nobody())
        problem = probe.returncode != 0 and (probe.stderr.strip().splitlines() or ["no output"])[-1]
    except OSError as error:  # e.g. the interpreter is in a directory nobody cannot enter
        problem = str(error)
    if problem:
        pytest.skip(f"user nobody (uid {NOBODY}) cannot run {sys.executable} with threaddoc and "
                    f"py-spy ({problem}); put the venv and the repository on a path nobody can "
                    f"read to run this test")

    with sample_runner(SAMPLE) as process:
        run = threaddoc(["diagnose", str(process.pid)], env=env, **_as_nobody())
    line = assert_one_line_error(run, EXIT_CANNOT_INSPECT)
    assert any(word in line for word in ("root", "CAP_SYS_PTRACE", "ptrace_scope")), line


def test_permission_denied_without_cap_sys_ptrace(threaddoc, threaddoc_env):  # type: ignore[no-untyped-def]
    """root without CAP_SYS_PTRACE against a process of another user (nobody).

    Unlike `test_permission_denied`, this needs no venv that nobody can run: the
    target runs as nobody under the system interpreter, and threaddoc runs as root
    with CAP_SYS_PTRACE dropped from its capability sets.
    """
    if os.geteuid() != 0:
        pytest.skip("needs root: starts a process as user nobody and drops CAP_SYS_PTRACE")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("needs setpriv (util-linux) to switch users and drop capabilities")
    as_nobody = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    without_ptrace = [setpriv, "--inh-caps=-sys_ptrace", "--bounding-set=-sys_ptrace"]
    sample_env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LC_ALL": "C.UTF-8",
                  "PYTHONDONTWRITEBYTECODE": "1"}
    if not SYSTEM_PYTHON.is_file():
        pytest.skip(f"needs the system interpreter {SYSTEM_PYTHON} to run the target as nobody")
    try:
        probe = subprocess.run(
            [*as_nobody, str(SYSTEM_PYTHON), "-c", "import sys, threading; open(sys.argv[1]).close()",
             str(SAMPLE_PATH)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=PROBE_WAIT,
            env=sample_env, cwd="/")
        problem = probe.returncode != 0 and (probe.stderr.strip().splitlines() or ["no output"])[-1]
    except (OSError, subprocess.TimeoutExpired) as error:
        problem = str(error)
    if problem:
        pytest.skip(f"user nobody (uid {NOBODY}) cannot run {SYSTEM_PYTHON} on {SAMPLE_PATH} "
                    f"({problem})")

    workdir = Path(tempfile.mkdtemp(prefix="threaddoc-nobody-", dir="/tmp"))
    process: subprocess.Popen[bytes] | None = None
    try:
        workdir.chmod(0o777)  # the sample, as nobody, writes its ready file here
        ready = workdir / "ready"
        stderr_path = workdir / "sample.stderr"
        with open(stderr_path, "wb") as stderr:
            process = subprocess.Popen(
                [*as_nobody, str(SYSTEM_PYTHON), str(SAMPLE_PATH), str(ready)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                env=sample_env, cwd=workdir, start_new_session=True)

        def sample_stderr() -> str:
            return stderr_path.read_text(errors="replace")[-2000:].strip() or "<empty stderr>"

        deadline = time.monotonic() + READY_WAIT
        while not ready.exists():
            if process.poll() is not None:
                pytest.fail(f"{SAMPLE} as nobody under {SYSTEM_PYTHON} exited with status "
                            f"{process.returncode} before it was ready; its stderr:\n{sample_stderr()}",
                            pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"{SAMPLE} as nobody under {SYSTEM_PYTHON} was not ready within "
                            f"{READY_WAIT:g}s; its stderr:\n{sample_stderr()}", pytrace=False)
            time.sleep(0.02)
        owner = os.stat(f"/proc/{process.pid}").st_uid
        assert owner == NOBODY, f"the sample (pid {process.pid}) runs as uid {owner}, not nobody"

        run = threaddoc(["diagnose", str(process.pid)], prefix=without_ptrace, env=threaddoc_env())
        assert process.poll() is None, (
            f"the sample exited during the test: the case proved nothing\n{run.describe()}")
    finally:
        if process is not None:
            if process.returncode is None:  # not reaped, so the group id cannot have been reused
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=WAIT)
        shutil.rmtree(workdir, ignore_errors=True)
    line = assert_one_line_error(run, EXIT_CANNOT_INSPECT)
    assert any(word in line for word in ("root", "CAP_SYS_PTRACE", "ptrace_scope")), line

"""Fixtures for the integration tests.

Everything here touches the real machine:

* `python_interpreter` finds CPython 3.8 ... 3.13 under pyenv (with
  tests/pythons.py) and parametrizes a test over the six minors.  A missing
  interpreter is a skip, unless THREADDOC_REQUIRE_ALL_PYTHONS=1 (set by CI):
  then it is a failure.
* `sample_runner` starts one of hung_samples/ with `threaddoc.demo.running_program`
  (its own process group, wait for its "ready" file, always kill the whole group
  by PID afterwards) and turns a sample that never gets ready into a test failure.
* `run_threaddoc` runs `python -m threaddoc ...` as a subprocess, exactly as a
  user would, with a timeout.
* `diagnose_sample` runs a sample under an interpreter, diagnoses it once as
  text and once as JSON, stops the sample, and caches the outcome for the
  session, so that many small tests can check one real diagnosis.
* Every JSON report is validated against the schema the package ships
  (`threaddoc.schema.load_schema()`).
* `assert_clean_run` and `assert_real_tid` are assertions the sample tests share.

Every subprocess started here has a timeout, and every process started here is
stopped by its PID (never by name).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import psutil
import pytest
from pythons import MINORS, Interpreters, discover_interpreters

from threaddoc.demo import READY_TIMEOUT, running_program
from threaddoc.errors import TargetError
from threaddoc.schema import load_schema

REQUIRE_ALL_PYTHONS = os.environ.get("THREADDOC_REQUIRE_ALL_PYTHONS") == "1"


def pytest_configure(config: pytest.Config) -> None:
    """A shell without job control starts a background command (`.ci/run &`) with SIGINT and
    SIGQUIT ignored, and every program the tests start would inherit that. threaddoc rightly
    leaves a signal its caller ignored ignored, so its Ctrl-C and Ctrl-\\ tests would fail for the
    way pytest was started. Not ignored here, the programs the tests start get them at their
    default, as from a terminal."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGQUIT) == signal.SIG_IGN:
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "hung_samples"

THREADDOC_TIMEOUT = 60.0  # seconds for one `threaddoc diagnose`


# --------------------------------------------------------------------------- interpreters


@pytest.fixture(scope="session")
def interpreters() -> Interpreters:
    return discover_interpreters()


@pytest.fixture(scope="session", params=MINORS, ids=[f"py{minor}" for minor in MINORS])
def python_interpreter(request: pytest.FixtureRequest, interpreters: Interpreters) -> Path:
    """The python executable of one CPython minor; skip (or fail in CI) when absent."""
    minor = request.param
    if minor in interpreters.found:
        return interpreters.found[minor]
    reason = f"CPython {minor} is not available: {interpreters.missing[minor]}"
    if REQUIRE_ALL_PYTHONS:
        pytest.fail(f"{reason} (THREADDOC_REQUIRE_ALL_PYTHONS=1 requires all of "
                    f"{', '.join(MINORS)})", pytrace=False)
    pytest.skip(f"{reason}; install it with `pyenv install {minor}`")


# --------------------------------------------------------------------------- processes


@contextmanager
def running_sample(python: Path | str, sample: str,
                   ready_timeout: float = READY_TIMEOUT) -> Iterator[subprocess.Popen[bytes]]:
    """Run hung_samples/<sample> under `python` until it is ready; kill its group on exit.

    `threaddoc.demo.running_program` does the work; a sample that exits early or
    never gets ready fails the test with threaddoc's message (which quotes the
    sample's last line on stderr).
    """
    script = SAMPLES / sample
    assert script.is_file(), f"missing sample {script}"
    with ExitStack() as stack:
        try:
            process = stack.enter_context(running_program(script, str(python), ready_timeout))
        except TargetError as error:
            pytest.fail(f"{sample} under {python} did not get ready: {error.one_line()}",
                        pytrace=False)
        yield process
    if process.returncode is None:
        pytest.fail(f"{sample} under {python} (pid {process.pid}) survived SIGKILL", pytrace=False)


def sample_ready_file(process: subprocess.Popen[bytes]) -> Path:
    """The ready file `running_program` handed the sample: its last argument, in its working directory."""
    ready = Path(str(process.args[-1]))  # type: ignore[index]
    assert ready.name == "ready", f"the sample was not started with a ready file: {process.args!r}"
    return ready


def sample_written_pids(process: subprocess.Popen[bytes]) -> list[int]:
    """The PIDs a sample wrote to `<ready file>.pids` (one a line) before it got ready."""
    path = sample_ready_file(process).with_name("ready.pids")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        pytest.fail(f"sample pid {process.pid} wrote no {path}: {error}", pytrace=False)
    lines = text.split()
    assert lines and all(line.isdigit() for line in lines), f"{path} holds no PIDs: {text!r}"
    return [int(line) for line in lines]


@pytest.fixture
def sample_runner() -> Callable[..., Any]:
    """`with sample_runner(sample, python=..., ready_timeout=...) as process:`."""

    def start(sample: str, python: Path | str = sys.executable, ready_timeout: float = READY_TIMEOUT) -> Any:
        return running_sample(python, sample, ready_timeout)

    return start


# --------------------------------------------------------------------------- threaddoc


@dataclass(frozen=True)
class Run:
    """One finished `python -m threaddoc ...`."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def first_line(self) -> str:
        return self.stdout.splitlines()[0] if self.stdout else ""

    def describe(self) -> str:
        return (f"`threaddoc {' '.join(self.args)}` exited {self.returncode} after "
                f"{self.seconds:.1f}s\n--- stdout ---\n{self.stdout[:4000]}\n"
                f"--- stderr ---\n{self.stderr[:4000]}")


def threaddoc_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("THREADDOC_DEBUG", None)  # users get one line, not a traceback
    env.pop("FORCE_COLOR", None)
    env["NO_COLOR"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


def run_threaddoc(args: Sequence[str], *, timeout: float = THREADDOC_TIMEOUT,
                  prefix: Sequence[str] = (), **popen_kwargs: Any) -> Run:
    """Run `sys.executable -m threaddoc ARGS` (the venv threaddoc is installed in).

    `prefix` is a command that runs it, e.g. `setpriv ...` to change its privileges.
    """
    command = [*prefix, sys.executable, "-m", "threaddoc", *args]
    popen_kwargs.setdefault("env", threaddoc_env())
    started = time.monotonic()
    try:
        completed = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                                   text=True, errors="replace", timeout=timeout, **popen_kwargs)
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"`threaddoc {' '.join(args)}` did not finish within {timeout:g}s "
                    f"(stderr so far: {expired.stderr!r})", pytrace=False)
    return Run(tuple(args), completed.returncode, completed.stdout, completed.stderr,
               time.monotonic() - started)


def real_py_spy() -> str:
    """The py-spy the tests' threaddoc uses: for wrappers that pass some calls through to it."""
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        pytest.fail("py-spy is not installed beside the test interpreter nor on PATH")
    return found


@pytest.fixture(scope="session")
def threaddoc() -> Callable[..., Run]:
    """The `run_threaddoc` function, for tests."""
    return run_threaddoc


@pytest.fixture(scope="session", name="threaddoc_env")
def threaddoc_env_fixture() -> Callable[..., dict[str, str]]:
    """The `threaddoc_env` function: the environment threaddoc runs with, plus extras."""
    return threaddoc_env


# --------------------------------------------------------------------------- JSON reports


def validate_report(report: Any, where: str) -> None:
    """Fail the test unless `report` matches the schema threaddoc ships."""
    import jsonschema  # the `test` extra; a missing package is a real failure here

    schema = load_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(report), key=lambda e: list(e.path))
    if errors:
        listed = "\n".join(f"  at /{'/'.join(map(str, error.path))}: {error.message[:300]}"
                           for error in errors[:20])
        pytest.fail(f"{where}: the JSON report does not match threaddoc's report schema "
                    f"(threaddoc.schema.load_schema()):\n{listed}", pytrace=False)


@pytest.fixture(scope="session")
def validate_json_report() -> Callable[[Any, str], None]:
    """`validate_report`, for tests."""
    return validate_report


def parse_report(run: Run) -> dict[str, Any]:
    """The JSON report printed by `run`, validated against the schema."""
    try:
        report = json.loads(run.stdout)
    except ValueError as error:
        pytest.fail(f"stdout is not JSON ({error}):\n{run.describe()}", pytrace=False)
    assert isinstance(report, dict), f"the report is not a JSON object:\n{run.describe()}"
    validate_report(report, f"threaddoc {' '.join(run.args)}")
    return report


# --------------------------------------------------------------------------- diagnoses


@dataclass
class SampleDiagnosis:
    """A sample diagnosed once as text and once as JSON while it hung."""

    python: Path
    sample: str
    pid: int
    tids: frozenset[int]          # the sample's threads (/proc/PID/task) while it hung
    text: Run
    json: Run
    _report: dict[str, Any] | None = field(default=None, repr=False)
    children: frozenset[int] = frozenset()  # its child processes (all generations) while it hung
    connections: tuple[Any, ...] = ()  # its TCP/UDP sockets (psutil's pconn) while it hung

    @property
    def report(self) -> dict[str, Any]:
        if self._report is None:
            self._report = parse_report(self.json)
        return self._report

    @property
    def source_lines(self) -> list[str]:
        return (SAMPLES / self.sample).read_text(encoding="utf-8").splitlines()

    def threads(self) -> dict[str, dict[str, Any]]:
        """The report's threads by name (names in the samples are unique)."""
        return {thread["name"]: thread for thread in self.report["threads"]}

    def findings(self, kind: str) -> list[dict[str, Any]]:
        return [finding for finding in self.report["findings"] if finding["kind"] == kind]

    def context(self) -> str:
        return (f"{self.sample} under {self.python} (pid {self.pid})\n"
                f"{self.text.describe()}\n{self.json.describe()}")


def inet_connections(pid: int) -> tuple[Any, ...]:
    """The TCP/UDP sockets of process `pid`: psutil's (fd, family, type, laddr, raddr, status)."""
    process = psutil.Process(pid)
    list_connections = getattr(process, "net_connections", None) or process.connections  # psutil < 6
    return tuple(list_connections(kind="inet"))


@pytest.fixture(scope="session")
def diagnose_sample() -> Callable[[Path, str], SampleDiagnosis]:
    """`diagnose_sample(python, sample)`: the cached diagnosis of that sample under that python."""
    cache: dict[tuple[Path, str], SampleDiagnosis] = {}

    def diagnose(python: Path, sample: str) -> SampleDiagnosis:
        key = (python, sample)
        if key not in cache:
            with running_sample(python, sample) as process:
                tids = frozenset(int(tid) for tid in os.listdir(f"/proc/{process.pid}/task"))
                children = frozenset(child.pid for child in
                                     psutil.Process(process.pid).children(recursive=True))
                connections = inet_connections(process.pid)
                text = run_threaddoc(["diagnose", str(process.pid), "--no-color"])
                as_json = run_threaddoc(["diagnose", str(process.pid), "--json"])
                alive = process.poll() is None
            assert alive, f"{sample} died while it was being diagnosed:\n{text.describe()}"
            cache[key] = SampleDiagnosis(python, sample, process.pid, tids, text, as_json,
                                         children=children, connections=connections)
        return cache[key]

    return diagnose


# --------------------------------------------------------------------------- shared assertions

ANSI = re.compile(r"\x1b\[")


def assert_clean_run(diagnosis: SampleDiagnosis, expected_status: int) -> None:
    """Both runs exit with `expected_status`, print a report, and print no traceback."""
    for run in (diagnosis.text, diagnosis.json):
        assert run.returncode == expected_status, (
            f"expected exit status {expected_status}\n{diagnosis.context()}")
        assert run.stdout.strip(), f"no report on stdout\n{diagnosis.context()}"
        assert "Traceback" not in run.stderr, diagnosis.context()
    assert not ANSI.search(diagnosis.text.stdout), (
        f"--no-color output holds escape sequences\n{diagnosis.context()}")


def assert_real_tid(diagnosis: SampleDiagnosis, thread: dict[str, Any], what: str) -> None:
    assert thread["os_thread_id"] in diagnosis.tids, (
        f"{what}: os_thread_id {thread['os_thread_id']} is not a thread of pid {diagnosis.pid} "
        f"({sorted(diagnosis.tids)})")

"""Fixtures for the integration tests.

Everything here touches the real machine:

* `python_interpreter` finds CPython 3.8 ... 3.13 under pyenv and parametrizes
  a test over the six minors.  A missing interpreter is a skip, unless
  THREADDOC_REQUIRE_ALL_PYTHONS=1 (set by CI): then it is a failure.
* `running_sample` starts one of hung_samples/ in its own process group, waits
  for its "ready" file and always kills the whole group by PID afterwards.
* `run_threaddoc` runs `python -m threaddoc ...` as a subprocess, exactly as a
  user would, with a timeout.
* `diagnose_sample` runs a sample under an interpreter, diagnoses it once as
  text and once as JSON, stops the sample, and caches the outcome for the
  session, so that many small tests can check one real diagnosis.

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
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

MINORS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13")
REQUIRE_ALL_PYTHONS = os.environ.get("THREADDOC_REQUIRE_ALL_PYTHONS") == "1"

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "hung_samples"
SCHEMA_PATH = REPO / "src" / "threaddoc" / "schema" / "report-v1.json"

# The JSON Schema of the report is being written separately.  While it does not
# exist, reports are not validated (and `test_json_report_matches_schema` says so
# by skipping).  Set this to True once the schema is in the repository: a missing
# schema then fails the suite instead of skipping.
SCHEMA_MANDATORY = False

READY_TIMEOUT = 30.0      # seconds for a sample to write its ready file
THREADDOC_TIMEOUT = 60.0  # seconds for one `threaddoc diagnose`
KILL_TIMEOUT = 10.0       # seconds to reap a killed process
PYENV_TIMEOUT = 15.0      # seconds for `pyenv root` / `python -c ...`


# --------------------------------------------------------------------------- interpreters


@dataclass(frozen=True)
class Interpreters:
    """What discovery found: minor -> python executable, and why a minor is missing."""

    root: Path
    found: dict[str, Path]
    missing: dict[str, str]


def pyenv_root() -> Path:
    """`pyenv root` if pyenv is on PATH, else $PYENV_ROOT, else ~/.pyenv."""
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            completed = subprocess.run([pyenv, "root"], stdin=subprocess.DEVNULL,
                                       capture_output=True, text=True, timeout=PYENV_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired):
            completed = None
        if completed is not None and completed.returncode == 0 and completed.stdout.strip():
            return Path(completed.stdout.strip())
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    return Path.home() / ".pyenv"


def discover_interpreters() -> Interpreters:
    """versions/<X.Y.Z>/bin/python under the pyenv root, highest patch per minor.

    A candidate must also run and report the version its directory claims.
    """
    root = pyenv_root()
    versions = root / "versions"
    candidates: dict[str, list[tuple[int, Path]]] = {}
    if versions.is_dir():
        for entry in versions.iterdir():
            matched = re.fullmatch(r"(3\.\d+)\.(\d+)", entry.name)
            if not matched or matched.group(1) not in MINORS:
                continue
            python = entry / "bin" / "python"
            if python.is_file() and os.access(python, os.X_OK):
                candidates.setdefault(matched.group(1), []).append((int(matched.group(2)), python))

    found: dict[str, Path] = {}
    missing: dict[str, str] = {}
    for minor in MINORS:
        if minor not in candidates:
            missing[minor] = f"no CPython {minor}.x at {versions}/{minor}.*/bin/python"
            continue
        patch, python = max(candidates[minor])
        problem = _check_runs(python, f"{minor}.{patch}")
        if problem:
            missing[minor] = problem
        else:
            found[minor] = python
    return Interpreters(root=root, found=found, missing=missing)


def _check_runs(python: Path, version: str) -> str | None:
    try:
        completed = subprocess.run(
            [str(python), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=PYENV_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{python} does not run: {error}"
    if completed.returncode != 0 or completed.stdout.strip() != version:
        return (f"{python} does not run as CPython {version} (exit {completed.returncode}, "
                f"printed {completed.stdout.strip()!r}, {completed.stderr.strip()[-200:]!r})")
    return None


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


def stop_process_group(process: subprocess.Popen[Any]) -> None:
    """SIGKILL the process group led by `process` (started with start_new_session) and reap it."""
    if process.returncode is None:
        # Not reaped yet, so its PID (the group id) cannot have been reused.
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    try:
        process.wait(timeout=KILL_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"process {process.pid} ({process.args!r}) survived SIGKILL "
                           f"for {KILL_TIMEOUT:g}s") from None


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "<no stderr>"
    return text[-limit:].strip() or "<empty stderr>"


@contextmanager
def running_sample(python: Path | str, sample: str, workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run hung_samples/<sample> under `python` until it is ready; kill its group on exit."""
    script = SAMPLES / sample
    assert script.is_file(), f"missing sample {script}"
    workdir.mkdir(parents=True, exist_ok=True)
    ready = workdir / "ready"
    stderr_path = workdir / "sample.stderr"
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            [str(python), str(script), str(ready)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=workdir,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not (ready.exists() and ready.read_text() == "ready"):
            status = process.poll()
            if status is not None:
                pytest.fail(f"{sample} under {python} exited with status {status} before it "
                            f"was ready; its stderr:\n{_tail(stderr_path)}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"{sample} under {python} was not ready within {READY_TIMEOUT:g}s; "
                            f"its stderr:\n{_tail(stderr_path)}", pytrace=False)
            time.sleep(0.02)
        yield process
    finally:
        stop_process_group(process)


@pytest.fixture
def sample_runner(tmp_path: Path) -> Callable[..., Any]:
    """`with sample_runner(sample, python=...) as process:` in a fresh directory."""
    counter = iter(range(1_000_000))

    def start(sample: str, python: Path | str = sys.executable) -> Any:
        return running_sample(python, sample, tmp_path / f"sample-{next(counter)}")

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
                  **popen_kwargs: Any) -> Run:
    """Run `sys.executable -m threaddoc ARGS` (the venv threaddoc is installed in)."""
    command = [sys.executable, "-m", "threaddoc", *args]
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


@pytest.fixture(scope="session")
def threaddoc() -> Callable[..., Run]:
    """The `run_threaddoc` function, for tests."""
    return run_threaddoc


@pytest.fixture(scope="session", name="threaddoc_env")
def threaddoc_env_fixture() -> Callable[..., dict[str, str]]:
    """The `threaddoc_env` function: the environment threaddoc runs with, plus extras."""
    return threaddoc_env


# --------------------------------------------------------------------------- JSON reports


def _load_schema() -> dict[str, Any] | None:
    if not SCHEMA_PATH.is_file():
        if SCHEMA_MANDATORY:
            pytest.fail(f"the report schema {SCHEMA_PATH} is missing", pytrace=False)
        return None
    with open(SCHEMA_PATH, encoding="utf-8") as handle:
        return json.load(handle)  # type: ignore[no-any-return]


def validate_report(report: Any, where: str) -> bool:
    """Validate a report against report-v1.json; False when there is no schema (yet)."""
    schema = _load_schema()
    if schema is None:
        return False
    import jsonschema  # the `test` extra; a missing package is a real failure here

    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(report), key=lambda e: list(e.path))
    if errors:
        listed = "\n".join(f"  at /{'/'.join(map(str, error.path))}: {error.message[:300]}"
                           for error in errors[:20])
        pytest.fail(f"{where}: the JSON report does not match {SCHEMA_PATH.name}:\n{listed}",
                    pytrace=False)
    return True


@pytest.fixture(scope="session")
def validate_json_report() -> Callable[[Any, str], bool]:
    """`validate_report`, for tests: True if validated, False if there is no schema yet."""
    return validate_report


def parse_report(run: Run) -> dict[str, Any]:
    """The JSON report printed by `run`, validated against the schema when it exists."""
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


@pytest.fixture(scope="session")
def diagnose_sample(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path, str], SampleDiagnosis]:
    """`diagnose_sample(python, sample)`: the cached diagnosis of that sample under that python."""
    cache: dict[tuple[Path, str], SampleDiagnosis] = {}

    def diagnose(python: Path, sample: str) -> SampleDiagnosis:
        key = (python, sample)
        if key not in cache:
            workdir = tmp_path_factory.mktemp(f"{Path(sample).stem}-{python.parent.parent.name}")
            with running_sample(python, sample, workdir) as process:
                tids = frozenset(int(tid) for tid in os.listdir(f"/proc/{process.pid}/task"))
                text = run_threaddoc(["diagnose", str(process.pid), "--no-color"])
                as_json = run_threaddoc(["diagnose", str(process.pid), "--json"])
                alive = process.poll() is None
            assert alive, f"{sample} died while it was being diagnosed:\n{text.describe()}"
            cache[key] = SampleDiagnosis(python, sample, process.pid, tids, text, as_json)
        return cache[key]

    return diagnose

"""Capture the saved text dumps the unit tests of `threaddoc diagnose --from` run on.

    python tests/tools/capture_saved.py                          # everything
    python tests/tools/capture_saved.py lock_order_deadlock --python 3.11
    python tests/tools/capture_saved.py --derived-only           # rebuild tests/captures/logs/

Every hung sample is started under CPython 3.8, 3.11 and 3.13 (pyenv), and from one and
the same process, once it is hung, come: a threaddoc recording (the live ground truth),
py-spy's JSON dump, and the traceback faulthandler prints when the process gets SIGABRT.
Written to tests/captures/<sample>/py<X.Y>/{recording.json,pyspy.json,faulthandler.txt}.

A few deadlock samples are also captured (3.8 and 3.11) the other ways users save dumps,
each in a subfolder with its own recording and py-spy dump of that process:
  register/        faulthandler.register(SIGUSR1, all_threads=True), signalled twice
  later/           faulthandler.dump_traceback_later(N, exit=True)
  pytest-thread/   a pytest test running the sample under pytest-timeout, method thread
  pytest-signal/   the same with timeout_method=signal (one sample)
Programs in tests/tools/edge_programs/ (3.11 and 3.13) reach faulthandler's limits and
its escapes: a stack deeper than 100 frames (also under pytest-timeout, which folds a
recursion into "[Previous line repeated N more times]"), more than 100 threads, a file
name with non-ASCII letters; saved to tests/captures/edge-<program>/py<X.Y>/.
Finally tests/captures/logs/ is rebuilt from those real captures: a dump inside a CI log
with a timestamp on every line, a pytest-timeout log with a worker prefix, a log cut off
in the middle of a dump.  See tests/captures/README.md.

Every process started here is killed by its process group when the capture is done or
fails, and waited for.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

TOOLS = Path(__file__).resolve().parent
TESTS = TOOLS.parent
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TOOLS))

from pythons import interpreters
from record_samples import HUNG_SAMPLES, WITH_CHILDREN

from threaddoc.collect import collect
from threaddoc.collect.pyspy import find_py_spy
from threaddoc.demo import sample_path
from threaddoc.pipeline import DEFAULT_INTERVAL, DEFAULT_SAMPLES

CAPTURES = TESTS / "captures"
LOGS = CAPTURES / "logs"
PYTHONS = ("3.8", "3.11", "3.13")
# Deadlocks whose hang happens inside main() (not at interpreter exit), so that a pytest
# test running them hangs inside the test, where pytest-timeout fires.
VARIANT_SAMPLES = ("lock_order_deadlock", "bank_transfer_deadlock", "nested_submit_starvation",
                   "threads_join_each_other")
VARIANT_PYTHONS = ("3.8", "3.11")
SIGNAL_METHOD_SAMPLE = "lock_order_deadlock"
EDGE_PROGRAMS = TOOLS / "edge_programs"
EDGES = ("deep_recursion", "many_threads", "non_ascii_path")
EDGE_PYTHONS = ("3.11", "3.13")
NON_ASCII_NAME = "caisse_café_€.py"

READY_PLACEHOLDER = "@READY@"
READY_TIMEOUT = 60.0
PY_SPY_TIMEOUT = 30.0
EXIT_TIMEOUT = 30.0
# dump_traceback_later and pytest-timeout must fire only after the recording is taken:
# starting, getting hung and being recorded takes a few seconds on a loaded machine.
LATER_SECONDS = 12
PYTEST_TIMEOUT_SECONDS = 20

# The -c wrappers: set faulthandler up, then run the sample as __main__ with the ready path.
_WRAPPER = """\
import faulthandler, os, runpy, signal, sys
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(script))
{setup}
runpy.run_path(script, run_name="__main__")
"""
REGISTER_SETUP = "faulthandler.register(signal.SIGUSR1, all_threads=True)"
LATER_SETUP = f"faulthandler.dump_traceback_later({LATER_SECONDS}, exit=True)"

# The pytest test: run the sample's __main__ with the ready path, inside a test.
_PYTEST_TEST = """\
import os, runpy, sys

SAMPLE = {sample!r}
READY = {ready!r}


def test_{name}():
    sys.path.insert(0, os.path.dirname(SAMPLE))
    sys.argv = [SAMPLE, READY]
    runpy.run_path(SAMPLE, run_name="__main__")
"""


@dataclass(frozen=True)
class Capture:
    """What to start, where to save it, and how to make it print its dump."""

    command: list[str]  # READY_PLACEHOLDER stands for the ready file's path
    directory: Path
    text_name: str
    trigger: Callable[[subprocess.Popen[bytes], Path], None]
    all_children: bool = False
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    # Files to write before starting (a generated test), READY_PLACEHOLDER replaced too.
    files: dict[Path, str] = field(default_factory=dict)
    # The dump must not appear before the recording is taken (a timer that fires on its own).
    fires_by_itself: bool = False


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("samples", nargs="*",
                        help="sample names, or edge-<program> (default: all hung samples and edges)")
    parser.add_argument("--python", action="append", help="minor version(s), e.g. 3.11")
    parser.add_argument("--derived-only", action="store_true",
                        help="only rebuild tests/captures/logs/ from the captures present")
    parser.add_argument("--no-variants", action="store_true",
                        help="only the SIGABRT captures, not the register/later/pytest ones")
    options = parser.parse_args()
    if not options.derived_only:
        available = interpreters()
        minors = options.python or list(PYTHONS)
        missing = [minor for minor in minors if minor not in available]
        if missing:
            raise SystemExit(f"no CPython {', '.join(missing)} from pyenv on this machine")
        names = options.samples or [*HUNG_SAMPLES, *(f"edge-{edge}" for edge in EDGES)]
        samples = [name for name in names if not name.startswith("edge-")]
        edges = [name.removeprefix("edge-") for name in names if name.startswith("edge-")]
        with tempfile.TemporaryDirectory(prefix="threaddoc-capture-") as scratch:
            for minor in minors:
                capture_python(minor, available[minor], samples, edges, not options.no_variants,
                               Path(scratch))
    derive_logs()


def capture_python(minor: str, python: Path, samples: list[str], edges: list[str], variants: bool,
                   scratch: Path) -> None:
    for sample in samples:
        capture_abort(sample, minor, python, scratch)
    if minor in VARIANT_PYTHONS and variants:
        for sample in (name for name in VARIANT_SAMPLES if name in samples):
            capture_variants(sample, minor, python, scratch)
    if minor in EDGE_PYTHONS:
        for edge in edges:
            capture_edge(edge, minor, python, scratch)
        if edges:
            capture_short_texts(minor, python)


# --- The captures ----------------------------------------------------------------------------


def capture_abort(sample: str, minor: str, python: Path, scratch: Path) -> None:
    """SIGABRT under PYTHONFAULTHANDLER=1: the dump a crashed or killed process leaves."""
    capture = Capture(
        command=[str(python), str(sample_path(f"{sample}.py")), READY_PLACEHOLDER],
        directory=CAPTURES / sample / f"py{minor}",
        text_name="faulthandler.txt",
        trigger=_abort,
        all_children=sample in WITH_CHILDREN,
        env={"PYTHONFAULTHANDLER": "1"},
    )
    run_capture(capture, scratch)


def capture_variants(sample: str, minor: str, python: Path, scratch: Path) -> None:
    script = str(sample_path(f"{sample}.py"))
    base = CAPTURES / sample / f"py{minor}"
    for folder, setup, text_name, trigger in (
        ("register", REGISTER_SETUP, "faulthandler-register.txt", _signal_twice),
        ("later", LATER_SETUP, "faulthandler-later.txt", _wait_for_exit),
    ):
        run_capture(Capture(command=[str(python), "-c", _WRAPPER.format(setup=setup), script,
                                     READY_PLACEHOLDER],
                            directory=base / folder, text_name=text_name, trigger=trigger,
                            fires_by_itself=trigger is _wait_for_exit), scratch)
    methods = ("thread", "signal") if sample == SIGNAL_METHOD_SAMPLE else ("thread",)
    for method in methods:
        capture_pytest(Path(script), base / f"pytest-{method}", method, minor, python, scratch)


def capture_pytest(script: Path, directory: Path, method: str, minor: str, python: Path, scratch: Path,
                   env: dict[str, str] | None = None) -> None:
    """The sample inside a pytest test that pytest-timeout stops: the whole output is the log."""
    pytest_python = _pytest_venv(python, scratch / f"venv-{minor}")
    workdir = scratch / f"pytest-{script.stem}-{minor}-{method}"
    test_file = workdir / f"test_{script.stem}.py"
    run_capture(Capture(
        command=[str(pytest_python), "-m", "pytest", "-p", "timeout",
                 f"--timeout={PYTEST_TIMEOUT_SECONDS}", "-o", f"timeout_method={method}",
                 "-p", "no:cacheprovider", test_file.name],
        directory=directory, text_name="pytest-timeout.log",
        trigger=_wait_for_exit if method == "thread" else _wait_for_pytest_summary,
        cwd=workdir, fires_by_itself=True, env=env or {},
        files={test_file: _PYTEST_TEST.format(sample=str(script), ready=READY_PLACEHOLDER,
                                              name=script.stem)},
    ), scratch)


def capture_edge(edge: str, minor: str, python: Path, scratch: Path) -> None:
    """An edge program under SIGABRT; the deep recursion also under pytest-timeout."""
    script = EDGE_PROGRAMS / f"{edge}.py"
    if edge == "non_ascii_path":
        renamed = scratch / "kassé" / NON_ASCII_NAME
        renamed.parent.mkdir(parents=True, exist_ok=True)
        renamed.write_bytes(script.read_bytes())
        script = renamed
    env = {"THREADDOC_HUNG_SAMPLES": str(sample_path("_ready.py").parent)}
    directory = CAPTURES / f"edge-{edge}" / f"py{minor}"
    run_capture(Capture(command=[str(python), str(script), READY_PLACEHOLDER], directory=directory,
                        text_name="faulthandler.txt", trigger=_abort,
                        env={**env, "PYTHONFAULTHANDLER": "1"}), scratch)
    if edge == "deep_recursion":
        capture_pytest(script, directory / "pytest-thread", "thread", minor, python, scratch, env)


def run_capture(capture: Capture, scratch: Path) -> None:
    """Start, wait until hung, record, dump with py-spy, make it print its dump; clean up."""
    capture.directory.mkdir(parents=True, exist_ok=True)
    ready = scratch / f"ready-{time.monotonic_ns()}"
    for path, text in capture.files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace(READY_PLACEHOLDER, str(ready)), encoding="utf-8")
    output = scratch / "output.txt"
    with output.open("wb") as sink, _started(capture, ready, sink) as process:
        _wait_until_ready(process, ready, output)
        recording = collect(process.pid, samples=DEFAULT_SAMPLES, interval=DEFAULT_INTERVAL,
                            all_children=capture.all_children)
        pyspy = _pyspy_dump(process.pid)
        if capture.fires_by_itself and (process.poll() is not None or _has_dump(output)):
            raise RuntimeError(f"{capture.directory}: the dump fired before the recording was taken; "
                               "raise LATER_SECONDS / PYTEST_TIMEOUT_SECONDS")
        capture.trigger(process, output)
    (capture.directory / "recording.json").write_text(recording.to_json(), encoding="utf-8")
    (capture.directory / "pyspy.json").write_text(json.dumps(pyspy, indent=1) + "\n", encoding="utf-8")
    (capture.directory / capture.text_name).write_bytes(output.read_bytes())
    print(capture.directory / capture.text_name, flush=True)


@contextmanager
def _started(capture: Capture, ready: Path, sink: IO[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """The program in a session of its own, stdout and stderr to `sink`, no core dumps;
    its whole process group is killed on the way out, whatever happened."""
    command = [part.replace(READY_PLACEHOLDER, str(ready)) for part in capture.command]
    # Only the captures that ask for it run with faulthandler enabled from the start.
    env = {name: value for name, value in os.environ.items() if name != "PYTHONFAULTHANDLER"}
    env.update(capture.env)
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink,
                               start_new_session=True, cwd=capture.cwd or ready.parent, env=env,
                               preexec_fn=_no_core_dumps)
    try:
        yield process
    finally:
        _kill_group(process)


def _no_core_dumps() -> None:
    # SIGABRT would otherwise leave a core file wherever the kernel's core_pattern says.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    # The group outlives its leader (pool workers, forked children): kill it by its id.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=EXIT_TIMEOUT)


def _wait_until_ready(process: subprocess.Popen[bytes], ready: Path, output: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not ready.exists():
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited ({process.returncode}) before it was ready:\n"
                               + output.read_text(errors="replace")[-2000:])
        if time.monotonic() > deadline:
            raise RuntimeError(f"{process.args!r} was not ready within {READY_TIMEOUT:g}s")
        time.sleep(0.02)


def _pyspy_dump(pid: int) -> list[dict[str, Any]]:
    completed = subprocess.run([find_py_spy(), "dump", "--pid", str(pid), "--json", "--locals"],
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=PY_SPY_TIMEOUT,
                               check=True)
    parsed: list[dict[str, Any]] = json.loads(completed.stdout)
    return parsed


def _has_dump(output: Path) -> bool:
    text = output.read_text(errors="replace")
    return "most recent call first" in text or "+ Timeout +" in text


# --- Making the process print its dump ---------------------------------------------------------


def _abort(process: subprocess.Popen[bytes], output: Path) -> None:
    """faulthandler prints every thread, then re-raises SIGABRT: the process dies."""
    os.kill(process.pid, signal.SIGABRT)
    process.wait(timeout=EXIT_TIMEOUT)


def _signal_twice(process: subprocess.Popen[bytes], output: Path) -> None:
    """Two dumps in one file, as when someone signals a hung service again to compare."""
    for _ in range(2):
        before = output.stat().st_size
        os.kill(process.pid, signal.SIGUSR1)
        _wait_until(functools.partial(_settled, output, before), f"{process.args!r} to dump")


def _wait_for_exit(process: subprocess.Popen[bytes], output: Path) -> None:
    """dump_traceback_later(exit=True) and pytest-timeout's thread method end the process."""
    process.wait(timeout=max(LATER_SECONDS, PYTEST_TIMEOUT_SECONDS) + EXIT_TIMEOUT)


def _wait_for_pytest_summary(process: subprocess.Popen[bytes], output: Path) -> None:
    """With the signal method pytest fails the test and goes on; the sample's threads then
    keep the interpreter from exiting, so the run ends at pytest's summary line."""
    _wait_until(lambda: _PYTEST_SUMMARY.search(output.read_text(errors="replace")) is not None,
                "pytest's summary", limit=PYTEST_TIMEOUT_SECONDS + EXIT_TIMEOUT)
    time.sleep(0.5)


_PYTEST_SUMMARY = re.compile(r"^=+ .*\bfailed\b.* in [\d.]+s", re.MULTILINE)


def _settled(output: Path, before: int) -> bool:
    """The file grew and has not grown for a moment: the signal handler has finished writing."""
    size = output.stat().st_size
    if size <= before:
        return False
    time.sleep(0.3)
    return output.stat().st_size == size


def _wait_until(condition: Callable[[], bool], what: str, limit: float = EXIT_TIMEOUT) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what} after {limit:g}s")
        time.sleep(0.05)


def _pytest_venv(python: Path, directory: Path) -> Path:
    """A throwaway venv of that interpreter with pytest and pytest-timeout from the registry."""
    venv_python = directory / "bin" / "python"
    if not venv_python.exists():
        subprocess.run([str(python), "-m", "venv", str(directory)], check=True, timeout=300)
        subprocess.run([str(venv_python), "-m", "pip", "install", "--quiet", "pytest", "pytest-timeout"],
                       check=True, timeout=600)
    return venv_python


# Programs that print a dump and end by themselves (no recording: nothing is left to attach to).
SHORT_TEXTS = {
    # all_threads=False: one "Stack (most recent call first):" block without a thread id.
    "one-thread": "import faulthandler\n"
                  "def report():\n    faulthandler.dump_traceback(all_threads=False)\n"
                  "report()\n",
    # A crash: "Fatal Python error: Segmentation fault", a thread in the background.
    "segfault": "import ctypes, faulthandler, threading\nfaulthandler.enable()\n"
                "done = threading.Event()\n"
                "threading.Thread(target=done.wait, name='idle', daemon=True).start()\n"
                "def read_null():\n    return ctypes.string_at(0)\n"
                "read_null()\n",
}


def capture_short_texts(minor: str, python: Path) -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    for name, program in SHORT_TEXTS.items():
        completed = subprocess.run([str(python), "-c", program], stdin=subprocess.DEVNULL,
                                   capture_output=True, timeout=EXIT_TIMEOUT, preexec_fn=_no_core_dumps,
                                   check=False)
        target = LOGS / f"{name}-py{minor}.txt"
        target.write_bytes(completed.stderr)
        print(target, flush=True)


# --- Logs built from the real captures ---------------------------------------------------------

TIMESTAMPED_SOURCE = ("lock_order_deadlock", "py3.11", "faulthandler.txt")
PREFIXED_SOURCE = ("bank_transfer_deadlock", "py3.11", "pytest-thread", "pytest-timeout.log")
CUT_SOURCE = ("dining_philosophers", "py3.11", "faulthandler.txt")


def derive_logs() -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    timestamped = CAPTURES.joinpath(*TIMESTAMPED_SOURCE)
    if timestamped.exists():
        (LOGS / "ci-timestamped.log").write_text(ci_log(timestamped.read_text(encoding="utf-8")),
                                                 encoding="utf-8")
    prefixed = CAPTURES.joinpath(*PREFIXED_SOURCE)
    if prefixed.exists():
        lines = prefixed.read_text(encoding="utf-8").splitlines(keepends=True)
        (LOGS / "worker-prefixed-pytest.log").write_text("".join(f"[worker-3] {line}" for line in lines),
                                                         encoding="utf-8")
    cut = CAPTURES.joinpath(*CUT_SOURCE)
    if cut.exists():
        (LOGS / "cut-off.log").write_text(cut_off(cut.read_text(encoding="utf-8")), encoding="utf-8")


def ci_log(dump: str) -> str:
    """A GitHub Actions style log: a timestamp before every line, the dump among other output."""
    before = ["##[group]Run python -m service --self-test", "python -m service --self-test",
              "shell: /usr/bin/bash -e {0}", "##[endgroup]", "starting 2 tellers",
              "waiting for the tellers to finish"]
    after = ["##[error]Process completed with exit code 134.", "Post job cleanup."]
    lines = before + dump.splitlines() + after
    start = 1_796_112_000  # 2026-12-01T08:00:00Z, a fixed time so that re-capturing is reproducible
    stamped = []
    for index, line in enumerate(lines):
        seconds, fraction = divmod(start * 10_000_000 + index * 12_345_678, 10_000_000)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:07d}Z"
        stamped.append(f"{stamp} {line}\n")
    return "".join(stamped)


def cut_off(dump: str) -> str:
    """The log as a CI runner that was killed (or a log size limit) leaves it: cut in the middle
    of a line, in the middle of the second thread's stack."""
    second = dump.index("\nThread 0x", dump.index("Thread 0x") + 1)
    frames = dump.index("  File", second)
    middle = dump.index("\n", frames + 1) + len('  File "/roo')
    return "some output before the crash\n" + dump[:middle]


if __name__ == "__main__":
    main()

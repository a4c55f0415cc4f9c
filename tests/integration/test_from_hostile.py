"""`threaddoc diagnose --from FILE` with hostile or broken input, through the real executable.

* A dump whose frames name files it should not get printed: `x.py` symlinked to a
  root-only file, a symlink leading out of its directory, a FIFO and a device named
  `.py`, a file over the size limit, a root-only file named directly. Run as root,
  threaddoc prints none of them (each holds a canary), reads the file it may read, says
  which it did not, and finishes within a bound.
* Broken input (random bytes, non-UTF-8, cut and spliced captures, JSON of the wrong
  shape, control characters): a report, or one line on stderr and exit 2; never a
  traceback. (tests/unit/test_from_fuzz.py runs hundreds more in-process.)
* A file over the size limit is refused before it is read, from a path or from stdin;
  a large log that holds a dump is diagnosed within a bound.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from threaddoc.collect.saved import MAX_DUMP_BYTES
from threaddoc.collect.sources import MAX_SOURCE_BYTES, SOURCE_READ_SECONDS

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CAPTURE = REPO / "tests" / "captures" / "lock_order_deadlock" / "py3.11" / "faulthandler.txt"
SAMPLE = REPO / "hung_samples" / "lock_order_deadlock.py"
BOUND = SOURCE_READ_SECONDS + 20.0  # seconds for one diagnosis of a hostile dump
FUZZ_RUNS = 16


@pytest.fixture
def tree() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="threaddoc-from-hostile-", dir="/tmp"))
    os.chmod(directory, 0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _canary_file(path: Path, canaries: list[str], mode: int) -> Path:
    text = f"CANARY-{path.name}-{uuid.uuid4().hex[:12]}"
    canaries.append(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{text} = 1\n" * 60)  # whichever line a frame names
    os.chmod(path, mode)
    return path


def _thread_block(ident: int, filename: str) -> str:
    return f'Thread 0x{ident:016x} (most recent call first):\n  File "{filename}", line 3 in helper\n\n'


def assert_report_or_one_line(run: Any) -> None:
    assert "Traceback" not in run.stderr + run.stdout and "internal error" not in run.stderr, run.describe()
    if run.returncode == 2:
        assert run.stdout == "" and len(run.stderr.splitlines()) == 1, run.describe()
        assert run.stderr.startswith("threaddoc: "), run.describe()
        return
    assert run.returncode in (0, 1) and run.stdout.startswith(("threaddoc: ", "{")), run.describe()
    assert run.stderr == "", run.describe()
    if run.stdout.startswith("{"):
        json.loads(run.stdout)


@pytest.mark.skipif(os.geteuid() != 0, reason="the rules for root are what a hostile dump is up against")
def test_a_dump_naming_hostile_files_prints_none_of_them(threaddoc: Any, tree: Path) -> None:
    canaries: list[str] = []
    app, secret = tree / "app", tree / "secret"
    good = app / "good.py"
    app.mkdir()
    shutil.copy(SAMPLE, good)
    os.chmod(good, 0o644)
    (app / "x.py").symlink_to(_canary_file(secret / "root_only.py", canaries, 0o600))
    (app / "out.py").symlink_to(_canary_file(tree / "elsewhere" / "readable.py", canaries, 0o644))
    os.mkfifo(app / "fifo.py", 0o666)
    os.mknod(app / "zero.py", 0o666 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero's numbers
    huge = _canary_file(app / "huge.py", canaries, 0o644)
    os.truncate(huge, MAX_SOURCE_BYTES + 1)
    direct = _canary_file(secret / "direct.py", canaries, 0o600)
    hostile = [app / "x.py", app / "out.py", app / "fifo.py", app / "zero.py", huge, direct]
    # The real deadlock's dump, pointed at our copy of the sample, with a thread "in" each file.
    text = CAPTURE.read_text().replace(str(SAMPLE), str(good))
    extra = "".join(_thread_block(0x7000 + index, str(path)) for index, path in enumerate(hostile))
    dump = tree / "dump.txt"
    dump.write_text(text.replace("Current thread", extra + "Current thread", 1))

    as_text = threaddoc(["diagnose", "--from", str(dump), "--no-color"], timeout=BOUND + 30)
    as_json = threaddoc(["diagnose", "--from", str(dump), "--json"], timeout=BOUND + 30)
    for run in (as_text, as_json):
        assert run.returncode == 1 and "Traceback" not in run.stderr, run.describe()
        assert run.seconds < BOUND, run.describe()
        leaked = [canary for canary in canaries if canary in run.stdout + run.stderr]
        assert not leaked, f"{leaked}\n{run.describe()}"
    assert "with audit_lock:" in as_text.stdout, "the file it may read was not read\n" + as_text.describe()
    warnings = "\n".join(json.loads(as_json.stdout)["warnings"])
    for path in hostile:
        assert str(path) in warnings, f"no warning names {path}:\n{warnings}"
    for reason in ("leads out", "a FIFO", "character device", "larger than 2 MiB", "not every user may read"):
        assert reason in warnings, warnings


def _broken_inputs() -> list[bytes]:
    """Deterministic broken inputs: the in-process fuzz test explores; these prove the executable."""
    rng = random.Random(8)
    captures = sorted(path for path in (REPO / "tests" / "captures").rglob("*")
                      if path.suffix in (".txt", ".log", ".json") and path.stat().st_size < 100_000)
    inputs = [rng.randbytes(2000), "Grüße\n".encode("latin-1") * 100, b"\xff\xfe" + "Thread".encode("utf-16"),
              b'[{"frames": [{"filename": "\\ud800.py", "name": "\\u001b[2J", "line": 1e400}],'
              b' "thread_id": []}]',
              b'{"format": "threaddoc-recording", "process": {"pid": "x"}, "pyspy": 7}',
              b'{"schema_version": 1, "reports": [{"threads": [{"frames": [{"file": 1}]}]}]}',
              b"Thread 0x1 (most recent call first):\n  File \"\x1b]0;pwned\x07.py\", line 1 in \x1b[31mf\n"]
    while len(inputs) < FUZZ_RUNS:
        data = bytearray(rng.choice(captures).read_bytes())
        cut = rng.randrange(len(data))
        other = rng.choice(captures).read_bytes()
        data[cut:] = other[rng.randrange(len(other)):] if rng.random() < 0.5 else b""
        inputs.append(bytes(data))
    return inputs


def test_broken_input_gives_a_report_or_one_line_through_the_executable(threaddoc: Any, tree: Path) -> None:
    for index, data in enumerate(_broken_inputs()):
        path = tree / f"broken-{index}"
        path.write_bytes(data)
        for options in (["--no-color"], ["--json"]):
            run = threaddoc(["diagnose", "--from", str(path), *options], timeout=60)
            assert_report_or_one_line(run)
            assert not any(ord(char) < 32 and char not in "\n\t" for char in run.stdout + run.stderr), (
                f"a raw control character reached the output\n{run.describe()}")


def test_a_dump_over_the_size_limit_is_refused_before_it_is_read(threaddoc: Any, threaddoc_env: Any,
                                                                 tree: Path) -> None:
    huge = tree / "huge.log"
    with open(huge, "wb") as handle:
        handle.truncate(MAX_DUMP_BYTES + 1)  # sparse: no disk
    run = threaddoc(["diagnose", "--from", str(huge)], timeout=60)
    assert_report_or_one_line(run)
    assert run.returncode == 2 and "larger than" in run.stderr and run.seconds < 10, run.describe()
    with open(huge, "rb") as stdin:  # a stream has no size to look at: read up to the limit, then refused
        piped = subprocess.run([sys.executable, "-m", "threaddoc", "diagnose", "--from", "-"], stdin=stdin,
                               capture_output=True, text=True, timeout=120, env=threaddoc_env())
    assert piped.returncode == 2 and piped.stdout == "", piped
    assert piped.stderr.count("\n") == 1 and "standard input is larger than" in piped.stderr, piped


def test_a_large_log_holding_a_dump_is_diagnosed_within_a_bound(threaddoc: Any, tree: Path) -> None:
    rng = random.Random(3)
    noise = "".join(f"2026-12-01T09:{index % 60:02d}:00Z worker-{index % 7} INFO served request {index} in "
                    f"{rng.random():.3f}s\n" for index in range(400_000))
    log = tree / "ci.log"
    log.write_text(noise + CAPTURE.read_text())
    started = time.monotonic()
    run = threaddoc(["diagnose", "--from", str(log), "--json"], timeout=120)
    assert run.returncode == 1 and json.loads(run.stdout)["verdict"] == "deadlock", run.describe()
    assert time.monotonic() - started < 30, f"{log.stat().st_size >> 20} MiB took {run.seconds:.1f}s"

"""`diagnose --save`, `--from` and `--core` end to end, on real hung processes.

A process is diagnosed live while its capture is saved; then it is gone (killed, or it
dumped core) and the saved capture must still give the same diagnosis.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from threaddoc.errors import EXIT_CANNOT_INSPECT, EXIT_HANG, EXIT_USAGE

from .conftest import SAMPLES, parse_report, run_threaddoc

pytestmark = pytest.mark.integration


def _kinds(report: dict[str, Any]) -> list[str]:
    return sorted(finding["kind"] for finding in report["findings"])


def _threads(report: dict[str, Any]) -> list[tuple[str, int]]:
    return sorted((thread["name"], thread["thread_id"]) for thread in report["threads"])


@pytest.mark.parametrize("sample", ["lock_order_deadlock.py", "bank_transfer_deadlock.py",
                                    "nested_submit_starvation.py"])
def test_a_saved_capture_gives_the_live_diagnosis_after_the_process_is_gone(
        python_interpreter: Path, sample_runner: Callable[..., Any], tmp_path: Path, sample: str) -> None:
    saved = tmp_path / "capture.json"
    with sample_runner(sample, python=python_interpreter) as process:
        live = run_threaddoc(["diagnose", str(process.pid), "--json", "--save", str(saved)])
    assert live.returncode == EXIT_HANG, live.describe()
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600, "a capture holds source code: owner only"
    again = run_threaddoc(["diagnose", "--from", str(saved), "--json"])
    assert again.returncode == EXIT_HANG, again.describe()
    live_report, saved_report = parse_report(live), parse_report(again)
    assert _kinds(saved_report) == _kinds(live_report)
    assert _threads(saved_report) == _threads(live_report)
    assert [f["confidence"] for f in saved_report["findings"]] == \
        [f["confidence"] for f in live_report["findings"]]
    assert saved_report["origin"]["format"] == "threaddoc-recording" and live_report["origin"] is None
    assert saved_report["target"]["pid"] == process.pid


def test_a_saved_json_report_read_from_standard_input(sample_runner: Callable[..., Any]) -> None:
    with sample_runner("lock_order_deadlock.py") as process:
        live = run_threaddoc(["diagnose", str(process.pid), "--json", "--samples", "1"])
    completed = subprocess.run([sys.executable, "-m", "threaddoc", "diagnose", "--from", "-", "--no-color"],
                               input=live.stdout, capture_output=True, text=True, timeout=60)
    assert completed.returncode == EXIT_HANG, completed.stderr
    assert completed.stdout.startswith(f"threaddoc: DEADLOCK in process {process.pid} "
                                       "(threaddoc-report dump on standard input)")


def test_save_and_from_refuse_what_does_not_fit(sample_runner: Callable[..., Any], tmp_path: Path) -> None:
    saved = tmp_path / "capture.json"
    saved.write_text("[]")
    for args in (["diagnose", "--from", str(saved), "4242"], ["diagnose", "--from", str(saved), "--children"],
                 ["diagnose", "--from", str(saved), "--core", str(saved)],
                 ["diagnose", "4242", "--source-root", str(tmp_path)],
                 ["diagnose", "--from", str(tmp_path / "missing.json")],
                 ["diagnose", "--from", str(saved)]):
        run = run_threaddoc(args)
        assert run.returncode == EXIT_USAGE, run.describe()
        assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr, run.describe()
        assert run.stdout == ""
    with sample_runner("lock_order_deadlock.py") as process:
        nowhere = str(tmp_path / "no" / "such" / "dir.json")
        unwritable = run_threaddoc(["diagnose", str(process.pid), "--save", nowhere])
    assert unwritable.returncode == EXIT_USAGE and "cannot write" in unwritable.stderr, unwritable.describe()


def _core_pattern() -> str:
    try:
        return Path("/proc/sys/kernel/core_pattern").read_text().strip()
    except OSError:
        return "|unknown"


def _dump_core(python: Path, sample: str, workdir: Path) -> Path:
    """Run a sample until it hangs, then make the kernel write its core (SIGABRT with no
    faulthandler, core size unlimited) into `workdir`."""
    ready = workdir / "ready"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONFAULTHANDLER"}
    process = subprocess.Popen(
        [str(python), str(SAMPLES / sample), str(ready)], cwd=workdir, env=env, start_new_session=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY,
                                                                      resource.RLIM_INFINITY)))
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert process.poll() is None and time.monotonic() < deadline, f"{sample} never got ready"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGABRT)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        else:
            # The sample's own threads are gone with it; anything it started is not.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    cores = [path for path in workdir.iterdir() if path.name.startswith("core")]
    if not cores:
        pytest.skip(f"the kernel wrote no core file here (core_pattern {_core_pattern()!r})")
    _until_complete(cores[0])
    return cores[0]


def _until_complete(core: Path) -> None:
    """A core is read only once it stopped growing: py-spy fails on a partial one."""
    deadline, size = time.monotonic() + 30, -1
    while core.stat().st_size != size and time.monotonic() < deadline:
        size = core.stat().st_size
        time.sleep(0.3)


@pytest.mark.skipif(_core_pattern().startswith("|"), reason="cores are piped to a crash handler here")
@pytest.mark.parametrize("sample", ["lock_order_deadlock.py", "bank_transfer_deadlock.py"])
def test_a_core_file_is_diagnosed(python_interpreter: Path, tmp_path: Path, sample: str) -> None:
    core = _dump_core(python_interpreter, sample, tmp_path)
    try:
        run = run_threaddoc(["diagnose", "--core", str(core), "--json"])
        text = run_threaddoc(["diagnose", "--core", str(core), "--no-color"])
    finally:
        core.unlink()
    assert run.returncode == EXIT_HANG, run.describe()
    report = parse_report(run)
    assert _kinds(report) == ["lock-order-deadlock"]
    assert report["origin"]["format"] == "core"
    # A core has addresses, and identities are exact as live; unless py-spy could not read
    # the locals from it, which the report then says.
    if report["origin"]["addresses"]:
        assert report["findings"][0]["confidence"] == "likely"
    else:
        assert any("local variables" in note for note in report["origin"]["notes"]), report["origin"]
    assert text.first_line.startswith("threaddoc: DEADLOCK in ")


def test_a_file_that_is_no_core_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "core"
    fake.write_bytes(b"\x7fELF" + b"\0" * 64)
    run = run_threaddoc(["diagnose", "--core", str(fake)])
    assert run.returncode == EXIT_CANNOT_INSPECT, run.describe()
    assert len(run.stderr.strip().splitlines()) == 1 and "core" in run.stderr
    missing = run_threaddoc(["diagnose", "--core", str(tmp_path / "nothing")])
    assert missing.returncode == EXIT_USAGE, missing.describe()

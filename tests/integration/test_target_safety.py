"""Sampling never harms the target.

* However many samples are taken, only the last one pauses the target: the
  others are non-blocking (counted through a py-spy wrapper).
* A blocking dump that cannot pause the target in time (a thread in
  uninterruptible sleep: PTRACE_ATTACH's SIGSTOP stays pending) is cut off;
  the target is not left stopped; the report comes from a non-blocking read
  and says so.

The second case is staged with a py-spy wrapper that, asked for a blocking dump,
stops the target the way an attach that never completes leaves it, and hangs.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from .conftest import real_py_spy

pytestmark = pytest.mark.integration

SAMPLE = "lock_order_deadlock.py"
EXIT_HANG = 1


def _wrapper(path: Path, blocking_body: str, log: Path) -> str:
    path.write_text(
        "#!/bin/sh\n"
        f"echo \"$*\" >> '{log}'\n"
        "case \" $* \" in\n"
        f"  *' --nonblocking '*) exec '{real_py_spy()}' \"$@\" ;;\n"
        "esac\n"
        + blocking_body
    )
    path.chmod(0o755)
    return str(path)


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


def test_only_the_last_sample_pauses_the_target(threaddoc, sample_runner, tmp_path):  # type: ignore[no-untyped-def]
    log = tmp_path / "calls.log"
    wrapper = _wrapper(tmp_path / "py-spy", f"exec '{real_py_spy()}' \"$@\"\n", log)
    with sample_runner(SAMPLE) as process:
        run = threaddoc(["diagnose", str(process.pid), "--json", "--samples", "4", "--py-spy", wrapper])
    assert run.returncode == EXIT_HANG, run.describe()
    calls = log.read_text().splitlines()
    assert len(calls) == 4, calls
    assert all("--nonblocking" in call for call in calls[:3]), calls
    assert "--nonblocking" not in calls[3], calls
    assert json.loads(run.stdout)["verdict"] == "deadlock"


def test_a_target_that_cannot_be_paused_is_read_without_pausing_and_left_running(  # type: ignore[no-untyped-def]
    threaddoc, sample_runner, tmp_path, validate_json_report
):
    log = tmp_path / "calls.log"
    stopper_pid = tmp_path / "stopper.pid"
    # Asked for a blocking dump: stop the target as a pending attach SIGSTOP would, and hang.
    blocking = (
        "pid=$(echo \"$*\" | sed 's/.*--pid \\([0-9]*\\).*/\\1/')\n"
        "kill -STOP \"$pid\"\n"
        f"echo $$ > '{stopper_pid}'\n"
        "exec sleep 60\n"
    )
    wrapper = _wrapper(tmp_path / "py-spy", blocking, log)
    try:
        with sample_runner(SAMPLE) as process:
            run = threaddoc(["diagnose", str(process.pid), "--json", "--samples", "2", "--timeout", "2",
                             "--py-spy", wrapper])
            state_after = _state(process.pid)
        assert stopper_pid.exists(), f"the blocking dump was never attempted\n{run.describe()}"
        assert state_after not in ("T", "t"), f"threaddoc left the target stopped ({state_after})"
        assert run.returncode == EXIT_HANG, run.describe()
        report = json.loads(run.stdout)
        validate_json_report(report, "non-blocking fallback")
        assert report["verdict"] == "deadlock", run.describe()
        assert any("could not be paused" in warning and "non-blocking" in warning
                   for warning in report["warnings"]), report["warnings"]
    finally:
        if stopper_pid.exists():
            _kill_if_our_sleep(int(stopper_pid.read_text()))


def _kill_if_our_sleep(pid: int) -> None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            if handle.read().split(b"\0")[:2] == [b"sleep", b"60"]:
                os.kill(pid, signal.SIGKILL)
    except OSError:
        pass

"""Killing threaddoc at any moment never harms the target and leaves nothing behind.

SIGKILL, SIGINT, SIGTERM and SIGHUP are sent to a real `threaddoc diagnose PID` (real
py-spy, a real hung sample) at random moments, many of them inside the blocking dump that
pauses the target. After each trial:

* the target is not stopped (state T or t), has no SIGSTOP pending, and is traced by nobody;
* no py-spy that threaddoc started is left, nor its guardian, nor anything else it started:
  every process threaddoc starts inherits a marker in its environment, and none may be
  left once the trial is over (a zombie has exited: it is not left);
* SIGINT, SIGTERM and SIGHUP end threaddoc with one line on stderr and 130, 143, 129
  (or with the report, when the signal came after it was done); never a traceback.

The trials stay within about a minute; THREADDOC_KILL_TRIALS=1000 runs a longer series for
the issue's figure (THREADDOC_KILL_SEED repeats one). Processes are found by PID (the
target's TracerPid, /proc/PID/task/TID/children, the environment marker) and cleaned up by
PID or process group, never by name.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

SAMPLE = "lock_order_deadlock.py"
TRIALS = int(os.environ.get("THREADDOC_KILL_TRIALS", "100"))
SEED = int(os.environ.get("THREADDOC_KILL_SEED", str(random.randrange(1 << 30))))
KILLS = (signal.SIGKILL, signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
MARKER = "THREADDOC_TRIAL"
RUN_SECONDS = 30.0       # for one threaddoc to end once signalled (or by itself)
SETTLE_SECONDS = 5.0     # for what it started to be gone once it has ended
POLL_SECONDS = 0.0005
_SIGSTOP_BIT = 1 << (signal.SIGSTOP - 1)


# --------------------------------------------------------------------------- /proc, by PID


def _status(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/status") as handle:
            return dict(line.rstrip("\n").split(":\t", 1) for line in handle if ":\t" in line)
    except OSError:
        return {}


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"


def _alive(pid: int) -> bool:
    return _state(pid) not in ("gone", "Z", "X")


def _traced(pid: int) -> bool:
    return any(_status(pid).get("TracerPid", "0") != "0" for pid in _tids(pid))


def _tids(pid: int) -> list[int]:
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def _stop_pending(pid: int) -> bool:
    for tid in _tids(pid):
        status = _status(tid)
        for key in ("SigPnd", "ShdPnd"):
            if int(status.get(key, "0"), 16) & _SIGSTOP_BIT:
                return True
    return False


def _catches_sigterm(pid: int) -> bool:
    """threaddoc has installed its handlers (Python alone catches SIGINT only)."""
    return bool(int(_status(pid).get("SigCgt", "0"), 16) & (1 << (signal.SIGTERM - 1)))


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(word) for word in handle.read().split()]
    except (OSError, ValueError):
        return []


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return [part.decode(errors="replace") for part in handle.read().split(b"\0") if part]
    except OSError:
        return []


def _marked(marker: str) -> list[int]:
    """Live processes whose environment carries `marker`: whatever threaddoc started."""
    needle = f"{MARKER}={marker}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as handle:
                if needle in handle.read().split(b"\0") and _alive(int(name)):
                    found.append(int(name))
        except OSError:
            continue
    return found


def _wait_until(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


# --------------------------------------------------------------------------- one trial


@dataclass
class Trial:
    signum: int
    moment: str               # how the kill point was chosen
    delay: float              # seconds after the trigger
    samples: int
    status: int | None = None
    stderr: str = ""
    stdout: str = ""
    handlers_installed: bool = False  # at the kill
    finished_before_kill: bool = False
    py_spy_running_at_kill: bool = False     # a py-spy threaddoc started was alive
    pausing_at_kill: bool = False            # ... and had attached: the target was paused
    py_spies: set[int] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (f"{signal.Signals(self.signum).name} {self.moment}+{self.delay * 1000:.1f}ms "
                f"samples={self.samples}: status {self.status}, stderr {self.stderr[-300:]!r}: "
                + "; ".join(self.problems))


def _run_trial(target: int, trial: Trial, env: Callable[[dict[str, str]], dict[str, str]]) -> Trial:
    marker = uuid.uuid4().hex
    process = subprocess.Popen(
        [sys.executable, "-m", "threaddoc", "diagnose", str(target), "--no-color",
         "--samples", str(trial.samples), "--interval", "0.05"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env({MARKER: marker}), start_new_session=True)
    try:
        _kill_at_the_moment(process, target, trial)
        try:
            stdout, stderr = process.communicate(timeout=RUN_SECONDS)
        except subprocess.TimeoutExpired:
            trial.problems.append(f"threaddoc did not end within {RUN_SECONDS:g}s of the signal")
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate(timeout=RUN_SECONDS)
        trial.status, trial.stdout, trial.stderr = process.returncode, stdout.decode(), stderr.decode()
        _check_nothing_left(target, marker, trial)
        _check_target(target, trial)
        _check_exit(trial)
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=RUN_SECONDS)
        _kill_marked(marker)
    return trial


def _kill_at_the_moment(process: subprocess.Popen[bytes], target: int, trial: Trial) -> None:
    """Wait for the trial's trigger, then `delay` more, noting the py-spy processes threaddoc
    starts meanwhile; then signal threaddoc (its PID only: not its group)."""
    started = time.monotonic()
    triggered: float | None = started if trial.moment == "start" else None
    while process.poll() is None:
        now = time.monotonic()
        children = _children(process.pid)
        spies = [child for child in children if any(part.endswith("py-spy") for part in _cmdline(child))]
        trial.py_spies.update(spies)
        if triggered is None and _triggered(trial.moment, target, spies):
            triggered = now
        if triggered is not None and now - triggered >= trial.delay:
            break
        if now - started > RUN_SECONDS:
            break
        time.sleep(POLL_SECONDS)
    trial.finished_before_kill = process.poll() is not None
    trial.handlers_installed = _catches_sigterm(process.pid)
    if trial.signum == signal.SIGINT and not trial.handlers_installed and not trial.finished_before_kill:
        # Before threaddoc's first line runs, a SIGINT is the interpreter's own business
        # (a KeyboardInterrupt in its start-up): wait until threaddoc is in charge.
        _wait_until(lambda: _catches_sigterm(process.pid) or process.poll() is not None, RUN_SECONDS)
        trial.handlers_installed = _catches_sigterm(process.pid)
        trial.finished_before_kill = process.poll() is not None
    trial.py_spy_running_at_kill = any(_alive(spy) for spy in trial.py_spies)
    trial.pausing_at_kill = trial.py_spy_running_at_kill and _traced(target)
    with suppress(OSError):
        os.kill(process.pid, trial.signum)


def _triggered(moment: str, target: int, spies: list[int]) -> bool:
    if moment == "attached":
        return _traced(target)
    if moment == "pausing-py-spy":
        return any("--nonblocking" not in _cmdline(spy) for spy in spies)
    return True


def _check_nothing_left(target: int, marker: str, trial: Trial) -> None:
    if not _wait_until(lambda: not _marked(marker), SETTLE_SECONDS):
        left = {pid: " ".join(_cmdline(pid))[:100] for pid in _marked(marker)}
        trial.problems.append(f"left behind: {left}")
    orphans = [pid for pid in trial.py_spies if _alive(pid) and f"{target}" in _cmdline(pid)]
    if orphans:  # a py-spy seen during the trial lives on (the marker check covers this too)
        trial.problems.append(f"py-spy left running: {orphans}")


def _check_target(target: int, trial: Trial) -> None:
    # What threaddoc started is gone: the target must now be as it was, at once.
    if _state(target) in ("T", "t"):
        trial.problems.append(f"target left stopped (state {_state(target)})")
    if _stop_pending(target):
        trial.problems.append("target left with a SIGSTOP pending")
    if _traced(target):
        trial.problems.append("target still traced")
    if not _alive(target):
        trial.problems.append("target died")


def _check_exit(trial: Trial) -> None:
    if "Traceback" in trial.stderr:
        trial.problems.append("traceback on stderr")
    if trial.finished_before_kill:
        if trial.status not in (0, 1):
            trial.problems.append("finished by itself, yet not with 0 or 1")
        return
    if trial.status in (0, 1) and trial.stdout.strip() and not trial.stderr:
        return  # it finished as the signal was sent
    if trial.signum == signal.SIGKILL:
        if trial.status != -signal.SIGKILL:
            trial.problems.append("SIGKILL, yet not killed by it")
        return
    name = signal.Signals(trial.signum).name
    if trial.status == -trial.signum and not trial.handlers_installed:
        return  # before threaddoc's handlers: the default action, with nothing started yet
    lines = trial.stderr.splitlines()
    if trial.status != 128 + trial.signum:
        trial.problems.append(f"{name}: status {trial.status}, not {128 + trial.signum}")
    if len(lines) != 1 or not lines[0].startswith("threaddoc: ") or name not in lines[0]:
        trial.problems.append(f"{name}: stderr is not one line naming the signal")


def _kill_marked(marker: str) -> None:
    """Should a trial fail, what it left must not outlive the test (by PID, never by name)."""
    for pid in _marked(marker):
        with suppress(OSError):
            os.kill(pid, signal.SIGKILL)


# --------------------------------------------------------------------------- the trials


# Most kills aim at the blocking dump (the moment that can harm the target); a quarter
# fall anywhere in the run.
MOMENTS = ("start", "pausing-py-spy", "attached", "pausing-py-spy", "start", "attached", "pausing-py-spy",
           "attached")


def _plan(trials: int, rng: random.Random, duration: float) -> Iterator[Trial]:
    """Each signal in turn; kill points spread over the whole run, around the blocking
    py-spy's start, and right as it has attached (the target is paused)."""
    for index in range(trials):
        signum = KILLS[index % len(KILLS)]
        moment = MOMENTS[(index // len(KILLS)) % len(MOMENTS)]
        # py-spy's blocking dump lives about 25 ms here, attached for 1 to 3 ms of it.
        delay = {"start": rng.uniform(0.0, duration), "pausing-py-spy": rng.uniform(0.0, 0.025),
                 "attached": rng.uniform(0.0, 0.001)}[moment]
        yield Trial(signum, moment, delay, samples=rng.choice((1, 1, 2)))


def _summary(trials: list[Trial], seconds: float) -> str:
    problems = Counter(problem.split(":")[0] for trial in trials for problem in trial.problems)
    by_signal = Counter(signal.Signals(trial.signum).name for trial in trials)
    inside = sum(1 for trial in trials if trial.py_spy_running_at_kill)
    pausing = sum(1 for trial in trials if trial.pausing_at_kill)
    stopped = sum(1 for trial in trials if any("left stopped" in p or "SIGSTOP" in p for p in trial.problems))
    orphans = sum(1 for trial in trials
                  if any(p.startswith(("left behind", "py-spy left")) for p in trial.problems))
    tracebacks = sum(1 for trial in trials if "Traceback" in trial.stderr)
    return (f"{len(trials)} kill trials in {seconds:.1f}s (seed {SEED}; {dict(by_signal)}; "
            f"{inside} while py-spy ran, {pausing} while it held the target paused): targets left "
            f"stopped {stopped}, runs leaving processes "
            f"{orphans}, tracebacks {tracebacks}; problems {dict(problems)}")


def test_killing_threaddoc_at_random_moments_never_harms_the_target(  # type: ignore[no-untyped-def]
    sample_runner, threaddoc_env
):
    rng = random.Random(SEED)
    started = time.monotonic()
    with sample_runner(SAMPLE) as target:
        whole = _run_trial(target.pid, Trial(signal.SIGKILL, "start", RUN_SECONDS, samples=1), threaddoc_env)
        assert whole.finished_before_kill and whole.status == 1 and not whole.problems, whole.describe()
        duration = time.monotonic() - started
        trials = [_run_trial(target.pid, trial, threaddoc_env) for trial in _plan(TRIALS, rng, duration)]
    summary = _summary(trials, time.monotonic() - started)
    print(summary)
    failed = [trial.describe() for trial in trials if trial.problems]
    assert not failed, summary + "\n" + "\n".join(failed[:20])
    assert sum(1 for trial in trials if trial.py_spy_running_at_kill) >= TRIALS // 6, (
        f"too few kills landed while py-spy ran: the trials proved little\n{summary}")


# --------------------------------------------------------------------------- the worst moment, staged


@pytest.mark.parametrize("signum", KILLS, ids=[signal.Signals(signum).name for signum in KILLS])
def test_threaddoc_stopped_while_py_spy_holds_the_target_stopped(  # type: ignore[no-untyped-def]
    signum, sample_runner, threaddoc_env, tmp_path
):
    """The blocking dump is a py-spy wrapper that stops the target as an attach does and
    hangs (an attach that never completes). Whatever ends threaddoc, the target runs again
    and the wrapper is gone; for SIGKILL, only the guardian can have done it."""
    holder = tmp_path / "stopper.pid"
    wrapper = tmp_path / "py-spy"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"case \" $* \" in *' --nonblocking '*) exec '{_real_py_spy()}' \"$@\" ;; esac\n"
        "pid=$(echo \"$*\" | sed 's/.*--pid \\([0-9]*\\).*/\\1/')\n"
        f"kill -STOP \"$pid\"\necho $$ > '{holder}'\nexec sleep 60\n")
    wrapper.chmod(0o755)
    marker = uuid.uuid4().hex
    with sample_runner(SAMPLE) as target:
        process = subprocess.Popen(
            [sys.executable, "-m", "threaddoc", "diagnose", str(target.pid), "--samples", "1",
             "--py-spy", str(wrapper)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=threaddoc_env({MARKER: marker}), start_new_session=True)
        try:
            assert _wait_until(lambda: holder.exists() and _state(target.pid) == "T", RUN_SECONDS), (
                f"the wrapper never stopped the target (state {_state(target.pid)})")
            os.kill(process.pid, signum)
            stdout, stderr = process.communicate(timeout=RUN_SECONDS)
            left_behind = not _wait_until(lambda: not _marked(marker), SETTLE_SECONDS)
            state = _state(target.pid)
        finally:
            if process.returncode is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=RUN_SECONDS)
            _kill_marked(marker)
    assert state not in ("T", "t"), f"the target was left stopped ({state})"
    assert not left_behind, "the wrapper (or the guardian) outlived threaddoc"
    text = stderr.decode()
    if signum == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
    else:
        assert process.returncode == 128 + signum, text
        assert stdout == b"" and len(text.splitlines()) == 1, text
        assert signal.Signals(signum).name in text and "Traceback" not in text, text


def _real_py_spy() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else "py-spy"

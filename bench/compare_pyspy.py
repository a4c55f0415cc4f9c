"""Time `threaddoc diagnose --samples 1 --json` against `py-spy dump --json --locals` on the same
targets in the same run (a benchmark, not a test: these machines are shared and noisy).

    python bench/compare_pyspy.py                          # 10 ... 10,000 threads on one lock
    python bench/compare_pyspy.py --threads 1000 2000 5000 10000 --runs 3
    python bench/compare_pyspy.py --threads --hung-sample 10000   # only the hung sample (issue 10)
    python bench/compare_pyspy.py --python /root/.pyenv/versions/3.8.18/bin/python

Run it from the repository's venv (`.venv/bin/python bench/compare_pyspy.py`), on a machine
as quiet as you can get: the load average is printed before and after each row, to tell a
slow run from a busy machine.

Targets on one lock: for each thread count, starts bench/many_threads_on_one_lock.py (N
threads blocked on one lock that its main thread holds, and a ticker thread), then
alternates the two commands `--runs` times each and reports the medians, the ratio, each
command's own peak RSS (from wait4, the process itself, not its children), and the longest
time the target was paused during each command, as its ticker thread saw it (bench/ticker.py).
With `--samples N` threaddoc takes N samples 0.25 s apart; the ratio is then computed on its
time minus the (N - 1) intervals it sleeps between samples.

Past 4,096 threads py-spy refuses the process: its columns then say "refused" (and how fast
it gave up), and threaddoc, which falls back to reading the interpreter's memory itself
(`--collector auto`), is timed alone. The last column says which collector threaddoc used
(from the warning its JSON report carries when py-spy was bypassed).

The hung sample (`--hung-sample N ...`, issue 10: "a 10,000-thread hung sample diagnosed
correctly in <= 5 s"): hung_samples/requests_pile_up_behind_pool_refresh.py with N request
threads (THREADDOC_SAMPLE_REQUESTS) run with a ticker (bench/ticker.py), diagnosed as an
on-call engineer would, `threaddoc diagnose PID` with its defaults (3 samples 0.25 s apart,
text) and `--json`, `--runs` times each. Every run's diagnosis is checked: exit status 1,
verdict hang, a lock-held-during-io finding whose holder is "refresher" and whose title
counts the N waiters.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from threaddoc.demo import no_room_for_threads

HERE = Path(__file__).resolve().parent
LOCK_TARGET = HERE / "many_threads_on_one_lock.py"
TICKER = HERE / "ticker.py"
HUNG_SAMPLE = HERE.parent / "hung_samples" / "requests_pile_up_behind_pool_refresh.py"
READY_TIMEOUT = 600.0  # seconds: 10,000 threads take 5-30 s to create here, more under load
RUN_TIMEOUT = 300.0
INTERVAL = 0.25


# ----------------------------------------------------------------------------- targets


def wait_for_room(threads: int) -> None:
    """Wait until `threads` more threads fit on the machine (see `no_room_for_threads`)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while (reason := no_room_for_threads(threads)) is not None:
        if time.monotonic() > deadline:
            raise SystemExit(f"no room for {threads:,} threads: {reason}")
        print(f"(waiting: {reason})", flush=True)
        time.sleep(10)


def start_target(command: list[str], ready: Path, threads: int,
                 env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start `command` in a process group of its own; return once it has written `ready`."""
    wait_for_room(threads)
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               start_new_session=True, env=env)
    deadline = time.monotonic() + READY_TIMEOUT
    while not ready.exists():
        if time.monotonic() > deadline or process.poll() is not None:
            stop(process)
            raise SystemExit(f"target {' '.join(command)} did not get ready")
        time.sleep(0.05)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)


@contextlib.contextmanager
def lock_target(python: str, count: int,
                workdir: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    ready = workdir / f"lock-{count}"
    process = start_target([python, str(LOCK_TARGET), str(count), str(ready)], ready, count)
    try:
        yield process, ready.with_name(ready.name + ".pauses")
    finally:
        stop(process)


@contextlib.contextmanager
def hung_sample(python: str, count: int,
                workdir: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    ready = workdir / f"sample-{count}"
    env = {**os.environ, "THREADDOC_SAMPLE_REQUESTS": str(count)}
    process = start_target([python, str(TICKER), str(HUNG_SAMPLE), str(ready)], ready, count, env)
    try:
        yield process, ready.with_name(ready.name + ".pauses")
    finally:
        stop(process)


# ----------------------------------------------------------------------------- timing


@dataclass
class Runs:
    seconds: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    peak_rss_mib: float = 0.0
    longest_pause: float = 0.0
    outputs: list[str] = field(default_factory=list)  # stdout of each run
    succeeded: tuple[int, ...] = (0,)  # the exit statuses of a run that read the target

    @property
    def refused(self) -> bool:
        return any(status not in self.succeeded for status in self.statuses)

    def median(self, minus: float = 0.0) -> float:
        return statistics.median(self.seconds) - minus


def timed(command: list[str], runs: Runs, pauses: Path, output: Path) -> None:
    """Run `command`, adding its wall time, exit status, stdout, its own peak RSS and the
    longest pause of the target it caused to `runs`."""
    began = time.monotonic()
    start = time.perf_counter()
    # As installed for users, with its bytecode cached: this machine sets PYTHONDONTWRITEBYTECODE,
    # which would make every run compile threaddoc from source.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["NO_COLOR"] = "1"
    with open(output, "wb") as stdout:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=stdout,
                                   stderr=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + RUN_TIMEOUT
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise SystemExit(f"{command[0]} did not finish within {RUN_TIMEOUT:g} s")
            time.sleep(0.002)
    runs.seconds.append(time.perf_counter() - start)
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4 above
    runs.statuses.append(process.returncode)
    runs.outputs.append(output.read_text(encoding="utf-8", errors="replace"))
    runs.peak_rss_mib = max(runs.peak_rss_mib, usage.ru_maxrss / 1024)
    time.sleep(0.05)  # let the ticker log the pause's end
    runs.longest_pause = max(runs.longest_pause, _longest_pause(pauses, began, time.monotonic()))


def _longest_pause(pauses: Path, began: float, ended: float) -> float:
    longest = 0.0
    with contextlib.suppress(OSError):
        for line in pauses.read_text().splitlines():
            start, gap = (float(field) for field in line.split())
            if began <= start + gap and start <= ended:
                longest = max(longest, gap)
    return longest


def collector_used(json_stdout: str) -> str:
    """"memory" if threaddoc's JSON report warns that py-spy was bypassed, else "py-spy"."""
    try:
        warnings = json.loads(json_stdout).get("warnings", [])
    except ValueError:
        return "?"
    return "memory" if any("py-spy" in warning and "memory" in warning for warning in warnings) else "py-spy"


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


# ----------------------------------------------------------------------------- the lock targets


def compare_on_one_lock(python: str, py_spy: str, counts: Sequence[int], runs: int, samples: int,
                        workdir: Path) -> None:
    print(f"{'threads':>8} {'py-spy s':>9} {'threaddoc s':>12} {'ratio':>6} {'diff ms':>8} "
          f"{'RSS MiB py-spy':>15} {'RSS MiB threaddoc':>18} {'paused ms py-spy':>17} "
          f"{'paused ms threaddoc':>20} {'collector':>10}  load before/after")
    for count in counts:
        before = load()
        with lock_target(python, count, workdir) as (target, pauses):
            spy, doc = Runs(), Runs(succeeded=(0, 1))  # threaddoc: 1 is "hang found"
            for _ in range(runs):
                timed([py_spy, "dump", "--pid", str(target.pid), "--json", "--locals"], spy, pauses,
                      workdir / "py-spy.out")
                timed([sys.executable, "-m", "threaddoc", "diagnose", str(target.pid), "--samples",
                       str(samples), "--interval", str(INTERVAL), "--json"], doc, pauses,
                      workdir / "threaddoc.out")
        doc_median = doc.median(minus=(samples - 1) * INTERVAL)
        collector = collector_used(doc.outputs[-1]) if not doc.refused else f"exit {doc.statuses[-1]}"
        if spy.refused:
            gave_up = f"(in {spy.median():.2f} s)"
            spy_columns = (f"{'refused':>9} {doc_median:>12.3f} {'-':>6} {'-':>8} "
                           f"{gave_up:>15} {doc.peak_rss_mib:>18.1f} {'-':>17} ")
        else:
            spy_median = spy.median()
            spy_columns = (f"{spy_median:>9.3f} {doc_median:>12.3f} {doc_median / spy_median:>6.2f} "
                           f"{(doc_median - spy_median) * 1000:>8.0f} {spy.peak_rss_mib:>15.1f} "
                           f"{doc.peak_rss_mib:>18.1f} {spy.longest_pause * 1000:>17.0f} ")
        print(f"{count:>8} {spy_columns}{doc.longest_pause * 1000:>20.0f} {collector:>10}  "
              f"{before}/{load()[5:]}", flush=True)
    print("paused: the longest gap the target's ticker saw during a run; 0 is under 10 ms")


# ----------------------------------------------------------------------------- the hung sample


def diagnosis_problem(status: int, text: str, report_json: str | None, count: int) -> str | None:
    """What is wrong with one diagnosis of the hung sample, or None if it is right."""
    if status != 1:
        return f"exit status {status}, expected 1 (hang)"
    waiters = re.compile(rf"\b{count:,}\b|\b{count}\b")
    if report_json is None:
        headline = text.splitlines()[0] if text else ""
        if "refresher" not in headline or not waiters.search(headline):
            return f"the headline does not name refresher and {count:,} waiters: {headline[:200]!r}"
        return None
    report = json.loads(report_json)
    if report.get("verdict") != "hang":
        return f"verdict {report.get('verdict')!r}"
    findings = [finding for finding in report["findings"] if finding["kind"] == "lock-held-during-io"]
    if len(findings) != 1:
        return f"findings {[finding['kind'] for finding in report['findings']]}"
    holders = [thread["name"] for thread in findings[0]["threads"] if "holds" in thread["role"]]
    if holders != ["refresher"] or not waiters.search(findings[0]["title"]):
        return f"holders {holders}, title {findings[0]['title'][:200]!r}"
    return None


def time_hung_sample(python: str, counts: Sequence[int], runs: int, workdir: Path) -> None:
    print(f"\nhung_samples/{HUNG_SAMPLE.name} under {python}: `threaddoc diagnose PID` with its "
          f"defaults (3 samples, {INTERVAL:g} s apart)")
    print(f"{'threads':>8} {'ready s':>8} {'text s':>7} {'json s':>7} {'RSS MiB':>8} {'paused ms':>10} "
          f"{'collector':>10} {'correct':>8}  load before/after")
    for count in counts:
        wait_for_room(count)
        before = load()
        began = time.monotonic()
        with hung_sample(python, count, workdir) as (target, pauses):
            ready = time.monotonic() - began
            text, as_json = Runs(), Runs()
            for _ in range(runs):
                timed([sys.executable, "-m", "threaddoc", "diagnose", str(target.pid), "--no-color"], text,
                      pauses, workdir / "text.out")
                timed([sys.executable, "-m", "threaddoc", "diagnose", str(target.pid), "--json"], as_json,
                      pauses, workdir / "json.out")
        problems = [problem for status, output in zip(text.statuses, text.outputs)
                    if (problem := diagnosis_problem(status, output, None, count))]
        problems += [problem for status, output in zip(as_json.statuses, as_json.outputs)
                     if (problem := diagnosis_problem(status, "", output, count))]
        collector = collector_used(as_json.outputs[-1])
        print(f"{count:>8} {ready:>8.1f} {text.median():>7.2f} {as_json.median():>7.2f} "
              f"{max(text.peak_rss_mib, as_json.peak_rss_mib):>8.1f} "
              f"{max(text.longest_pause, as_json.longest_pause) * 1000:>10.0f} {collector:>10} "
              f"{'yes' if not problems else 'NO':>8}  {before}/{load()[5:]}", flush=True)
        for problem in sorted(set(problems)):
            print(f"         wrong: {problem}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="*", default=[10, 100, 1000, 2000, 5000, 10000],
                        help="thread counts of the lock targets (none: skip them)")
    parser.add_argument("--hung-sample", type=int, nargs="*", default=[], metavar="THREADS",
                        help="also time the diagnosis of the hung sample with these request threads")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=1, help="threaddoc --samples on the lock targets")
    parser.add_argument("--python", default=sys.executable, help="the interpreter the targets run on")
    options = parser.parse_args()
    py_spy = str(Path(sys.executable).parent / "py-spy")
    if not os.path.exists(py_spy):
        py_spy = shutil.which("py-spy") or "py-spy"
    print(f"targets under {options.python}; {os.cpu_count()} CPUs; {load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="threaddoc-bench-") as workdir:
        if options.threads:
            compare_on_one_lock(options.python, py_spy, options.threads, options.runs, options.samples,
                                Path(workdir))
        if options.hung_sample:
            time_hung_sample(options.python, options.hung_sample, options.runs, Path(workdir))


if __name__ == "__main__":
    main()

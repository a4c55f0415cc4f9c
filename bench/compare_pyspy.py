"""Time `threaddoc diagnose --samples 1 --json` against `py-spy dump --json --locals` on the same
targets in the same run (a benchmark, not a test: these machines are shared and noisy).

    python bench/compare_pyspy.py [--threads 10 100 1000 2000] [--runs 5] [--samples 3]

With `--samples N` threaddoc takes N samples 0.25 s apart; the ratio is then computed on its
time minus the (N - 1) intervals it sleeps between samples.

For each thread count, starts bench/many_threads_on_one_lock.py, then alternates the two
commands `--runs` times each and reports the medians, the ratio, each command's own peak RSS
(from wait4, the process itself, not its children), and the longest time the target was
paused during each command, as its ticker thread saw it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent


def start_target(count: int, workdir: Path) -> subprocess.Popen[bytes]:
    ready = workdir / f"ready-{count}"
    process = subprocess.Popen([sys.executable, str(HERE / "many_threads_on_one_lock.py"), str(count),
                                str(ready)], start_new_session=True)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if time.monotonic() > deadline or process.poll() is not None:
            stop(process)
            raise SystemExit(f"target with {count} threads did not get ready")
        time.sleep(0.05)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@dataclass
class Runs:
    seconds: list[float] = field(default_factory=list)
    peak_rss_mib: float = 0.0
    longest_pause: float = 0.0


def timed(command: list[str], runs: Runs, pauses: Path) -> None:
    """Run `command`, adding its wall time, its own peak RSS and the longest pause of the
    target it caused to `runs`."""
    began = time.monotonic()
    start = time.perf_counter()
    # As installed for users, with its bytecode cached: this machine sets PYTHONDONTWRITEBYTECODE,
    # which would make every run compile threaddoc from source.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 300
    while True:
        pid, _status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"{command[0]} did not finish within 300 s")
        time.sleep(0.002)
    runs.seconds.append(time.perf_counter() - start)
    process.returncode = 0  # reaped by wait4 above
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


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[10, 100, 1000, 2000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=1)
    options = parser.parse_args()
    py_spy = str(Path(sys.executable).parent / "py-spy")
    if not os.path.exists(py_spy):
        py_spy = shutil.which("py-spy") or "py-spy"
    print(f"{'threads':>8} {'py-spy s':>9} {'threaddoc s':>12} {'ratio':>6} {'diff ms':>8} "
          f"{'RSS MiB py-spy':>15} {'RSS MiB threaddoc':>18} {'paused ms py-spy':>17} "
          f"{'paused ms threaddoc':>20}")
    with tempfile.TemporaryDirectory() as workdir:
        for count in options.threads:
            target = start_target(count, Path(workdir))
            pauses = Path(workdir) / f"ready-{count}.pauses"
            try:
                spy, doc = Runs(), Runs()
                for _ in range(options.runs):
                    timed([py_spy, "dump", "--pid", str(target.pid), "--json", "--locals"], spy, pauses)
                    timed([sys.executable, "-m", "threaddoc", "diagnose", str(target.pid), "--samples",
                           str(options.samples), "--interval", "0.25", "--json"], doc, pauses)
                sleeping = (options.samples - 1) * 0.25
                spy_median = statistics.median(spy.seconds)
                doc_median = statistics.median(doc.seconds) - sleeping
                print(f"{count:>8} {spy_median:>9.3f} {doc_median:>12.3f} {doc_median / spy_median:>6.2f} "
                      f"{(doc_median - spy_median) * 1000:>8.0f} {spy.peak_rss_mib:>15.1f} "
                      f"{doc.peak_rss_mib:>18.1f} {spy.longest_pause * 1000:>17.0f} "
                      f"{doc.longest_pause * 1000:>20.0f}", flush=True)
            finally:
                stop(target)
    print("paused: the longest gap the target's ticker saw during a run; 0 is under 10 ms")


if __name__ == "__main__":
    main()

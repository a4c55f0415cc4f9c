"""Time `threaddoc diagnose --samples 1 --json` against `py-spy dump --json --locals` on the same
targets in the same run (a benchmark, not a test: these machines are shared and noisy).

    python bench/compare_pyspy.py [--threads 10 100 1000] [--runs 5] [--samples 3]

With `--samples N` threaddoc takes N samples 0.25 s apart; the ratio is then computed on its
time minus the (N - 1) intervals it sleeps between samples.

For each thread count, starts bench/many_threads_on_one_lock.py, then alternates the two
commands `--runs` times each and reports the medians, the ratio, and threaddoc's peak RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
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


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=1)
    options = parser.parse_args()
    py_spy = str(Path(sys.executable).parent / "py-spy")
    if not os.path.exists(py_spy):
        py_spy = shutil.which("py-spy") or "py-spy"
    print(f"{'threads':>8} {'py-spy s':>9} {'threaddoc s':>12} {'ratio':>6} {'diff ms':>8} "
          f"{'peak RSS MiB':>13}")
    with tempfile.TemporaryDirectory() as workdir:
        for count in options.threads:
            target = start_target(count, Path(workdir))
            try:
                spy, doc = [], []
                for _ in range(options.runs):
                    spy.append(timed([py_spy, "dump", "--pid", str(target.pid), "--json", "--locals"]))
                    doc.append(timed([sys.executable, "-m", "threaddoc", "diagnose", str(target.pid),
                                      "--samples", str(options.samples), "--interval", "0.25",
                                      "--json"]) - (options.samples - 1) * 0.25)
                rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
                spy_median, doc_median = statistics.median(spy), statistics.median(doc)
                print(f"{count:>8} {spy_median:>9.3f} {doc_median:>12.3f} {doc_median / spy_median:>6.2f} "
                      f"{(doc_median - spy_median) * 1000:>8.0f} {rss:>13.1f}", flush=True)
            finally:
                stop(target)


if __name__ == "__main__":
    main()

"""Re-capture the recordings the unit tests run on.

    python tests/tools/record_samples.py                 # hung samples x every interpreter
    python tests/tools/record_samples.py --waits         # wait-state programs x every interpreter
    python tests/tools/record_samples.py lock_order_deadlock --python 3.12
    python tests/tools/record_samples.py --except gil_contention   # all but these

Each program is started under each CPython 3.8-3.13 that pyenv holds, collected
live by threaddoc's own collector (py-spy, psutil, sources) and written to
tests/recordings/<program>-py<X.Y>.json (wait-state programs from
tests/wait_programs/ to tests/recordings/waits/).  After re-capturing, update
the golden reports with `python tests/tools/update_goldens.py` and review the diff.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))

from pythons import interpreters

from threaddoc.collect import collect
from threaddoc.demo import running_program, sample_path
from threaddoc.pipeline import DEFAULT_INTERVAL, DEFAULT_SAMPLES

RECORDINGS = TESTS / "recordings"
WAIT_PROGRAMS = TESTS / "wait_programs"
# Diagnosed live by tests/integration/test_many_threads.py and never recorded: a recording
# of them would be megabytes per interpreter, and what they test is collecting past py-spy's
# limits, which a recording (analysed offline) cannot test.
NOT_RECORDED = {
    "requests_pile_up_behind_pool_refresh": "10,000 threads (THREADDOC_SAMPLE_REQUESTS)",
    "deep_thread_reenters_lock": "a 5,000-frame stack",
}
HUNG_SAMPLES = sorted(
    path.stem for path in sample_path("__init__.py").parent.glob("*.py")
    if not path.name.startswith("_") and path.stem not in NOT_RECORDED
)
# Process trees, recorded as `threaddoc diagnose --children` sees them.
WITH_CHILDREN = frozenset({"pool_child_deadlock", "workers_same_deadlock"})
# Also recorded with native frames (`--native`), to <program>-native-py<X.Y>.json.
WITH_NATIVE = frozenset({"gil_contention", "regex_holds_gil", "ctypes_call_holds_gil"})
WAIT_KINDS = sorted(path.stem for path in WAIT_PROGRAMS.glob("*.py") if not path.name.startswith("_"))


def record(script: Path, minor: str, python: Path, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    with running_program(script, python=str(python)) as process:
        # As `threaddoc diagnose` does by default: several samples, so that the recordings
        # carry progress (did a thread move?) and durations.
        recording = collect(process.pid, samples=DEFAULT_SAMPLES, interval=DEFAULT_INTERVAL,
                            all_children=script.stem in WITH_CHILDREN)
        if script.stem in WITH_NATIVE:
            native = collect(process.pid, samples=DEFAULT_SAMPLES, interval=DEFAULT_INTERVAL, native=True)
            (directory / f"{script.stem}-native-py{minor}.json").write_text(native.to_json(), "utf-8")
        # A child forked without exec (same command line) hangs on its own: record it too.
        for child in recording.child_processes:
            if tuple(child.get("cmdline") or ()) == recording.process.cmdline and not recording.children:
                forked = collect(int(child["pid"]))
                (directory / f"{script.stem}-child-py{minor}.json").write_text(forked.to_json(), "utf-8")
    target = directory / f"{script.stem}-py{minor}.json"
    target.write_text(recording.to_json(), encoding="utf-8")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("programs", nargs="*", help="program names (default: all)")
    parser.add_argument("--waits", action="store_true", help="record tests/wait_programs/")
    parser.add_argument("--python", action="append", help="minor version(s), e.g. 3.12")
    parser.add_argument("--except", dest="excluded", action="append", default=[],
                        help="program(s) to leave out")
    options = parser.parse_args()
    available = interpreters()
    if options.waits:
        scripts = [WAIT_PROGRAMS / f"{name}.py" for name in options.programs or WAIT_KINDS]
        directory = RECORDINGS / "waits"
    else:
        scripts = [sample_path(f"{name}.py") for name in options.programs or HUNG_SAMPLES
                   if name not in options.excluded]
        directory = RECORDINGS
    for minor in options.python or list(available):
        for script in scripts:
            print(record(script, minor, available[minor], directory), flush=True)


if __name__ == "__main__":
    main()

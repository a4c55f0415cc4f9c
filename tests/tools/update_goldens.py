"""Regenerate the golden reports from the recordings:

    python tests/tools/update_goldens.py

Writes tests/golden/<recording>.txt and .json, exactly what the renderers print
for each recording in tests/recordings/, and for the many-thread process made from one
of them by tests/many_threads.py (too big to check in as a recording: its report is
what matters).  Review `git diff tests/golden` before committing: every change there is
a change users will see.
"""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))

from conftest import GOLDEN, recording_names, report
from many_threads import BASE, cloned_requests

from threaddoc.pipeline import Report, analyse_recording
from threaddoc.render import json as json_render
from threaddoc.render import text as text_render

# The oldest and newest interpreter: the renderers' output is pinned on both ends; the
# analysis on every version is asserted by the unit tests.
GOLDEN_VERSIONS = ("py3.8", "py3.13")


# A thread-per-request server stuck behind one lock: the recorded process with 100 more
# request threads, enough for every aggregation of the reports (a count in the title,
# one line for the waiters, one row for alike threads) and a JSON golden of ~0.3 MB.
MANY_THREADS = {f"{BASE.rsplit('-py', 1)[0]}-105_threads-py{BASE.rsplit('-py', 1)[1]}": 100}


def golden_names() -> list[str]:
    return [name for name in recording_names() if name.endswith(GOLDEN_VERSIONS)] + list(MANY_THREADS)


def golden_report(name: str) -> Report:
    if name in MANY_THREADS:
        return analyse_recording(cloned_requests(MANY_THREADS[name]))
    return report(name)


def golden_text(name: str) -> str:
    return "\n".join(text_render.render(golden_report(name))) + "\n"


def golden_json(name: str) -> str:
    return json_render.render(golden_report(name))


def main() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for stale in GOLDEN.iterdir():
        stale.unlink()
    for name in golden_names():
        (GOLDEN / f"{name}.txt").write_text(golden_text(name), encoding="utf-8")
        (GOLDEN / f"{name}.json").write_text(golden_json(name), encoding="utf-8")
        print(GOLDEN / name)


if __name__ == "__main__":
    main()

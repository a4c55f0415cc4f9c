"""Each saved format of each hung sample gives the live diagnosis, or says why it cannot.

tests/captures/ holds, per sample and interpreter, what one and the same process gave:
threaddoc's live recording (the ground truth), py-spy's JSON dump, and the faulthandler
dump it printed when it was killed (plus register/dump_traceback_later variants and
pytest-timeout logs for some). Every text dump is diagnosed through `load_saved` exactly
as `threaddoc diagnose --from` does, with the sources found in this checkout.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from threaddoc.collect.saved import SourceRoot, load_saved, read_dump_file
from threaddoc.pipeline import Report, analyse

TESTS = Path(__file__).resolve().parents[1]
CAPTURES = TESTS / "captures"
ROOTS = [SourceRoot.parse(str(TESTS.parent / "hung_samples")), SourceRoot.parse(str(TESTS / "tools"))]

# What a thread dump cannot show, by sample: the live diagnosis rests on it. Such a dump
# still must not claim more than the live read did.
NOT_IN_A_DUMP = {
    "busy_but_healthy": "CPU time between samples (busy, not hung)",
    "busy_pool_long_queue": "CPU time between samples (busy, not hung)",
    "cpu_spin_waits_for_flag": "CPU time between samples (a spinning thread)",
    "exit_waits_for_progressing_job": "CPU time between samples (the job progresses)",
    "gil_contention": "CPU time between samples (threads sharing the GIL)",
    "lock_contention_progress": "CPU time between samples (the lock changes hands)",
    "long_computation_holds_lock": "CPU time between samples (the holder computes)",
    "regex_holds_gil": "CPU time and the GIL holder over several samples",
    "ctypes_call_holds_gil": "who holds the GIL, asleep, over several samples",
    "client_read_without_timeout": "the kernel's recvfrom() on a connected socket (no timeout)",
    "lock_held_during_slow_request": "the kernel's recvfrom() with no timeout (so the finding is a warning)",
    "popen_wait_with_full_pipe": "the child's write() to a full pipe",
    "pool_child_deadlock": "the stacks of the child processes, where the deadlock is",
    "workers_same_deadlock": "the stacks of the child processes, where the deadlock is",
    "process_pool_result_never_comes": "the stacks of the child process that is stuck",
    "threads_join_each_other": "which thread `self.peer` is: an address",
    "slow_worker_progressing": "its progress between samples (a dump may catch it asleep holding a lock)",
    "edge-many_threads": "the event, reached only through threading's own frames: its address",
    "edge-non_ascii_path": "its source, in a temporary directory that is gone",
}

# pytest-timeout's dump leaves out its own timer thread, which a live read sees waiting
# with a timeout (so "someone could still signal"); the dump rightly says no one can.
SEES_LESS_OF_PYTEST = {"edge-deep_recursion"}


def _dumps() -> list[tuple[str, Path, Path]]:
    found = []
    for recording in sorted(CAPTURES.glob("*/py3.*/**/recording.json")):
        for dump in sorted([*recording.parent.glob("*.txt"), *recording.parent.glob("*.log")]):
            sample = recording.relative_to(CAPTURES).parts[0]
            found.append((sample, recording, dump))
    return found


DUMPS = _dumps()


def _live(recording: Path) -> Report:
    (snapshot,) = load_saved(recording.read_text(encoding="utf-8"), str(recording))
    return analyse(snapshot)


def _saved(dump: Path) -> Report:
    text, _written = read_dump_file(str(dump))
    (snapshot,) = load_saved(text, str(dump), ROOTS)
    return analyse(snapshot)


def _findings(report: Report) -> set[tuple[str, frozenset[int]]]:
    """Each finding's kind and the threads it is about, by Python thread ident (the one
    identity live reads and text dumps share); who is blocked behind them is left out."""
    ident = {analysis.thread.name: analysis.thread.thread_id for analysis in report.analyses}
    # Threads of child processes (a pool's workers) have no ident in the parent's dump.
    return {(finding.kind, frozenset(ident[ref.name] for ref in finding.threads if ref.name in ident
                                     and ref.name not in {behind.name for behind, _ in finding.blocked}))
            for finding in report.findings}


def _critical_kinds(report: Report) -> set[str]:
    return {finding.kind for finding in report.findings if finding.severity.value == "critical"}


def test_there_are_captures_of_every_format() -> None:
    names = {dump.name for _, _, dump in DUMPS}
    assert {"faulthandler.txt", "faulthandler-register.txt", "faulthandler-later.txt",
            "pytest-timeout.log"} <= names
    samples = {sample for sample, _, _ in DUMPS}
    assert len(samples) >= 40, samples


@pytest.mark.parametrize(("sample", "recording", "dump"), DUMPS,
                         ids=[str(dump.relative_to(CAPTURES)) for _, _, dump in DUMPS])
def test_a_text_dump_gives_the_live_diagnosis(sample: str, recording: Path, dump: Path) -> None:
    live, saved = _live(recording), _saved(dump)
    assert saved.snapshot.origin is not None and not saved.snapshot.has_addresses
    if sample in SEES_LESS_OF_PYTEST and dump.name == "pytest-timeout.log":
        assert _critical_kinds(saved) - _critical_kinds(live) <= {"unsignalled-wait"}
        return
    if sample in NOT_IN_A_DUMP:
        # Less is known; more must never be claimed (a warning about what the one dump
        # shows, a lock held while sleeping, is no claim of a hang).
        assert _critical_kinds(saved) <= _critical_kinds(live), NOT_IN_A_DUMP[sample]
        assert saved.verdict.value in ("no-hang", live.verdict.value), NOT_IN_A_DUMP[sample]
        return
    assert _findings(saved) == _findings(live)
    assert saved.verdict is live.verdict
    for finding in saved.findings:
        matching = next(f for f in live.findings if f.kind == finding.kind)
        # Never surer than live; lower only where identities were read by name.
        order = ["possible", "likely", "confirmed"]
        assert order.index(finding.confidence.value) <= order.index(matching.confidence.value)


@pytest.mark.parametrize("recording", sorted(CAPTURES.glob("*/py3.*/recording.json")),
                         ids=lambda path: str(path.parent.relative_to(CAPTURES)))
def test_the_pyspy_dump_of_the_same_process_gives_the_live_deadlocks(recording: Path) -> None:
    live = _live(recording)
    text, _written = read_dump_file(str(recording.parent / "pyspy.json"))
    (snapshot,) = load_saved(text, "pyspy.json", ROOTS)
    saved = analyse(snapshot)
    assert snapshot.has_addresses
    stack_only = {"lock-order-deadlock", "self-deadlock", "join-deadlock", "future-cross-wait",
                  "executor-starvation", "import-lock-deadlock"}
    if not load_saved(recording.read_text(encoding="utf-8"), "r")[0].children:
        assert {f for f in _findings(saved) if f[0] in stack_only} == \
            {f for f in _findings(live) if f[0] in stack_only}

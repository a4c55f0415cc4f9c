"""Regenerate the example reports, one per finding kind, from the recordings:

    python tests/tools/update_examples.py

Writes docs/examples/<kind>.txt, the text report (no color) of the hung sample that
shows that kind, and docs/examples/README.md, the list of kinds with a link to each.
They are made from tests/recordings/ like the goldens, never by hand, so they show
what threaddoc prints today; tests/unit/test_examples.py fails when they drift.
Review `git diff docs/examples` before committing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS / "tools"))

from conftest import recording_names, report
from update_goldens import GOLDEN_VERSIONS, golden_text

from threaddoc.findings.kinds import FINDING_KINDS
from threaddoc.pipeline import Report

ROOT = TESTS.parent
EXAMPLES = ROOT / "docs" / "examples"
INDEX = "README.md"

# The newest interpreter: what users of a current Python will see.
EXAMPLE_VERSION = GOLDEN_VERSIONS[-1]

# The recording (sample name, and -child/-native where it matters) whose report shows
# each kind best: the smallest program that leads with it. Chosen by hand because
# "best" is a judgement; the test checks each still produces its kind, and that every
# kind some recording produces has one.
SAMPLE_OF_KIND = {
    "lock-order-deadlock": "lock_order_deadlock",
    "self-deadlock": "helper_reacquires_lock",
    "join-deadlock": "join_while_holding_lock",
    "executor-starvation": "nested_submit_starvation",
    "future-cross-wait": "futures_wait_on_each_other",
    "blocked-shutdown": "exit_blocked_by_queue_consumer",
    "queue-starvation": "consumer_outlives_producer",
    "unsignalled-wait": "event_never_set",
    "lock-held-during-io": "lock_held_during_slow_request",
    "blocking-io-no-timeout": "client_read_without_timeout",
    "subprocess-pipe-deadlock": "popen_wait_with_full_pipe",
    "import-lock-deadlock": "import_starts_thread",
    "event-loop-blocked": "asyncio_handler_blocks_loop",
    "fork-inherited-lock": "fork_while_lock_held-child",
    "gil-held-while-blocked": "ctypes_call_holds_gil-native",
    "cpu-bound": "cpu_spin_waits_for_flag",
    "gil-contention": "gil_contention",
}

# Variants of a recording run the same program: "fork_while_lock_held-child" is the
# forked child of hung_samples/fork_while_lock_held.py, "-native" was read with --native.
_VARIANTS = {"-child": "its forked child", "-native": "read with `--native`"}


class ExamplesNeedChoosing(Exception):
    """The recordings produce a kind this tool has no example for, or no longer one it has."""


def all_kinds(one: Report) -> Iterator[str]:
    """The kinds of a report's findings, its child processes' included."""
    yield from (finding.kind for finding in one.findings)
    for child in one.children:
        yield from all_kinds(child)


def produced_kinds() -> set[str]:
    """Every finding kind that some recording, on any interpreter, produces."""
    return {kind for name in recording_names() for kind in all_kinds(report(name))}


def recording_of(kind: str) -> str:
    return f"{SAMPLE_OF_KIND[kind]}-{EXAMPLE_VERSION}"


def program_of(kind: str) -> tuple[str, str]:
    """The hung sample a kind's example comes from, and how it was read ("" if plainly)."""
    sample, how = SAMPLE_OF_KIND[kind], ""
    for variant, meaning in _VARIANTS.items():
        if sample.endswith(variant):
            sample, how = sample.removesuffix(variant), meaning
    return f"hung_samples/{sample}.py", how


def example_kinds() -> list[str]:
    """The kinds that get an example, in the vocabulary's order; fails loudly when a
    recording produces a kind the vocabulary or SAMPLE_OF_KIND lacks."""
    known = [kind for kind, _ in FINDING_KINDS]
    produced = produced_kinds()
    unknown = produced - set(known)
    if unknown:
        raise ExamplesNeedChoosing(f"add {sorted(unknown)} to FINDING_KINDS in threaddoc/findings/kinds.py")
    unchosen = produced - set(SAMPLE_OF_KIND)
    if unchosen:
        raise ExamplesNeedChoosing(f"choose a recording for {sorted(unchosen)} in SAMPLE_OF_KIND")
    return [kind for kind in known if kind in produced]


def example_text(kind: str) -> str:
    name = recording_of(kind)
    if kind not in set(all_kinds(report(name))):
        raise ExamplesNeedChoosing(f"{name} no longer produces {kind}: choose another in SAMPLE_OF_KIND")
    return golden_text(name)


def index_text(kinds: list[str]) -> str:
    lines = [
        "# Example reports, one per finding kind",
        "",
        "What `threaddoc diagnose PID` prints (text, no color) for each kind of finding, on the",
        f"hung sample that shows it, as recorded on CPython {EXAMPLE_VERSION.removeprefix('py')}. "
        "Generated from `tests/recordings/`",
        "by `python tests/tools/update_examples.py`: do not edit by hand (a test compares them).",
        "",
        "| kind | meaning | example | program |",
        "|---|---|---|---|",
    ]
    for kind, meaning in FINDING_KINDS:
        if kind in kinds:
            program, how = program_of(kind)
            lines.append(f"| `{kind}` | {meaning} | [{kind}.txt]({kind}.txt) | "
                         f"[{Path(program).name}](../../{program}){', ' + how if how else ''} |")
    missing = [kind for kind, _ in FINDING_KINDS if kind not in kinds]
    lines += ["", "Kinds no sample produces: " + (", ".join(f"`{kind}`" for kind in missing) or "none") + "."]
    return "\n".join(lines) + "\n"


def expected_files() -> dict[str, str]:
    """docs/examples/ as it should be: file name -> content."""
    kinds = example_kinds()
    files = {f"{kind}.txt": example_text(kind) for kind in kinds}
    files[INDEX] = index_text(kinds)
    return files


def main() -> None:
    try:
        files = expected_files()
    except ExamplesNeedChoosing as error:
        raise SystemExit(f"update_examples: {error}") from None
    EXAMPLES.mkdir(parents=True, exist_ok=True)
    for stale in EXAMPLES.iterdir():
        if stale.name not in files:
            stale.unlink()
    for name, text in files.items():
        (EXAMPLES / name).write_text(text, encoding="utf-8")
        print(EXAMPLES / name)


if __name__ == "__main__":
    main()

"""A process with thousands of threads reads as a short report with exact counts.

The process is the recorded `lock_held_during_slow_request` with 3,000 more request
threads (tests/many_threads.py): "cache-refresher" holds `cache_lock` while it waits on
a socket that never answers, and 3,002 request threads wait for the lock.
"""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
from conftest import report
from many_threads import cloned, cloned_requests

from threaddoc.findings.groups import (
    GROUP_AT_LEAST,
    NAMED_IN_FULL,
    collapsed,
    sample_of,
    some_of,
    some_threads,
)
from threaddoc.pipeline import Report, analyse_recording
from threaddoc.render import json as json_render
from threaddoc.render.groups import stack_groups
from threaddoc.render.text import TIMES, render
from threaddoc.schema import load_schema

EXTRA = 3_000
THREADS = EXTRA + 5  # the recording's five threads
WAITERS = EXTRA + 2  # request-1, request-2 and the clones


@pytest.fixture(scope="module")
def many() -> Report:
    return analyse_recording(cloned_requests(EXTRA))


@pytest.fixture(scope="module")
def many_text(many: Report) -> list[str]:
    return list(render(many))


@pytest.fixture(scope="module")
def many_json(many: Report) -> dict[str, object]:
    document: dict[str, object] = json.loads(json_render.render(many, pretty=False))
    return document


def test_the_recording_has_thousands_of_threads_waiting_for_one_holder(many: Report) -> None:
    assert len(many.analyses) == THREADS
    finding = next(f for f in many.findings if f.kind == "lock-held-during-io")
    assert len(finding.threads) == 1 + WAITERS  # the findings still know every waiter


def test_the_text_report_is_short_and_names_the_holder(many_text: list[str]) -> None:
    assert len(many_text) < 80
    assert '"cache-refresher" holds cache_lock while it is blocked in recvfrom()' in many_text[0]
    assert f"{WAITERS:,} threads (" in many_text[0] and "wait for it" in many_text[0]


def test_the_finding_lists_the_holder_alone_and_the_waiters_as_one_line(many_text: list[str]) -> None:
    assert '    "cache-refresher" (tid 3153): holds cache_lock during I/O' in many_text
    waiters = [line for line in many_text if line.startswith(f"    {WAITERS:,} threads (")]
    assert len(waiters) == 1 and waiters[0].endswith(f"and {WAITERS - 3:,} more): waits for cache_lock")
    evidence = [line for line in many_text if "wait for it, at " in line]
    assert len(evidence) == 1 and evidence[0].strip().startswith(f"{WAITERS:,} threads (")


def test_the_thread_table_counts_every_thread_exactly_once(many: Report, many_text: list[str]) -> None:
    table = many_text[many_text.index(next(line for line in many_text if line.startswith("Threads ("))) + 2:]
    counted = 0
    for row in table:
        grouped = re.match(rf"  {TIMES}([\d,]+) ", row)
        counted += int(grouped.group(1).replace(",", "")) if grouped else 1
    assert counted == len(many.analyses)
    assert len(table) == 5


def test_holders_keep_their_own_row(many_text: list[str]) -> None:
    rows = {line.split()[0] for line in many_text if line.startswith("  ") and "hung_samples/" in line}
    # cache-refresher holds the lock; request-1 is joined by the main thread.
    assert {"MainThread", "cache-refresher", "request-1", "pricing-upstream"} <= rows
    group_row = next(line for line in many_text if line.startswith(f"  {TIMES}"))
    assert group_row.startswith(f"  {TIMES}{WAITERS - 1:,} ")
    assert group_row.endswith(f"(request-2, request-3, request-4 and {WAITERS - 4:,} more)")


def test_json_keeps_every_thread_and_counts_them(many_json: dict[str, object]) -> None:
    threads = many_json["threads"]
    assert isinstance(threads, list) and len(threads) == THREADS
    findings = many_json["findings"]
    assert isinstance(findings, list)
    finding = next(f for f in findings if f["kind"] == "lock-held-during-io")
    assert finding["thread_count"] == len(finding["threads"]) == 1 + WAITERS
    assert finding["blocked_count"] == len(finding["blocked"]) == 0
    assert f"{WAITERS:,} threads (" in finding["title"]


def test_json_stack_groups_partition_the_threads(many_json: dict[str, object]) -> None:
    threads, groups = many_json["threads"], many_json["stack_groups"]
    assert isinstance(threads, list) and isinstance(groups, list)
    members = sorted(index for group in groups for index in group["threads"])
    assert members == list(range(len(threads)))
    for group in groups:
        assert group["count"] == len(group["threads"])
        assert all(threads[index]["group"] == group["group"] for index in group["threads"])
    biggest = max(groups, key=lambda group: group["count"])
    assert biggest["count"] == WAITERS and biggest["wait_kind"] == "lock-acquire"
    assert biggest["waits_for"]["label"] == "cache_lock"
    assert biggest["at"]["function"] == "handle_request"


def test_the_many_thread_json_validates_against_the_schema() -> None:
    # 300 threads: the same shape, and the validator's time stays small.
    document = json.loads(json_render.render(analyse_recording(cloned_requests(295)), pretty=False))
    jsonschema.validate(document, load_schema())


def test_threads_alike_but_waiting_for_different_objects_are_not_grouped() -> None:
    """A starved pool's four workers run the same code but each waits for its own future:
    the finding names each, and the table gives each a row."""
    for name in ("report_pool_starvation-py3.8", "report_pool_starvation-py3.13"):
        lines = list(render(report(name)))
        workers = [line for line in lines if re.match(r'    "report_\d" \(tid \d+\): starved worker$', line)]
        assert len(workers) == 4
        assert not any(line.startswith(f"  {TIMES}") for line in lines)


def test_small_reports_list_every_thread_by_name() -> None:
    lines = list(render(report("lock_held_during_slow_request-py3.13")))
    assert '    "request-2" (tid 3155): waits for cache_lock' in lines
    assert '    "request-1" (tid 3154): waits for cache_lock' in lines
    assert not any("more" in line for line in lines)


def test_stack_groups_put_alike_threads_together(many: Report) -> None:
    groups = stack_groups(many.analyses)
    assert sum(len(group.members) for group in groups) == THREADS
    assert sorted(len(group.members) for group in groups)[-1] == WAITERS
    assert [group.number for group in groups] == list(range(1, len(groups) + 1))


def test_names_are_counted_exactly() -> None:
    names = [f"t{number}" for number in range(9_874)]
    assert sample_of(names) == "t0, t1, t2 and 9,871 more"
    assert sample_of(names[:3], 9_874) == "t0, t1, t2 and 9,871 more"
    assert sample_of(["a", "b"]) == "a and b"
    assert some_threads(names) == "9,874 threads (t0, t1, t2 and 9,871 more)"
    locks = [f"lock_{n}" for n in range(12)]
    assert some_of(locks, "locks") == "12 locks (lock_0, lock_1, lock_2 and 9 more)"
    in_full = names[:NAMED_IN_FULL]
    assert some_threads(in_full) == ", ".join(in_full[:-1]) + f" and {in_full[-1]}"


def test_collapsed_keeps_the_order_and_joins_only_many_alike() -> None:
    few = ["a1", "b1", "a2", "a3"]
    assert collapsed(few, lambda item: item[0]) == [["a1"], ["b1"], ["a2"], ["a3"]]
    many = ["b1", *(f"a{n}" for n in range(GROUP_AT_LEAST)), "c1"]
    assert collapsed(many, lambda item: item[0]) == [["b1"], [f"a{n}" for n in range(GROUP_AT_LEAST)], ["c1"]]


def test_threads_blocked_behind_a_deadlock_are_counted_and_its_members_named() -> None:
    """The recorded lock-order deadlock, with 2,000 more threads that, like the main
    thread, join teller-1: the cycle is printed in full, the joiners as one line."""
    deadlock = analyse_recording(cloned("lock_order_deadlock-py3.13", "MainThread", 2_000, "joiner-{}",
                                        own=()))
    lines = list(render(deadlock))
    assert len(lines) < 80
    assert lines[0].endswith('"teller-1" and "teller-2" wait for each other\'s locks '
                             "(audit_lock and ledger_lock)")
    assert '    "teller-1" (tid 3172)' in lines and '    "teller-2" (tid 3173)' in lines
    behind = lines[lines.index("    Blocked behind it:") + 1]
    assert behind.startswith('      2,001 threads ("MainThread" (tid 3171), "joiner-1" (tid 1000000), ')
    assert behind.endswith("and 1,998 more): joins teller-1, at "
                           "/work/main/hung_samples/lock_order_deadlock.py:47 in main")
    assert any(line.startswith("  MainThread  3171  thread-join") for line in lines)
    joiners = "(joiner-1, joiner-2, joiner-3 and 1,997 more)"
    assert any(line.startswith(f"  {TIMES}2,000 ") and line.endswith(joiners) for line in lines)
    finding = json.loads(json_render.render(deadlock, pretty=False))["findings"][0]
    assert finding["blocked_count"] == len(finding["blocked"]) == 2_001
    assert finding["thread_count"] == 2 + 2_001


def test_many_waiters_of_an_event_nobody_sets_are_counted() -> None:
    """The recorded never-set Event, with 1,000 more request handlers waiting on it."""
    waits = analyse_recording(cloned("event_never_set-py3.13", "request-handler", 1_000, "handler-{}"))
    finding = next(f for f in waits.findings if f.kind == "unsignalled-wait")
    assert finding.title == ('1,001 threads ("request-handler", "handler-1", "handler-2" and 998 more) '
                             "wait on warm, which no live thread can set")
    assert len(finding.threads) == 1_002 and len(finding.evidence) == 1
    assert finding.evidence[0].note.startswith("1,001 threads (")
    lines = list(render(waits))
    assert len(lines) < 60
    assert any(line.startswith("  request-handler ") for line in lines)  # the main thread joins it
    assert any(line.startswith(f"  {TIMES}1,000 ") for line in lines)

"""Naming many threads in a sentence: the first few by name, the rest by an exact count.

A finding about thousands of threads (a thread-per-request server stuck behind one
lock) names the threads that matter (holders, cycle members) in full, and the waiters
as "9,874 threads (request-1, request-2, request-3 and 9,871 more)".
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

from threaddoc.model import report_order
from threaddoc.resolve import ThreadAnalysis

T = TypeVar("T")

# Three threads in a row read fine; from four identical ones on (same stack, same wait,
# or waiting at the same line), a reader counts lines instead of reading them, and one
# line with a count says it better. Below that, reports are as they always were.
GROUP_AT_LEAST = 4

# Up to eight names still read as one sentence ("a, b, c, d and e wait for it"); past
# that, a reader wants the count first.
NAMED_IN_FULL = 8

# How many names a shortened list keeps: enough to grep the thread table or the JSON for,
# few enough to keep the line on one screen row.
SAMPLE_NAMES = 3


def and_list(items: Sequence[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def sample_of(names: Sequence[str], total: int | None = None) -> str:
    """`a, b, c and 9,871 more`: the first names, and an exact count of the rest (of
    `total`, when only the first names are passed)."""
    count = len(names) if total is None else total
    shown = list(names[:SAMPLE_NAMES])
    if count <= len(shown):
        return and_list(shown)
    return f"{', '.join(shown)} and {count - len(shown):,} more"


def labels(threads: Sequence[ThreadAnalysis]) -> list[str]:
    """Their labels for `some_threads`: in the order given when they are few enough to be
    named in full; in report order when they are many, so that the first few named are
    the first of the thread table too (request-0, request-1, ...), not py-spy's order."""
    if len(threads) > NAMED_IN_FULL:
        threads = sorted(threads, key=lambda analysis: report_order(analysis.thread))
    return [analysis.thread.label for analysis in threads]


def some_threads(names: Sequence[str]) -> str:
    """Every name when they are few (`a, b and c`); else `9,874 threads (a, b, c and 9,871 more)`."""
    return some_of(names, "threads")


def some_of(names: Sequence[str], plural: str) -> str:
    """Every name when they are few; else `1,000 locks (a, b, c and 997 more)`."""
    if len(names) <= NAMED_IN_FULL:
        return and_list(names)
    return f"{len(names):,} {plural} ({sample_of(names)})"


def collapsed(items: Sequence[T], key: Callable[[T], Hashable]) -> list[list[T]]:
    """`items` in their order, except that GROUP_AT_LEAST or more with the same key are one
    list, at the place of the first of them: `[[a], [b, d, e, f], [c]]`. Linear."""
    by_key: dict[Hashable, list[T]] = {}
    keys = [key(item) for item in items]
    for item, item_key in zip(items, keys):
        by_key.setdefault(item_key, []).append(item)
    runs: list[list[T]] = []
    for item, item_key in zip(items, keys):
        same = by_key[item_key]
        if len(same) < GROUP_AT_LEAST:
            runs.append([item])
        elif same[0] is item:
            runs.append(same)
    return runs

"""Threads that are stuck the same way: the same stack and the same wait.

A thread-per-request server whose backend hangs has thousands of request threads with
one stack, all waiting for one lock. They are one group: the reports print the group
once, with its count, the way Go's goroutine dumps and jstack-based tools do. Grouping
is computed from the analysed threads alone, so it works whatever collected them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

from threaddoc.findings.groups import GROUP_AT_LEAST
from threaddoc.model import report_order
from threaddoc.resolve import ThreadAnalysis

__all__ = ["GROUP_AT_LEAST", "GroupKey", "StackGroup", "group_key", "stack_groups"]

GroupKey = tuple[Union[str, tuple[object, ...], None], ...]


@dataclass(frozen=True)
class StackGroup:
    """Threads with the same frames (function, file, line) that wait the same way for the
    same object; `members` index the analyses, in report order."""

    number: int  # 1, 2, ... in report order of each group's first thread
    members: tuple[int, ...]


def group_key(analysis: ThreadAnalysis) -> GroupKey:
    """Same frames, same state and wait kind, same resource. A resource known by identity
    is compared by it; one that could not be rooted (`locks[i]`) only by how the code
    spells it, which is all any report says of it."""
    frames = tuple((frame.function, frame.filename, frame.line) for frame in analysis.thread.frames)
    resource = analysis.waits_for
    identity: tuple[object, ...] | None = None
    if resource is not None:
        known = resource.key if resource.key is not None else ("unrooted", resource.name)
        identity = (resource.kind, *known)
    return (analysis.wait.activity.value, analysis.wait.kind.value, identity, frames)


def stack_groups(analyses: Sequence[ThreadAnalysis]) -> tuple[StackGroup, ...]:
    """Every thread in exactly one group (most groups have one thread). Linear in the
    number of frames, after one sort of the threads into report order."""
    members: dict[GroupKey, list[int]] = {}
    for index in sorted(range(len(analyses)), key=lambda i: report_order(analyses[i].thread)):
        members.setdefault(group_key(analyses[index]), []).append(index)
    return tuple(StackGroup(number, tuple(indexes)) for number, indexes in enumerate(members.values(), 1))


"""Thread pools, recognised from their workers' frames."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from threaddoc.model import Thread, report_order
from threaddoc.resolve import ThreadAnalysis


@dataclass(frozen=True)
class Pool:
    name: str
    workers: tuple[int, ...]  # thread indexes

    @property
    def size_text(self) -> str:
        return f"{len(self.workers)} worker{'s' * (len(self.workers) != 1)}"


def thread_pools(analyses: Sequence[ThreadAnalysis]) -> list[Pool]:
    """Workers grouped by the work queue their `_worker` loop reads: one queue, one pool."""
    by_queue: dict[int, list[int]] = {}
    for index, analysis in enumerate(analyses):
        queue = _work_queue_address(analysis.thread)
        if queue is not None:
            by_queue.setdefault(queue, []).append(index)
    return [Pool(_pool_name([analyses[i].thread.name for i in workers]),
                 tuple(sorted(workers, key=lambda i: report_order(analyses[i].thread))))
            for workers in by_queue.values()]


def _work_queue_address(thread: Thread) -> int | None:
    for frame in thread.frames:
        if frame.module == "concurrent.futures.thread" and frame.method_name == "_worker":
            queue = frame.local("work_queue")
            return queue.address if queue is not None else None
    return None


def _pool_name(names: list[str]) -> str:
    prefixes = {re.sub(r"_\d+$", "", name) for name in names}
    return prefixes.pop() if len(prefixes) == 1 else "thread pool"


def pool_of(pools: Sequence[Pool], thread_index: int) -> Pool | None:
    return next((pool for pool in pools if thread_index in pool.workers), None)

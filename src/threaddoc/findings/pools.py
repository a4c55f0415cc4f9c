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
    # Grouped by thread name, not by work queue (a saved dump without addresses): two
    # pools may have been taken for one.
    by_name: bool = False

    @property
    def size_text(self) -> str:
        return f"{len(self.workers)} worker{'s' * (len(self.workers) != 1)}"


def thread_pools(analyses: Sequence[ThreadAnalysis]) -> list[Pool]:
    """Workers grouped by the work queue their `_worker` loop reads: one queue, one pool.
    Without addresses, by the name prefix the executor gives its workers."""
    by_queue: dict[object, list[int]] = {}
    for index, analysis in enumerate(analyses):
        queue = _work_queue(analysis.thread)
        if queue is not None:
            by_queue.setdefault(queue, []).append(index)
    return [Pool(_pool_name([analyses[i].thread.name for i in workers]) if queue != "" else ANONYMOUS,
                 tuple(sorted(workers, key=lambda i: report_order(analyses[i].thread))),
                 by_name=isinstance(queue, str))
            for queue, workers in by_queue.items()]


ANONYMOUS = "(unnamed)"  # its workers' names are not known (a faulthandler dump)


def _work_queue(thread: Thread) -> int | str | None:
    for frame in thread.frames:
        if frame.module == "concurrent.futures.thread" and frame.method_name == "_worker":
            queue = frame.local("work_queue")
            if queue is not None:
                return queue.address
            if frame.locals:
                return None
            # An executor names its workers PREFIX_N; a dump without names (faulthandler)
            # leaves one anonymous pool.
            return _WORKER_SUFFIX.sub("", thread.name) if _WORKER_SUFFIX.search(thread.name) else ""
    return None


_WORKER_SUFFIX = re.compile(r"_\d+$")


def _pool_name(names: list[str]) -> str:
    prefixes = {_WORKER_SUFFIX.sub("", name) for name in names}
    return prefixes.pop() if len(prefixes) == 1 else ANONYMOUS


def pool_of(pools: Sequence[Pool], thread_index: int) -> Pool | None:
    return next((pool for pool in pools if thread_index in pool.workers), None)

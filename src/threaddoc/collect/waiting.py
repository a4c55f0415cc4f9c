"""Work for the moments collection waits anyway: while py-spy reads the target, and in the
interval between two samples of the memory reader.

A live diagnosis loads the analysis and the renderer only once the target has been read
(see pipeline.py), which at a few threads is most of its time beyond py-spy's own. The CLI
hands that loading to `while_waiting`; collection calls `do_waiting_work` where it would
otherwise just wait, in the main thread (the work is imports: no thread of its own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

_pending: list[Callable[[], None]] = []


@contextmanager
def while_waiting(work: Callable[[], None]) -> Iterator[None]:
    """`work` is done at the first wait within the block, if there is one."""
    _pending.append(work)
    try:
        yield
    finally:
        if work in _pending:
            _pending.remove(work)


def do_waiting_work() -> None:
    """Whatever was handed to `while_waiting`, once."""
    while _pending:
        _pending.pop(0)()

"""Which task a future runs, and which task a pool worker is running.

A `Future` does not say what it runs, and a worker's frames do not show the future it
serves. The program's source does: `pending["parse"] = pool.submit(parse)` ties the
future named `pending["parse"]` (or, for a local, the object at its address) to
`parse`; and the function a worker runs is the frame `_WorkItem.run` calls.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass, field

from threaddoc import sourcecode
from threaddoc.collect.parse import module_of
from threaddoc.model import Snapshot, SourceFile, Thread


@dataclass(frozen=True)
class FutureTasks:
    """Future -> the function submitted for it, by the future's address or its spelling."""

    by_address: Mapping[int, str] = field(default_factory=dict)
    by_spelling: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (module, code) -> fn

    def task_of(self, address: int | None, module: str, spelling: str | None) -> str | None:
        if address is not None and address in self.by_address:
            return self.by_address[address]
        if spelling is not None:
            return self.by_spelling.get((module, sourcecode.canonical(spelling)))
        return None


def future_tasks(snapshot: Snapshot) -> FutureTasks:
    by_spelling: dict[tuple[str, str], str] = {}
    submitted_names: dict[tuple[str, str], str] = {}  # (file, local name) -> fn
    for path, source in snapshot.sources.items():
        module = module_of(path)[0]
        for target, function in _submissions(source):
            by_spelling[(module, target)] = function
            submitted_names[(path, target)] = function
    by_address: dict[int, str] = {}
    for thread in snapshot.threads:
        for frame in thread.frames:
            for local in frame.locals:
                submitted = submitted_names.get((frame.filename, local.name))
                if submitted is not None and local.address is not None and local.type_name == "Future":
                    by_address[local.address] = submitted
    return FutureTasks(by_address, by_spelling)


def _submissions(source: SourceFile) -> list[tuple[str, str]]:
    """(`target`, `fn`) for each `target = something.submit(fn, ...)` in the file."""
    module = sourcecode.tree(source)
    if module is None:
        return []
    found = []
    for node in ast.walk(module):
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        call = node.value
        if not (isinstance(call.func, ast.Attribute) and call.func.attr == "submit" and call.args):
            continue
        function = sourcecode.callable_name(call.args[0])
        if function is None:
            continue
        for target in node.targets:
            found.append((sourcecode.canonical(sourcecode.unparse(target)), function))
    return found


def running_task(thread: Thread) -> str | None:
    """The function a pool worker is running: the frame `_WorkItem.run` called."""
    for inner, outer in zip(thread.frames, thread.frames[1:]):
        if outer.module == "concurrent.futures.thread" and outer.method_name == "run":
            return inner.method_name
    return None

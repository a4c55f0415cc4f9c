"""Collection: the only stage that touches the target.

`collect(pid)` returns a `Recording` (py-spy's dump, psutil's facts, the
program's source files); everything after it is a pure function of that.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from threaddoc.classify.rules import HOLD_RULES
from threaddoc.errors import TargetError
from threaddoc.model import ProcessFacts

from .kernel import machine, read_children, read_kernel_states, read_open_files, read_undisturbed
from .parse import module_of
from .process import child_pids, process_facts
from .pyspy import dump, find_py_spy
from .recording import Recording, load_recording
from .sampling import representative, stack_sample, thread_cpu_times
from .sources import read_sources

__all__ = ["Recording", "collect", "load_recording"]


MAX_POOL_CHILDREN = 8


def collect(pid: int, *, py_spy: str | None = None, timeout: float = 20.0, samples: int = 1,
            interval: float = 0.25, with_pool_children: bool = True) -> Recording:
    executable = find_py_spy(py_spy)
    facts = process_facts(pid)
    kernel = read_undisturbed(pid)
    history = []
    dumps = []
    for sample in range(samples):
        if sample:
            time.sleep(interval)
        dumps.append(dump(pid, executable, timeout))
        history.append(stack_sample(dumps[-1], thread_cpu_times(pid)))
    raw = representative(dumps)
    # Threads started since: read them now.
    kernel.update(read_kernel_states(pid, [tid for tid in _thread_ids(raw) if str(tid) not in kernel]))
    files = read_open_files(pid)
    child_facts = read_children(pid)
    sources, warnings = read_sources(pid, _files_to_read(raw), facts.create_time)
    if facts.python_version is None:
        facts = _with_version_from_frames(facts, raw)
    children: tuple[Recording, ...] = ()
    if with_pool_children and _uses_process_pool(raw):
        children = _collect_children(pid, executable, timeout, samples, interval, warnings)
    return Recording(process=facts, pyspy=tuple(raw), sources=sources, warnings=tuple(warnings),
                     kernel=kernel, arch=machine(), children=children, open_files=files,
                     child_processes=tuple(child_facts),
                     history=tuple(history) if samples > 1 else ())


def _uses_process_pool(raw: Sequence[Mapping[str, Any]]) -> bool:
    """A process pool's manager thread is running: its workers are our children."""
    return any(module_of(filename)[0] == "concurrent.futures.process" for filename in _filenames(raw))


def _collect_children(
    pid: int, py_spy: str, timeout: float, samples: int, interval: float, warnings: list[str]
) -> tuple[Recording, ...]:
    """The worker processes, so that a parent waiting on a result can be linked to the
    child that will not produce it. A child that cannot be read is skipped, with a warning."""
    recordings = []
    for child in child_pids(pid)[:MAX_POOL_CHILDREN]:
        try:
            recordings.append(collect(child, py_spy=py_spy, timeout=timeout, samples=samples,
                                      interval=interval, with_pool_children=False))
        except TargetError as error:
            warnings.append(f"worker process {child} could not be inspected: {error.message}")
    return tuple(recordings)


def _thread_ids(raw: Sequence[Mapping[str, Any]]) -> list[int]:
    return [int(thread["os_thread_id"]) for thread in raw if isinstance(thread.get("os_thread_id"), int)]


def _filenames(raw: Sequence[Mapping[str, Any]]) -> set[str]:
    return {str(frame.get("filename") or "") for thread in raw for frame in thread.get("frames") or ()}


def _files_to_read(raw: Sequence[Mapping[str, Any]]) -> set[str]:
    """Files of the program and its libraries. Standard-library waits are known from the rule
    table; of the standard library only the modules whose frames hold locks are read, to
    say where they took them."""
    files = set()
    for filename in _filenames(raw):
        module, stdlib = module_of(filename)
        if filename and (not stdlib or module in _HOLDING_MODULES):
            files.add(filename)
    return files


_HOLDING_MODULES = frozenset(rule.module for rule in HOLD_RULES)


def _with_version_from_frames(facts: ProcessFacts, raw: Sequence[Mapping[str, Any]]) -> ProcessFacts:
    for filename in sorted(_filenames(raw)):
        found = re.search(r"/lib/python(3\.\d+)/", filename)
        if found:
            return dataclasses.replace(facts, python_version=found.group(1))
    return facts

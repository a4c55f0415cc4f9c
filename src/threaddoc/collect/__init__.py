"""Collection: the only stage that touches the target.

`collect(pid)` returns a `Recording` (py-spy's dump, psutil's facts, the
program's source files); everything after it is a pure function of that.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from threaddoc.model import ProcessFacts

from .parse import module_of
from .process import process_facts
from .pyspy import dump, find_py_spy
from .recording import Recording, load_recording
from .sources import read_sources

__all__ = ["Recording", "collect", "load_recording"]


def collect(pid: int, *, py_spy: str | None = None, timeout: float = 20.0) -> Recording:
    executable = find_py_spy(py_spy)
    facts = process_facts(pid)
    raw = dump(pid, executable, timeout)
    sources, warnings = read_sources(pid, _program_files(raw), facts.create_time)
    if facts.python_version is None:
        facts = _with_version_from_frames(facts, raw)
    return Recording(process=facts, pyspy=tuple(raw), sources=sources, warnings=tuple(warnings))


def _filenames(raw: list[dict[str, Any]]) -> set[str]:
    return {str(frame.get("filename") or "") for thread in raw for frame in thread.get("frames") or ()}


def _program_files(raw: list[dict[str, Any]]) -> set[str]:
    """Files of the program and its libraries; stdlib waits are known from the rule table."""
    return {filename for filename in _filenames(raw) if filename and not module_of(filename)[1]}


def _with_version_from_frames(facts: ProcessFacts, raw: list[dict[str, Any]]) -> ProcessFacts:
    for filename in sorted(_filenames(raw)):
        found = re.search(r"/lib/python(3\.\d+)/", filename)
        if found:
            return dataclasses.replace(facts, python_version=found.group(1))
    return facts

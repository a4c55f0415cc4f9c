"""Thread names and the GIL holder read from memory agree with py-spy, on every interpreter.

Ordinary hung samples run under CPython 3.8 to 3.13; py-spy dumps them, and threaddoc's
memory collector reads `threading._active` (names.thread_names) and the GIL state
(names.gil_holder) from /proc/PID/mem. Every thread py-spy names must have the same name.
For the GIL only a stable holder is comparable: in ctypes_call_holds_gil the reader
blocks in C with the GIL taken (py-spy reads it paused, we read it running; both must
see the same holder). The other samples move the GIL between the two readings.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from threaddoc.collect.memory import debug_layout, dump
from threaddoc.collect.memory.layouts import LAYOUTS
from threaddoc.collect.memory.memory import ProcessMemory
from threaddoc.collect.memory.names import gil_holder, thread_names
from threaddoc.collect.memory.reader import Reader
from threaddoc.collect.memory.symbols import find_interpreter
from threaddoc.errors import MemoryCollectorUnsupported

from .conftest import real_py_spy

PY_SPY_TIMEOUT = 30.0
SAMPLES = ("lock_order_deadlock.py", "gil_contention.py", "ctypes_call_holds_gil.py", "busy_but_healthy.py")
STABLE_GIL_HOLDER = "ctypes_call_holds_gil.py"


def py_spy_threads(pid: int) -> list[dict[str, Any]]:
    completed = subprocess.run([real_py_spy(), "dump", "--pid", str(pid), "--json"], capture_output=True,
                               text=True, timeout=PY_SPY_TIMEOUT, stdin=subprocess.DEVNULL)
    assert completed.returncode == 0, f"py-spy failed on pid {pid}: {completed.stderr[-2000:]}"
    threads: list[dict[str, Any]] = json.loads(completed.stdout)
    assert threads, f"py-spy saw no thread in pid {pid}"
    return threads


def read_from_memory(pid: int) -> tuple[dict[int, str], int | None]:
    """(thread names, GIL holder's thread id), set up as the memory collector's dump does."""
    interpreter = find_interpreter(pid)
    with ProcessMemory(pid) as memory:
        layout = LAYOUTS[interpreter.version]
        if layout.debug_cookie >= 0:
            layout = debug_layout(memory, interpreter, layout)
        reader = Reader(memory, layout, interpreter)
        interp = memory.pointer(interpreter.runtime + layout.runtime_main_interpreter)
        return thread_names(reader, interp), gil_holder(reader)


@pytest.mark.parametrize("sample", SAMPLES)
def test_thread_names_match_py_spy(python_interpreter: Path, sample_runner: Any, sample: str) -> None:
    with sample_runner(sample, python=python_interpreter) as process:
        expected = {thread["thread_id"]: thread["thread_name"] for thread in py_spy_threads(process.pid)}
        names, _ = read_from_memory(process.pid)
    assert any(expected.values()), f"py-spy named no thread of {sample}: {expected}"
    assert {ident: names.get(ident) for ident in expected} == expected


def test_the_gil_holder_blocked_in_c_matches_py_spy(python_interpreter: Path, sample_runner: Any) -> None:
    with sample_runner(STABLE_GIL_HOLDER, python=python_interpreter) as process:
        threads = py_spy_threads(process.pid)
        names, holder = read_from_memory(process.pid)
    holders = [thread["thread_id"] for thread in threads if thread["owns_gil"]]
    assert len(holders) == 1, f"py-spy saw {len(holders)} GIL holders: {threads}"
    assert holder == holders[0]
    assert names[holder] == "sensor-reader"


def test_dump_fills_thread_name_and_owns_gil(python_interpreter: Path, sample_runner: Any) -> None:
    """The same through the collector's entry point, the shape the pipeline consumes."""
    with sample_runner(STABLE_GIL_HOLDER, python=python_interpreter) as process:
        expected = {thread["thread_id"]: (thread["thread_name"], thread["owns_gil"])
                    for thread in py_spy_threads(process.pid)}
        try:
            entries = dump(process.pid)
        except MemoryCollectorUnsupported as error:
            pytest.skip(f"the memory collector cannot read this interpreter's frames yet: {error}")
    assert {entry["thread_id"]: (entry["thread_name"], entry["owns_gil"]) for entry in entries} == expected

"""The 3.8-3.10 frame walker on live processes: against the target's own view, and py-spy.

memory_frames_target.py blocks threads in frames that stress the walker (every kind of
parameter, an argument captured by a closure, a running generator, a traced thread, a
function with many locals, a 5,000-frame recursion) and writes what it sees of itself:
per thread its PyThreadState address, per frame function, file, `f_lineno` and the fast
locals with the `id()` of their values. The walker must read exactly that, all 5,000+
frames of the recursion included (py-spy stops at 4,096), and `dump` must agree with
`py-spy dump --json --locals` on a shallow run (same threads, frames, lines, locals).
test_memory_collector.py compares the hung samples.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pythons import Interpreters

from threaddoc.collect.memory import dump, frames_38
from threaddoc.collect.memory.layouts import LAYOUTS
from threaddoc.collect.memory.memory import ProcessMemory
from threaddoc.collect.memory.reader import RawFrame, Reader
from threaddoc.collect.memory.symbols import find_interpreter
from threaddoc.demo import running_program

from .conftest import REQUIRE_ALL_PYTHONS, real_py_spy

TARGET = Path(__file__).resolve().parent / "memory_frames_target.py"
MINORS_38 = ("3.8", "3.9", "3.10")
DEEP = 5000  # frames of recursion: past py-spy's 4,096
SHALLOW = 40  # frames of recursion where py-spy is compared
READY_TIMEOUT = 60.0
PY_SPY_TIMEOUT = 30.0
MAX_FRAMES = 100_000

Truth = dict[str, Any]


@pytest.fixture(params=MINORS_38, ids=[f"py{minor}" for minor in MINORS_38])
def python_38(request: pytest.FixtureRequest, interpreters: Interpreters) -> Path:
    minor = request.param
    if minor in interpreters.found:
        return interpreters.found[minor]
    if REQUIRE_ALL_PYTHONS:
        pytest.fail(f"CPython {minor} is not available: {interpreters.missing[minor]}", pytrace=False)
    pytest.skip(f"CPython {minor} is not available: {interpreters.missing[minor]}")


@contextmanager
def blocked_target(python: Path, depth: int) -> Iterator[tuple[int, Truth]]:
    """The target under `python`, ready; (its pid, what it wrote of itself)."""
    environment = {"MEMORY_FRAMES_DEPTH": str(depth)}
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        with running_program(TARGET, str(python), ready_timeout=READY_TIMEOUT) as process:
            ready = Path(str(process.args[-1]))  # type: ignore[index]
            truth: Truth = json.loads(ready.with_name("ready.truth.json").read_text("utf-8"))
            yield process.pid, truth
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def truth_view(frames: list[dict[str, Any]]) -> list[tuple[str, str, int, list[tuple[str, int]]]]:
    return [(frame["name"], frame["filename"], frame["line"], [tuple(pair) for pair in frame["locals"]])
            for frame in frames]


def raw_view(frames: list[RawFrame]) -> list[tuple[str, str, int, list[tuple[str, int]]]]:
    return [(frame.name, frame.filename, frame.line, [(local.name, local.address) for local in frame.locals])
            for frame in frames]


def dump_view(frames: list[dict[str, Any]]) -> list[tuple[str, str, int, list[tuple[str, int]]]]:
    return [(frame["name"], frame["filename"], frame["line"],
             [(local["name"], local["addr"]) for local in frame["locals"] or []]) for frame in frames]


def walk_thread(pid: int, tstate_address: int) -> list[RawFrame]:
    interpreter = find_interpreter(pid)
    layout = LAYOUTS[interpreter.version]
    with ProcessMemory(pid) as memory:
        reader = Reader(memory, layout, interpreter)
        tstate = memory.read(tstate_address, layout.tstate_size)
        return frames_38.walk(reader, frames_38.current_frame(reader, tstate), MAX_FRAMES)


def test_the_walker_reads_what_the_target_sees_of_itself(python_38: Path) -> None:
    with blocked_target(python_38, DEEP) as (pid, truth):
        walked = {name: walk_thread(pid, thread["tstate"]) for name, thread in truth["threads"].items()}
    for name, thread in truth["threads"].items():
        assert raw_view(walked[name]) == truth_view(thread["frames"]), name
    recursion = walked["recursion"]
    assert len(recursion) > DEEP
    assert recursion[-1].is_shim_entry and recursion[-1].name == "_bootstrap"


def test_the_traced_thread_has_traced_frames(python_38: Path) -> None:
    """The `traced` thread's inner frames carry a trace function: its lines came from f_lineno."""
    with blocked_target(python_38, SHALLOW) as (pid, truth):
        interpreter = find_interpreter(pid)
        layout = LAYOUTS[interpreter.version]
        with ProcessMemory(pid) as memory:
            tstate = memory.read(truth["threads"]["traced"]["tstate"], layout.tstate_size)
            frame = frames_38.current_frame(Reader(memory, layout, interpreter), tstate)
            assert memory.pointer(frame + layout.frame_trace) != 0


def test_memory_dump_matches_the_target_and_py_spy(python_38: Path) -> None:
    with blocked_target(python_38, SHALLOW) as (pid, truth):
        completed = subprocess.run([real_py_spy(), "dump", "--pid", str(pid), "--json", "--locals"],
                                   stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                   timeout=PY_SPY_TIMEOUT, check=False)
        memory = {entry["thread_id"]: entry for entry in dump(pid, timeout=20.0)}
    assert completed.returncode == 0, completed.stderr
    spy = {entry["thread_id"]: entry for entry in json.loads(completed.stdout)}
    assert set(memory) == set(spy)
    for thread_id, expected in spy.items():
        got = memory[thread_id]
        assert dump_view(got["frames"]) == dump_view(expected["frames"]), expected["thread_name"]
        assert [[local["arg"] for local in frame["locals"]] for frame in got["frames"]] == \
            [[local["arg"] for local in frame["locals"] or []] for frame in expected["frames"]]
        assert [(frame["is_entry"], frame["is_shim_entry"]) for frame in got["frames"]] == \
            [(frame["is_entry"], frame["is_shim_entry"]) for frame in expected["frames"]]
    for thread in truth["threads"].values():
        assert dump_view(memory[thread["ident"]]["frames"]) == truth_view(thread["frames"])


def test_memory_dump_reads_a_recursion_past_py_spys_limit(python_38: Path) -> None:
    with blocked_target(python_38, DEEP) as (pid, truth):
        memory = {entry["thread_id"]: entry for entry in dump(pid, timeout=20.0)}
    recursion = truth["threads"]["recursion"]
    assert dump_view(memory[recursion["ident"]]["frames"]) == truth_view(recursion["frames"])
    assert len(recursion["frames"]) > DEEP

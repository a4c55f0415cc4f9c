"""Native frames (`--native`): C frames are kept apart from Python frames, and the C
function a thread is in says when it waits for the GIL.

The entries below are shaped as py-spy 0.4 prints them (CPython 3.11 and 3.13 on
x86_64): a native frame names its shared library in `module`, a Python frame has none.
"""

from __future__ import annotations

from typing import Any

import pytest

from threaddoc.classify import Activity, WaitKind, classify
from threaddoc.collect.parse import parse_threads, python_frames
from threaddoc.collect.sampling import stack_sample
from threaddoc.model import ProcessFacts, Snapshot

LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6"
LIBPYTHON = "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0"
APP = "/srv/app/work.py"


def _native(name: str, library: str = LIBC) -> dict[str, Any]:
    return {"name": name, "filename": library, "module": library, "short_filename": library.rsplit("/")[-1],
            "line": 0, "locals": None}


def _python(name: str, line: int) -> dict[str, Any]:
    return {"name": name, "filename": APP, "module": None, "short_filename": "work.py", "line": line,
            "locals": []}


def _thread(*frames: dict[str, Any], owns_gil: bool = False, active: bool = True) -> dict[str, Any]:
    return {"thread_id": 140, "os_thread_id": 7, "thread_name": "worker", "active": active,
            "owns_gil": owns_gil, "frames": list(frames)}


# 3.11+: take_gil is inlined into the interpreter loop; only libc's condition wait is left.
GIL_WAIT_INLINED = _thread(_native("0x7fca884a3f16"), _native("pthread_cond_timedwait"),
                           _python("spin", 7), _native("thread_run", LIBPYTHON))
# Back from time.sleep, waiting to take the GIL again (py-spy hides take_gil itself).
GIL_WAIT_AFTER_SLEEP = _thread(_native("0x7fca884a3f16"), _native("pthread_cond_timedwait"),
                               _native("time_sleep", LIBPYTHON), _python("beat", 12))
# A threading.Lock wait: PyThread_acquire_lock_timed, not the GIL.
LOCK_WAIT = _thread(_native("0x7fca884a3f16"), _native("0x7fca884aed90"),
                    _native("PyThread_acquire_lock_timed", LIBPYTHON),
                    _native("lock_PyThread_acquire_lock", LIBPYTHON), _python("work", 3), active=False)


def test_native_frames_are_kept_apart_from_python_frames() -> None:
    [thread] = parse_threads([GIL_WAIT_AFTER_SLEEP])
    assert [frame.function for frame in thread.frames] == ["beat"]
    assert [frame.function for frame in thread.native_frames] == [
        "0x7fca884a3f16", "pthread_cond_timedwait", "time_sleep"]
    assert thread.native_frames[2].library_name == "libpython3.11.so.1.0"
    # Samples compare Python frames only: a native and a plain dump of one stack are equal.
    plain = _thread(_python("beat", 12))
    assert stack_sample([GIL_WAIT_AFTER_SLEEP], {})["stacks"] == stack_sample([plain], {})["stacks"]
    assert python_frames(GIL_WAIT_AFTER_SLEEP) == [_python("beat", 12)]


@pytest.mark.parametrize("entry", [GIL_WAIT_INLINED, GIL_WAIT_AFTER_SLEEP], ids=["inlined", "after-sleep"])
def test_a_condition_wait_called_by_the_interpreter_is_the_gil(entry: dict[str, Any]) -> None:
    [thread] = parse_threads([entry])
    state = classify(thread, Snapshot(ProcessFacts(pid=1), (thread,)))
    assert state.kind is WaitKind.GIL
    assert state.activity is Activity.RUNNING  # runnable: never part of a hang


def test_a_lock_wait_in_c_is_not_a_gil_wait() -> None:
    [thread] = parse_threads([LOCK_WAIT])
    state = classify(thread, Snapshot(ProcessFacts(pid=1), (thread,)))
    assert state.kind is not WaitKind.GIL


def test_a_condition_wait_called_from_c_code_is_not_a_gil_wait() -> None:
    # pthread_cond_timedwait is the GIL only when the interpreter loop itself calls it.
    entry = _thread(_native("pthread_cond_timedwait"), _native("my_extension_wait", "/srv/app/ext.so"),
                    _python("work", 3), active=False)
    [thread] = parse_threads([entry])
    assert classify(thread, Snapshot(ProcessFacts(pid=1), (thread,))).kind is not WaitKind.GIL

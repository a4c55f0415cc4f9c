"""Thread names and the GIL holder, read from the target's memory (CPython 3.8 to 3.13).

Thread names are what `threading` calls them, read the way py-spy reads them:
`sys.modules["threading"]._active` maps each thread's ident (`PyThreadState.thread_id`,
the pthread id) to its `Thread` object, and the name is that object's `_name` attribute.
The modules dict is `interp->modules` (3.8-3.11) or `interp->imports.modules` (3.12+);
a module's `__dict__` is at its type's `tp_dictoffset` (`PyModuleObject.md_dict`). The
main thread and dummy threads (threads `threading` did not start) are in `_active` too.
One walk of `_active` and one attribute lookup per thread: the `Thread` type and where
`_name` sits in its shared keys are read once (see dicts.py).

The GIL (Python/ceval_gil.c): `take_gil` sets `locked` to 1 and `last_holder` to the
taking thread state; `drop_gil` leaves `last_holder` and sets `locked` to 0. So a thread
holds the GIL when `locked` is 1 and `last_holder` is its thread state. The state lives
in `_PyRuntime.ceval.gil` (3.8-3.11) and behind the pointer `interp->ceval.gil` (3.12+;
3.13 publishes where in `_Py_DebugOffsets`, which `debug_layout` applies). A snapshot of
a running process can catch the GIL between two threads; a thread blocked in C with the
GIL (a ctypes PyDLL call) is a stable holder.
"""

from __future__ import annotations

import struct

from .dicts import DictReader
from .memory import MemoryReadError
from .objects import ObjectError
from .reader import Reader

MAX_THREAD_NAME = 4096  # characters of a thread name kept (a name is a label, not a payload)


def thread_names(reader: Reader, interp: int) -> dict[int, str]:
    """PyThreadState.thread_id -> `threading` name, for every thread in `threading._active`.

    Empty when `threading` was never imported; a thread whose name cannot be read is left
    out (its Thread object may be changing under us), not guessed."""
    dicts = DictReader(reader.memory, reader.layout, reader.type_names)
    try:
        active = _threading_active(dicts, interp)
        threads = dicts.int_items(active) if active else {}
    except (MemoryReadError, ValueError, IndexError, struct.error):
        return {}
    names: dict[int, str] = {}
    for ident, thread in threads.items():
        name = _thread_name(dicts, thread)
        if name is not None:
            names[ident] = name
    return names


def _threading_active(dicts: DictReader, interp: int) -> int:
    """The address of the dict `threading._active`, or 0 if there is none (yet)."""
    memory, layout = dicts.memory, dicts.layout
    modules = memory.pointer(interp + layout.interp_modules)
    if not modules:
        return 0
    threading = dicts.get(modules, "threading")
    if threading is None:
        return 0
    module_dict = dicts.dict_of(threading)  # md_dict, at the module type's tp_dictoffset
    if not module_dict:
        return 0
    return dicts.get(module_dict, "_active") or 0


def _thread_name(dicts: DictReader, thread: int) -> str | None:
    try:
        name = dicts.attribute(thread, "_name")
        text = dicts.str_at(name) if name is not None else None
        return None if text is None else text[:MAX_THREAD_NAME]
    except (MemoryReadError, ValueError, IndexError, struct.error):
        return None


def gil_holder_state(reader: Reader) -> int | None:
    """The address of the PyThreadState holding the GIL, or None when it is free."""
    memory, layout = reader.memory, reader.layout
    runtime = reader.interpreter.runtime
    if layout.runtime_gil_locked >= 0:  # 3.8-3.11: one GIL, in _PyRuntime.ceval
        locked = memory.i32(runtime + layout.runtime_gil_locked)
        holder = memory.pointer(runtime + layout.runtime_gil_last_holder)
    else:  # 3.12+: the interpreter's GIL, through interp->ceval.gil
        interp = memory.pointer(runtime + layout.runtime_main_interpreter)
        gil = memory.pointer(interp + layout.interp_ceval_gil) if interp else 0
        if not gil:
            return None
        locked = memory.i32(gil + layout.interp_gil_locked - layout.interp_gil_runtime_state)
        holder = memory.pointer(gil + layout.interp_gil_holder - layout.interp_gil_runtime_state)
    return holder if locked == 1 and holder else None


def gil_holder(reader: Reader) -> int | None:
    """The `thread_id` (PyThreadState.thread_id) of the thread holding the GIL, or None."""
    try:
        state = gil_holder_state(reader)
        if state is None:
            return None
        return reader.memory.pointer(state + reader.layout.tstate_thread_id) or None
    except (MemoryReadError, ObjectError):
        return None

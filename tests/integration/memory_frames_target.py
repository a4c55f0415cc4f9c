"""A target for test_memory_frames_38.py: blocked threads that write down their own stacks.

    python memory_frames_target.py READY_PATH

Threads block (in `threading.Event.wait`) inside frames that exercise the frame walker:
every kind of parameter (positional-only, *args, keyword-only, **kwargs), an unset
local, an argument captured by a closure (its fast slot is NULL), a generator running
on the stack, a frame with a trace function set (f_lineno is what counts then), a
function with many locals and a recursion MEMORY_FRAMES_DEPTH deep (default 5,000).
MEMORY_FRAMES_IDLE more threads (default 0) just wait.

Once every thread is blocked, the program writes what it sees of itself to
READY_PATH.truth.json: per thread its PyThreadState address (PyThreadState_Get through
ctypes), and per frame, innermost first, the function, file, `f_lineno` and the fast
locals with `id()` of their values (the object's address). Then it writes READY_PATH
and waits to be killed. Must stay valid Python 3.8.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import threading
import time

DEPTH = int(os.environ.get("MEMORY_FRAMES_DEPTH", "5000"))
IDLE = int(os.environ.get("MEMORY_FRAMES_IDLE", "0"))
MANY = 40  # locals of `many_locals`: more than the walker reads ahead with a frame's header

release = threading.Event()
thread_states = {}  # thread name -> PyThreadState address
registered = threading.Lock()


def register_and_block():
    get_state = ctypes.pythonapi.PyThreadState_Get
    get_state.restype = ctypes.c_void_p
    with registered:
        thread_states[threading.current_thread().name] = get_state()
    release.wait()


def all_parameter_kinds(a, b, /, c, *rest, d, e=5, **options):
    local_list = [a, b, c]
    never_set = None
    del never_set  # a NULL fast slot
    register_and_block()
    return local_list, rest, d, e, options


def captured_argument(value, other):
    def reader():
        return value  # `value` becomes a cell: its fast slot is NULL

    register_and_block()
    return reader, other


def blocking_generator(limit):
    for index in range(limit):
        register_and_block()
        yield index


def consume_generator():
    return list(blocking_generator(3))


def traced():
    def tracer(frame, event, arg):
        return tracer

    sys.settrace(tracer)
    waiting_here = "traced"
    register_and_block()
    return waiting_here


def many_locals():
    names = {f"v{index}": object() for index in range(MANY)}
    exec_namespace = dict(names)
    register_and_block()
    return exec_namespace


def recurse(depth):
    if depth <= 1:
        register_and_block()
        return 0
    return recurse(depth - 1) + 1


def idle():
    register_and_block()


WORKERS = {
    "parameters": lambda: all_parameter_kinds(1, "two", 3.0, "r1", "r2", d=object(), extra=[]),
    "closure": lambda: captured_argument(object(), "other"),
    "generator": consume_generator,
    "traced": traced,
    "many-locals": many_locals,
    "recursion": lambda: recurse(DEPTH),
}


def fast_locals(frame):
    code = frame.f_code
    values = frame.f_locals  # PyFrame_FastToLocals: harmless, the thread is blocked
    cells = set(code.co_cellvars)
    return [[name, id(values[name])] for name in code.co_varnames[:code.co_nlocals]
            if name in values and name not in cells]


def stack_of(frame):
    frames = []
    while frame is not None:
        frames.append({"name": frame.f_code.co_name, "filename": frame.f_code.co_filename,
                       "line": frame.f_lineno, "locals": fast_locals(frame)})
        frame = frame.f_back
    return frames


def blocked_in_wait(frame):
    """Inside Condition.wait under Event.wait: the thread sits in `waiter.acquire()`."""
    return (frame is not None and frame.f_code.co_name == "wait" and frame.f_back is not None
            and frame.f_back.f_code.co_name == "wait")


def main():
    ready = sys.argv[1]
    sys.setrecursionlimit(DEPTH + 1000)
    threading.stack_size(256 * 1024 * 1024)  # the recursion needs room on its C stack
    threads = [threading.Thread(target=target, name=name, daemon=True) for name, target in WORKERS.items()]
    threading.stack_size(0)
    threads += [threading.Thread(target=idle, name=f"idle-{index}", daemon=True) for index in range(IDLE)]
    for thread in threads:
        thread.start()
    by_name = {thread.name: thread for thread in threads}
    while True:
        frames = sys._current_frames()
        with registered:
            names = list(thread_states)
        if len(names) == len(threads) and all(blocked_in_wait(frames.get(by_name[name].ident))
                                              for name in names):
            break
        time.sleep(0.01)
    truth = {"python": sys.version.split()[0], "threads": {}}
    for name in names:
        thread = by_name[name]
        truth["threads"][name] = {"tstate": thread_states[name], "ident": thread.ident,
                                  "frames": stack_of(frames[thread.ident])}
    with open(ready + ".truth.json", "w") as handle:
        json.dump(truth, handle)
    with open(ready, "w") as handle:
        handle.write("ready\n")
    release.wait()


if __name__ == "__main__":
    main()

"""Record dicts and instance attributes from the memory of real CPython 3.8 to 3.13 processes.

    python tests/tools/record_memory_dicts.py               # every 3.8-3.13 pyenv holds
    python tests/tools/record_memory_dicts.py --python 3.12

For each interpreter this starts a small program (TARGET below) that builds dicts and
objects of every shape the memory collector meets (combined tables with 1- and 2-byte
indices, deletions, int keys, a non-ASCII key, instances with split/managed/inline
attributes, an instance whose dict became a combined table, a variable-size object
with a dict at a negative tp_dictoffset, the real `threading.Thread`, `sys.modules`)
and prints their `id()`s with the answers Python itself gives. threaddoc's DictReader
then reads the same things through /proc/PID/mem; every byte it read is recorded, and
the answers are checked against Python's before anything is written (a recording is
only ever of a correct reading). The result goes to tests/memory_dicts/py<X.Y>.json;
tests/unit/test_memory_dicts.py replays it offline.

TARGET runs inside the recorded interpreter and must stay valid Python 3.8.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))

from pythons import MINORS, discover_interpreters

from threaddoc.collect.memory import debug_layout
from threaddoc.collect.memory.dicts import DictReader
from threaddoc.collect.memory.layouts import LAYOUTS
from threaddoc.collect.memory.memory import ProcessMemory
from threaddoc.collect.memory.names import gil_holder, thread_names
from threaddoc.collect.memory.reader import Reader
from threaddoc.collect.memory.symbols import Interpreter, find_interpreter

RECORDINGS = TESTS / "memory_dicts"
RUN_TIMEOUT = 30.0

TARGET = r'''
import _thread, json, sys, threading

class Plain:
    def __init__(self, name):
        self._name = name
        self.x = 1

class Combined:
    def __init__(self, name):
        self._name = name

class VarSized(tuple):
    pass

many = {"key%d" % i: i * 1000 for i in range(300)}
small = {"a": 1000, "b": 2000, "c": 3000, "d": 4000, "e": 5000}
del small["b"]
idents = {140000000000000 + i * 8392704: Plain("thread-%d" % i) for i in range(20)}
unicode_keys = {"name": "ascii", "名前": "nicht ascii", "ключ": "кириллица"}
plain = Plain("plain-name")
combined = Combined("combined-name")
combined.__dict__[1] = "an int key makes the table a general, combined one"
looked_at = Plain("looked-at-name")
looked_at.__dict__  # 3.13: materialize the dict (it embeds the inline values)
var_sized = VarSized((1, 2, 3))
var_sized._name = "var-sized-name"
current = threading.current_thread()
forever = threading.Event()
for name in ("worker-1", "wörker-2", "x" * 300):
    threading.Thread(target=forever.wait, name=name, daemon=True).start()
dummy_named = threading.Event()
def not_started_by_threading():
    threading.current_thread()  # registers a _DummyThread in threading._active
    dummy_named.set()
    forever.wait()
_thread.start_new_thread(not_started_by_threading, ())
dummy_named.wait()

def items(d):
    return {str(k): id(v) for k, v in d.items() if isinstance(k, str)}

objects = {
    "many": id(many), "small": id(small), "idents": id(idents), "unicode_keys": id(unicode_keys),
    "plain": id(plain), "combined": id(combined), "looked_at": id(looked_at),
    "var_sized": id(var_sized), "current": id(current), "modules": id(sys.modules),
}
expected = {
    "many": items(many), "small": items(small), "unicode_keys": items(unicode_keys),
    "idents": {str(k): id(v) for k, v in idents.items()},
    "idents._name": {str(k): id(v._name) for k, v in idents.items()},
    "plain._name": id(plain._name), "plain.x": id(plain.x), "combined._name": id(combined._name),
    "looked_at._name": id(looked_at._name), "var_sized._name": id(var_sized._name),
    "current._name": id(current._name), "modules.threading": id(sys.modules["threading"]),
    "unicode_keys.名前": id(unicode_keys["名前"]),
    "thread_names": {str(thread.ident): thread.name for thread in threading.enumerate()},
    "gil_holder": None,  # every thread waits with the GIL released
}
print(json.dumps({"objects": objects, "expected": expected}), flush=True)
sys.stdin.read()  # stay alive (and unchanged) until the recorder is done
'''


class RecordingMemory(ProcessMemory):
    """A ProcessMemory that keeps every byte it read, by address."""

    def __init__(self, pid: int) -> None:
        super().__init__(pid)
        self.segments: dict[int, bytes] = {}

    def read(self, address: int, size: int) -> bytes:
        data = super().read(address, size)
        if len(data) > len(self.segments.get(address, b"")):
            self.segments[address] = data
        return data


def read_everything(reader: DictReader, objects: dict[str, int]) -> dict[str, Any]:
    """What threaddoc reads for each case, keyed as TARGET's `expected` is."""
    found: dict[str, Any] = {}
    for name in ("many", "small", "unicode_keys"):
        found[name] = reader.str_items(objects[name])
    idents = reader.int_items(objects["idents"])
    found["idents"] = {str(key): value for key, value in idents.items()}
    found["idents._name"] = {str(key): reader.attribute(value, "_name") for key, value in idents.items()}
    for case in ("plain._name", "plain.x", "combined._name", "looked_at._name", "var_sized._name",
                 "current._name"):
        owner, attribute = case.split(".")
        found[case] = reader.attribute(objects[owner], attribute)
    found["modules.threading"] = reader.get(objects["modules"], "threading")
    found["unicode_keys.名前"] = reader.get(objects["unicode_keys"], "名前")
    found["plain.missing"] = reader.attribute(objects["plain"], "missing")
    return found


def read_names(memory: ProcessMemory, interpreter: Interpreter) -> dict[str, Any]:
    """thread_names and gil_holder, set up as `dump` sets them up."""
    layout = LAYOUTS[interpreter.version]
    if layout.debug_cookie >= 0:
        layout = debug_layout(memory, interpreter, layout)
    reader = Reader(memory, layout, interpreter)
    interp = memory.pointer(interpreter.runtime + layout.runtime_main_interpreter)
    names = thread_names(reader, interp)
    return {"thread_names": {str(ident): name for ident, name in names.items()},
            "gil_holder": gil_holder(reader)}


def record(minor: str, python: Path) -> dict[str, Any]:
    version = tuple(int(part) for part in minor.split("."))
    process = subprocess.Popen([str(python), "-c", TARGET], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, encoding="utf-8")
    try:
        assert process.stdout is not None
        told = json.loads(process.stdout.readline())
        interpreter = find_interpreter(process.pid, None)
        with RecordingMemory(process.pid) as memory:
            # both ways of reading an object: its fields in one window, and one by one
            found = {speculative: read_everything(DictReader(memory, LAYOUTS[version],  # type: ignore[index]
                                                             speculative=speculative), told["objects"])
                     for speculative in (True, False)}
            found[True].update(read_names(memory, interpreter))
            segments = memory.segments
    finally:
        process.kill()
        process.wait(timeout=RUN_TIMEOUT)
    expected = {**told["expected"], "plain.missing": None}
    wrong = {(case, speculative): (answers[case], expected[case]) for speculative, answers in found.items()
             for case in answers if answers[case] != expected[case]}
    if wrong:
        raise SystemExit(f"CPython {minor}: threaddoc read differs from Python's answer: {wrong}")
    return {
        "python": minor,
        "interpreter": {"runtime": interpreter.runtime, "hexversion": interpreter.hexversion,
                        "path": interpreter.path},
        "objects": told["objects"],
        "expected": expected,
        "segments": [[address, data.hex()] for address, data in sorted(segments.items())],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", choices=MINORS, help="only this minor (repeatable)")
    arguments = parser.parse_args()
    found = discover_interpreters().found
    RECORDINGS.mkdir(exist_ok=True)
    for minor in arguments.python or MINORS:
        if minor not in found:
            print(f"CPython {minor}: not found, skipped", file=sys.stderr)
            continue
        recording = record(minor, found[minor])
        path = RECORDINGS / f"py{minor}.json"
        path.write_text(json.dumps(recording, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {path} ({len(recording['segments'])} segments)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Record location-table vectors from real CPython 3.11, 3.12 and 3.13 interpreters.

    python tests/tools/record_locations_311.py               # every 3.11-3.13 pyenv holds
    python tests/tools/record_locations_311.py --python 3.12

For each interpreter this runs itself inside it (`--inside`), compiles a few programs
made to stress the 3.11+ location table (line jumps far beyond one byte either way, a
line with a long run of bytecode, entries without a line, long and no-column forms)
and takes every code object of the stdlib's threading.py and queue.py, and writes per
code object its co_linetable bytes, co_firstlineno, the length of its bytecode and the
line CPython itself gives for every instruction offset: `PyCode_Addr2Line` called
through ctypes, the function a frame's f_lineno comes from (-1: no line). Answers are
run-length encoded as [first offset, line] pairs in tests/locations/py<X.Y>.json, which
tests/unit/test_memory_collector_units.py decodes with frames_311.line_for_offset.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import subprocess
import sys
from pathlib import Path
from types import CodeType

TESTS = Path(__file__).resolve().parent.parent
VECTORS = TESTS / "locations"
MINORS = ("3.11", "3.12", "3.13")
RUN_TIMEOUT = 120.0
GAP = 5000  # lines: beyond the one-line and short forms, needs the long varint form

STRESS_PROGRAMS = {
    "far_jumps": ("def far_jumps(n):\n    a = n\n" + "\n" * GAP + "    b = a + 1\n"
                  "    while b > 0:\n        b -= 1\n" + "\n" * GAP + "        a += b\n    return a\n"),
    "wide_line": "def wide_line(x):\n    return (" + ", ".join("x + 1" for _ in range(300)) + ")\n",
    "spread_call": ("def spread_call(f, a, b):\n    return f(\n        a,\n" + "\n" * GAP
                    + "        b,\n    )\n"),
    "handlers": ("def handlers(items):\n    total = 0\n    for item in items:\n        try:\n"
                 "            total += len(item)\n        except TypeError:\n            continue\n"
                 "        finally:\n            total -= 0\n    with open(__file__) as handle:\n"
                 "        pass\n    return [y for y in items if y]\n"),
    "generator": "def generator(n):\n    for i in range(n):\n        yield i\n    return n\n",
}


def _codes(code: CodeType, label: str) -> list[tuple[str, CodeType]]:
    found = [(label, code)]
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            found.extend(_codes(constant, label))
    return found


def _addr2line() -> ctypes._NamedFuncPointer:
    function = ctypes.pythonapi.PyCode_Addr2Line
    function.argtypes = [ctypes.py_object, ctypes.c_int]
    function.restype = ctypes.c_int
    return function


def _runs(code: CodeType) -> list[list[int]]:
    addr2line = _addr2line()
    runs: list[list[int]] = []
    for offset in range(0, len(code.co_code), 2):
        line = addr2line(code, offset)
        if not runs or runs[-1][1] != line:
            runs.append([offset, line])
    return runs


def record_inside() -> dict[str, object]:
    import queue
    import threading

    sources = [(label, compile(text, f"<{label}>", "exec")) for label, text in STRESS_PROGRAMS.items()]
    for module in (threading, queue):
        path = Path(module.__file__ or "")
        sources.append((module.__name__, compile(path.read_text(encoding="utf-8"), str(path), "exec")))
    codes = []
    for label, module_code in sources:
        for owner, code in _codes(module_code, label):
            codes.append({"label": owner, "name": code.co_qualname, "firstlineno": code.co_firstlineno,
                          "table": code.co_linetable.hex(), "code_size": len(code.co_code),
                          "lines": _runs(code)})
    return {"python": ".".join(str(part) for part in sys.version_info[:3]), "codes": codes}


def record(python: str, minor: str) -> Path:
    completed = subprocess.run([python, __file__, "--inside"], stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=RUN_TIMEOUT, check=True)
    VECTORS.mkdir(exist_ok=True)
    path = VECTORS / f"py{minor}.json"
    path.write_text(json.dumps(json.loads(completed.stdout), separators=(",", ":")) + "\n", encoding="utf-8")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--python", choices=MINORS, help="only this minor version")
    arguments = parser.parse_args()
    if arguments.inside:
        json.dump(record_inside(), sys.stdout)
        return 0
    sys.path.insert(0, str(TESTS))
    from pythons import interpreters

    for minor, python in interpreters().items():
        if minor in MINORS and arguments.python in (None, minor):
            print(f"wrote {record(str(python), minor)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

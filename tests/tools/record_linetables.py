"""Record line-table vectors from real CPython 3.8, 3.9 and 3.10 interpreters.

    python tests/tools/record_linetables.py               # every 3.8-3.10 pyenv holds
    python tests/tools/record_linetables.py --python 3.10

For each interpreter this runs itself inside it (`--inside`), compiles a few
programs made to stress the tables (line jumps > 127 either way, one line with
> 255 bytes of bytecode, loops whose test jumps back to an earlier line, nested
code) and takes some real stdlib functions, and writes per code object its table
bytes, co_firstlineno, the length of co_code and the line CPython itself gives for
every byte offset from -2 to a few past the end: `PyCode_Addr2Line` called through
ctypes, the very function `frame.f_lineno` uses. The answers are stored run-length
encoded as [first offset, line] pairs to tests/linetables/py<X.Y>.json, which
tests/unit/test_linetables_38.py decodes with threaddoc's decoders and compares.

The part that runs inside the target interpreter must stay valid Python 3.8.
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
VECTORS = TESTS / "linetables"
MINORS = ("3.8", "3.9", "3.10")
PAST_END = 6  # offsets recorded past the end of co_code
RUN_TIMEOUT = 60.0  # seconds for one interpreter to record

BIG_GAP = 300  # lines: more than a signed byte of line increment, either way
WIDE_LINE = 200  # names on one line: more than 255 bytes of bytecode for it

STRESS_PROGRAMS = {
    "forward_gap": "def forward_gap():\n    a = 1\n" + "\n" * BIG_GAP + "    return a\n",
    "wide_line": (
        "def wide_line(x):\n    t = (" + ", ".join("x" for _ in range(WIDE_LINE)) + ")\n    return t\n"
    ),
    "loop_back_over_gap": (
        "def loop_back_over_gap(n):\n    while n > 0:\n        n -= 1\n"
        + "\n" * BIG_GAP
        + "        n += 0\n    return n\n"
    ),
    "call_spread_over_lines": (
        "def call_spread_over_lines(f, a, b):\n    return f(\n        a,\n"
        + "\n" * BIG_GAP
        + "        b,\n    )\n"
    ),
    "nested_and_comprehension": (
        "def outer(items):\n    def inner(x):\n        return [y for y in x\n                if y]\n"
        "    total = 0\n    for item in items:\n        try:\n            total += len(inner(item))\n"
        "        except TypeError:\n            continue\n        finally:\n            total -= 0\n"
        "    with open(__file__) as handle:\n        pass\n    return total\n"
    ),
}

STDLIB_FUNCTIONS = (
    ("threading", "Condition.wait"),
    ("threading", "Thread.join"),
    ("threading", "Thread._wait_for_tstate_lock"),
    ("threading", "_shutdown"),
    ("queue", "Queue.get"),
    ("concurrent.futures._base", "Future.result"),
    ("concurrent.futures.thread", "_worker"),
    ("selectors", "EpollSelector.select"),
    ("subprocess", "Popen._communicate"),
)


# --------------------------------------------------------------------------- inside the target


def _addr2line() -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    function = ctypes.pythonapi.PyCode_Addr2Line
    function.argtypes = [ctypes.py_object, ctypes.c_int]
    function.restype = ctypes.c_int
    return function


def _line_table(code: CodeType) -> bytes:
    # 3.10 keeps co_lnotab only as a computed, deprecated attribute: the table is co_linetable.
    return code.co_linetable if sys.version_info >= (3, 10) else code.co_lnotab  # type: ignore[attr-defined]


def _nested_codes(code: CodeType) -> list[CodeType]:
    found = [code]
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            found.extend(_nested_codes(constant))
    return found


def _stdlib_code(module_name: str, dotted: str) -> CodeType | None:
    try:
        target: object = __import__(module_name, fromlist=["_"])
        for part in dotted.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError):
        return None
    return getattr(target, "__code__", None)


def _runs(addr2line: ctypes._CFuncPtr, code: CodeType, last: int) -> list[list[int]]:  # type: ignore[name-defined]
    runs: list[list[int]] = []
    for offset in range(-2, last):
        line = addr2line(code, offset)
        if not runs or runs[-1][1] != line:
            runs.append([offset, line])
    return runs


def _record(code: CodeType, label: str, addr2line: ctypes._CFuncPtr) -> dict[str, object]:  # type: ignore[name-defined]
    size = len(code.co_code)
    # A debug build asserts the offset is inside co_code (3.10): stop there.
    last = size if hasattr(sys, "gettotalrefcount") else size + PAST_END
    return {
        "label": label,
        "name": code.co_name,
        "firstlineno": code.co_firstlineno,
        "table": _line_table(code).hex(),
        "code_size": size,
        "last_offset": last - 1,
        "lines": _runs(addr2line, code, last),
    }


def record_inside() -> dict[str, object]:
    addr2line = _addr2line()
    codes: list[dict[str, object]] = []
    for label, source in STRESS_PROGRAMS.items():
        module = compile(source, f"<{label}>", "exec")
        codes.extend(_record(code, label, addr2line) for code in _nested_codes(module))
    for module_name, dotted in STDLIB_FUNCTIONS:
        code = _stdlib_code(module_name, dotted)
        if code is not None:
            codes.extend(_record(nested, f"{module_name}.{dotted}", addr2line)
                         for nested in _nested_codes(code))
    return {"python": sys.version.split()[0], "codes": codes}


# --------------------------------------------------------------------------- the driver


def record(minor: str, python: Path) -> Path:
    completed = subprocess.run([str(python), str(Path(__file__).resolve()), "--inside"],
                               capture_output=True, text=True, timeout=RUN_TIMEOUT, check=True)
    vectors = json.loads(completed.stdout)
    VECTORS.mkdir(exist_ok=True)
    path = VECTORS / f"py{minor}.json"
    path.write_text(json.dumps(vectors, indent=1) + "\n", encoding="utf-8")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--python", choices=MINORS, action="append", help="only this minor (repeatable)")
    options = parser.parse_args()
    if options.inside:
        json.dump(record_inside(), sys.stdout)
        return 0
    sys.path.insert(0, str(TESTS))
    from pythons import discover_interpreters

    found = discover_interpreters().found
    for minor in options.python or MINORS:
        if minor not in found:
            print(f"CPython {minor}: not installed, skipped", file=sys.stderr)
            continue
        print(f"CPython {minor}: {record(minor, found[minor])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

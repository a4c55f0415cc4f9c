"""What every walker shares: the memory, the layout, and per-dump caches.

`Reader` bundles a `ProcessMemory`, the target's `Layout` and `Interpreter`, and caches
what thousands of threads have in common: code objects (`CodeInfo`, read once per code
address) and type names. `RawFrame`/`RawLocal` are what a frame walker returns.

A frame walker (frames_311 for 3.11-3.13, frames_38 for 3.8-3.10) is a module with:

    current_frame(reader: Reader, tstate: bytes) -> int
        the innermost frame's address from a PyThreadState read in one piece
        (`reader.layout.tstate_size` bytes); 0 when the thread runs no Python code.
    walk(reader: Reader, frame: int, limit: int) -> list[RawFrame]
        the frames from `frame` outwards, innermost first, at most `limit` of them
        (skipped shim frames count too); raises MemoryReadError where memory ends.
    prepare(reader: Reader, tstate: bytes) -> None   (optional)
        called before each thread's walk: e.g. read the thread's data stack in one
        piece into `reader.window` (address, bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from threaddoc.errors import InterpreterLayoutMismatch

from .layouts import Layout
from .memory import MemoryReadError, ProcessMemory, i32_at, pointer_at
from .objects import TypeNames, read_bytes, read_str, read_tuple
from .symbols import Interpreter

MAX_NOT_CODE = 16


class RawLocal(NamedTuple):  # NamedTuples: tens of thousands a dump, built fast
    name: str
    address: int  # the object's address (its identity)
    is_arg: bool  # a positional argument (py-spy: index < co_argcount)


class RawFrame(NamedTuple):
    code: int  # the code object's address
    name: str  # co_qualname (3.11+) or co_name, as py-spy names frames
    filename: str
    line: int
    locals: tuple[RawLocal, ...] = ()
    is_entry: bool = False
    is_shim_entry: bool = False


@dataclass(frozen=True)
class CodeInfo:
    """The parts of a code object that name a frame and decode its line and locals."""

    address: int
    name: str
    filename: str
    firstlineno: int
    argcount: int
    local_names: tuple[str, ...]  # the first co_nlocals names (co_varnames / co_localsplusnames)
    line_table: bytes  # co_lnotab (3.8/3.9) or co_linetable (3.10+)
    first_instruction: int  # address of the first code unit (co_code_adaptive, or co_code's data)
    line_cache: dict[int, int] = field(default_factory=dict, compare=False)  # instruction offset -> line


class Reader:
    """One dump's reading context. Not thread-safe; one per dump."""

    def __init__(self, memory: ProcessMemory, layout: Layout, interpreter: Interpreter) -> None:
        self.memory = memory
        self.layout = layout
        self.interpreter = interpreter
        self.type_names = TypeNames(memory, layout)
        self._codes: dict[int, CodeInfo] = {}
        self._code_type = 0  # the type every code object has (checked once to be "code")
        self._not_code = 0  # frames whose code object was not one, before one was
        self.window: tuple[int, bytes] = (0, b"")  # memory of the thread being walked, read at once
        self.outside: list[tuple[int, bytes]] = []  # what this walk read from outside the window

    def code(self, address: int) -> CodeInfo:
        info = self._codes.get(address)
        if info is None:
            info = self._read_code(address)
            self._codes[address] = info
        return info

    def check_code_type(self, address: int) -> None:
        """A code object's ob_type is the same pointer every time, and that type is "code":
        anything else means a torn read or a layout that is not this interpreter's."""
        ob_type = self.memory.pointer(address + self.layout.object_type)
        if ob_type == self._code_type:
            return
        if self._code_type:
            raise MemoryReadError(address, 0, "not a code object")
        try:
            is_code = self.type_names.of_type(ob_type) == "code"
        except MemoryReadError:
            is_code = False
        if not is_code:  # a frame freed under us names anything; only many in a row say more
            self._not_code += 1
            if self._not_code >= MAX_NOT_CODE:
                raise self.mismatch(f"the objects {MAX_NOT_CODE} frames name are not code objects")
            raise MemoryReadError(address, 0, "not a code object")
        self._code_type = ob_type

    def _read_code(self, address: int) -> CodeInfo:
        layout, memory = self.layout, self.memory
        self.check_code_type(address)
        data = memory.read(address, layout.code_size)
        name_field = layout.code_qualname if layout.code_qualname >= 0 else layout.code_name
        table_field = layout.code_linetable if layout.code_linetable >= 0 else layout.code_lnotab
        names = read_tuple(memory, layout, pointer_at(data, layout.code_varnames
                                                       if layout.code_varnames >= 0
                                                       else layout.code_localsplusnames))
        nlocals = min(max(i32_at(data, layout.code_nlocals), 0), len(names))
        if layout.code_code_adaptive >= 0:
            first_instruction = address + layout.code_code_adaptive
        else:
            first_instruction = pointer_at(data, layout.code_code) + layout.bytes_data
        return CodeInfo(
            address=address,
            name=read_str(memory, layout, pointer_at(data, name_field)),
            filename=read_str(memory, layout, pointer_at(data, layout.code_filename)),
            firstlineno=i32_at(data, layout.code_firstlineno),
            argcount=i32_at(data, layout.code_argcount),
            local_names=tuple(read_str(memory, layout, name) for name in names[:nlocals]),
            line_table=read_bytes(memory, layout, pointer_at(data, table_field)),
            first_instruction=first_instruction,
        )

    def mismatch(self, what: str) -> InterpreterLayoutMismatch:
        return layout_mismatch(self.memory.pid, self.interpreter, what)


def layout_mismatch(pid: int, interpreter: Interpreter, what: str) -> InterpreterLayoutMismatch:
    from .layouts import DERIVED_FROM
    minor = f"{interpreter.version[0]}.{interpreter.version[1]}"
    known = DERIVED_FROM.get(minor, "none")
    return InterpreterLayoutMismatch(
        f"the memory of process {pid} (CPython {interpreter.version_text}, {interpreter.path}) does not "
        f"have the layout threaddoc derived from CPython {known}: {what}",
        "use `--collector py-spy`; if the memory collector is needed, regenerate its layouts with "
        "tests/tools/derive_layouts.py against this patch release's headers")

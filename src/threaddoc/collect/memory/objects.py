"""Reading basic Python objects out of the target: str, bytes, tuple, small int, type names.

Each function takes the `ProcessMemory`, the version's `Layout` and the object's address,
reads the object's header in one pread, and raises MemoryReadError (or ObjectError for
something that is not what it should be) rather than return garbage.
"""

from __future__ import annotations

import struct

from .layouts import Layout
from .memory import MemoryReadError, ProcessMemory, i64_at, pointer_at, u32_at

MAX_STRING_CHARS = 1 << 20  # a file or function name longer than this is not one
MAX_BYTES = 16 << 20  # a line table larger than this is not one
MAX_TUPLE_ITEMS = 1 << 20

# PyASCIIObject.state bit fields, the same from 3.8 to 3.13: interned:2, kind:3, compact:1, ascii:1.
_KIND_SHIFT, _KIND_MASK = 2, 0b111
_COMPACT_BIT = 1 << 5
_ASCII_BIT = 1 << 6
_ENCODINGS = {1: "latin-1", 2: "utf-16-le", 4: "utf-32-le"}


class ObjectError(MemoryReadError):
    """What was read is not the object it should be (a torn read, or a wrong layout)."""

    def __init__(self, address: int, what: str) -> None:
        super().__init__(address, 0, what)


def decode_unicode_state(state: int) -> tuple[int, bool, bool]:
    """(kind, compact, ascii) of a PyASCIIObject.state word."""
    return (state >> _KIND_SHIFT) & _KIND_MASK, bool(state & _COMPACT_BIT), bool(state & _ASCII_BIT)


def read_str(memory: ProcessMemory, layout: Layout, address: int) -> str:
    """A compact `str` (every identifier, file name and qualname is one)."""
    header = memory.read(address, layout.unicode_compact_size)
    length = i64_at(header, layout.unicode_length)
    kind, compact, ascii_only = decode_unicode_state(u32_at(header, layout.unicode_state))
    if not compact or kind not in _ENCODINGS or not 0 <= length <= MAX_STRING_CHARS:
        raise ObjectError(address, "not a compact str")
    data_offset = layout.unicode_ascii_size if ascii_only else layout.unicode_compact_size
    if length == 0:
        return ""
    data = memory.read(address + data_offset, length * kind)
    return data.decode("ascii" if ascii_only else _ENCODINGS[kind], errors="replace")


def read_bytes(memory: ProcessMemory, layout: Layout, address: int) -> bytes:
    size = memory.i64(address + layout.var_size)
    if not 0 <= size <= MAX_BYTES:
        raise ObjectError(address, "not a bytes object")
    return memory.read(address + layout.bytes_data, size) if size else b""


def read_tuple(memory: ProcessMemory, layout: Layout, address: int) -> tuple[int, ...]:
    """The addresses of a tuple's items."""
    size = memory.i64(address + layout.var_size)
    if not 0 <= size <= MAX_TUPLE_ITEMS:
        raise ObjectError(address, "not a tuple")
    return memory.pointers(address + layout.tuple_items, size)


def read_small_int(memory: ProcessMemory, layout: Layout, address: int) -> int:
    """An int of at most two 30-bit digits (|value| < 2**60): thread ids, counters."""
    if layout.long_tag >= 0:  # 3.12+: lv_tag = digits << 3 | sign (0 positive, 1 zero, 2 negative)
        tag = memory.u64(address + layout.long_tag)
        digits, sign = tag >> 3, tag & 3
        negative = sign == 2
        if sign == 1:
            return 0
    else:
        size = memory.i64(address + layout.var_size)
        digits, negative = abs(size), size < 0
    if digits > 2:
        raise ObjectError(address, "int too large")
    if digits == 0:
        return 0
    raw = memory.read(address + layout.long_digits, 4 * digits)
    value = 0
    for index, digit in enumerate(struct.unpack(f"<{digits}I", raw)):
        value |= (digit & 0x3FFFFFFF) << (30 * index)
    return -value if negative else value


def type_of(memory: ProcessMemory, layout: Layout, address: int) -> int:
    """The address of an object's type (ob_type)."""
    return memory.pointer(address + layout.object_type)


class TypeNames:
    """tp_name by type address, read once per type: thousands of locals share a few types."""

    def __init__(self, memory: ProcessMemory, layout: Layout) -> None:
        self._memory = memory
        self._layout = layout
        self._names: dict[int, str] = {}

    def of_type(self, type_address: int) -> str:
        name = self._names.get(type_address)
        if name is None:
            pointer = self._memory.pointer(type_address + self._layout.type_name)
            name = self._memory.cstring(pointer, 256).decode("utf-8", errors="replace")
            self._names[type_address] = name
        return name

    def of_object(self, address: int) -> str:
        return self.of_type(type_of(self._memory, self._layout, address))


def object_at(data: bytes, offset: int) -> int:
    """A PyObject* field of a struct read in one piece."""
    return pointer_at(data, offset)

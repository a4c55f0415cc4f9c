"""The 3.8-3.10 frame walker on a memory image built with each version's real layout.

What a live process rarely shows is built here: a traced frame (f_lineno wins), a stale
f_lineno without a trace function, a frame chain that loops, a torn frame, a frame at
the very end of the readable memory, a function with more locals than are read ahead.
The live comparisons are in tests/integration/test_memory_frames_38.py.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import pytest

from threaddoc.collect.memory import frames_38
from threaddoc.collect.memory.layouts import LAYOUTS, Layout
from threaddoc.collect.memory.memory import MemoryReadError, ProcessMemory
from threaddoc.collect.memory.reader import RawFrame, RawLocal, Reader
from threaddoc.collect.memory.symbols import Interpreter

BASE = 0x10_0000
VERSIONS = [(3, 8), (3, 9), (3, 10)]


class ImageMemory(ProcessMemory):
    """A ProcessMemory over a bytearray: the image's end is where readable memory ends."""

    def __init__(self, image: bytearray) -> None:
        super().__init__(pid=0)
        self.image = image

    def read(self, address: int, size: int) -> bytes:
        start = address - BASE
        if start < 0 or start + size > len(self.image):
            raise MemoryReadError(address, size, "outside the image")
        self.reads += 1
        return bytes(self.image[start:start + size])


@dataclass
class Image:
    """Allocates and fills CPython objects laid out as `layout` says."""

    layout: Layout
    data: bytearray = field(default_factory=bytearray)

    def alloc(self, size: int) -> int:
        address = BASE + len(self.data)
        self.data += bytes(-(-size // 16) * 16)
        return address

    def put(self, address: int, offset: int, fmt: str, value: int) -> None:
        struct.pack_into(fmt, self.data, address - BASE + offset, value)

    def type_object(self, name: str) -> int:
        text = self.alloc(len(name) + 1)
        self.data[text - BASE:text - BASE + len(name)] = name.encode()
        address = self.alloc(self.layout.type_name + 8)
        self.put(address, self.layout.type_name, "<Q", text)
        return address

    def string(self, text: str) -> int:
        layout = self.layout
        address = self.alloc(layout.unicode_compact_size + len(text) + 1)
        self.put(address, layout.unicode_length, "<q", len(text))
        ascii_compact_kind_1 = (1 << 2) | (1 << 5) | (1 << 6)
        self.put(address, layout.unicode_state, "<I", ascii_compact_kind_1)
        start = address - BASE + layout.unicode_ascii_size
        self.data[start:start + len(text)] = text.encode()
        return address

    def tuple_of(self, items: list[int]) -> int:
        address = self.alloc(self.layout.tuple_items + 8 * len(items))
        self.put(address, self.layout.var_size, "<q", len(items))
        for index, item in enumerate(items):
            self.put(address, self.layout.tuple_items + 8 * index, "<Q", item)
        return address

    def bytes_of(self, payload: bytes) -> int:
        address = self.alloc(self.layout.bytes_data + len(payload) + 1)
        self.put(address, self.layout.var_size, "<q", len(payload))
        start = address - BASE + self.layout.bytes_data
        self.data[start:start + len(payload)] = payload
        return address

    def code(self, code_type: int, name: str, varnames: list[str], argcount: int, firstlineno: int,
             table: bytes) -> int:
        layout = self.layout
        address = self.alloc(layout.code_size)
        self.put(address, layout.object_type, "<Q", code_type)
        self.put(address, layout.code_argcount, "<i", argcount)
        self.put(address, layout.code_nlocals, "<i", len(varnames))
        self.put(address, layout.code_firstlineno, "<i", firstlineno)
        self.put(address, layout.code_name, "<Q", self.string(name))
        self.put(address, layout.code_filename, "<Q", self.string(f"/src/{name}.py"))
        self.put(address, layout.code_varnames, "<Q", self.tuple_of([self.string(v) for v in varnames]))
        table_field = layout.code_linetable if layout.version >= (3, 10) else layout.code_lnotab
        self.put(address, table_field, "<Q", self.bytes_of(table))
        return address

    def frame(self, frame_type: int, code: int, back: int, lasti: int, slots: list[int],
              lineno: int = 0, trace: int = 0) -> int:
        layout = self.layout
        address = self.alloc(layout.frame_localsplus + 8 * len(slots))
        self.put(address, layout.object_type, "<Q", frame_type)
        self.put(address, layout.frame_code, "<Q", code)
        self.put(address, layout.frame_back, "<Q", back)
        self.put(address, layout.frame_lasti, "<i", lasti)
        self.put(address, layout.frame_lineno, "<i", lineno)
        if layout.frame_trace >= 0:
            self.put(address, layout.frame_trace, "<Q", trace)
        for index, slot in enumerate(slots):
            self.put(address, layout.frame_localsplus + 8 * index, "<Q", slot)
        return address

    def reader(self) -> Reader:
        interpreter = Interpreter(runtime=0, version=self.layout.version, hexversion=None, path="test")
        return Reader(ImageMemory(self.data), self.layout, interpreter)


def _table(version: tuple[int, int], pairs: list[tuple[int, int]]) -> bytes:
    """A line table of (bytes, line increment) pairs (3.8/3.9 and 3.10 read them differently)."""
    return bytes(value & 0xFF for pair in pairs for value in pair)


def _offset(version: tuple[int, int], byte_offset: int) -> int:
    """f_lasti for a byte offset: 3.10 counts code units."""
    return byte_offset // 2 if version >= (3, 10) else byte_offset


@dataclass
class Program:
    image: Image
    frame_type: int
    code_type: int
    objects: list[int]


def _program(version: tuple[int, int]) -> Program:
    image = Image(LAYOUTS[version])
    frame_type, code_type = image.type_object("frame"), image.type_object("code")
    objects = [image.alloc(32) for _ in range(4)]
    return Program(image, frame_type, code_type, objects)


# The lines at byte 4 of `inner` and byte 8 of `outer` below: an lnotab increment applies
# from its offset on, a 3.10 linetable increment to the range it ends.
CHAIN_LINES = {(3, 8): (42, 13), (3, 9): (42, 13), (3, 10): (41, 14)}


@pytest.mark.parametrize("version", VERSIONS)
def test_a_chain_of_frames_innermost_first(version: tuple[int, int]) -> None:
    program = _program(version)
    image, first, second, third, _ = program.image, *program.objects
    # outer(): line 10, +3 at byte 6 -> line 13 from offset 6.
    outer = image.code(program.code_type, "outer", ["items", "total"], 1, 10,
                       _table(version, [(6, 3), (10, 1)]))
    inner = image.code(program.code_type, "inner", ["self", "timeout", "waiter"], 2, 40,
                       _table(version, [(4, 2), (4, -1), (8, 5)]))
    outer_frame = image.frame(program.frame_type, outer, 0, _offset(version, 8), [first, second])
    inner_frame = image.frame(program.frame_type, inner, outer_frame, _offset(version, 4), [third, 0, first])
    frames = frames_38.walk(image.reader(), inner_frame, 100)
    inner_line, outer_line = CHAIN_LINES[version]
    assert frames == [
        RawFrame(inner, "inner", "/src/inner.py", inner_line, (RawLocal("self", third, True),
                                                       RawLocal("waiter", first, False)), is_entry=True),
        RawFrame(outer, "outer", "/src/outer.py", outer_line, (RawLocal("items", first, True),
                                                       RawLocal("total", second, False)),
                 is_entry=True, is_shim_entry=True),
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_current_frame_is_the_thread_states_frame(version: tuple[int, int]) -> None:
    layout = LAYOUTS[version]
    tstate = bytearray(layout.tstate_size)
    struct.pack_into("<Q", tstate, layout.tstate_frame, 0xABCDEF0)
    assert frames_38.current_frame(_program(version).image.reader(), bytes(tstate)) == 0xABCDEF0


@pytest.mark.parametrize("version", [(3, 8), (3, 9)])
def test_38_a_traced_frame_is_at_f_lineno(version: tuple[int, int]) -> None:
    program = _program(version)
    image = program.image
    code = image.code(program.code_type, "f", [], 0, 5, _table(version, [(2, 1)]))
    traced = image.frame(program.frame_type, code, 0, 4, [], lineno=99, trace=program.objects[0])
    stale = image.frame(program.frame_type, code, 0, 4, [], lineno=99, trace=0)
    reader = image.reader()
    assert frames_38.walk(reader, traced, 10)[0].line == 99
    assert frames_38.walk(reader, stale, 10)[0].line == 6  # f_lineno is stale without f_trace


def test_310_a_non_zero_f_lineno_wins_and_f_lasti_counts_code_units() -> None:
    version = (3, 10)
    program = _program(version)
    image = program.image
    code = image.code(program.code_type, "f", [], 0, 5, _table(version, [(2, 1), (2, 1), (2, 1)]))
    traced = image.frame(program.frame_type, code, 0, 2, [], lineno=77)
    plain = image.frame(program.frame_type, code, 0, 2, [])  # code unit 2 = byte 4: line 8
    reader = image.reader()
    assert frames_38.walk(reader, traced, 10)[0].line == 77
    assert frames_38.walk(reader, plain, 10)[0].line == 8


def test_310_an_instruction_without_a_line_is_line_0() -> None:
    version = (3, 10)
    program = _program(version)
    image = program.image
    code = image.code(program.code_type, "f", [], 0, 5, bytes([2, 1, 2, 0x80]))
    frame = image.frame(program.frame_type, code, 0, 1, [])  # byte 2: the range without a line
    assert frames_38.walk(image.reader(), frame, 10)[0].line == 0


@pytest.mark.parametrize("version", VERSIONS)
def test_lines_are_cached_per_code_and_offset(version: tuple[int, int]) -> None:
    program = _program(version)
    image = program.image
    code = image.code(program.code_type, "f", [], 0, 5, _table(version, [(2, 1), (2, 1)]))
    frame = image.frame(program.frame_type, code, 0, _offset(version, 2), [])
    reader = image.reader()
    frames_38.walk(reader, frame, 10)
    assert reader.code(code).line_cache == {2: 7 if version >= (3, 10) else 6}


@pytest.mark.parametrize("version", VERSIONS)
def test_a_frame_chain_that_loops_is_a_torn_read(version: tuple[int, int]) -> None:
    program = _program(version)
    image = program.image
    code = image.code(program.code_type, "f", [], 0, 1, b"")
    first = image.frame(program.frame_type, code, 0, 0, [])
    second = image.frame(program.frame_type, code, first, 0, [])
    image.put(first, image.layout.frame_back, "<Q", second)
    with pytest.raises(frames_38.StackCut, match="comes back") as cut:
        frames_38.walk(image.reader(), second, 100)
    assert [frame.name for frame in cut.value.frames] == ["f", "f"]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_walk_stops_at_the_limit(version: tuple[int, int]) -> None:
    program = _program(version)
    image = program.image
    code = image.code(program.code_type, "f", [], 0, 1, b"")
    frame = 0
    for _ in range(5):
        frame = image.frame(program.frame_type, code, frame, 0, [])
    frames = frames_38.walk(image.reader(), frame, 3)
    assert len(frames) == 3
    assert not frames[-1].is_shim_entry  # not the outermost: the stack was cut


@pytest.mark.parametrize("version", VERSIONS)
def test_something_that_is_not_a_frame_is_refused(version: tuple[int, int]) -> None:
    program = _program(version)
    image = program.image
    code = image.code(program.code_type, "f", [], 0, 1, b"")
    impostor = image.frame(image.type_object("dict"), code, 0, 0, [])
    top = image.frame(program.frame_type, code, impostor, 0, [])
    with pytest.raises(frames_38.StackCut, match="not a frame"):
        frames_38.walk(image.reader(), top, 100)


@pytest.mark.parametrize("version", VERSIONS)
def test_an_unreadable_caller_raises(version: tuple[int, int]) -> None:
    program = _program(version)
    image = program.image
    code = image.code(program.code_type, "f", [], 0, 1, b"")
    top = image.frame(program.frame_type, code, BASE + 0x7FFF_0000, 0, [])
    with pytest.raises(frames_38.StackCut) as cut:
        frames_38.walk(image.reader(), top, 100)
    assert len(cut.value.frames) == 1 and not cut.value.frames[0].is_shim_entry


@pytest.mark.parametrize("version", VERSIONS)
def test_an_unreadable_innermost_frame_is_no_stack_cut(version: tuple[int, int]) -> None:
    """Nothing was read: a plain MemoryReadError, the caller reads the thread again."""
    with pytest.raises(MemoryReadError) as error:
        frames_38.walk(_program(version).image.reader(), BASE + 0x7FFF_0000, 100)
    assert not isinstance(error.value, frames_38.StackCut)


@pytest.mark.parametrize("version", VERSIONS)
def test_more_locals_than_are_read_ahead(version: tuple[int, int]) -> None:
    program = _program(version)
    image = program.image
    count = frames_38.LOCALS_READ_AHEAD + 9
    names = [f"v{index}" for index in range(count)]
    code = image.code(program.code_type, "many", names, 0, 1, b"")
    values = [program.objects[index % 4] if index % 3 else 0 for index in range(count)]
    frame = image.frame(program.frame_type, code, 0, 0, values)
    reader = image.reader()
    (walked,) = frames_38.walk(reader, frame, 10)
    assert [(local.name, local.address) for local in walked.locals] == [
        (name, value) for name, value in zip(names, values) if value]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_frame_at_the_end_of_readable_memory(version: tuple[int, int]) -> None:
    program = _program(version)
    image = program.image
    code = image.code(program.code_type, "last", ["only"], 1, 1, b"")
    frame = image.frame(program.frame_type, code, 0, 0, [program.objects[0]])  # memory ends with it
    (walked,) = frames_38.walk(image.reader(), frame, 10)
    assert walked.locals == (RawLocal("only", program.objects[0], True),)


def test_the_layout_has_the_fields_the_walker_reads() -> None:
    for version in VERSIONS:
        layout = LAYOUTS[version]
        assert min(layout.frame_back, layout.frame_code, layout.frame_lasti, layout.frame_lineno,
                   layout.frame_localsplus, layout.tstate_frame) >= 0
        assert layout.frame_trace >= 0

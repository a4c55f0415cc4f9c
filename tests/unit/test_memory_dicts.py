"""Dicts, instance attributes, thread names and the GIL, decoded from recorded memory.

tests/memory_dicts/py<X.Y>.json hold the bytes threaddoc read from a real CPython 3.8 to
3.13 process (tests/tools/record_memory_dicts.py) and the answers Python itself gave
there (`id()` of each value, `threading.enumerate()` names). Here the same reads are
served from the recording, so the decoding of every table shape is checked offline;
the pure helpers are checked against CPython's own definitions.
"""

from __future__ import annotations

import json
import struct
from bisect import bisect_right
from pathlib import Path
from typing import Any

import pytest

from threaddoc.collect.memory import debug_layout
from threaddoc.collect.memory.dicts import (
    MAX_TABLE_SLOTS,
    DictReader,
    decode_int,
    index_width,
    parse_key_table,
    var_object_size,
)
from threaddoc.collect.memory.layouts import LAYOUTS, Layout
from threaddoc.collect.memory.memory import MemoryReadError, ProcessMemory
from threaddoc.collect.memory.names import gil_holder, thread_names
from threaddoc.collect.memory.objects import ObjectError
from threaddoc.collect.memory.reader import Reader
from threaddoc.collect.memory.symbols import Interpreter

RECORDINGS = Path(__file__).resolve().parents[1] / "memory_dicts"
MINORS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13")


class RecordedMemory(ProcessMemory):
    """Serves reads from a recording; a read it does not hold fails like unmapped memory."""

    def __init__(self, segments: list[tuple[int, bytes]], missing: frozenset[int] = frozenset()) -> None:
        super().__init__(pid=0)
        self._starts = [start for start, _ in segments]
        self._segments = segments
        self._missing = missing  # segment starts to pretend are unmapped

    def read(self, address: int, size: int) -> bytes:
        self.reads += 1
        index = bisect_right(self._starts, address) - 1
        if index >= 0:
            start, data = self._segments[index]
            if start not in self._missing and address + size <= start + len(data):
                return data[address - start:address - start + size]
        raise MemoryReadError(address, size, "not in the recording")


def load(minor: str) -> dict[str, Any]:
    path = RECORDINGS / f"py{minor}.json"
    recording: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return recording


def segments_of(recording: dict[str, Any]) -> list[tuple[int, bytes]]:
    return [(address, bytes.fromhex(data)) for address, data in recording["segments"]]


def layout_of(minor: str) -> Layout:
    major, minor_number = (int(part) for part in minor.split("."))
    return LAYOUTS[(major, minor_number)]


def dict_reader(minor: str, recording: dict[str, Any], speculative: bool = True) -> DictReader:
    return DictReader(RecordedMemory(segments_of(recording)), layout_of(minor), speculative=speculative)


def names_reader(minor: str, memory: ProcessMemory, recording: dict[str, Any]) -> tuple[Reader, int]:
    """A Reader set up as `dump` sets it up, and the main interpreter's address."""
    told = recording["interpreter"]
    layout = layout_of(minor)
    interpreter = Interpreter(told["runtime"], layout.version, told["hexversion"], told["path"])
    if layout.debug_cookie >= 0:
        layout = debug_layout(memory, interpreter, layout)
    interp = memory.pointer(interpreter.runtime + layout.runtime_main_interpreter)
    return Reader(memory, layout, interpreter), interp


@pytest.fixture(params=MINORS, ids=[f"py{minor}" for minor in MINORS])
def minor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def recording(minor: str) -> dict[str, Any]:
    return load(minor)


# --------------------------------------------------------------------------- recorded processes


@pytest.mark.parametrize("name", ["many", "small", "unicode_keys"])
def test_str_keyed_dicts_read_as_python_sees_them(minor: str, recording: dict[str, Any], name: str) -> None:
    reader = dict_reader(minor, recording)
    assert reader.str_items(recording["objects"][name]) == recording["expected"][name]


def test_the_big_dict_needs_wider_indices_than_a_byte(minor: str, recording: dict[str, Any]) -> None:
    reader = dict_reader(minor, recording)
    header = reader.memory.read(recording["objects"]["many"], reader.layout.dict_values + 8)
    table = reader.key_table(struct.unpack_from("<Q", header, reader.layout.dict_keys)[0])
    assert table.slots > 0xFF
    assert table.entries_offset - reader.layout.dictkeys_indices >= 2 * table.slots


def test_a_deleted_key_is_not_an_item(minor: str, recording: dict[str, Any]) -> None:
    items = dict_reader(minor, recording).str_items(recording["objects"]["small"])
    assert "b" not in items
    assert sorted(items) == ["a", "c", "d", "e"]


def test_int_keys_read_as_the_ints_they_are(minor: str, recording: dict[str, Any]) -> None:
    reader = dict_reader(minor, recording)
    found = reader.int_items(recording["objects"]["idents"])
    assert {str(key): value for key, value in found.items()} == recording["expected"]["idents"]
    assert len(found) == 20


def test_a_non_ascii_key_is_found(minor: str, recording: dict[str, Any]) -> None:
    reader = dict_reader(minor, recording)
    found = reader.get(recording["objects"]["unicode_keys"], "名前")
    assert found == recording["expected"]["unicode_keys.名前"]


@pytest.mark.parametrize("speculative", [True, False], ids=["window", "field-by-field"])
def test_instance_attributes_of_every_shape(minor: str, recording: dict[str, Any], speculative: bool) -> None:
    reader = dict_reader(minor, recording, speculative)
    cases = ("plain._name", "plain.x", "combined._name", "looked_at._name", "var_sized._name",
             "current._name")
    # the recorder's order: a window is sized by the object before it, mostly of another type
    found = {case: reader.attribute(recording["objects"][case.split(".")[0]], case.split(".")[1])
             for case in cases}
    assert found == {case: recording["expected"][case] for case in cases}


def test_a_missing_attribute_is_none(minor: str, recording: dict[str, Any]) -> None:
    assert dict_reader(minor, recording).attribute(recording["objects"]["plain"], "missing") is None


def test_a_module_is_found_in_sys_modules(minor: str, recording: dict[str, Any]) -> None:
    reader = dict_reader(minor, recording)
    found = reader.get(recording["objects"]["modules"], "threading")
    assert found == recording["expected"]["modules.threading"]


def test_thread_names_are_threadings_names(minor: str, recording: dict[str, Any]) -> None:
    memory = RecordedMemory(segments_of(recording))
    reader, interp = names_reader(minor, memory, recording)
    names = {str(ident): name for ident, name in thread_names(reader, interp).items()}
    assert names == recording["expected"]["thread_names"]
    assert {"MainThread", "worker-1", "wörker-2", "x" * 300} <= set(names.values())
    assert any(name.startswith("Dummy-") for name in names.values())


def test_a_free_gil_has_no_holder(minor: str, recording: dict[str, Any]) -> None:
    memory = RecordedMemory(segments_of(recording))
    reader, _ = names_reader(minor, memory, recording)
    assert gil_holder(reader) is None


def test_objects_of_one_type_cost_a_few_reads_each(minor: str, recording: dict[str, Any]) -> None:
    """The type and where `_name` is in its shared keys are read once, not once an object:
    what keeps 10,000 thread names fast."""
    reader = dict_reader(minor, recording)
    objects = reader.int_items(recording["objects"]["idents"])
    costs, names = [], {}
    for ident, address in objects.items():
        before = reader.memory.reads
        names[str(ident)] = reader.attribute(address, "_name")
        costs.append(reader.memory.reads - before)
    assert names == recording["expected"]["idents._name"]
    assert max(costs[1:]) <= 3 < costs[0]


def test_unreadable_memory_gives_no_names_rather_than_an_error(minor: str, recording: dict[str, Any]) -> None:
    segments = segments_of(recording)
    memory = RecordedMemory(segments)
    reader, interp = names_reader(minor, memory, recording)
    modules_dict = memory.pointer(interp + reader.layout.interp_modules)
    broken = RecordedMemory(segments, missing=frozenset({modules_dict}))
    reader, interp = names_reader(minor, broken, recording)
    assert thread_names(reader, interp) == {}


def test_a_key_that_cannot_be_read_is_left_out_not_fatal(minor: str, recording: dict[str, Any]) -> None:
    segments = segments_of(recording)
    reader = DictReader(RecordedMemory(segments), layout_of(minor))
    idents = reader.items(recording["objects"]["idents"])
    lost_key = idents[3][0]
    broken = DictReader(RecordedMemory(segments, missing=frozenset({lost_key})), layout_of(minor))
    found = broken.int_items(recording["objects"]["idents"])
    assert len(found) == len(idents) - 1
    expected = recording["expected"]["idents"]
    assert {str(key): value for key, value in found.items()}.items() <= expected.items()


# --------------------------------------------------------------------------- pure helpers


def test_index_width_follows_dk_ixsize() -> None:
    # Objects/dictobject.c (3.8-3.10) DK_IXSIZE: <= 0xff: 1, <= 0xffff: 2, <= 0xffffffff: 4, else 8
    assert [index_width(n) for n in (8, 128, 255, 256, 0xFFFF, 0x10000, 0xFFFFFFFF, 1 << 32)] == \
        [1, 1, 1, 2, 2, 4, 4, 8]


def test_var_object_size_rounds_up_to_a_pointer() -> None:
    assert var_object_size(24, 8, 3) == 48
    assert var_object_size(24, 1, 3) == 32
    assert var_object_size(24, 8, -3) == 48  # ob_size is negative for negative ints


def key_header(layout: Layout, slots: int, used: int) -> bytes:
    header = bytearray(layout.dictkeys_indices)
    struct.pack_into("<q", header, layout.dictkeys_nentries, used)
    if layout.dictkeys_size >= 0:
        struct.pack_into("<q", header, layout.dictkeys_size, slots)
    else:
        log2 = slots.bit_length() - 1
        header[layout.dictkeys_log2_size] = log2
        header[layout.dictkeys_log2_index_bytes] = log2 + (0 if slots <= 0x80 else 1)
        header[layout.dictkeys_kind] = layout.dictkeys_kind_general
    return bytes(header)


@pytest.mark.parametrize("slots", [MAX_TABLE_SLOTS * 2, 12, 4, 0])
def test_an_insane_key_table_is_refused(minor: str, slots: int) -> None:
    layout = layout_of(minor)
    if layout.dictkeys_size < 0 and slots & (slots - 1):
        pytest.skip("3.11+ store log2 of the size: it is a power of two by construction")
    with pytest.raises(ObjectError):
        header = key_header(layout, slots, 0) if slots else bytes(layout.dictkeys_indices)
        parse_key_table(layout, 0x1000, header)


def test_more_entries_than_slots_is_refused(minor: str) -> None:
    layout = layout_of(minor)
    with pytest.raises(ObjectError):
        parse_key_table(layout, 0x1000, key_header(layout, 8, 9))


def test_a_sane_key_table_puts_its_entries_after_the_indices(minor: str) -> None:
    layout = layout_of(minor)
    table = parse_key_table(layout, 0x1000, key_header(layout, 512, 300))
    assert (table.slots, table.used) == (512, 300)
    assert table.entries_offset == layout.dictkeys_indices + 2 * 512
    assert table.entry_size == layout.dict_entry_size


def long_bytes(layout: Layout, value: int) -> bytes:
    digits = [(abs(value) >> shift) & 0x3FFFFFFF for shift in (0, 30)]
    count = 0 if value == 0 else (1 if abs(value) < 1 << 30 else 2)
    data = bytearray(layout.long_digits + 8)
    if layout.long_tag >= 0:
        sign = 1 if value == 0 else (2 if value < 0 else 0)
        struct.pack_into("<Q", data, layout.long_tag, count << 3 | sign)
    else:
        struct.pack_into("<q", data, layout.var_size, -count if value < 0 else count)
    struct.pack_into("<II", data, layout.long_digits, *digits)
    return bytes(data)


@pytest.mark.parametrize("value", [0, 7, -7, (1 << 30) + 5, 140_000_000_000_000, -(1 << 59)])
def test_ints_decode_from_their_digits(minor: str, value: int) -> None:
    layout = layout_of(minor)
    assert decode_int(layout, 0x1000, long_bytes(layout, value)) == value


def test_an_int_of_three_digits_is_not_a_thread_ident(minor: str) -> None:
    layout = layout_of(minor)
    data = bytearray(long_bytes(layout, 1))
    if layout.long_tag >= 0:
        struct.pack_into("<Q", data, layout.long_tag, 3 << 3)
    else:
        struct.pack_into("<q", data, layout.var_size, 3)
    with pytest.raises(ObjectError):
        decode_int(layout, 0x1000, bytes(data))

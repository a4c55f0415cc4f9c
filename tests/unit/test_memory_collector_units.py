"""The pure parts of the memory collector: the 3.11+ location table, ELF files, objects.

Location tables are checked against vectors recorded from each real interpreter
(tests/tools/record_locations_311.py); ELF parsing against the libpython files pyenv
holds; object reading against this very process's memory (/proc/self/mem), whose
objects Python tells us the truth about (id(), sys.hexversion).
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import struct
import sys
from pathlib import Path
from typing import Any

import pytest
from pythons import interpreters

from threaddoc.collect.memory.frames_311 import line_for_offset
from threaddoc.collect.memory.layouts import LAYOUTS, Layout
from threaddoc.collect.memory.memory import MemoryReadError, ProcessMemory
from threaddoc.collect.memory.objects import (
    TypeNames,
    decode_unicode_state,
    read_bytes,
    read_small_int,
    read_str,
    read_tuple,
)
from threaddoc.collect.memory.symbols import ElfError, find_interpreter, parse_elf, parse_maps
from threaddoc.errors import NoSuchProcess

LOCATIONS = Path(__file__).resolve().parents[1] / "locations"
LOCATION_MINORS = ("3.11", "3.12", "3.13")
OWN_LAYOUT = LAYOUTS.get(sys.version_info[:2])


def _vectors(minor: str) -> dict[str, Any]:
    path = LOCATIONS / f"py{minor}.json"
    assert path.is_file(), f"record it with tests/tools/record_locations_311.py --python {minor}"
    vectors: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return vectors


def _expected_lines(runs: list[list[int]], code_size: int) -> dict[int, int]:
    """offset -> line, from [first offset, line] runs."""
    lines: dict[int, int] = {}
    bounds = [start for start, _ in runs[1:]] + [code_size]
    for (start, line), end in zip(runs, bounds):
        for offset in range(start, end, 2):
            lines[offset] = line
    return lines


@pytest.mark.parametrize("minor", LOCATION_MINORS)
def test_location_table_gives_cpythons_line_at_every_instruction(minor: str) -> None:
    vectors = _vectors(minor)
    checked = 0
    wrong = []
    for code in vectors["codes"]:
        table = bytes.fromhex(code["table"])
        for offset, line in _expected_lines(code["lines"], code["code_size"]).items():
            if line == -1:
                continue  # CPython has no line there; py-spy keeps the line before it
            got = line_for_offset(table, code["firstlineno"], offset)
            checked += 1
            if got != line:
                wrong.append((code["label"], code["name"], offset, got, line))
    assert checked > 5000, f"only {checked} offsets recorded for {vectors['python']}"
    assert not wrong, wrong[:20]


@pytest.mark.parametrize("minor", LOCATION_MINORS)
def test_location_vectors_cover_the_long_forms(minor: str) -> None:
    """The far-jump program needs line deltas only the long and no-column forms carry."""
    codes = [code for code in _vectors(minor)["codes"] if code["name"] == "far_jumps"]
    assert codes
    lines = {line for _, line in codes[0]["lines"]}
    assert {5003, 10006, 10007} <= lines


def test_location_table_offset_before_the_first_instruction_is_the_first_entrys_line() -> None:
    """A frame that has not run yet (3.11/3.12 prev_instr one unit before the code)."""
    table = bytes([0x80 | (13 << 3) | 0, 0x04])  # no-column form, one code unit, line +2
    assert line_for_offset(table, 10, -2) == 12
    assert line_for_offset(table, 10, 0) == 12
    assert line_for_offset(b"", 10, 0) == 10


# ---------------------------------------------------------------------------- ELF


def _libpythons() -> list[tuple[str, Path]]:
    found = []
    for minor, python in interpreters().items():
        library = python.resolve().parents[1] / "lib" / f"libpython{minor}.so.1.0"
        if library.is_file():
            found.append((minor, library))
    return found


def _file_offset(loads: tuple[tuple[int, int], ...], vaddr: int) -> int:
    offset, start = max((load for load in loads if load[1] <= vaddr), key=lambda load: load[1])
    return vaddr - start + offset


@pytest.mark.parametrize(("minor", "library"), _libpythons(), ids=[minor for minor, _ in _libpythons()])
def test_elf_of_a_real_libpython_exports_pyruntime(minor: str, library: Path) -> None:
    data = library.read_bytes()
    elf = parse_elf(data, frozenset({"_PyRuntime", "Py_Version"}))
    with library.open("rb") as opened:  # how the collector reads it: headers and tables only
        assert parse_elf(opened, frozenset({"_PyRuntime", "Py_Version"})) == elf
    runtime = elf.symbols["_PyRuntime"]
    major, minor_number = (int(part) for part in minor.split("."))
    layout = LAYOUTS[(major, minor_number)]
    assert runtime.size >= layout.runtime_main_interpreter + 8  # what the collector reads is inside it
    if minor in ("3.8", "3.9", "3.10"):
        assert "Py_Version" not in elf.symbols
        return
    version = struct.unpack_from("<I", data, _file_offset(elf.loads, elf.symbols["Py_Version"].value))[0]
    assert f"{version >> 24}.{(version >> 16) & 0xFF}" == minor
    if minor == "3.13":  # _PyRuntime starts with _Py_DebugOffsets, initialised in the file
        assert data[_file_offset(elf.loads, runtime.value):][:8] == b"xdebugpy"


def test_elf_reader_refuses_what_it_does_not_read() -> None:
    with pytest.raises(ElfError):
        parse_elf(b"#!/bin/sh\n" * 10)
    thirty_two_bit = b"\x7fELF\x01\x01\x01" + bytes(64)
    with pytest.raises(ElfError, match="64-bit little-endian"):
        parse_elf(thirty_two_bit)
    with pytest.raises(ElfError):
        parse_elf(b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHIQQQ", 3, 62, 1, 0, 1 << 40, 0)
                  + bytes(32))


def test_maps_lines_with_and_without_paths() -> None:
    text = ("55d1c0a00000-55d1c0a01000 r--p 00000000 08:01 1234 /usr/bin/python3.12\n"
            "7f0000000000-7f0000021000 rw-p 00000000 00:00 0 \n"
            "7f1000000000-7f1000100000 r-xp 00010000 08:01 99 /lib/libpython3.11.so.1.0 (deleted)\n"
            "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]\n")
    mappings = parse_maps(text)
    assert [(m.start, m.offset, m.path) for m in mappings] == [
        (0x55D1C0A00000, 0, "/usr/bin/python3.12"),
        (0x7F1000000000, 0x10000, "/lib/libpython3.11.so.1.0 (deleted)")]


def test_find_interpreter_locates_this_processs_pyruntime() -> None:
    interpreter = find_interpreter(os.getpid())
    assert interpreter.version == sys.version_info[:2]
    assert interpreter.runtime == ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, "_PyRuntime"))
    if sys.version_info >= (3, 11):
        assert interpreter.hexversion == sys.hexversion


# ---------------------------------------------------------------------------- objects


def test_unicode_state_bits() -> None:
    # interned:2 kind:3 compact:1 ascii:1 — an interned compact ASCII str, a UCS-2 one
    assert decode_unicode_state(0b1_1_001_01) == (1, True, True)
    assert decode_unicode_state(0b0_1_010_00) == (2, True, False)
    assert decode_unicode_state(0b0_0_100_00) == (4, False, False)


needs_own_layout = pytest.mark.skipif(OWN_LAYOUT is None,
                                      reason="threaddoc runs on a CPython without a layout")


@needs_own_layout
@pytest.mark.parametrize("text", ["", "ascii only", "café au lait", "日本語のテキスト", "emoji 😀 and ✓"])
def test_read_str_of_every_kind(text: str) -> None:
    assert OWN_LAYOUT is not None
    value = "".join(list(text))  # a fresh, non-interned object
    with ProcessMemory(os.getpid()) as memory:
        assert read_str(memory, OWN_LAYOUT, id(value)) == text


@needs_own_layout
def test_read_bytes_tuple_int_and_type_names() -> None:
    assert OWN_LAYOUT is not None
    data, items = bytes(range(256)) * 3, ("a", 7, None)
    numbers = [0, 1, 255, -3, 2**30 + 5, -(2**45)]
    with ProcessMemory(os.getpid()) as memory:
        assert read_bytes(memory, OWN_LAYOUT, id(data)) == data
        assert read_tuple(memory, OWN_LAYOUT, id(items)) == tuple(id(item) for item in items)
        assert [read_small_int(memory, OWN_LAYOUT, id(number)) for number in numbers] == numbers
        names = TypeNames(memory, OWN_LAYOUT)
        assert [names.of_object(id(thing)) for thing in (data, items, numbers, memory)] == \
            ["bytes", "tuple", "list", "ProcessMemory"]


def test_unreadable_address_and_vanished_process() -> None:
    with ProcessMemory(os.getpid()) as memory:
        with pytest.raises(MemoryReadError):
            memory.read(8, 8)
        with pytest.raises(MemoryReadError):
            memory.pointer(0)
    with pytest.raises(NoSuchProcess):
        ProcessMemory(2**22 + 12345).open()


# ---------------------------------------------------------------------------- layouts


def test_layouts_py_has_every_field_of_the_generators_spec() -> None:
    """A row added to tests/tools/derive_layouts.py without regenerating layouts.py fails here
    (regenerating needs gcc and every interpreter's headers; this check needs neither)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    try:
        import derive_layouts
    finally:
        sys.path.pop(0)
    generated = {field.name for field in dataclasses.fields(Layout)} - {"version"}
    assert set(derive_layouts.fields()) == generated
    for version, layout in LAYOUTS.items():
        present = {row.field for row in derive_layouts.SPEC if row.applies(version)}
        assert {name for name in generated if getattr(layout, name) >= 0} == present, version


# ----------------------------------------------------------------------------- OS thread ids


class _PthreadStructs:
    """A target's memory holding one glibc `struct pthread` per thread: the TID at 0x2d0,
    and, as in real ones, words equal to the process id in every struct (seen at 12, 796 and
    1604 of a 3.8 target)."""

    def __init__(self, pid: int, tids: dict[int, int]) -> None:
        self._structs: dict[int, bytes] = {}
        for pthread, tid in tids.items():
            data = bytearray(2048)
            for offset in (12, 796, 1604):
                struct.pack_into("<i", data, offset, pid)
            struct.pack_into("<i", data, 0x2D0, tid)
            self._structs[pthread] = bytes(data)

    def read(self, address: int, size: int) -> bytes:
        for start, data in self._structs.items():
            if start <= address and address + size <= start + len(data):
                return data[address - start: address - start + size]
        raise MemoryReadError(address, size, "unmapped")


def test_os_thread_id_is_each_threads_own_not_the_process_id_every_struct_holds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from threaddoc.collect.memory import tids as tids_module

    pid = 21928
    threads = {0x7F0000001000 + 0x10000 * n: pid + 1 + n for n in range(40)}
    threads[0x7F00F0000000] = pid  # the main thread: its TID is the pid
    monkeypatch.setattr(tids_module.NativeThreadIds, "_task_ids",
                        lambda self: frozenset(threads.values()))
    layout = dataclasses.replace(LAYOUTS[(3, 8)], tstate_native_thread_id=-1)
    native = tids_module.NativeThreadIds(pid, _PthreadStructs(pid, threads), layout,  # type: ignore[arg-type]
                                         list(threads))
    assert {pthread: native.of(b"", pthread) for pthread in threads} == threads

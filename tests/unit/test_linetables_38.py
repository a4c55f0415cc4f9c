"""The 3.8/3.9 lnotab and 3.10 linetable decoders against what CPython itself computes.

tests/linetables/py<X.Y>.json was recorded by tests/tools/record_linetables.py from the
real interpreters: per code object its table and the line `PyCode_Addr2Line` gave for
every byte offset from -2 to past the end of co_code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threaddoc.collect.memory.linetables_38 import (
    NO_LINE,
    LineTable,
    decode_linetable_310,
    decode_lnotab,
    linetable_310_line,
    lnotab_line,
)

VECTORS = Path(__file__).resolve().parents[1] / "linetables"
MINORS = ("3.8", "3.9", "3.10")


def _vectors(minor: str) -> list[dict[str, Any]]:
    codes: list[dict[str, Any]] = json.loads((VECTORS / f"py{minor}.json").read_text("utf-8"))["codes"]
    return codes


def _decode(minor: str, code: dict[str, Any]) -> LineTable:
    decoder = decode_linetable_310 if minor == "3.10" else decode_lnotab
    return decoder(bytes.fromhex(code["table"]), code["firstlineno"])


def _expected(code: dict[str, Any]) -> Iterator[tuple[int, int]]:
    """(offset, line) for every recorded offset, expanded from the [first offset, line] runs."""
    runs = code["lines"]
    for index, (start, line) in enumerate(runs):
        stop = runs[index + 1][0] if index + 1 < len(runs) else code["last_offset"] + 1
        for offset in range(start, stop):
            yield offset, line


def _signed_increments(table: bytes) -> list[int]:
    return [value - 256 if value >= 128 else value for value in table[1::2]]


@pytest.mark.parametrize("minor", MINORS)
def test_every_recorded_offset_gets_cpythons_line(minor: str) -> None:
    mismatches = []
    for code in _vectors(minor):
        table = _decode(minor, code)
        mismatches.extend((code["label"], code["name"], offset, table.line_at(offset), line)
                          for offset, line in _expected(code) if table.line_at(offset) != line)
    assert mismatches == []


@pytest.mark.parametrize("minor", MINORS)
def test_the_vectors_hold_the_hard_cases(minor: str) -> None:
    """Negative increments, jumps > 127 lines both ways, > 255 bytes on a line, past the end."""
    codes = _vectors(minor)
    increments = [delta for code in codes for delta in _signed_increments(bytes.fromhex(code["table"]))]
    assert any(-128 < delta < 0 for delta in increments)
    line_steps = [b[1] - a[1] for code in codes for a, b in zip(code["lines"], code["lines"][1:])
                  if a[1] > 0 and b[1] > 0]
    assert max(line_steps) > 255
    assert min(line_steps) < -255
    run_lengths = [b[0] - a[0] for code in codes for a, b in zip(code["lines"], code["lines"][1:])]
    assert max(run_lengths) > 255
    assert all(code["last_offset"] >= code["code_size"] for code in codes)


def test_310_vectors_hold_ranges_without_a_line() -> None:
    codes = _vectors("3.10")
    assert any(-128 in _signed_increments(bytes.fromhex(code["table"])) for code in codes)
    # CPython answers -1 past the end of the code.
    assert all(code["lines"][-1][1] == NO_LINE for code in codes)


def test_lnotab_without_pairs_is_the_first_line_everywhere() -> None:
    table = decode_lnotab(b"", 17)
    assert [table.line_at(offset) for offset in (-2, 0, 10, 10_000)] == [17, 17, 17, 17]


def test_lnotab_ignores_a_trailing_odd_byte() -> None:
    assert decode_lnotab(bytes([4, 1, 9]), 10) == decode_lnotab(bytes([4, 1]), 10)


def test_lnotab_increments_at_one_offset_all_apply() -> None:
    # A jump of 300 lines at offset 6: (6, 127), (0, 127), (0, 46).
    table = decode_lnotab(bytes([6, 127, 0, 127, 0, 46]), 1)
    assert [table.line_at(offset) for offset in (4, 5, 6, 7, 500)] == [1, 1, 301, 301, 301]


def test_lnotab_negative_increment() -> None:
    table = decode_lnotab(bytes([2, 5, 4, 0xFD]), 10)  # +5 at 2, -3 at 6
    assert [table.line_at(offset) for offset in (0, 2, 5, 6, 8)] == [10, 15, 15, 12, 12]


def test_linetable_310_past_the_end_and_before_the_start() -> None:
    table = decode_linetable_310(bytes([4, 1, 4, 0x80, 2, 2]), 5)  # [0,4) 6, [4,8) none, [8,10) 8
    assert [table.line_at(offset) for offset in (-2, 0, 3, 4, 7, 8, 9, 10, 99)] == [
        5, 6, 6, NO_LINE, NO_LINE, 8, 8, NO_LINE, NO_LINE]


def test_linetable_310_empty_ranges_carry_their_increment() -> None:
    # A jump of 200 lines before a 6-byte range: (0, 127), (6, 73).
    table = decode_linetable_310(bytes([0, 127, 6, 73]), 1)
    assert table.line_at(0) == 201
    assert table.line_at(6) == NO_LINE


# --------------------------------------------------------------------------- reference loops

def _cpython_38_addr2line(lnotab: bytes, firstlineno: int, addrq: int) -> int:
    """Objects/codeobject.c (3.8/3.9) PyCode_Addr2Line, transliterated."""
    line, addr = firstlineno, 0
    for index in range(len(lnotab) // 2):
        addr += lnotab[2 * index]
        if addr > addrq:
            break
        increment = lnotab[2 * index + 1]
        line += increment - 256 if increment >= 128 else increment
    return line


def _cpython_310_addr2line(linetable: bytes, firstlineno: int, addrq: int) -> int:
    """Objects/codeobject.c (3.10) PyCode_Addr2Line / _PyCode_CheckLineNumber, transliterated."""
    if addrq < 0:
        return firstlineno
    start, end, computed, line = -1, 0, firstlineno, -1
    position = 0
    while end <= addrq:
        if position >= len(linetable) - 1:  # PyLineTable_NextAddressRange: at_end
            return -1
        while True:  # advance(), repeated over empty ranges
            start = end
            end += linetable[position]
            increment = linetable[position + 1]
            increment = increment - 256 if increment >= 128 else increment
            position += 2
            if increment == -128:
                line = -1
            else:
                computed += increment
                line = computed
            if start != end or position >= len(linetable) - 1:
                break
    return line


pairs = st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255)), max_size=12)


@given(pairs, st.integers(1, 5000), st.integers(-3, 2000))
def test_lnotab_decoder_matches_the_c_loop(table: list[tuple[int, int]], first: int, addrq: int) -> None:
    raw = bytes(value for pair in table for value in pair)
    assert lnotab_line(raw, first, addrq) == _cpython_38_addr2line(raw, first, addrq)


@given(pairs, st.integers(1, 5000), st.integers(-3, 2000))
def test_linetable_310_decoder_matches_the_c_loop(table: list[tuple[int, int]], first: int,
                                                 addrq: int) -> None:
    raw = bytes(value for pair in table for value in pair)
    assert linetable_310_line(raw, first, addrq) == _cpython_310_addr2line(raw, first, addrq)

"""Line numbers from the line tables of CPython 3.8, 3.9 (`co_lnotab`) and 3.10 (`co_linetable`).

Pure: bytes in, line numbers out. Each decoder turns a table into a `LineTable` once
(the walker caches it per code object) and `LineTable.line_at` answers what CPython's
own `PyCode_Addr2Line(code, addrq)` answers for a byte offset `addrq` into `co_code`:

* 3.8/3.9 (Objects/codeobject.c): pairs (byte increment: unsigned, line increment:
  signed char) starting at (0, co_firstlineno); the line is the one reached after every
  pair whose cumulative byte offset is <= addrq. Past the end it stays the last line,
  a negative offset gives co_firstlineno.
* 3.10 (Objects/codeobject.c, PEP 626): pairs (byte length of a range: unsigned,
  line increment: signed char, -128 meaning "this range has no line"); the line is the
  one of the range holding addrq. Past the end there is no line (-1), a negative offset
  gives co_firstlineno.

A trailing odd byte is ignored: CPython reads whole pairs only.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

NO_LINE = -1  # what CPython 3.10's PyCode_Addr2Line returns for an offset without a line
NO_LINE_DELTA = -128  # 3.10 co_linetable: the range has no line (compiler-generated code)


@dataclass(frozen=True)
class LineTable:
    """Where lines start: `starts[i]` (byte offset, ascending) begins line `lines[i]`.

    `end` is the first offset past the table's last range (3.10), or None when the
    last line extends past the end of the code (3.8/3.9).
    """

    firstlineno: int
    starts: tuple[int, ...]
    lines: tuple[int, ...]
    end: int | None

    def line_at(self, addrq: int) -> int:
        """PyCode_Addr2Line(code, addrq): the line of byte offset `addrq`, or NO_LINE."""
        if addrq < 0:
            return self.firstlineno
        if self.end is not None and addrq >= self.end:
            return NO_LINE
        # The last start <= addrq: several entries at one offset (a jump of > 127 lines
        # is split into pairs with no byte increment) leave the last of them in force.
        index = bisect_right(self.starts, addrq) - 1
        return self.lines[index] if index >= 0 else self.firstlineno


def _signed_byte(value: int) -> int:
    return value - 256 if value >= 128 else value


def decode_lnotab(lnotab: bytes, firstlineno: int) -> LineTable:
    """A 3.8/3.9 `co_lnotab` as a LineTable (Objects/lnotab_notes.txt of those versions)."""
    starts = [0]
    lines = [firstlineno]
    offset, line = 0, firstlineno
    for index in range(0, len(lnotab) - 1, 2):
        offset += lnotab[index]
        line += _signed_byte(lnotab[index + 1])
        starts.append(offset)
        lines.append(line)
    return LineTable(firstlineno, tuple(starts), tuple(lines), None)


def decode_linetable_310(linetable: bytes, firstlineno: int) -> LineTable:
    """A 3.10 `co_linetable` as a LineTable: the ranges `code.co_lines()` yields.

    Empty ranges (byte length 0) only carry line increments forward, as CPython's
    PyLineTable_NextAddressRange skips them.
    """
    starts: list[int] = []
    lines: list[int] = []
    end, computed_line = 0, firstlineno
    for index in range(0, len(linetable) - 1, 2):
        start = end
        end += linetable[index]
        line_delta = _signed_byte(linetable[index + 1])
        if line_delta == NO_LINE_DELTA:
            line = NO_LINE
        else:
            computed_line += line_delta
            line = computed_line
        if end > start:
            starts.append(start)
            lines.append(line)
    return LineTable(firstlineno, tuple(starts), tuple(lines), end)


def lnotab_line(lnotab: bytes, firstlineno: int, addrq: int) -> int:
    """CPython 3.8/3.9 PyCode_Addr2Line for one offset (decode once and reuse for many)."""
    return decode_lnotab(lnotab, firstlineno).line_at(addrq)


def linetable_310_line(linetable: bytes, firstlineno: int, addrq: int) -> int:
    """CPython 3.10 PyCode_Addr2Line for one offset (decode once and reuse for many)."""
    return decode_linetable_310(linetable, firstlineno).line_at(addrq)

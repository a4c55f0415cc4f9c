"""Frames of CPython 3.11 to 3.13: the `_PyInterpreterFrame` chain and its location table.

3.11 and 3.12 reach the innermost frame through `tstate->cframe->current_frame`, 3.13
through `tstate->current_frame`. Frames owned by the C stack (3.12+: the shim a call
from C pushes; 3.13 gives it no code object) are skipped, and the frame above one is
marked `is_shim_entry`, as py-spy does; so is the outermost frame. A frame's line comes
from the instruction it is at (`prev_instr` in 3.11/3.12, `instr_ptr` in 3.13) minus
the code's first instruction, looked up in `co_linetable` (the 3.11+ location table).
"""

from __future__ import annotations

import contextlib
import struct

from .memory import MemoryReadError, pointer_at
from .reader import CodeInfo, RawFrame, RawLocal, Reader

FRAME_OWNED_BY_CSTACK = 3  # 3.12+: a C-stack entry shim, not Python code
LOCALS_READ_AHEAD = 16  # fast locals read together with the frame, saving a read for most frames
CODE_UNIT = 2  # bytes per instruction word
MAX_WINDOW_BYTES = 4 << 20  # a data-stack chunk read whole at most (a 5,000-frame recursion is ~0.5 MiB)
_POINTER = struct.Struct("<Q")


def current_frame(reader: Reader, tstate: bytes) -> int:
    layout = reader.layout
    if layout.tstate_current_frame >= 0:  # 3.13
        return pointer_at(tstate, layout.tstate_current_frame)
    cframe = pointer_at(tstate, layout.tstate_cframe)
    if not cframe:
        return 0
    return reader.memory.pointer(cframe + layout.cframe_current_frame)


def prepare(reader: Reader, tstate: bytes) -> None:
    """Read the used part of the thread's current data-stack chunk in one piece: its newest
    frames all live there, so most threads' walks then need no further read."""
    layout = reader.layout
    reader.window = (0, b"")
    chunk = pointer_at(tstate, layout.tstate_datastack_chunk)
    top = pointer_at(tstate, layout.tstate_datastack_top)
    if chunk and 0 < top - chunk <= MAX_WINDOW_BYTES:
        with contextlib.suppress(MemoryReadError):  # else read frame by frame
            reader.window = (chunk, reader.memory.read(chunk, top - chunk))


def walk(reader: Reader, frame: int, limit: int) -> list[RawFrame]:
    layout = reader.layout
    previous_at, owner_at, code_at, instr_at = (layout.iframe_previous, layout.iframe_owner,
                                                layout.iframe_code, layout.iframe_instr)
    is_entry_at = layout.iframe_is_entry
    skip_cstack = layout.version >= (3, 12)
    frames: list[RawFrame] = []
    seen: set[int] = set()
    while frame and len(seen) < limit:
        if frame in seen:
            raise MemoryReadError(frame, 0, "the frame chain comes back to this frame")
        seen.add(frame)
        data = _read_frame(reader, frame)
        previous = _POINTER.unpack_from(data, previous_at)[0]
        code_address = _POINTER.unpack_from(data, code_at)[0]
        if not code_address or (skip_cstack and data[owner_at] == FRAME_OWNED_BY_CSTACK):
            _mark_shim_entry(frames)
            frame = previous
            continue
        code = reader.code(code_address)
        if not code.filename or code.filename == "<shim>":
            _mark_shim_entry(frames)
            frame = previous
            continue
        instruction = _POINTER.unpack_from(data, instr_at)[0]
        frames.append(RawFrame(
            code_address, code.name, code.filename, line_of(code, instruction - code.first_instruction),
            _locals(reader, code, frame, data), is_entry_at >= 0 and bool(data[is_entry_at])))
        frame = previous
    _mark_shim_entry(frames)  # the outermost frame was entered from C
    return frames


def _read_frame(reader: Reader, frame: int) -> bytes | memoryview:
    """The frame struct and, usually, its fast locals, in one read (the read-ahead may
    cross into an unmapped page at the end of a data-stack chunk: then just the struct)."""
    layout = reader.layout
    start, window = reader.window
    if start <= frame and frame + layout.iframe_size <= start + len(window):
        return memoryview(window)[frame - start:]  # no copy; its locals are in it too, however many
    try:
        data = reader.memory.read(frame, layout.iframe_localsplus + 8 * LOCALS_READ_AHEAD)
    except MemoryReadError:
        data = reader.memory.read(frame, layout.iframe_size)
    reader.outside.append((frame, data))  # a C-stack shim (3.12+), a generator's frame, an older chunk
    return data


def _locals(reader: Reader, code: CodeInfo, frame: int, data: bytes | memoryview) -> tuple[RawLocal, ...]:
    """The bound (non-NULL) plain locals, as py-spy lists them: the first co_nlocals slots."""
    count = len(code.local_names)
    if not count:
        return ()
    start = reader.layout.iframe_localsplus
    if start + 8 * count <= len(data):
        addresses = struct.unpack_from(f"<{count}Q", data, start)
    else:
        raw = reader.memory.read(frame + start, 8 * count)
        reader.outside.append((frame + start, raw))
        addresses = struct.unpack_from(f"<{count}Q", raw)
    argcount = code.argcount
    return tuple([RawLocal(name, address, index < argcount)
                  for index, (name, address) in enumerate(zip(code.local_names, addresses)) if address])


def _mark_shim_entry(frames: list[RawFrame]) -> None:
    if frames and not frames[-1].is_shim_entry:
        last = frames[-1]
        frames[-1] = RawFrame(code=last.code, name=last.name, filename=last.filename, line=last.line,
                              locals=last.locals, is_entry=last.is_entry, is_shim_entry=True)


def line_of(code: CodeInfo, offset: int) -> int:
    """The line of the instruction `offset` bytes into the code (cached per code object)."""
    line = code.line_cache.get(offset)
    if line is None:
        line = line_for_offset(code.line_table, code.firstlineno, offset)
        code.line_cache[offset] = line
    return line


def line_for_offset(table: bytes, firstlineno: int, offset: int) -> int:
    """Decode a 3.11+ location table (Objects/locations.md) up to the entry that covers
    byte `offset` of the bytecode; its line. An entry without a line keeps the line
    before it (py-spy's reading), so a frame always has one."""
    line = firstlineno
    address = 0
    index = 0
    size = len(table)
    while index < size:
        first = table[index]
        index += 1
        address += ((first & 7) + 1) * CODE_UNIT
        kind = (first >> 3) & 15
        if kind == 15:  # no location
            delta = 0
        elif kind == 14:  # long form: line delta, end line, start and end columns
            delta, index = _signed_varint(table, index)
            for _ in range(3):
                _, index = _varint(table, index)
        elif kind == 13:  # no column
            delta, index = _signed_varint(table, index)
        elif kind >= 10:  # one-line forms: line delta is kind - 10, two column bytes
            delta = kind - 10
            index += 2
        else:  # short forms: same line, one column byte
            delta = 0
            index += 1
        line += delta
        if address > offset:
            break
    return line


def _varint(table: bytes, index: int) -> tuple[int, int]:
    if index >= len(table):
        return 0, index
    byte = table[index]
    index += 1
    value = byte & 63
    shift = 0
    while byte & 64 and index < len(table):
        byte = table[index]
        index += 1
        shift += 6
        value |= (byte & 63) << shift
    return value, index


def _signed_varint(table: bytes, index: int) -> tuple[int, int]:
    value, index = _varint(table, index)
    return (-(value >> 1) if value & 1 else value >> 1), index

"""Frames of CPython 3.8 to 3.10: the PyFrameObject chain from `tstate->frame` along `f_back`.

Per frame: its code object (name, file, local names: read once per code address by the
`Reader`), the line it is at, as CPython's own `PyFrame_GetLineNumber` computes it, and
its bound fast locals (the non-NULL slots of `f_localsplus[0:co_nlocals]`).

Lines (Objects/frameobject.c of each version):

* 3.8/3.9: while a trace function is set (`f_trace`), `f_lineno` is kept up to date and
  is the answer; otherwise `PyCode_Addr2Line(f_code, f_lasti)`, `f_lasti` a byte offset,
  from `co_lnotab`.
* 3.10: a non-zero `f_lineno` (set while a trace function runs) is the answer; otherwise
  `PyCode_Addr2Line(f_code, f_lasti * 2)`: `f_lasti` counts code units, and
  `co_linetable` maps byte offsets (PEP 626). An instruction without a line gives 0,
  threaddoc's "no line".

The target keeps running while it is read: a frame must be of type `frame`, and a chain
that comes back to a frame already seen is a torn read. Both, and a frame that cannot be
read, raise MemoryReadError (the caller reads the thread again); past the innermost frame
it is a `StackCut`, which carries the frames read before the cut, so that a caller out of
retries can still show them and say the stack was cut.

As py-spy does for these versions, every frame is an entry frame and the outermost one
(entered from C, `Thread._bootstrap` or the module) is the shim entry.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from .layouts import Layout
from .linetables_38 import NO_LINE, decode_linetable_310, decode_lnotab
from .memory import POINTER_SIZE, MemoryReadError, pointer_at
from .objects import ObjectError
from .reader import CodeInfo, RawFrame, RawLocal, Reader

# Fast-local slots read together with the frame's header, saving a read for most frames.
LOCALS_READ_AHEAD = 16
CODE_UNIT = 2  # bytes per instruction word: 3.10's f_lasti counts these


class StackCut(MemoryReadError):
    """The walk stopped at an unreadable or implausible frame below the innermost one."""

    def __init__(self, cause: MemoryReadError, frames: list[RawFrame]) -> None:
        super().__init__(cause.address, cause.size, f"stack cut after {len(frames)} frames: {cause}")
        self.frames = frames


def current_frame(reader: Reader, tstate: bytes) -> int:
    return pointer_at(tstate, reader.layout.tstate_frame)


class FrameHeader(NamedTuple):
    """The fields of a PyFrameObject the walker reads."""

    ob_type: int
    back: int
    code: int
    trace: int  # f_trace, 0 when no trace function is set
    lasti: int
    lineno: int


_HEADER_STRUCTS: dict[tuple[int, ...], struct.Struct] = {}


def header_struct(layout: Layout) -> struct.Struct:
    """One Struct that unpacks a frame's FrameHeader fields in one call (they lie in
    FrameHeader's order in 3.8-3.10: a layout where they do not is refused)."""
    offsets = (layout.object_type, layout.frame_back, layout.frame_code, layout.frame_trace,
               layout.frame_lasti, layout.frame_lineno)
    # Keyed by the offsets, not the Layout: hashing its hundred fields costs more than a walk.
    compiled = _HEADER_STRUCTS.get(offsets)
    if compiled is None:
        if sorted(offsets) != list(offsets) or offsets[0] < 0:
            raise ValueError(f"unexpected PyFrameObject layout: offsets {offsets}")
        form, position = "<", 0
        for offset, code in zip(offsets, "QQQQii"):
            form += f"{offset - position}x{code}"
            position = offset + struct.calcsize(code)
        compiled = _HEADER_STRUCTS[offsets] = struct.Struct(form)
    return compiled


def walk(reader: Reader, frame: int, limit: int) -> list[RawFrame]:
    """The frames from `frame` along f_back, innermost first, at most `limit` of them."""
    layout = reader.layout
    unpack_header = header_struct(layout).unpack_from
    frames: list[RawFrame] = []
    seen: set[int] = set()
    while frame and len(frames) < limit:
        try:
            if frame in seen:
                raise MemoryReadError(frame, 0, "the frame chain comes back to this frame")
            seen.add(frame)
            data = _read_frame(reader, frame)
            header = FrameHeader._make(unpack_header(data))
            if reader.type_names.of_type(header.ob_type) != "frame":
                raise ObjectError(frame, "not a frame")
            code = reader.code(header.code)
            frames.append(RawFrame(
                code=header.code, name=code.name, filename=code.filename,
                line=frame_line(layout, code, header),
                locals=_locals(reader, code, frame, data),
                is_entry=True,
            ))
        except MemoryReadError as error:
            if frames:
                raise StackCut(error, frames) from error
            raise
        frame = header.back
    if frames and not frame:  # reached the outermost frame: py-spy marks it
        last = frames[-1]
        frames[-1] = RawFrame(code=last.code, name=last.name, filename=last.filename, line=last.line,
                              locals=last.locals, is_entry=True, is_shim_entry=True)
    return frames


def _read_frame(reader: Reader, frame: int) -> bytes:
    """The frame's header and, usually, its first fast locals, in one read (the read-ahead
    may run past the end of a mapping: then the header alone). Every read is noted in
    `reader.outside`: the same bytes at the next sample are the same frames (StackCache)."""
    header = reader.layout.frame_localsplus
    try:
        data = reader.memory.read(frame, header + POINTER_SIZE * LOCALS_READ_AHEAD)
    except MemoryReadError:
        data = reader.memory.read(frame, header)
    reader.outside.append((frame, data))
    return data


def _locals(reader: Reader, code: CodeInfo, frame: int, data: bytes) -> tuple[RawLocal, ...]:
    """The bound fast locals, as py-spy lists them: an argument is one of the first
    co_argcount slots (keyword-only arguments, *args and **kwargs are not marked)."""
    count = len(code.local_names)
    if not count:
        return ()
    start = reader.layout.frame_localsplus
    if start + POINTER_SIZE * count <= len(data):
        addresses: tuple[int, ...] = struct.unpack_from(f"<{count}Q", data, start)
    else:
        raw = reader.memory.read(frame + start, POINTER_SIZE * count)
        reader.outside.append((frame + start, raw))
        addresses = struct.unpack_from(f"<{count}Q", raw)
    return tuple(RawLocal(name, address, index < code.argcount)
                 for index, (name, address) in enumerate(zip(code.local_names, addresses)) if address)


def frame_line(layout: Layout, code: CodeInfo, frame: FrameHeader) -> int:
    """PyFrame_GetLineNumber of the version."""
    if layout.version >= (3, 10):
        if frame.lineno:
            return frame.lineno
        return line_at(layout, code, frame.lasti * CODE_UNIT)
    if frame.trace:
        return frame.lineno
    return line_at(layout, code, frame.lasti)


def line_at(layout: Layout, code: CodeInfo, offset: int) -> int:
    """PyCode_Addr2Line(code, offset) for a byte offset, 0 for no line; cached per code
    object and offset (a blocked process repeats the same few)."""
    line = code.line_cache.get(offset)
    if line is None:
        decode = decode_linetable_310 if layout.version >= (3, 10) else decode_lnotab
        line = decode(code.line_table, code.firstlineno).line_at(offset)
        line = 0 if line == NO_LINE else line
        code.line_cache[offset] = line
    return line

"""Read-only access to a live process's memory through /proc/PID/mem.

The file is opened O_RDONLY once and read with pread: nothing is written, the target is
neither ptrace-attached nor stopped (like `py-spy dump --nonblocking`). Reading another
process's memory needs the same permission as ptrace (same user and a permissive
yama scope, or CAP_SYS_PTRACE).
"""

from __future__ import annotations

import errno
import os
import struct
from types import TracebackType

from threaddoc.errors import NoSuchProcess, PermissionDenied

from ..pyspy import PERMISSION_REMEDY

_POINTER = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")

POINTER_SIZE = 8
_ADDRESS_END = 1 << 63  # pread takes a signed offset; user space ends far below
CSTRING_LIMIT = 1024  # bytes read at most for a C string (a type's tp_name)


class MemoryReadError(OSError):
    """An address of the target could not be read (unmapped, or the process is gone)."""

    def __init__(self, address: int, size: int, reason: str = "") -> None:
        super().__init__(f"cannot read {size} bytes at 0x{address:x}" + (f": {reason}" if reason else ""))
        self.address = address
        self.size = size


def unreadable(pid: int, what: str,
               error: FileNotFoundError | PermissionError) -> NoSuchProcess | PermissionDenied:
    """The error for a /proc file of the target that could not be opened: it is gone, or we
    may not read its `what` ("memory", "memory maps")."""
    if isinstance(error, FileNotFoundError):
        return NoSuchProcess(f"process {pid} exited before it could be inspected",
                             "check the PID with `ps -p PID`")
    return PermissionDenied(f"not allowed to read the {what} of process {pid}", PERMISSION_REMEDY)


class ProcessMemory:
    """`with ProcessMemory(pid) as memory: memory.pointer(address)`.

    Every read is one pread; a read that comes back short or fails raises
    MemoryReadError, so a walker can stop where the target's memory ends."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._fd = -1
        self.reads = 0  # how many preads were made (for the benchmarks and tests)

    def __enter__(self) -> ProcessMemory:
        self.open()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def open(self) -> None:
        try:
            self._fd = os.open(f"/proc/{self.pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, PermissionError) as error:
            raise unreadable(self.pid, "memory", error) from None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def read(self, address: int, size: int) -> bytes:
        if not 0 < address < _ADDRESS_END or size < 0:
            raise MemoryReadError(address, size, "not an address")
        self.reads += 1
        try:
            data = os.pread(self._fd, size, address)
        except OSError as error:
            if error.errno == errno.ESRCH:
                raise NoSuchProcess(f"process {self.pid} exited while it was being read",
                                    "check the PID with `ps -p PID`") from None
            raise MemoryReadError(address, size, error.strerror or "") from None
        if len(data) != size:
            if size and not data and not os.path.exists(f"/proc/{self.pid}"):
                raise NoSuchProcess(f"process {self.pid} exited while it was being read",
                                    "check the PID with `ps -p PID`")
            raise MemoryReadError(address, size, "short read")
        return data

    def pointer(self, address: int) -> int:
        value: int = _POINTER.unpack(self.read(address, POINTER_SIZE))[0]
        return value

    def u64(self, address: int) -> int:
        return self.pointer(address)

    def i64(self, address: int) -> int:
        value: int = _I64.unpack(self.read(address, 8))[0]
        return value

    def u32(self, address: int) -> int:
        value: int = _U32.unpack(self.read(address, 4))[0]
        return value

    def i32(self, address: int) -> int:
        value: int = _I32.unpack(self.read(address, 4))[0]
        return value

    def pointers(self, address: int, count: int) -> tuple[int, ...]:
        """`count` consecutive pointers (an array such as a frame's fast locals), one read."""
        if count <= 0:
            return ()
        return struct.unpack_from(f"<{count}Q", self.read(address, count * POINTER_SIZE))

    def cstring(self, address: int, limit: int = CSTRING_LIMIT) -> bytes:
        """A NUL-terminated string of at most `limit` bytes. Read in small chunks: the
        string may end just before an unmapped page."""
        collected = bytearray()
        chunk = 64
        while len(collected) < limit:
            size = min(chunk, limit - len(collected))
            try:
                data = self.read(address + len(collected), size)
            except MemoryReadError:
                if chunk == 1:
                    raise
                chunk = 1  # near the end of a mapping: go byte by byte
                continue
            end = data.find(b"\0")
            if end >= 0:
                collected += data[:end]
                return bytes(collected)
            collected += data
        return bytes(collected)


def pointer_at(data: bytes, offset: int) -> int:
    """The pointer at `offset` of a struct read in one piece."""
    value: int = _POINTER.unpack_from(data, offset)[0]
    return value


def i32_at(data: bytes, offset: int) -> int:
    value: int = _I32.unpack_from(data, offset)[0]
    return value


def u32_at(data: bytes, offset: int) -> int:
    value: int = _U32.unpack_from(data, offset)[0]
    return value


def i64_at(data: bytes, offset: int) -> int:
    value: int = _I64.unpack_from(data, offset)[0]
    return value

"""Opening files that a stranger named: inside a root, as regular files, without blocking.

The target (or a saved dump) names the source files, and threaddoc often runs as root,
so a frame's file name is hostile input: `/etc/shadow`, a symlink to it, `../..`, a
FIFO that blocks whoever opens it, `/dev/watchdog` (opening it arms a reboot),
`/proc/self/environ` (which would be threaddoc's own environment), a file of gigabytes,
a path on a hung network filesystem.

So a named file is looked up with the directory it is named against as its root, its
symlinks resolved inside that root (openat2's RESOLVE_IN_ROOT; RESOLVE_BENEATH refuses
what leads out instead), first as an O_PATH descriptor that opens nothing; it is read
only when that turns out to be a regular file of limited size on a real filesystem,
through a non-blocking reopen of that very inode. The lookup is also done step by step
here, which is what openat2 cannot tell: every directory it searched, so that the caller
can check that the file's user could have searched them all. And all of it runs under a
time limit (`within_time_limit`), since no flag makes a hung filesystem answer.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

# openat2(2): <linux/openat2.h>. 437 in the unified syscall table of every architecture.
_SYS_OPENAT2 = 437
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
# Errors that mean this kernel (or a seccomp filter) has no openat2: resolve step by step only.
_NO_OPENAT2 = frozenset({errno.ENOSYS, errno.EPERM, errno.E2BIG, errno.EINVAL})

MAX_SYMLINKS = 40  # as the kernel's own limit (ELOOP)

# Filesystems whose "files" are kernel state, not source: /proc (environments, memory),
# /sys, debugfs, tracefs, securityfs, cgroups, configfs, efivarfs, bpffs, pstore.
_PSEUDO_FILESYSTEMS = frozenset({0x9FA0, 0x62656572, 0x64626720, 0x74726163, 0x73636673, 0x27E0EB,
                                 0x63677270, 0x62656570, 0xDE5E81E4, 0xCAFE4A11, 0x6165676C})

_LOOKUP_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
# A FIFO or a terminal must not block or become our controlling terminal; only regular
# files get this far, but the inode is what it is when reopened, checked again after.
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class Unreadable(Exception):
    """Why a named file was not read: the text says it, for a warning ("not a regular file")."""

    @property
    def reason(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Found:
    """What a name led to: the file, and every directory its lookup searched (the root
    included, and the directories passed on the way through symlinks), in order."""

    info: os.stat_result
    directories: tuple[os.stat_result, ...]


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def read_named_file(root_fd: int, path: str, *, beneath: bool, max_bytes: int,
                    may_read: Callable[[Found], str | None]) -> tuple[bytes, os.stat_result]:
    """The contents of the regular file `path` names, looked up with `root_fd` as its root
    (`beneath`: refuse a path or symlink that leads out of it, instead of resolving it
    inside). `may_read` says why the file's user could not read it, or None when it could.
    Raises Unreadable, or OSError when the name leads nowhere."""
    fd, found = _look_up(root_fd, _possible_name(path), beneath)
    try:
        _require_source_file(fd, found.info, max_bytes)
        refusal = may_read(found)
        if refusal is not None:
            raise Unreadable(refusal)
        return _read_inode(fd, found.info, max_bytes), found.info
    finally:
        os.close(fd)


def open_directory(path: str) -> int:
    """An O_PATH descriptor of a directory the user named (followed as any path is)."""
    return os.open(_possible_name(path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def _possible_name(path: str) -> str:
    """`path`, if a file can have that name: no NUL (which a C string would cut the name
    at, naming another file) and encodable; else OSError, as for a missing file."""
    try:
        if "\0" not in path:
            os.fsencode(path)
            return path
    except UnicodeEncodeError:
        pass
    raise OSError(errno.EINVAL, "no file can have this name", path)


def _look_up(root_fd: int, path: str, beneath: bool) -> tuple[int, Found]:
    """An O_PATH descriptor of what `path` names, and what was found on the way. The kernel
    resolves it (openat2), and the step-by-step walk, which knows the directories it
    searched, must have reached the very same inode: if they differ, the tree changed
    under us, or the walk misread it, and nothing is read."""
    resolve = RESOLVE_NO_MAGICLINKS | (RESOLVE_BENEATH if beneath else RESOLVE_IN_ROOT)
    kernel_fd = _openat2(root_fd, path, _LOOKUP_FLAGS & ~os.O_NOFOLLOW, resolve)
    try:
        fd, found = _walk(root_fd, path, beneath)
        if kernel_fd is not None and not _same_inode(os.fstat(kernel_fd), found.info):
            os.close(fd)
            raise Unreadable("its path resolved to another file while it was looked up")
        return fd, found
    finally:
        if kernel_fd is not None:
            os.close(kernel_fd)


def _openat2(dir_fd: int, path: str, flags: int, resolve: int) -> int | None:
    """openat2(2) through ctypes (Python has no binding); None where the kernel lacks it."""
    how = _OpenHow(flags, 0, resolve)
    fd = int(_libc.syscall(ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(dir_fd),
                           ctypes.c_char_p(os.fsencode(path)), ctypes.byref(how),
                           ctypes.c_size_t(ctypes.sizeof(how))))
    if fd >= 0:
        return fd
    error = ctypes.get_errno()
    if error in _NO_OPENAT2:
        return None
    if error in (errno.EXDEV, errno.ELOOP):
        raise Unreadable(_escape_reason(error))
    if error == errno.EAGAIN:  # RESOLVE_IN_ROOT saw a rename race on `..` and gave up
        raise Unreadable("its path resolved to another file while it was looked up")
    raise OSError(error, os.strerror(error), path)


def _escape_reason(error: int) -> str:
    if error == errno.EXDEV:
        return "its path leads out of the directory it was looked up in"
    return "its path goes through too many symlinks, or through a /proc link"


def _walk(root_fd: int, path: str, beneath: bool) -> tuple[int, Found]:
    """Resolve `path` one component at a time, as RESOLVE_IN_ROOT does (`..` at the root
    stays there, an absolute symlink starts again from the root) or RESOLVE_BENEATH does
    (both are refused), keeping a descriptor of every directory on the way down so that
    `..` goes back to where the walk came from, never to a path string."""
    stack = [os.dup(root_fd)]
    pending = _components(path)
    searched: list[os.stat_result] = []
    links = 0
    try:
        while pending:
            name = pending.pop()
            current = stack[-1]
            searched.append(os.fstat(current))  # a lookup needs search permission on the directory
            if name == "..":
                _go_up(stack, beneath)
                continue
            fd = os.open(name, _LOOKUP_FLAGS, dir_fd=current)
            info = os.fstat(fd)
            if stat.S_ISLNK(info.st_mode):
                os.close(fd)
                links += 1
                if links > MAX_SYMLINKS:
                    raise Unreadable(_escape_reason(errno.ELOOP))
                _follow(os.readlink(name, dir_fd=current), stack, pending, beneath)
                continue
            stack.append(fd)
            _refuse_pseudo_filesystem(fd)
            if pending and not stat.S_ISDIR(info.st_mode):
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        if len(stack) == 1:
            raise Unreadable("it names a directory, not a file")
        final = stack.pop()
        return final, Found(os.fstat(final), tuple(searched))
    finally:
        for fd in stack:
            os.close(fd)


def _components(path: str) -> list[str]:
    """The names of `path` to look up, last first (the walk pops them)."""
    return [name for name in reversed(path.split("/")) if name not in ("", ".")]


def _go_up(stack: list[int], beneath: bool) -> None:
    if len(stack) > 1:
        os.close(stack.pop())
    elif beneath:
        raise Unreadable(_escape_reason(errno.EXDEV))
    # else: the root's parent is the root itself, as in a chroot


def _follow(target: str, stack: list[int], pending: list[str], beneath: bool) -> None:
    """Continue the walk along a symlink's target: from the root when it is absolute."""
    if target.startswith("/"):
        if beneath:
            raise Unreadable(_escape_reason(errno.EXDEV))
        while len(stack) > 1:
            os.close(stack.pop())
    pending.extend(_components(target))


def _refuse_pseudo_filesystem(fd: int) -> None:
    if _filesystem_type(fd) in _PSEUDO_FILESYSTEMS:
        raise Unreadable("it is on /proc, /sys or another kernel filesystem, which holds no source")


def _filesystem_type(fd: int) -> int | None:
    """fstatfs(2)'s f_type (Python's os has statvfs, which lacks it). struct statfs starts
    with f_type, a word (long on Linux but s390x, whose f_type is no source filesystem
    anyway); the buffer is larger than the struct on every architecture."""
    buffer = (ctypes.c_long * 64)()
    if _libc.fstatfs(ctypes.c_int(fd), buffer) != 0:
        return None
    return int(buffer[0]) & 0xFFFFFFFF


def _require_source_file(fd: int, info: os.stat_result, max_bytes: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise Unreadable(f"it is {_kind_of(info.st_mode)}, not a regular file")
    _refuse_pseudo_filesystem(fd)
    if info.st_size > max_bytes:
        raise Unreadable(f"it is larger than {_size(max_bytes)} ({info.st_size:,} bytes)")


def _kind_of(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def _size(count: int) -> str:
    return f"{count / (1024 * 1024):g} MiB" if count >= 1024 * 1024 else f"{count:,} bytes"


def _read_inode(path_fd: int, info: os.stat_result, max_bytes: int) -> bytes:
    """Read the inode an O_PATH descriptor holds, through a new, non-blocking descriptor
    of that same inode (not of whatever the name leads to by now). At most the size it
    had, and `max_bytes`: a file that grows while read is not read past that."""
    try:
        fd = os.open(f"/proc/self/fd/{path_fd}", _READ_FLAGS)
    except BlockingIOError:
        raise Unreadable("another process holds a lease on it (opening it would wait)") from None
    try:
        if not _same_inode(os.fstat(fd), info):
            raise Unreadable("it was replaced while it was read")
        return _read_up_to(fd, min(info.st_size, max_bytes))
    finally:
        os.close(fd)


def _read_up_to(fd: int, count: int) -> bytes:
    chunks: list[bytes] = []
    left = count
    while left > 0:
        chunk = os.read(fd, left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _same_inode(first: os.stat_result, second: os.stat_result) -> bool:
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


# --- Permissions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FileUser:
    """A user as the kernel checks a file's permission bits for it: its filesystem uid and
    groups, and whether it may read and search anything (CAP_DAC_OVERRIDE or
    CAP_DAC_READ_SEARCH). ACLs are not read: they are rare on source trees."""

    uid: int
    gids: frozenset[int]
    reads_anything: bool = False

    def refusal(self, found: Found) -> str | None:
        """None when this user could open the file: read permission on it, search
        permission on every directory its lookup searched."""
        if self.reads_anything:
            return None
        if not self._allowed(found.info, stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH):
            return "its permissions do not let the user read it"
        if not all(self._allowed(directory, stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)
                   for directory in found.directories):
            return "it is in a directory the user cannot enter"
        return None

    def _allowed(self, info: os.stat_result, owner: int, group: int, other: int) -> bool:
        # The kernel uses the first class that applies, even if a later one would allow more.
        if info.st_uid == self.uid:
            return bool(info.st_mode & owner)
        if info.st_gid in self.gids:
            return bool(info.st_mode & group)
        return bool(info.st_mode & other)


EVERYONE = FileUser(uid=-1, gids=frozenset())  # owns nothing, in no group: "other" bits only


# --- Time ----------------------------------------------------------------------------------

T = TypeVar("T")


def within_time_limit(items: Iterable[str], work: Callable[[str], T],
                      seconds: float) -> tuple[dict[str, T], list[str]]:
    """`work(item)` for each item in turn, for at most `seconds` in all: the results, and
    the items left when time ran out. A read on a hung filesystem blocks in the kernel,
    where no flag or signal of ours reaches it: the work runs in a daemon thread that is
    abandoned (blocked, or finishing its current item) when time is up. An exception in
    `work` is raised here."""
    todo = list(items)
    results: dict[str, T] = {}
    failures: list[BaseException] = []
    lock = threading.Lock()
    stop = threading.Event()

    def run() -> None:
        try:
            for item in todo:
                if stop.is_set():
                    return
                outcome = work(item)
                with lock:
                    results[item] = outcome
        except BaseException as error:  # re-raised by the caller, in its own thread
            failures.append(error)

    worker = threading.Thread(target=run, name="threaddoc-file-reader", daemon=True)
    worker.start()
    worker.join(seconds)
    stop.set()
    with lock:
        finished = dict(results)
    if failures:
        raise failures[0]
    return finished, [item for item in todo if item not in finished]

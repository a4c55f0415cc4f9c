"""Reading the target's own source files, as the target sees them.

The target names the files (a frame's file name is whatever its code object says:
`exec(compile(src, "/etc/shadow", "exec"))`), and threaddoc usually runs as root. So a
file is looked up inside the target's root (/proc/PID/root: a container's own files),
symlinks resolved inside it, and read only when it is a regular file of limited size
that the target's own user could have read: read permission on the file, search
permission on every directory the lookup passed through. Files on /proc or /sys, FIFOs
and devices are never read (`safeopen`), and the whole reading is bounded in time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from threaddoc.model import SourceFile

from .parse import filenames, module_of
from .safeopen import FileUser, Found, Unreadable, read_named_file, within_time_limit

MAX_SOURCE_BYTES = 2 * 1024 * 1024
# All the sources of one target together: a hostile one can name thousands of big files.
MAX_TOTAL_SOURCE_BYTES = 64 * 1024 * 1024
# For reading all of a target's sources: a slow or hung filesystem must not hang threaddoc.
SOURCE_READ_SECONDS = 5.0
_LISTED = 5  # files named in a warning; the others are counted


# Capabilities (bits of CapEff) that let a process read any file and enter any directory.
_CAP_DAC_OVERRIDE = 1
_CAP_DAC_READ_SEARCH = 2


def files_to_read(raw: Iterable[Mapping[str, Any]]) -> set[str]:
    """The files of the program and its libraries that a dump's frames are in."""
    holding = _holding_modules()
    files = set()
    for filename in filenames(raw):
        module, stdlib = module_of(filename)
        if filename and not filename.startswith("<") and (not stdlib or module in holding):
            files.add(filename)
    return files


def _holding_modules() -> frozenset[str]:
    """Of the standard library, only the modules whose frames hold locks are read, to say
    where they took them; its waits are known from the rule table (imported here, once the
    target has been read: the analysis is not needed before)."""
    from threaddoc.classify.rules import HOLD_RULES

    return frozenset(rule.module for rule in HOLD_RULES)


def read_sources(
    pid: int, paths: Iterable[str], create_time: float | None, *, time_limit: float = SOURCE_READ_SECONDS
) -> tuple[dict[str, SourceFile], list[str]]:
    """The readable files among `paths`, and warnings that say which were not read, and why."""
    wanted = sorted({path for path in paths if path and not path.startswith("<")})  # <string>: no file
    if not wanted:
        return {}, []
    view = TargetView.of(pid)
    if view is None:
        return {}, [f"the target's root (/proc/{pid}/root) could not be opened: no source was read"]
    reader = _Reader(view, create_time)
    outcomes, left = within_time_limit(wanted, reader.read, time_limit)
    if not left:
        view.close()
    # else: the abandoned reader may still be using the root's descriptor; closing it would
    # let a later open reuse its number under the reader's feet. The process ends soon.
    sources = {path: outcome for path, outcome in outcomes.items() if isinstance(outcome, SourceFile)}
    refusals = {path: outcome for path, outcome in outcomes.items() if isinstance(outcome, str)}
    return sources, [*_stale_warnings(sources.values()), *_refusal_warnings(refusals),
                     *_timeout_warnings(left, time_limit)]


@dataclass(frozen=True)
class TargetView:
    """How the target sees the filesystem: its root, its working directory inside that
    root (for relative file names), and who it is."""

    root_fd: int
    cwd: str | None  # inside the root; None when it cannot be placed there
    user: FileUser | None  # None when it cannot be known: then nothing is read

    @classmethod
    def of(cls, pid: int) -> TargetView | None:
        try:
            root_fd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None
        return cls(root_fd, _cwd_in_root(pid), target_user(pid))

    def close(self) -> None:
        os.close(self.root_fd)


class _Reader:
    """Reads one file after another (in the time-limited thread), within the total budget."""

    def __init__(self, view: TargetView, create_time: float | None) -> None:
        self.view = view
        self.create_time = create_time
        self.budget = MAX_TOTAL_SOURCE_BYTES

    def read(self, path: str) -> SourceFile | str | None:
        """The file, or why it was not read, or None when there is no such file."""
        if self.budget <= 0:
            return f"the sources read before it reached {MAX_TOTAL_SOURCE_BYTES // (1024 * 1024)} MiB"
        try:
            source = read_in_root(self.view, path, self.create_time, min(MAX_SOURCE_BYTES, self.budget))
        except Unreadable as refused:
            return refused.reason
        except OSError:
            return None  # gone (or never there): nothing to say about a file that does not exist
        self.budget -= len(source.text)
        return source


def read_in_root(view: TargetView, path: str, create_time: float | None,
                 max_bytes: int = MAX_SOURCE_BYTES) -> SourceFile:
    """The file `path` names, as the target would open it. Raises Unreadable or OSError."""
    user = view.user
    if user is None:
        raise Unreadable("the target's user could not be known")
    absolute = path
    if not path.startswith("/"):
        if view.cwd is None:
            raise Unreadable("it is relative to a working directory outside the target's root")
        absolute = f"{view.cwd}/{path}"

    def could_read(found: Found) -> str | None:
        refusal = user.refusal(found)
        return None if refusal is None else refusal.replace("the user", "the target's user")

    data, info = read_named_file(view.root_fd, absolute, beneath=False, max_bytes=max_bytes,
                                 may_read=could_read)
    return SourceFile(
        path=path,
        text=data.decode("utf-8", errors="replace"),
        # A second of slack: the start time is known to ~10 ms, and a file saved just before
        # the start is not one that changed under the running program.
        modified_after_start=create_time is not None and info.st_mtime > create_time + 1.0,
    )


def target_user(pid: int) -> FileUser | None:
    """The target's filesystem identity, from /proc/PID/status. Its capabilities count only
    in our own user namespace: a container's root is not root over the host's files."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
        uid = int(fields["Uid"].split()[3])  # real, effective, saved, filesystem
        gids = {int(fields["Gid"].split()[3]), *(int(gid) for gid in fields.get("Groups", "").split())}
        capabilities = int(fields["CapEff"], 16)
    except (OSError, KeyError, IndexError, ValueError):
        return None
    privileged = bool(capabilities & (1 << _CAP_DAC_OVERRIDE | 1 << _CAP_DAC_READ_SEARCH))
    return FileUser(uid, frozenset(gids), reads_anything=privileged and _in_our_user_namespace(pid))


def _in_our_user_namespace(pid: int) -> bool:
    try:
        return os.stat(f"/proc/{pid}/ns/user").st_ino == os.stat("/proc/self/ns/user").st_ino
    except OSError:
        return False


def _cwd_in_root(pid: int) -> str | None:
    """The target's working directory as a path inside its root (both links read as paths
    from our root: a chroot's root is a prefix of its working directory)."""
    try:
        root, cwd = os.readlink(f"/proc/{pid}/root"), os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None
    if not cwd.startswith("/") or cwd.endswith(" (deleted)"):
        return None
    if root == "/":
        return cwd
    if cwd == root or cwd.startswith(root.rstrip("/") + "/"):
        return cwd[len(root.rstrip("/")):] or "/"
    return None


def _stale_warnings(sources: Iterable[SourceFile]) -> list[str]:
    return [f"{source.path} changed after the process started; its line numbers may be off"
            for source in sources if source.modified_after_start]


def _refusal_warnings(refusals: Mapping[str, str]) -> list[str]:
    """One warning per reason, naming the files ("source not read because it is a FIFO, ...")."""
    by_reason: dict[str, list[str]] = {}
    for path, reason in sorted(refusals.items()):
        by_reason.setdefault(reason, []).append(path)
    return [f"source not read because {reason}: {listed(paths)}" for reason, paths in by_reason.items()]


def _timeout_warnings(left: Sequence[str], time_limit: float) -> list[str]:
    if not left:
        return []
    return [f"reading the source files took longer than {time_limit:g}s (a slow or hung filesystem?); "
            f"not read: {listed(left)}"]


def listed(paths: Sequence[str]) -> str:
    """The first few paths, and how many more."""
    shown = ", ".join(paths[:_LISTED])
    return shown + (f" and {len(paths) - _LISTED} more" if len(paths) > _LISTED else "")

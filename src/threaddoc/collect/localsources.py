"""The files a saved dump names, as found on this machine.

A dump may come from anyone (a ticket, a CI log), and names whatever files it likes, so
what is read is bounded as for a live target (`safeopen`: regular files only, never a
FIFO or a device, at most 2 MiB, under a time limit), with the invoking user in the
place of the target's user, since a dump has none:

- only `.py` files, and none through a symlink that leads out of the directory holding
  it (a symlink planted as `x.py` to a secret elsewhere), or out of the `--source-root`
  directory it was found under;
- only what the user running threaddoc could read anyway; as root, who could read
  everything, only files whose permissions let every user read them, unless they lie
  under a `--source-root` the user gave: giving it says those files may be read.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from threaddoc.model import SourceFile

from .safeopen import Found, Unreadable, open_directory, read_named_file, within_time_limit
from .sources import MAX_SOURCE_BYTES, SOURCE_READ_SECONDS, listed

PYTHON_SUFFIXES = (".py", ".pyw")
# A name that cannot exist (a NUL in it, too long) is a missing file, not a refused one.
_NO_SUCH_FILE = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG, errno.EINVAL})

AS_ROOT_REFUSAL = ("threaddoc runs as root and not every user may read it (--source-root DIR reads "
                   "the files under DIR)")


@dataclass(frozen=True)
class SourceRoot:
    """Where the dumped program's files are on this machine: `OLD=NEW` replaces the prefix
    OLD of a dumped path by NEW; a plain directory is searched for the dumped path's
    trailing components, longest first (`/builds/app/src/m.py` -> `DIR/src/m.py`)."""

    directory: str
    replaces: str | None = None

    @classmethod
    def parse(cls, text: str) -> SourceRoot:
        if "=" in text:
            old, new = text.split("=", 1)
            return cls(directory=new, replaces=old.rstrip("/") or "/")
        return cls(directory=text)

    def lookups(self, path: str) -> Iterator[tuple[str, str]]:
        """(this directory, a path inside it) where the dumped `path` may be."""
        if self.replaces is not None:
            if path == self.replaces or path.startswith(self.replaces.rstrip("/") + "/"):
                yield self.directory, path[len(self.replaces):].lstrip("/")
            return
        parts = [part for part in path.split("/") if part and part != ".."]
        for start in range(len(parts)):
            yield self.directory, "/".join(parts[start:])

    def candidates(self, path: str) -> Iterator[str]:
        """The paths on this machine where the dumped `path` may be."""
        for directory, inside in self.lookups(path):
            yield os.path.join(directory, inside)


@dataclass(frozen=True)
class LocalFile:
    local: str  # where it was found on this machine
    text: str
    mtime: float


@dataclass(frozen=True)
class _Lookup:
    """One place to look for a dumped file: `inside` looked up beneath `directory`."""

    directory: str
    inside: str
    under_source_root: bool

    @property
    def local(self) -> str:
        return os.path.join(self.directory, self.inside)


@dataclass(frozen=True)
class LocalSources:
    """What was found for each dumped path, and why the others were not read."""

    found: Mapping[str, LocalFile]
    refused: Mapping[str, str]  # path -> why the file it names was not read
    missing: Sequence[str]
    timed_out: Sequence[str]
    time_limit: float

    def warnings(self) -> list[str]:
        by_reason: dict[str, list[str]] = {}
        for path, reason in sorted(self.refused.items()):
            by_reason.setdefault(reason, []).append(path)
        warnings = [f"source not read because {reason}: {listed(paths)}"
                    for reason, paths in by_reason.items()]
        if self.timed_out:
            warnings.append(f"looking for the source files took longer than {self.time_limit:g}s (a slow "
                            f"or hung filesystem?); not read: {listed(self.timed_out)}")
        return warnings


def find_local_sources(paths: Iterable[str], roots: Sequence[SourceRoot],
                       time_limit: float = SOURCE_READ_SECONDS) -> LocalSources:
    """Each dumped `.py` path's file on this machine, where the rules let it be read."""
    wanted = sorted({path for path in paths if path.endswith(PYTHON_SUFFIXES)})
    outcomes, left = within_time_limit(wanted, lambda path: _find(path, roots), time_limit)
    return LocalSources(
        found={path: outcome for path, outcome in outcomes.items() if isinstance(outcome, LocalFile)},
        refused={path: outcome for path, outcome in outcomes.items() if isinstance(outcome, str)},
        missing=[path for path, outcome in sorted(outcomes.items()) if outcome is None],
        timed_out=left, time_limit=time_limit)


def read_local_sources(paths: Iterable[str], roots: Sequence[SourceRoot],
                       written: float | None) -> tuple[dict[str, SourceFile], list[str]]:
    """The dumped program's files as found on this machine, keyed by the dumped path, and
    warnings; only their lines at the dumped frames reach a report."""
    wanted = sorted(set(paths))
    local = find_local_sources(wanted, roots)
    sources: dict[str, SourceFile] = {}
    stale: list[str] = []
    for path, found in sorted(local.found.items()):
        changed = written is not None and found.mtime > written + 1.0
        sources[path] = SourceFile(path=path, text=found.text, modified_after_start=changed)
        if changed:
            stale.append(found.local)
    warnings = [f"{path} changed after the dump was written; its line numbers may be off" for path in stale]
    warnings.extend(local.warnings())
    # Not .py (a frame "in" /etc/shadow), or not on this machine: "not found" either way.
    missing = [path for path in wanted if path not in sources and path not in local.refused
               and path not in local.timed_out]
    if missing:
        warnings.append(f"source not found on this machine for {listed(missing)}: what those frames "
                        "wait for is read from the standard library's frames only (map the paths "
                        "with --source-root)")
    return sources, warnings


def _find(path: str, roots: Sequence[SourceRoot]) -> LocalFile | str | None:
    """The first place the rules let `path` be read from; else why not (the first refusal),
    or None when it is nowhere."""
    refusal: str | None = None
    for lookup in _lookups(path, roots):
        try:
            return _read(lookup)
        except Unreadable as refused:
            refusal = refusal or refused.reason
        except OSError as error:
            if error.errno not in _NO_SUCH_FILE:
                refusal = refusal or _os_refusal(error)
    return refusal


def _lookups(path: str, roots: Sequence[SourceRoot]) -> list[_Lookup]:
    """An explicit OLD=NEW mapping wins; then the path itself (the dump was taken on this
    machine, or the standard library is at the same place); then the searched roots, whose
    short tails (`__init__.py`) could match an unrelated file."""
    mapped = [_Lookup(directory, inside, True) for root in roots if root.replaces is not None
              for directory, inside in root.lookups(path)]
    searched = [_Lookup(directory, inside, True) for root in roots if root.replaces is None
                for directory, inside in root.lookups(path)]
    itself = [_Lookup(os.path.dirname(path) or ".", os.path.basename(path), False)] \
        if path.startswith("/") or not roots else []
    return [*mapped, *itself, *searched]


def _read(lookup: _Lookup) -> LocalFile:
    """The file, looked up beneath its directory: the directory is reached as any path is
    (a symlinked /lib is fine), what is looked up inside it must stay inside it."""
    directory = open_directory(lookup.directory)
    try:
        data, info = read_named_file(directory, lookup.inside, beneath=True, max_bytes=MAX_SOURCE_BYTES,
                                     may_read=_may_read_under_root if lookup.under_source_root
                                     else _may_read_as_named)
    finally:
        os.close(directory)
    return LocalFile(lookup.local, data.decode("utf-8", errors="replace"), info.st_mtime)


def _may_read_as_named(found: Found) -> str | None:
    """Not root: the kernel already checked that this user may read it (the lookup, and the
    reopen for reading, are done with the user's own permissions). Root: only if everyone may."""
    if os.getuid() != 0 or found.info.st_mode & stat.S_IROTH:
        return None
    return AS_ROOT_REFUSAL


def _may_read_under_root(found: Found) -> str | None:
    return None  # the user named the directory; the kernel checks the user may read it


def _os_refusal(error: OSError) -> str:
    if error.errno in (errno.EACCES, errno.EPERM):
        return "you may not read it"
    return f"it could not be read: {error.strerror}"

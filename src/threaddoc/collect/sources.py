"""Reading the target's own source files, as the target sees them.

Files are read through /proc/PID/root so that a target in a container resolves
to its own files, and only when the target's user could read them itself: the
target names the files, and must not be able to make a root threaddoc print one
it could not read.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from typing import Any

import psutil

from threaddoc.classify.rules import HOLD_RULES
from threaddoc.model import SourceFile

from .parse import filenames, module_of

MAX_SOURCE_BYTES = 2 * 1024 * 1024

# Of the standard library, only the modules whose frames hold locks are read, to say where
# they took them; its waits are known from the rule table.
_HOLDING_MODULES = frozenset(rule.module for rule in HOLD_RULES)


def files_to_read(raw: Iterable[Mapping[str, Any]]) -> set[str]:
    """The files of the program and its libraries that a dump's frames are in."""
    files = set()
    for filename in filenames(raw):
        module, stdlib = module_of(filename)
        if filename and not filename.startswith("<") and (not stdlib or module in _HOLDING_MODULES):
            files.add(filename)
    return files


def read_sources(
    pid: int, paths: Iterable[str], create_time: float | None
) -> tuple[dict[str, SourceFile], list[str]]:
    """The readable files among `paths`, and warnings about the ones that are not."""
    identity = _target_identity(pid)
    sources: dict[str, SourceFile] = {}
    warnings: list[str] = []
    for path in sorted(set(paths)):
        if path.startswith("<"):
            continue  # <string>, <stdin>: no file
        source = _read_one(path, _as_target_sees_it(pid, path), identity, create_time)
        if isinstance(source, SourceFile):
            sources[path] = source
            if source.modified_after_start:
                warnings.append(f"{path} changed after the process started; its line numbers may be off")
        elif source:
            warnings.append(source)
    return sources, warnings


def _as_target_sees_it(pid: int, path: str) -> str:
    """The file behind a frame's path, seen from the target's root (a container's own
    files) or, for a relative path (a script run as `python app.py` before 3.9), from its
    current directory."""
    if not path.startswith("/"):
        return f"/proc/{pid}/cwd/{path}"
    return f"/proc/{pid}/root{path}" if os.path.isdir(f"/proc/{pid}/root") else path


def _target_identity(pid: int) -> tuple[int, set[int]] | None:
    try:
        process = psutil.Process(pid)
        uid = process.uids().effective
        gids = set(process.gids())
        try:
            with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
                for line in status:
                    if line.startswith("Groups:"):
                        gids.update(int(g) for g in line.split()[1:])
        except OSError:
            pass
        return uid, gids
    except (psutil.Error, OSError):
        return None


def _allowed(info: os.stat_result, identity: tuple[int, set[int]], bits: tuple[int, int, int]) -> bool:
    uid, gids = identity
    if uid == 0:
        return True
    if info.st_uid == uid:
        return bool(info.st_mode & bits[0])
    if info.st_gid in gids:
        return bool(info.st_mode & bits[1])
    return bool(info.st_mode & bits[2])


def _readable_by(resolved: str, info: os.stat_result, identity: tuple[int, set[int]] | None) -> bool:
    """Whether the target's user could open the file: read on it, search on every directory above."""
    if identity is None or not _allowed(info, identity, (stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH)):
        return False
    directory = os.path.dirname(resolved)
    while directory and directory != "/":
        try:
            parent = os.stat(directory)
        except OSError:
            return False
        if not _allowed(parent, identity, (stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)):
            return False
        directory = os.path.dirname(directory)
    return True


def _read_one(
    path: str, resolved: str, identity: tuple[int, set[int]] | None, create_time: float | None
) -> SourceFile | str | None:
    try:
        info = os.stat(resolved)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SOURCE_BYTES:
        return None
    if not _readable_by(resolved, info, identity):
        return f"{path} is not readable by the target's user; its source was not read"
    try:
        with open(resolved, "rb") as handle:
            data = handle.read(MAX_SOURCE_BYTES)
    except OSError:
        return None
    return SourceFile(
        path=path,
        text=data.decode("utf-8", errors="replace"),
        # A second of slack: the start time is known to ~10 ms, and a file saved just before
        # the start is not one that changed under the running program.
        modified_after_start=create_time is not None and info.st_mtime > create_time + 1.0,
    )

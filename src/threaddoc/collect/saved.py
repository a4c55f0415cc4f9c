"""Diagnosing what was saved: a dump read from a file instead of a live process.

Often nobody can attach any more: what is left is a faulthandler dump in a log,
pytest-timeout's "Stack of …" sections in a CI log, a `py-spy dump --json` pasted
into a ticket, a threaddoc recording (`--save`) or report (`--json`), or a core
file. Each becomes the same `Snapshot` a live read gives, with an `Origin` that
says what it lacks (addresses, names, kernel facts), so the analysis degrades
honestly instead of guessing.

The format is recognised from the content, never from the file name.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from threaddoc import sourcecode
from threaddoc.errors import PySpyFailed, UsageError
from threaddoc.model import KernelState, Origin, ProcessFacts, Progress, Snapshot, SourceFile

# SourceRoot and read_local_sources are used by the CLI and the pipeline from here.
from .localsources import SourceRoot as SourceRoot
from .localsources import find_local_sources
from .localsources import read_local_sources as read_local_sources
from .parse import is_native, module_of, python_frames, python_version_of
from .pyspy import dump_core, find_py_spy
from .recording import FORMAT as RECORDING_FORMAT
from .recording import Recording, load_recording
from .shown import shown_values
from .sources import files_to_read
from .textdumps import parse_text_dump
from .wellformed import is_well_typed, mappings, pyspy_entries

MAX_DUMP_BYTES = 256 * 1024 * 1024  # a whole CI log may be passed; more is not a log

FORMATS_REMEDY = (
    "pass py-spy `dump --json` output, a faulthandler dump, pytest-timeout output, or a file "
    "written by threaddoc (`--save` or `--json`)"
)


def read_dump_file(path: str) -> tuple[str, float | None]:
    """The text of a saved dump ("-": standard input) and when it was written, if known."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_DUMP_BYTES + 1)
            written = None
        else:
            with open(path, "rb") as handle:
                info = os.fstat(handle.fileno())
                if not stat.S_ISREG(info.st_mode) and not stat.S_ISFIFO(info.st_mode):
                    raise UsageError(f"{path} is not a regular file", FORMATS_REMEDY)
                if info.st_size > MAX_DUMP_BYTES:  # refused before a byte of it is read
                    raise _too_large(path)
                data = handle.read(MAX_DUMP_BYTES + 1)
                written = info.st_mtime
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}",
                         "check the path and its permissions") from None
    if len(data) > MAX_DUMP_BYTES:
        raise _too_large(path)
    return data.decode("utf-8", errors="replace"), written


def _too_large(path: str) -> UsageError:
    return UsageError(f"{'standard input' if path == '-' else path} is larger than "
                      f"{MAX_DUMP_BYTES // (1024 * 1024)} MiB", "cut the part of the log that holds the dump")


def load_saved(text: str, path: str, roots: Sequence[SourceRoot] = (),
               written: float | None = None, show_locals: bool = False) -> list[Snapshot]:
    """The snapshot(s) a saved dump holds; several for a threaddoc report of several processes.
    Only py-spy's own JSON holds local values to show: what threaddoc writes never does."""
    document = _json_document(text)
    if isinstance(document, dict) and document.get("format") == RECORDING_FORMAT:
        return _asked_for_values([_from_recording(text, path)], show_locals)
    if isinstance(document, dict) and "schema_version" in document:
        return _asked_for_values(_from_report(document, path, roots, written), show_locals)
    if isinstance(document, list) and all(isinstance(entry, dict) for entry in document) \
            and any("frames" in entry for entry in document):
        return [from_pyspy_entries(document, Origin("py-spy-json", path, _has_addresses(document)),
                                   roots, written, _pid_of(document), show_locals=show_locals)]
    dump = parse_text_dump(text)
    if dump is None or not dump.threads:
        raise UsageError(f"no thread dump found in {'standard input' if path == '-' else path}",
                         FORMATS_REMEDY)
    notes = dump.notes + (("the dump is truncated: threads or frames are missing",)
                          if dump.truncated and not dump.notes else ())
    snapshot = from_pyspy_entries(dump.threads, Origin(dump.format, path, False, notes), roots, written)
    return _asked_for_values([snapshot], show_locals)


def _asked_for_values(snapshots: list[Snapshot], show_locals: bool) -> list[Snapshot]:
    """--show-locals on a dump that holds no values: the report says there are none."""
    return [replace(snapshot, shows_locals=True) for snapshot in snapshots] if show_locals else snapshots


def named(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """faulthandler names no thread: call each by its ident as the dump prints it (so it
    can be found in the dump), and the one thread not started by `threading` MainThread."""
    unnamed = [entry for entry in entries if not entry.get("thread_name")]
    if not unnamed:
        return [dict(entry) for entry in entries]
    roots = [entry for entry in entries if not _started_by_threading(entry)]
    main = roots[0] if len(roots) == 1 and not roots[0].get("thread_name") else None
    return [dict(entry) if entry.get("thread_name") else
            {**entry, "thread_name": "MainThread" if entry is main else _ident(entry)}
            for entry in entries]


def _ident(entry: Mapping[str, Any]) -> str:
    return f"0x{int(entry.get('thread_id') or 0):016x}"


def _started_by_threading(entry: Mapping[str, Any]) -> bool:
    frames = python_frames(entry)
    return bool(frames) and str(frames[-1].get("name") or "").endswith("_bootstrap") \
        and module_of(str(frames[-1].get("filename") or ""))[0] == "threading"


def qualified(entries: Iterable[Mapping[str, Any]], roots: Sequence[SourceRoot]) -> list[dict[str, Any]]:
    """Text dumps (and py-spy's on CPython < 3.11, which otherwise learns the class from
    `self`'s type in the locals) name a frame by its code's bare name (`join`); the rules
    and the report know methods by `Thread.join`. The class is read from the file at the
    frame's line, the standard library's included, wherever it is found on this machine."""
    entries = list(entries)
    found = find_local_sources({str(frame.get("filename") or "") for entry in entries
                                for frame in entry.get("frames") or ()}, roots).found
    texts = {filename: SourceFile(filename, local.text) for filename, local in found.items()}

    def qualify(frame: Mapping[str, Any]) -> dict[str, Any]:
        name, filename = str(frame.get("name") or ""), str(frame.get("filename") or "")
        if not name.isidentifier():
            return dict(frame)
        source = texts.get(filename)
        method = sourcecode.qualified_function(source, int(frame.get("line") or 0), name) \
            if source is not None else None
        return {**frame, "name": method or name}

    return [{**entry, "frames": [qualify(frame) for frame in entry.get("frames") or ()]} for entry in entries]


def from_pyspy_entries(entries: Sequence[Mapping[str, Any]], origin: Origin, roots: Sequence[SourceRoot],
                       written: float | None, pid: int = 0, *, show_locals: bool = False) -> Snapshot:
    """A snapshot from py-spy-shaped thread entries, with the program's sources read from
    this machine (through `roots`); with `show_locals`, the values py-spy gave, redacted."""
    entries, cut = pyspy_entries(entries)  # a file's JSON may be of any shape and size
    origin = replace(origin, notes=(*origin.notes, *cut))
    shown = shown_values(entries) if show_locals else None
    if not origin.addresses:
        entries = qualified(entries, roots)
    entries = named(entries)
    sources, warnings = read_local_sources(files_to_read(entries), roots, written)
    recording = Recording(process=ProcessFacts(pid=pid, python_version=python_version_of(entries)),
                          pyspy=tuple(entries), sources=sources, origin=origin,
                          warnings=(*_origin_warnings(origin), *warnings), shown=shown)
    return recording.to_snapshot()


def _origin_warnings(origin: Origin) -> tuple[str, ...]:
    missing = "" if origin.addresses else (
        "; it has no object addresses, so objects are told apart by name only and lock "
        "holders are at most possible")
    return (f"read from {origin.described}, not a live process: no kernel facts and one sample{missing}",
            *origin.notes)


def _json_document(text: str) -> Any:
    stripped = text.lstrip()
    if not stripped.startswith(("{", "[")):
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None  # a log that happens to start with a bracket: try it as text


# What a damaged file of threaddoc's own formats raises while it is turned into snapshots.
_DAMAGED = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError)


def _from_recording(text: str, path: str) -> Snapshot:
    damaged = UsageError(f"{path} is a damaged threaddoc recording", "record it again with --save")
    try:
        recording = _well_formed(load_recording(text))
        snapshot = replace(recording, origin=recording.origin or Origin("threaddoc-recording", path, True)
                           ).to_snapshot()
    except _DAMAGED:
        raise damaged from None
    if not is_well_typed(snapshot):
        raise damaged
    return snapshot


def _well_formed(recording: Recording) -> Recording:
    """The recording with py-spy's entries shaped as py-spy writes them and within limits,
    its children's too."""
    entries, cut = pyspy_entries(list(recording.pyspy))
    return replace(recording, pyspy=tuple(entries), warnings=(*recording.warnings, *cut),
                   children=tuple(_well_formed(child) for child in recording.children))


def _has_addresses(entries: Sequence[Mapping[str, Any]]) -> bool:
    # Of entries from a file: any shape (`mappings` skips what is no list of mappings).
    return any(isinstance(local.get("addr"), int) for entry in mappings(list(entries))
               for frame in mappings(entry.get("frames")) if not is_native(frame)
               for local in mappings(frame.get("locals")))


def _pid_of(entries: Sequence[Mapping[str, Any]]) -> int:
    given = [entry.get("pid") for entry in mappings(list(entries))]
    pids = {pid if isinstance(pid, int) and not isinstance(pid, bool) else None for pid in given}
    pid = pids.pop() if len(pids) == 1 else None
    return pid if isinstance(pid, int) and 0 < pid < 2**31 else 0


# threaddoc's own JSON report: re-analysed (with this version's rules) from its threads.

def _from_report(document: Mapping[str, Any], path: str, roots: Sequence[SourceRoot],
                 written: float | None) -> list[Snapshot]:
    if document.get("schema_version") != 1:
        raise UsageError(f"{path} is a threaddoc report of schema_version {document.get('schema_version')!r}",
                         "use the threaddoc version that wrote it, or one that reads that version")
    reports = document.get("reports") if "reports" in document else [document]
    damaged = UsageError(f"{path} is a damaged threaddoc report", "pass the report as threaddoc wrote it")
    try:
        snapshots = [_report_snapshot(report, path, roots, written) for report in reports or ()]
    except _DAMAGED:
        raise damaged from None
    if not snapshots or not all(is_well_typed(snapshot) for snapshot in snapshots):
        raise damaged
    return snapshots


def _report_snapshot(report: Mapping[str, Any], path: str, roots: Sequence[SourceRoot],
                     written: float | None) -> Snapshot:
    threads = report["threads"]
    entries = [_pyspy_entry(thread) for thread in threads]
    origin = Origin("threaddoc-report", path, _has_addresses(entries))
    target = report.get("target") or {}
    snapshot = from_pyspy_entries(entries, origin, roots, written, int(target.get("pid") or 0))
    process = replace(snapshot.process, cmdline=tuple(target.get("cmdline") or ()),
                      exe=target.get("exe"), python_version=target.get("python_version"),
                      username=target.get("username"), create_time=target.get("create_time"),
                      num_threads=target.get("num_threads"))
    restored = tuple(replace(thread, kernel=_kernel(saved.get("kernel")),
                             progress=_progress(saved.get("progress")))
                     for thread, saved in zip(snapshot.threads, threads))
    children = tuple(_report_snapshot(child, path, roots, written) for child in report.get("children") or ())
    return replace(snapshot, process=process, threads=restored, children=children,
                   warnings=(*snapshot.warnings, *(report.get("warnings") or ())))


def _pyspy_entry(thread: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "thread_id": thread.get("thread_id"), "thread_name": thread.get("name"),
        "os_thread_id": thread.get("os_thread_id"), "active": thread.get("active"),
        "owns_gil": thread.get("owns_gil"),
        "frames": [
            {"name": frame["function"], "filename": frame["file"], "line": frame["line"],
             "locals": [_pyspy_local(local) for local in frame.get("locals") or ()]}
            for frame in thread.get("frames") or ()
        ],
    }


def _pyspy_local(local: Mapping[str, Any]) -> dict[str, Any]:
    address = local.get("address")
    number = int(address, 16) if isinstance(address, str) else None
    type_name = local.get("type")
    # The report keeps identities, never values: a repr that says the type and nothing more.
    shown = f"<{type_name} object at {address}>" if type_name and address else None
    return {"name": local.get("name"), "addr": number, "arg": bool(local.get("arg")), "repr": shown}


def _kernel(saved: Any) -> KernelState | None:
    if not isinstance(saved, dict) or not saved.get("state"):
        return None
    futex = saved.get("futex_address")
    return KernelState(state=str(saved["state"]), syscall=saved.get("syscall"),
                       arguments=(int(futex, 16),) if isinstance(futex, str) else (),
                       wchan=str(saved.get("wchan") or ""))


def _progress(saved: Any) -> Progress | None:
    if not isinstance(saved, dict) or not saved.get("samples"):
        return None
    same = bool(saved.get("same_stack"))
    # The report does not keep whether a moving thread circled back to one place: take a
    # thread that moved as making progress, which can hide a hang but never invent one.
    return Progress(samples=int(saved["samples"]), same_stack=same, cpu_seconds=saved.get("cpu_seconds"),
                    window_seconds=float(saved.get("window_seconds") or 0.0), settled=same,
                    gil_samples=int(saved.get("held_gil_samples") or 0))


def load_core(core: str, py_spy: str | None, timeout: float, roots: Sequence[SourceRoot] = (),
              show_locals: bool = False) -> Snapshot:
    """The threads of a core file, read by py-spy; the sources from this machine."""
    try:
        info = os.stat(core)
    except OSError as error:
        raise UsageError(f"cannot read the core file {core}: {error.strerror}",
                         "give the path of a core file written by the kernel") from None
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{core} is not a core file", "give the path of a core file written by the kernel")
    executable = find_py_spy(py_spy)
    notes: tuple[str, ...] = ()
    try:
        entries = dump_core(core, executable, timeout)
    except PySpyFailed:
        # py-spy 0.4 can fail on a local whose memory the core left out (seen on 3.10):
        # the stacks alone still tell a lot.
        entries = dump_core(core, executable, timeout, with_locals=False)
        notes = ("py-spy could not read the local variables from this core, only the stacks",)
    # A core says nothing of who was on a CPU: py-spy calls every thread of one active.
    entries = [{**entry, "active": False} for entry in entries]
    origin = Origin("core", core, _has_addresses(entries), notes)
    return from_pyspy_entries(entries, origin, roots, info.st_mtime, _pid_of(entries),
                              show_locals=show_locals)

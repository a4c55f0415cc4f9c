"""A recording: the raw material of one diagnosis (py-spy's dump, process facts,
source files), saved as JSON so it can be re-analysed offline exactly as live.

The unit tests run every stage from recordings of the hung samples.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from threaddoc.errors import UsageError
from threaddoc.model import Origin, ProcessFacts, ShownValue, Snapshot, SourceFile

from .kernel import child_process, kernel_state, open_files
from .parse import parse_threads
from .sampling import progress_of
from .shown import ShownKey, with_shown_values

FORMAT = "threaddoc-recording"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Recording:
    process: ProcessFacts
    pyspy: tuple[Mapping[str, Any], ...]
    sources: Mapping[str, SourceFile] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    # /proc/PID/task/TID/{stat,syscall,wchan} by thread id, and the machine they were read on.
    kernel: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    arch: str = ""
    children: tuple[Recording, ...] = ()
    # /proc/PID/fd links with socket endpoints, and the direct child processes.
    open_files: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    child_processes: tuple[Mapping[str, Any], ...] = ()
    # Stacks and CPU times of every sample, oldest first (the last is the dump above).
    history: tuple[Mapping[str, Any], ...] = ()
    native: bool = False  # the dump holds native frames (py-spy --native)
    origin: Origin | None = None  # read from a saved dump or a core file, not a live process
    # --show-locals: the locals' values, already redacted (None: not asked for). For the
    # report only: `to_json` (what --save writes) leaves them out.
    shown: Mapping[ShownKey, ShownValue] | None = field(default=None, repr=False)

    def to_snapshot(self) -> Snapshot:
        threads = tuple(
            dataclasses.replace(
                thread,
                kernel=kernel_state(self.kernel[str(thread.os_thread_id)], self.arch)
                if str(thread.os_thread_id) in self.kernel else None,
                progress=progress_of(self.history, str(thread.thread_id), str(thread.os_thread_id)),
            )
            for thread in parse_threads(self.pyspy)
        )
        if self.shown is not None:
            threads = with_shown_values(threads, self.shown)
        return Snapshot(process=self.process, threads=threads, sources=self.sources,
                        warnings=self.warnings, children=tuple(c.to_snapshot() for c in self.children),
                        open_files=open_files(self.open_files),
                        child_processes=tuple(child_process(c, self.arch) for c in self.child_processes),
                        native=self.native, origin=self.origin, shows_locals=self.shown is not None)

    def to_json(self) -> str:
        return json.dumps(self._document(), indent=1, sort_keys=False) + "\n"

    def _document(self) -> dict[str, Any]:
        # Field by field, and never `shown`: a saved file holds no local's value.
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "process": {**asdict(self.process), "cmdline": list(self.process.cmdline),
                        "parent_cmdline": list(self.process.parent_cmdline)},
            "pyspy": list(self.pyspy),
            "sources": {
                path: {"text": source.text, "modified_after_start": source.modified_after_start}
                for path, source in sorted(self.sources.items())
            },
            "warnings": list(self.warnings),
            "kernel": {tid: dict(entry) for tid, entry in self.kernel.items()},
            "arch": self.arch,
            "children": [child._document() for child in self.children],
            "open_files": {fd: dict(entry) for fd, entry in self.open_files.items()},
            "child_processes": [dict(child) for child in self.child_processes],
            "history": [dict(sample) for sample in self.history],
            "native": self.native,
            "origin": {**asdict(self.origin), "notes": list(self.origin.notes)} if self.origin else None,
        }


def load_recording(text: str) -> Recording:
    try:
        document = json.loads(text)
    except ValueError:
        raise UsageError("the recording is not valid JSON", "pass a file written by threaddoc") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise UsageError("the file is not a threaddoc recording", "pass a file written by threaddoc")
    return _recording(document)


def _recording(document: dict[str, Any]) -> Recording:
    process = dict(document["process"])
    process["cmdline"] = tuple(process.get("cmdline") or ())
    process["parent_cmdline"] = tuple(process.get("parent_cmdline") or ())
    return Recording(
        process=ProcessFacts(**process),
        pyspy=tuple(document["pyspy"]),
        sources={
            path: SourceFile(path=path, text=entry["text"],
                             modified_after_start=bool(entry.get("modified_after_start")))
            for path, entry in document.get("sources", {}).items()
        },
        warnings=tuple(document.get("warnings", ())),
        kernel=document.get("kernel", {}),
        arch=document.get("arch", ""),
        children=tuple(_recording(child) for child in document.get("children", ())),
        open_files=document.get("open_files", {}),
        child_processes=tuple(document.get("child_processes", ())),
        history=tuple(document.get("history", ())),
        native=bool(document.get("native", False)),
        origin=_origin(document.get("origin")),
    )


def _origin(entry: Any) -> Origin | None:
    if not isinstance(entry, dict):
        return None
    return Origin(format=str(entry.get("format")), path=str(entry.get("path")),
                  addresses=bool(entry.get("addresses")), notes=tuple(entry.get("notes") or ()))

"""Local values for `--show-locals` (pure).

They are taken from py-spy's dump and redacted at once, before anything else sees
them, then kept beside the recording in memory for the report only: the recording's
own dump has lost its values (`parse.without_values`), and what `--save` writes
(`Recording.to_json`) never includes these.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from threaddoc.model import Frame, Local, ShownValue, Thread
from threaddoc.redact import REDACTED, redaction

from .parse import python_frames, without_values

# A local by place: (py-spy's thread id, index of its Python frame, innermost first, its name).
ShownKey = tuple[int, int, str]

# py-spy cuts its reprs at about 130 characters; a hand-made dump (--from) may not.
MAX_SHOWN_CHARS = 256


def values_apart(entries: Sequence[Mapping[str, Any]], show_locals: bool
                 ) -> tuple[list[dict[str, Any]], dict[ShownKey, ShownValue] | None]:
    """py-spy's entries without their values (what is analysed and saved) and, if asked
    for, the values, redacted, for the report only."""
    return [without_values(entry) for entry in entries], shown_values(entries) if show_locals else None


def shown_values(raw: Iterable[Mapping[str, Any]]) -> dict[ShownKey, ShownValue]:
    """Every local of the dump that has a value, as it may be shown: redacted if secret."""
    shown: dict[ShownKey, ShownValue] = {}
    for entry in raw:
        thread_id = int(entry.get("thread_id") or 0)
        for index, frame in enumerate(python_frames(entry)):
            for local in frame.get("locals") or ():
                name, value = str(local.get("name") or "?"), local.get("repr")
                if isinstance(value, str) and value:
                    shown[(thread_id, index, name)] = shown_value(name, value)
    return shown


def shown_value(name: str, value: str) -> ShownValue:
    """Redaction looks at the whole repr; only then is a long one shortened."""
    found = redaction(name, value)
    if found is not None:
        return ShownValue(REDACTED, redacted=True, reason=found.reason)
    if len(value) > MAX_SHOWN_CHARS:
        return ShownValue(value[:MAX_SHOWN_CHARS] + "…")
    return ShownValue(value)


def with_shown_values(threads: Iterable[Thread], shown: Mapping[ShownKey, ShownValue]) -> tuple[Thread, ...]:
    """The threads, each local given its value where one was shown."""
    return tuple(dataclasses.replace(thread, frames=_frames_with_values(thread, shown)) for thread in threads)


def _frames_with_values(thread: Thread, shown: Mapping[ShownKey, ShownValue]) -> tuple[Frame, ...]:
    return tuple(
        dataclasses.replace(frame, locals=tuple(
            _local_with_value(local, shown.get((thread.thread_id, index, local.name)))
            for local in frame.locals))
        for index, frame in enumerate(thread.frames)
    )


def _local_with_value(local: Local, value: ShownValue | None) -> Local:
    return local if value is None else dataclasses.replace(local, shown=value)

"""py-spy shaped thread entries from a file that anyone may have written (pure).

A saved dump is parsed JSON of any shape: a thread id that is a list, a line number of
a hundred digits, a frame that is a string. What the analysis reads of an entry is
given the type it expects here, at the border, or left out: a field of the wrong type
becomes its default, a frame or a thread that is no mapping is dropped. The analysis
behind it then never meets a shape py-spy itself would not write.
"""

from __future__ import annotations

import builtins
import collections.abc
import dataclasses
import functools
import math
import sys
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_MAX_ID = 2**64 - 1  # thread idents and addresses are machine words
_MAX_LINE = 2**31 - 1
_MAX_TID = 2**31 - 1


# A saved dump can name more than any process has: py-spy reads at most 4096 threads and
# frames, faulthandler prints 100 of each. Past these the analysis takes minutes, not seconds.
MAX_THREADS = 10_000
MAX_FRAMES_A_THREAD = 2_000
MAX_FRAMES = 200_000
_OUTERMOST_KEPT = 50  # of a stack cut in the middle: where the thread started
_MAX_NOTES = 5


def pyspy_entries(entries: Iterable[Any]) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """Each thread entry as py-spy would have written it (entries that are no mapping are
    dropped), within the limits above; and notes that say what was cut. Of a stack cut,
    the innermost frames (what the thread waits for) and the outermost (how it started)
    are kept."""
    threads = mappings(entries)
    notes = [f"the dump holds {len(threads)} threads: only the first {MAX_THREADS} were read"] \
        if len(threads) > MAX_THREADS else []
    shaped: list[dict[str, Any]] = []
    budget = MAX_FRAMES
    for entry in threads[:MAX_THREADS]:
        frames = mappings(entry.get("frames"))
        if len(frames) > MAX_FRAMES_A_THREAD:
            notes.append(f"a thread has {len(frames)} frames: {MAX_FRAMES_A_THREAD} were read, the "
                         "innermost and the outermost")
            frames = [*frames[:MAX_FRAMES_A_THREAD - _OUTERMOST_KEPT], *frames[-_OUTERMOST_KEPT:]]
        if len(frames) > budget:
            notes.append(f"the dump holds more than {MAX_FRAMES} frames: only its first {len(shaped)} "
                         "threads were read")
            break
        budget -= len(frames)
        shaped.append(_entry(entry, frames))
    more = (f"and {len(notes) - _MAX_NOTES} more cuts",) if len(notes) > _MAX_NOTES else ()
    return shaped, (*notes[:_MAX_NOTES], *more)


def mappings(value: Any) -> list[Mapping[str, Any]]:
    """The items of a list (or tuple) that are mappings; nothing if it is neither."""
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, (list, tuple)) else []


def _entry(entry: Mapping[str, Any], frames: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    shaped: dict[str, Any] = {
        "thread_id": _number(entry.get("thread_id"), _MAX_ID) or 0,
        "thread_name": _text(entry.get("thread_name")),
        "os_thread_id": _number(entry.get("os_thread_id"), _MAX_TID),
        "active": entry.get("active") is True,
        "owns_gil": entry.get("owns_gil") is True,
        "frames": [_frame(frame) for frame in frames],
    }
    if _number(entry.get("pid"), _MAX_TID) is not None:
        shaped["pid"] = entry["pid"]
    if entry.get("current") is True:  # a text dump's "Current thread"
        shaped["current"] = True
    return shaped


def _frame(frame: Mapping[str, Any]) -> dict[str, Any]:
    locals_ = frame.get("locals")
    shaped: dict[str, Any] = {
        "name": _text(frame.get("name")) or "?",
        "filename": _text(frame.get("filename")) or "<unknown>",
        "line": _number(frame.get("line"), _MAX_LINE) or 0,
        "locals": [_local(local) for local in mappings(locals_)]
        if isinstance(locals_, (list, tuple)) else None,
    }
    if isinstance(frame.get("short_filename"), str):
        shaped["short_filename"] = frame["short_filename"]
    if isinstance(frame.get("module"), str):  # a native frame (py-spy --native) names its library
        shaped["module"] = frame["module"]
    return shaped


def _local(local: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": _text(local.get("name")) or "?", "addr": _number(local.get("addr"), _MAX_ID),
            "arg": local.get("arg") is True, "repr": _text(local.get("repr"))}


def _number(value: Any, largest: int) -> int | None:
    """A non-negative integer no larger than `largest` (True is no number here), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= largest:
        return value
    return None


def _text(value: Any) -> str | None:
    """A string that can be written out: JSON's lone surrogates (`"\\ud800"`) are no
    character any terminal or encoder takes, so they stay as the escape they were."""
    if not isinstance(value, str):
        return None
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


# --- Snapshots of threaddoc's own formats ------------------------------------------------------
#
# A recording (--save) or a report (--json) holds far more than py-spy's entries: process
# and kernel facts, samples, sources, children. What they become is a tree of the model's
# frozen dataclasses, and every stage after collection relies on their annotations. So a
# snapshot made from such a file is checked against those annotations, all the way down:
# one that does not conform came from a damaged file.


def is_well_typed(value: object) -> bool:
    """Whether a model dataclass (and all it holds) has the types its annotations say,
    with finite numbers and strings that can be written out."""
    return _conforms(value, _Hint("plain", type(value)))


@dataclasses.dataclass(frozen=True)
class _Hint:
    """An annotation, read from its text (`str | None`, `tuple[Frame, ...]`) the same way
    on every Python threaddoc runs on: 3.9 cannot evaluate `X | None` itself."""

    kind: str  # "plain" (a class), "union", "generic" (tuple, Mapping, ...)
    target: Any = None
    arguments: tuple[Any, ...] = ()  # _Hint, or Ellipsis in tuple[X, ...]

    def __or__(self, other: Any) -> _Hint:
        return _Hint("union", arguments=(*self._options(), *_as_hint(other)._options()))

    def __ror__(self, other: Any) -> _Hint:
        return _as_hint(other) | self

    def __getitem__(self, items: Any) -> _Hint:
        items = items if isinstance(items, tuple) else (items,)
        return _Hint("generic", self.target,
                     tuple(item if item is Ellipsis else _as_hint(item) for item in items))

    def _options(self) -> tuple[_Hint, ...]:
        return self.arguments if self.kind == "union" else (self,)


def _as_hint(value: Any) -> _Hint:
    return value if isinstance(value, _Hint) else _Hint("plain", type(None) if value is None else value)


class _Names(dict[str, Any]):
    """The names an annotation may use: the dataclass's module's, then builtins and typing's."""

    def __init__(self, module: Any) -> None:
        super().__init__()
        self.module = module

    def __missing__(self, name: str) -> _Hint:
        for namespace in (vars(self.module), vars(builtins), vars(typing), vars(collections.abc)):
            if name in namespace:
                return _Hint("plain", namespace[name])
        raise NameError(name)


@functools.cache
def _field_hints(cls: type) -> tuple[tuple[str, _Hint], ...]:
    # eval() of threaddoc's own annotations (never of input), with no builtins beyond names.
    names = _Names(sys.modules[cls.__module__])
    return tuple((field.name, _as_hint(eval(field.type, {"__builtins__": {}}, names))
                  if isinstance(field.type, str) else _as_hint(field.type))
                 for field in dataclasses.fields(cls))


def _conforms(value: object, hint: _Hint) -> bool:
    if hint.kind == "union":
        return any(_conforms(value, option) for option in hint.arguments)
    if hint.kind == "generic":
        return _conforms_generic(value, hint.target, hint.arguments)
    target = hint.target
    if target is Any:
        return True
    if dataclasses.is_dataclass(target) and isinstance(target, type):
        return isinstance(value, target) and all(
            _conforms(getattr(value, name), field_hint) for name, field_hint in _field_hints(target))
    return _conforms_plain(value, target)


def _conforms_plain(value: object, target: Any) -> bool:
    if target is bool:
        return isinstance(value, bool)
    if target is int:
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= _MAX_ID
    if target is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
            and abs(value) <= _MAX_ID
    if target is str:
        return isinstance(value, str) and _writable(value)
    return isinstance(target, type) and isinstance(value, target)


def _conforms_generic(value: object, origin: Any, arguments: tuple[Any, ...]) -> bool:
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return all(_conforms(item, arguments[0]) for item in value)
        return len(value) == len(arguments) and all(map(_conforms, value, arguments))
    if origin in (collections.abc.Mapping, dict):
        return isinstance(value, Mapping) and all(
            _conforms(key, arguments[0]) and _conforms(item, arguments[1]) for key, item in value.items())
    if origin in (collections.abc.Sequence, list):
        return isinstance(value, (list, tuple)) and all(_conforms(item, arguments[0]) for item in value)
    return isinstance(origin, type) and isinstance(value, origin)


def _writable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

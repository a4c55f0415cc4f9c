"""py-spy's JSON dump to model threads (pure: also used for recorded dumps)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, Optional

from threaddoc.model import Frame, Local, NativeFrame, Thread

_STDLIB_PATH = re.compile(r"/lib/python3\.\d+t?/(?!(?:site|dist)-packages/)(?P<module>.+)\.py$")
_THIRD_PARTY_PATH = re.compile(r"/(?:site|dist)-packages/(?P<module>.+)\.py$")
_FROZEN = re.compile(r"^<frozen (?P<module>[\w.]+)>$")
_OBJECT_REPR = re.compile(r"^<(?P<type>[\w.]+)(?: object)? at 0x[0-9a-f]+>$")
_BRACKETED_REPR = re.compile(r"^<(?P<type>[\w.]+)[ (]")


def parse_threads(raw: Iterable[Mapping[str, Any]]) -> tuple[Thread, ...]:
    built = _Built()
    return tuple(_parse_thread(entry, built) for entry in raw)


# A local as parsed: (name, address, repr, is an argument).
_LocalKey = tuple[str, Optional[int], Optional[str], bool]


class _Built:
    """The frames and locals of one dump built so far. A program's threads share them (a
    thousand workers at one line; a Thread object is `self` in three of its frames), and
    they are frozen: each distinct one is built once."""

    def __init__(self) -> None:
        self.frames: dict[tuple[str, str, int, tuple[_LocalKey, ...]], Frame] = {}
        self.locals: dict[_LocalKey, Local] = {}


def is_native(frame: Mapping[str, Any]) -> bool:
    """py-spy --native names the shared library of a C frame in `module`; Python frames have none."""
    return frame.get("module") is not None


def python_frames(entry: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    # is_native, inlined: this runs for every frame of every thread, several times a diagnosis.
    return [frame for frame in entry.get("frames") or () if frame.get("module") is None]


def filenames(raw: Iterable[Mapping[str, Any]]) -> set[str]:
    """The files of every Python frame of a dump."""
    return {str(frame.get("filename") or "") for thread in raw for frame in python_frames(thread)}


def python_version_of(raw: Iterable[Mapping[str, Any]]) -> str | None:
    """The target's Python version (`3.11`), as its standard library's path says."""
    for filename in sorted(filenames(raw)):
        found = _LIBRARY_VERSION.search(filename)
        if found:
            return found.group(1)
    return None


_LIBRARY_VERSION = re.compile(r"/lib/python(3\.\d+)t?/")


def without_values(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A py-spy thread entry whose locals keep their identity (type and address) and lose
    their value: what is saved (`--save`) must not hold a password a frame had in hand."""
    return {**entry, "frames": [
        {**frame, "locals": [_identity_only(local) for local in frame.get("locals") or ()]}
        if frame.get("locals") else dict(frame)
        for frame in entry.get("frames") or ()
    ]}


def _identity_only(local: Mapping[str, Any]) -> dict[str, Any]:
    type_name = type_of_repr(local.get("repr"))
    address = local.get("addr")
    if type_name is None:
        return {**local, "repr": None}
    at = f" at {address:#x}" if isinstance(address, int) else ""
    return {**local, "repr": f"<{type_name} object{at}>"}


def _native_prefix(entry: Mapping[str, Any]) -> tuple[NativeFrame, ...]:
    """The C frames above the innermost Python frame: what the thread does in C right now."""
    prefix = []
    for frame in entry.get("frames") or ():
        if not is_native(frame):
            break
        prefix.append(NativeFrame(function=str(frame.get("name") or "?"), library=str(frame.get("module"))))
    return tuple(prefix)


def _parse_thread(entry: Mapping[str, Any], built: _Built) -> Thread:
    frames = tuple([_parse_frame(frame, built) for frame in python_frames(entry)])
    os_thread_id = entry.get("os_thread_id")
    return Thread(
        name=str(entry.get("thread_name") or f"Thread-{entry.get('thread_id', '?')}"),
        thread_id=int(entry.get("thread_id") or 0),
        os_thread_id=int(os_thread_id) if os_thread_id is not None else None,
        active=bool(entry.get("active")),
        owns_gil=bool(entry.get("owns_gil")),
        frames=frames,
        native_frames=_native_prefix(entry),
    )


def _parse_frame(entry: Mapping[str, Any], built: _Built) -> Frame:
    filename = str(entry.get("filename") or "<unknown>")
    name = str(entry.get("name") or "?")
    line = int(entry.get("line") or 0)
    raw_locals = entry.get("locals")
    local_keys = tuple([_local_key(local) for local in raw_locals]) if raw_locals else ()
    key = (filename, name, line, local_keys)
    frame = built.frames.get(key)
    if frame is None:
        locals_ = tuple([_parse_local(local, built) for local in local_keys])
        module, is_stdlib = module_of(filename)
        frame = built.frames[key] = Frame(
            function=qualified_name(name, locals_),
            filename=filename,
            line=line,
            module=module,
            is_stdlib=is_stdlib,
            locals=locals_,
        )
    return frame


def _local_key(entry: Mapping[str, Any]) -> _LocalKey:
    """What a Local is made of (a value of another type counts as none)."""
    address, value = entry.get("addr"), entry.get("repr")
    return (str(entry.get("name") or "?"), int(address) if isinstance(address, int) else None,
            value if isinstance(value, str) else None, bool(entry.get("arg")))


def _parse_local(key: _LocalKey, built: _Built) -> Local:
    local = built.locals.get(key)
    if local is None:
        name, address, value, is_arg = key
        local = built.locals[key] = Local(name=name, address=address, type_name=type_of_repr(value),
                                          is_arg=is_arg)
    return local


# Thousands of threads run in the same few files: each is named once.
@lru_cache(maxsize=4096)
def module_of(filename: str) -> tuple[str, bool]:
    """The dotted module name a file implements, and whether it is the standard library."""
    frozen = _FROZEN.match(filename)
    if frozen:
        return frozen.group("module"), True
    stdlib = _STDLIB_PATH.search(filename)
    if stdlib:
        return _dotted(stdlib.group("module")), True
    third_party = _THIRD_PARTY_PATH.search(filename)
    if third_party:
        return _dotted(third_party.group("module")), False
    stem = filename.rsplit("/", 1)[-1]
    return stem[:-3] if stem.endswith(".py") else stem, False


def _dotted(path: str) -> str:
    module = path.replace("/", ".")
    return module[: -len(".__init__")] if module.endswith(".__init__") else module


def qualified_name(name: str, locals_: tuple[Local, ...]) -> str:
    """`Class.method` for methods; CPython < 3.11 only reports the bare name.

    Before 3.11 the class is recovered from the type of `self` (or `cls`),
    which is what py-spy reports for the first argument.
    """
    if "." in name or name.startswith("<"):
        return name
    for local in locals_:
        if local.is_arg and local.name in ("self", "cls") and local.type_name:
            return f"{local.type_name.rsplit('.', 1)[-1]}.{name}"
    return name


def type_of_repr(value: Any | None) -> str | None:
    """The type of a local from py-spy's repr, without keeping the value itself."""
    if not isinstance(value, str) or not value:
        return None
    matched = _OBJECT_REPR.match(value) or _BRACKETED_REPR.match(value)
    if matched:
        return matched.group("type")
    if value in ("True", "False"):
        return "bool"
    if value == "None":
        return "NoneType"
    if value[0] in "'\"":
        return "str"
    if value[0] in "bB" and value[1:2] in ("'", '"'):
        return "bytes"
    if re.fullmatch(r"-?\d+", value):
        return "int"
    if re.fullmatch(r"-?\d+\.\d*(e[-+]?\d+)?|-?inf|nan", value):
        return "float"
    if value[0] == "[":
        return "list"
    if value[0] == "(":
        return "tuple"
    if value[0] == "{":
        return "dict"
    return None

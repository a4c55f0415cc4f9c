"""Classification: what each thread is doing, from its stack and its own source line."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol, TypeVar

from threaddoc import sourcecode
from threaddoc.model import Frame, Local, NativeFrame, Snapshot, Thread

from .kinds import Activity, WaitKind
from .rules import (
    CALL_RULES,
    FRAME_RULES,
    HOLD_RULES,
    NATIVE_RULES,
    PYTHON,
    CallRule,
    FrameRule,
    HoldRule,
    NativeRule,
)

__all__ = ["HOLD_RULES", "Activity", "HoldRule", "WaitKind", "WaitState", "classify", "classify_all",
           "match_frame"]


@dataclass(frozen=True)
class WaitState:
    """What one thread waits for.

    `site` indexes the frame where the program itself waits (its own code where
    there is one); `api` the library frame a rule matched; `subject` the object
    waited on, by identity; `expression` its source text at the site.
    """

    kind: WaitKind
    summary: str
    site: int | None = None
    api: int | None = None
    subject: Local | None = None
    expression: str | None = None
    has_timeout: bool | None = None
    # A lock kept inside a library object (logging.Handler's `lock`), from the rule.
    lock_attribute: str | None = None
    lock_type: str | None = None
    library: str | None = None

    @property
    def activity(self) -> Activity:
        return self.kind.activity


def classify_all(snapshot: Snapshot) -> tuple[WaitState, ...]:
    someone_runs = any(thread.active or thread.owns_gil for thread in snapshot.threads)
    reading = _STATEMENTS.set({})
    try:
        return tuple(classify(thread, snapshot, someone_runs) for thread in snapshot.threads)
    finally:
        _STATEMENTS.reset(reading)


# CPU time a thread found waiting at the same place in every sample may have used
# and still count as stuck. Nothing wakes a thread blocked for good while the samples
# are taken (only the last one pauses the target, after the last CPU reading): any
# real use means it got what it waited for and came back for more.
RAN_SECONDS = 0.0005


def classify(thread: Thread, snapshot: Snapshot, someone_runs: bool = False) -> WaitState:
    state = _classify(thread, snapshot, someone_runs)
    progress = thread.progress
    if (state.activity is Activity.BLOCKED and state.has_timeout is not True and progress is not None
            and progress.cpu_seconds is not None and progress.cpu_seconds >= RAN_SECONDS):
        return WaitState(WaitKind.RUNNING,
                         f"made progress between samples ({state.summary}, but ran "
                         f"{progress.cpu_seconds * 1000:.1f} ms meanwhile)", site=state.site)
    return state


def _classify(thread: Thread, snapshot: Snapshot, someone_runs: bool) -> WaitState:
    if not thread.frames:
        return WaitState(WaitKind.IDLE_OTHER, "has no Python frames (native code or starting)")
    if thread.progress is not None and thread.progress.progressed:
        # Not stuck: it was somewhere else a moment ago. Never part of a hang finding.
        return WaitState(WaitKind.RUNNING, "made progress between samples", site=thread.innermost_own_index)
    by_native = _match_native_frames(thread.native_frames)
    if by_native is not None:
        return WaitState(by_native.kind, by_native.summary, site=thread.innermost_own_index)
    by_frame = _match_library_frames(thread)
    if by_frame is not None:
        return by_frame
    own = thread.innermost_own_index
    if _asleep_holding_the_gil(thread):
        # A call into C that did not release the GIL.
        return WaitState(WaitKind.IDLE_OTHER, "blocked in a call into C, holding the GIL", site=own)
    if thread.active or thread.owns_gil:
        # A polling loop caught between two sleeps is still a polling loop, not a busy thread.
        between_waits = _match_statement(thread.frames[0], snapshot) if own == 0 else None
        if between_waits is not None and between_waits.kind.activity is Activity.IDLE:
            return between_waits
        return WaitState(WaitKind.RUNNING, "running on a CPU", site=own)
    if own == 0:
        if snapshot.source(thread.frames[0].filename) is None:
            return WaitState(WaitKind.IDLE_OTHER, "waiting; its source could not be read to tell on what",
                             site=0)
        by_call = _match_statement(thread.frames[0], snapshot)
        if by_call is not None:
            return by_call
        if someone_runs:
            return WaitState(WaitKind.RUNNING, "runnable, waiting for the GIL", site=0)
        if snapshot.origin is not None and thread.kernel is None:
            # A saved dump has no kernel state to tell a thread computing at this line from
            # one blocked in a C call made there: take it as working, never as stuck.
            return WaitState(WaitKind.RUNNING, "running, or in a call the dump cannot tell", site=0)
        return WaitState(WaitKind.IDLE_OTHER, "blocked in a call threaddoc does not recognise", site=0)
    return WaitState(WaitKind.IDLE_OTHER, "blocked inside the standard library", site=own)


def _asleep_holding_the_gil(thread: Thread) -> bool:
    """Asleep in the kernel (read before the samples) and holding the GIL, unmoved, in every
    sample since: the kernel's state and py-spy's are from different moments, so one
    sample could pair a sleep with a GIL taken a moment later."""
    progress = thread.progress
    asleep = thread.kernel is not None and thread.kernel.state in ("S", "D")
    # A computing thread found asleep was only waiting for the GIL back at that moment:
    # its CPU time says so, where it is known.
    idle = progress is not None and (progress.cpu_share is None or progress.cpu_share < IDLE_CPU_SHARE)
    return (asleep and thread.owns_gil and not thread.active and progress is not None
            and progress.held_gil_throughout and progress.same_stack and idle)


IDLE_CPU_SHARE = 0.1  # of one core over the sampling window


def _match_native_frames(native: Sequence[NativeFrame]) -> NativeRule | None:
    """The rule for what the thread does in C, from the frames above its Python code."""
    named = [frame.function for frame in native if not frame.function.startswith("0x")]
    if not named:
        return None
    caller = named[1] if len(named) > 1 else PYTHON
    for rule in NATIVE_RULES:
        if rule.function == named[0] and (rule.callers is None or caller in rule.callers):
            return rule
    return None


def _library_prefix(thread: Thread) -> int:
    """How many innermost frames belong to the library the program called."""
    own = thread.innermost_own_index
    return len(thread.frames) if own is None else own


def _match_library_frames(thread: Thread) -> WaitState | None:
    prefix = _library_prefix(thread)
    # Outermost first: the API the program called says more than its internals.
    for index in reversed(range(prefix)):
        rule = match_frame(thread.frames[index], FRAME_RULES)
        if rule is not None and (index == 0 or not rule.innermost_only):
            return _state_from_frame(thread, index, rule)
    return None


class _NamesAFunction(Protocol):
    @property
    def module(self) -> str: ...

    @property
    def function(self) -> str: ...


Rule = TypeVar("Rule", bound=_NamesAFunction)


# Thousands of threads run the same few functions: a rule table (a tuple, so it cannot
# change) is searched once per (module, function). The tables are kept, so that the id of
# one is never that of another.
_MATCHED: dict[tuple[int, str, str], object] = {}
_TABLES: dict[int, Sequence[object]] = {}
_MAX_MATCHED = 65536


def match_frame(frame: Frame, rules: Sequence[Rule]) -> Rule | None:
    """The first rule naming the frame's function (`Class.method` in `module`)."""
    if not isinstance(rules, tuple):
        return _match_frame(frame, rules)
    key = (id(rules), frame.module, frame.function)
    if key in _MATCHED:
        return _MATCHED[key]  # type: ignore[return-value]  # stored by this function for `rules`
    found = _match_frame(frame, rules)
    if len(_MATCHED) >= _MAX_MATCHED:
        _MATCHED.clear()
    _TABLES.setdefault(id(rules), rules)
    _MATCHED[key] = found
    return found


def _match_frame(frame: Frame, rules: Sequence[Rule]) -> Rule | None:
    exact = [rule for rule in rules if rule.module == frame.module and _same_function(rule, frame)]
    if exact:
        return exact[0]
    # Before 3.11 the class is the runtime type of `self`, maybe a subclass of the
    # library class (`class Worker(Thread)`): match on the method name then.
    known_classes = {rule.function.split(".")[0] for rule in rules if rule.module == frame.module}
    if frame.class_name is not None and frame.class_name not in known_classes:
        for rule in rules:
            if (rule.module == frame.module and "." in rule.function
                    and rule.function.rsplit(".", 1)[1] == frame.method_name):
                return rule
    return None


def _same_function(rule: _NamesAFunction, frame: Frame) -> bool:
    if rule.function.startswith("*."):
        return frame.method_name == rule.function[2:] and frame.class_name is not None
    return frame.function == rule.function


def _state_from_frame(thread: Thread, index: int, rule: FrameRule) -> WaitState:
    frame = thread.frames[index]
    own = thread.innermost_own_index
    subject = frame.local(rule.subject) if rule.subject else None
    return WaitState(
        kind=rule.kind,
        summary=rule.summary,
        site=own if own is not None else index,
        api=index,
        subject=subject,
        has_timeout=_timeout_from_local(frame.local(rule.timeout_local)) if rule.timeout_local else None,
        lock_attribute=rule.lock_attribute,
        lock_type=rule.lock_type,
        library=rule.library,
    )


def _timeout_from_local(local: Local | None) -> bool | None:
    if local is None or local.type_name is None:
        return None
    return local.type_name != "NoneType"


# Threads parked at one line share that frame (parsing builds each distinct one once): while
# `classify_all` classifies one snapshot, each frame's statement is read once. Per context,
# so that diagnoses in several threads keep theirs apart.
_STATEMENTS: ContextVar[dict[Frame, WaitState | None] | None] = ContextVar("_STATEMENTS", default=None)


def _match_statement(frame: Frame, snapshot: Snapshot) -> WaitState | None:
    """What the program's own statement at the frame's line waits for, if it says."""
    read = _STATEMENTS.get()
    if read is None:
        return _read_statement(frame, snapshot)
    if frame not in read:
        read[frame] = _read_statement(frame, snapshot)
    return read[frame]


def _read_statement(frame: Frame, snapshot: Snapshot) -> WaitState | None:
    source = snapshot.source(frame.filename)
    if source is None:
        return None
    statement = sourcecode.statement_at(source, frame.line)
    if statement is None:
        return None
    for call in sourcecode.calls_in(statement):
        rule = _match_call(call, frame)
        if rule is not None:
            return WaitState(
                kind=rule.kind,
                summary=rule.summary,
                site=0,
                expression=sourcecode.spelling(source, call.receiver) if call.receiver is not None else None,
                has_timeout=_call_has_timeout(call, rule),
            )
    if isinstance(statement, (ast.With, ast.AsyncWith)):
        for item in statement.items:
            if isinstance(item.context_expr, (ast.Name, ast.Attribute)):
                return WaitState(WaitKind.LOCK, "waits for a lock", site=0,
                                 expression=sourcecode.spelling(source, item.context_expr),
                                 has_timeout=False)
    return None


def _match_call(call: sourcecode.Call, frame: Frame) -> CallRule | None:
    for rule in CALL_RULES:
        if rule.name != call.name:
            continue
        named_receiver = isinstance(call.receiver, ast.Name) and call.receiver.id in (rule.receivers or ())
        if rule.receivers is not None and not named_receiver:
            continue
        if rule.receiver_types is not None and _receiver_type(call, frame) not in rule.receiver_types:
            continue
        return rule
    return None


def _receiver_type(call: sourcecode.Call, frame: Frame) -> str | None:
    if isinstance(call.receiver, ast.Name):
        local = frame.local(call.receiver.id)
        if local is not None:
            return local.type_name
    return None


def _call_has_timeout(call: sourcecode.Call, rule: CallRule) -> bool | None:
    if rule.kind is WaitKind.LOCK:
        return _acquire_has_timeout(call.node)
    if rule.kind in (WaitKind.SLEEP,):
        return True
    return None


def _acquire_has_timeout(node: ast.Call) -> bool:
    """`acquire()` blocks forever unless given `blocking=False` or a timeout >= 0."""
    arguments: dict[str, ast.expr] = {kw.arg: kw.value for kw in node.keywords if kw.arg}
    for name, value in zip(("blocking", "timeout"), node.args):
        arguments[name] = value
    blocking = arguments.get("blocking")
    if isinstance(blocking, ast.Constant) and blocking.value in (False, 0):
        return True
    timeout = arguments.get("timeout")
    if timeout is None:
        return False
    return not (isinstance(timeout, ast.Constant) and timeout.value in (-1, None))

"""Resolution: which object each thread waits for, and which locks it holds.

A plain `threading.Lock` records no owner, so holders are read from source: the
`with` blocks and un-released `.acquire()` calls that enclose each frame's line.
An expression is named by what it is rooted in -- a local or argument (py-spy's
address for it), or a module global (module + name) -- so `self._lock` in one
thread and `other._lock` in another are the same lock exactly when `self` and
`other` have the same address.  Expressions with no such root (subscripts,
calls) are kept, marked unrooted, and never matched by guesswork.
"""

from __future__ import annotations

import ast
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Union

from threaddoc import sourcecode
from threaddoc.classify import HOLD_RULES, Activity, WaitKind, WaitState, match_frame
from threaddoc.collect.parse import module_of
from threaddoc.model import Frame, Snapshot, SourceFile, Thread

from .futures import FutureTasks, future_tasks, running_task

Key = tuple[Union[str, int], ...]

LOCK_TYPES = {
    "lock": "Lock", "_thread.lock": "Lock", "Lock": "Lock", "allocate_lock": "Lock",
    "RLock": "RLock", "_thread.RLock": "RLock", "_RLock": "RLock",
    "Condition": "Condition", "Semaphore": "Semaphore", "BoundedSemaphore": "BoundedSemaphore",
}


@dataclass(frozen=True)
class Resource:
    """Something a thread can wait for: a lock, a thread, a future..."""

    kind: str  # "lock", "thread", "future", "event", "condition", "queue", "object"
    name: str  # as the program spells it: "lock_a", "self._lock", "fut"
    key: Key | None = None  # identity; None when the expression cannot be rooted
    detail: str = ""  # where the name lives: "module global in bank.py"
    lock_type: str | None = None
    address: int | None = None
    # How reports name it unambiguously: the global (`ledger_lock`), the class attribute
    # (`Account._lock`), or the object (`Account@0x7f3a1c2b4d10._lock`).
    label: str = ""
    library: str | None = None  # for locks kept inside a library object: "logging.Handler"
    task: str | None = None  # for a future: the function submitted for it; for a thread: its target
    # Known by name only (a saved dump without addresses): `self._lock` of one object and
    # `other._lock` of another share a key, so whatever rests on it is at most possible.
    by_name: bool = False

    @property
    def rooted(self) -> bool:
        return self.key is not None


@dataclass(frozen=True)
class Held:
    """A lock-like object a thread holds, and where it took it."""

    resource: Resource
    frame: int
    line: int
    how: str  # "with", "acquire" or "import"


@dataclass(frozen=True)
class ThreadAnalysis:
    """One thread after classification and resolution."""

    thread: Thread
    wait: WaitState
    waits_for: Resource | None = None
    holds: tuple[Held, ...] = ()
    runs_task: str | None = None  # for a pool worker: the function of the task it runs

    @property
    def waited_seconds(self) -> float | None:
        """How long it has been waiting where it is; None for a thread that runs."""
        return None if self.wait.activity is Activity.RUNNING else self.thread.waiting_for_seconds

    @property
    def site_frame(self) -> Frame | None:
        if self.wait.site is None:
            return None
        return self.thread.frames[self.wait.site]


def resolve_all(snapshot: Snapshot, waits: tuple[WaitState, ...]) -> tuple[ThreadAnalysis, ...]:
    names_by_address = {
        address: thread.name
        for thread in snapshot.threads
        if (address := thread.thread_object_address) is not None
    }
    tasks = future_tasks(snapshot)
    rooting = _ROOTED.set({})
    try:
        return tuple(
            _resolve(thread, wait, snapshot, names_by_address, tasks)
            for thread, wait in zip(snapshot.threads, waits)
        )
    finally:
        _ROOTED.reset(rooting)


def _resolve(
    thread: Thread, wait: WaitState, snapshot: Snapshot, thread_names: dict[int, str], tasks: FutureTasks
) -> ThreadAnalysis:
    wait = _with_site_expression(thread, wait, snapshot)
    waits_for = _waited_resource(thread, wait, snapshot, thread_names)
    if waits_for is not None and waits_for.lock_type == "RLock" and wait.kind is WaitKind.LOCK:
        wait = replace(wait, kind=WaitKind.RLOCK, summary="waits for an RLock")
    wait = _with_kernel_timeout(thread, wait)
    holds = _held_locks(thread, snapshot)
    released = _released_while_waiting(thread, wait, snapshot)
    if released is not None:
        holds = tuple(held for held in holds if held.resource.key != released)
    if waits_for is not None and waits_for.kind == "future" and wait.site is not None:
        task = tasks.task_of(waits_for.address, thread.frames[wait.site].module, wait.expression)
        waits_for = replace(waits_for, task=task)
    return ThreadAnalysis(thread=thread, wait=wait, waits_for=waits_for, holds=holds,
                          runs_task=running_task(thread))


_IO_WAITS = frozenset({WaitKind.SOCKET_RECV, WaitKind.SOCKET_SEND, WaitKind.SOCKET_CONNECT,
                       WaitKind.SOCKET_ACCEPT, WaitKind.FILE_READ})


def _with_kernel_timeout(thread: Thread, wait: WaitState) -> WaitState:
    """I/O the kernel shows inside read()/recvfrom()/... itself has no timeout."""
    if wait.kind in _IO_WAITS and wait.has_timeout is None and thread.kernel is not None \
            and thread.kernel.blocked_fd is not None:
        return replace(wait, has_timeout=False)
    return wait


def _released_while_waiting(thread: Thread, wait: WaitState, snapshot: Snapshot) -> Key | None:
    """`Condition.wait()` releases the condition's lock until it is notified: a thread
    waiting inside `with cond:` does not hold `cond`."""
    if wait.kind is not WaitKind.CONDITION_WAIT or wait.expression is None or wait.site is None:
        return None
    return root_expression(wait.expression, thread.frames[wait.site], snapshot, "lock").key


_API_METHODS = {
    WaitKind.LOCK: ("acquire",),
    WaitKind.RLOCK: ("acquire",),
    WaitKind.THREAD_JOIN: ("join",),
    WaitKind.FUTURE_RESULT: ("result", "exception"),
    WaitKind.FUTURES_WAIT: ("wait", "as_completed"),
    WaitKind.EVENT_WAIT: ("wait",),
    WaitKind.CONDITION_WAIT: ("wait", "wait_for"),
    WaitKind.SEMAPHORE: ("acquire",),
    WaitKind.BARRIER: ("wait",),
    WaitKind.QUEUE_GET: ("get",),
    WaitKind.QUEUE_PUT: ("put",),
    WaitKind.QUEUE_JOIN: ("join",),
    WaitKind.EXECUTOR_SHUTDOWN: ("shutdown",),
}


def _with_site_expression(thread: Thread, wait: WaitState, snapshot: Snapshot) -> WaitState:
    """The program's own spelling of what it waits on (`t1.join()` -> `t1`)."""
    if wait.expression is not None or wait.api is None or wait.site is None or wait.site == wait.api:
        return wait
    methods = _API_METHODS.get(wait.kind)
    frame = thread.frames[wait.site]
    source = snapshot.source(frame.filename)
    if not methods or source is None:
        return wait
    statement = sourcecode.statement_at(source, frame.line)
    if statement is None:
        return wait
    expression = _waited_expression(source, statement, methods,
                                    module_function=wait.kind in _MODULE_FUNCTIONS)
    return replace(wait, expression=expression) if expression is not None else wait


_MODULE_FUNCTIONS = frozenset({WaitKind.FUTURES_WAIT})


def _waited_expression(
    source: SourceFile, statement: ast.stmt, methods: tuple[str, ...], module_function: bool
) -> str | None:
    for call in sourcecode.calls_in(statement):
        if call.name not in methods:
            continue
        if module_function:
            # `wait(fs)`, `concurrent.futures.as_completed(fs)`: the futures are the argument.
            return sourcecode.spelling(source, call.node.args[0]) if call.node.args else None
        if call.receiver is not None:
            return sourcecode.spelling(source, call.receiver)
    if isinstance(statement, (ast.With, ast.AsyncWith)) and statement.items:
        # `with semaphore:` / `with condition:` call the API with no call in sight; the end
        # of `with ThreadPoolExecutor(...) as pool:` shuts `pool` down.
        item = statement.items[0]
        named = item.optional_vars if isinstance(item.context_expr, ast.Call) else None
        return sourcecode.spelling(source, named or item.context_expr)
    return None


_SUBJECT_KINDS = {
    WaitKind.THREAD_JOIN: "thread",
    WaitKind.FUTURE_RESULT: "future",
    WaitKind.FUTURES_WAIT: "futures",
    WaitKind.EVENT_WAIT: "event",
    WaitKind.CONDITION_WAIT: "condition",
    WaitKind.SEMAPHORE: "semaphore",
    WaitKind.BARRIER: "barrier",
    WaitKind.QUEUE_GET: "queue",
    WaitKind.QUEUE_PUT: "queue",
    WaitKind.QUEUE_JOIN: "queue",
    WaitKind.POOL_IDLE: "queue",
    WaitKind.EXECUTOR_SHUTDOWN: "executor",
}


def _waited_resource(
    thread: Thread, wait: WaitState, snapshot: Snapshot, thread_names: dict[int, str]
) -> Resource | None:
    if wait.kind is WaitKind.IMPORT_LOCK and wait.site is not None:
        return _imported_module(thread.frames[wait.site], snapshot)
    if wait.kind.is_lock and wait.lock_attribute and wait.subject and wait.subject.address is not None:
        return _library_lock(wait.subject.type_name, wait.subject.address, wait.lock_attribute,
                             wait.lock_type, wait.library or "the library")
    if wait.kind.is_lock and wait.lock_attribute and not snapshot.has_addresses:
        return _library_lock(None, None, wait.lock_attribute, wait.lock_type, wait.library or "the library")
    if wait.kind.is_lock and wait.expression is not None and wait.site is not None:
        return root_expression(wait.expression, thread.frames[wait.site], snapshot, "lock")
    kind = _SUBJECT_KINDS.get(wait.kind)
    if not snapshot.has_addresses and wait.site is not None and kind is not None:
        if wait.kind is WaitKind.THREAD_JOIN:
            return _joined_by_source(thread, wait.site, wait.expression, snapshot)
        # No address for the event, queue or future: the program's spelling names it.
        return root_expression(wait.expression, thread.frames[wait.site], snapshot, kind) \
            if wait.expression is not None else None
    if kind is None or wait.subject is None or wait.subject.address is None:
        return None
    address = wait.subject.address
    owner = _object_label(wait.subject.type_name, address)
    name = wait.expression or owner
    if kind == "thread" and address in thread_names:
        name = thread_names[address]
    return Resource(kind=kind, name=name, key=("object", address, ""), detail=owner, address=address,
                    label=name if kind == "thread" else f"{name} ({owner})")


def _joined_by_source(thread: Thread, site: int, expression: str | None, snapshot: Snapshot,
                      hops: int = 3) -> Resource | None:
    """Without addresses, the thread joined is known only from the code that made it:
    `worker = Thread(target=drain, name="drainer")` ... `worker.join()`, following a
    thread passed as an argument back to the caller that passed it (a few frames at most)."""
    frame = thread.frames[site]
    source = snapshot.source(frame.filename)
    if source is None or expression is None or not expression.isidentifier():
        return None
    function = sourcecode.enclosing_function(source, frame.line)
    target, label = sourcecode.thread_started_for(source, function, expression, frame.line)
    if target is not None or label is not None:
        name = label or expression
        return Resource(kind="thread", name=name, key=("thread", target or "", label or ""),
                        detail=f"the thread `{expression}` started in {frame.function}, known by its "
                               f"{'target ' + target if target else 'name'} only",
                        label=name, task=target, by_name=True)
    caller = thread.frames[site + 1] if site + 1 < len(thread.frames) else None
    caller_source = snapshot.source(caller.filename) if caller is not None else None
    if hops == 0 or caller is None or caller_source is None:
        return None
    if function is None:
        return None
    passed = sourcecode.argument_passed(caller_source, caller.line, function, expression)
    return _joined_by_source(thread, site + 1, passed, snapshot, hops - 1)


def _library_lock(
    type_name: str | None, address: int | None, attribute: str, lock_type: str | None, library: str
) -> Resource:
    """A lock kept inside a library object, e.g. the RLock of a logging.Handler; without an
    address (a saved dump), any such object's lock."""
    if address is None:
        return Resource(kind="lock", name=f"self.{attribute}", key=("name", f"{library}.{attribute}"),
                        detail=f"the lock {library} holds around emit(), known by name only",
                        lock_type=lock_type, label=f"{library}.{attribute}", library=library, by_name=True)
    owner = _object_label(type_name, address)
    return Resource(kind="lock", name=f"self.{attribute}", key=("object", address, f".{attribute}"),
                    detail=f"the lock {library} holds around emit()",
                    lock_type=lock_type, label=f"{owner}.{attribute}", library=library)


def _object_label(type_name: str | None, address: int) -> str:
    return f"{(type_name or 'object').rsplit('.', 1)[-1]}@{address:#x}"


def _imported_module(frame: Frame, snapshot: Snapshot) -> Resource | None:
    """The module an `import` statement at the frame's line asks for."""
    source = snapshot.source(frame.filename)
    statement = sourcecode.statement_at(source, frame.line) if source is not None else None
    names: list[str] = []
    if isinstance(statement, ast.Import):
        names = [alias.name for alias in statement.names]
    elif isinstance(statement, ast.ImportFrom) and statement.module:
        names = [statement.module]
    if not names:
        # importlib.import_module(variable): which module is not in sight.
        return Resource(kind="import-lock", name="a module being imported", key=UNKNOWN_MODULE,
                        detail="the import lock of a module whose name is not in the source line",
                        label="a module being imported")
    return _module_lock(names[0])


UNKNOWN_MODULE: Key = ("module", "?")


def _module_lock(module: str) -> Resource:
    last = module.rsplit(".", 1)[-1]
    return Resource(kind="import-lock", name=module, key=("module", last),
                    detail=f"the import lock of module {module}", label=f"import of {module}")


def _held_import_locks(thread: Thread) -> list[Held]:
    """A thread executing a module's body (`<module>` called by importlib) holds that
    module's import lock until the body ends."""
    held = []
    for index, (frame, caller) in enumerate(zip(thread.frames, thread.frames[1:])):
        if frame.function == "<module>" and caller.module.startswith("importlib"):
            # Taken where the import was asked for: the first frame outside importlib.
            importer = next((i for i in range(index + 1, len(thread.frames))
                             if not thread.frames[i].module.startswith("importlib")), index)
            held.append(Held(_module_lock(frame.module), importer, thread.frames[importer].line, "import"))
    return held


def _held_locks(thread: Thread, snapshot: Snapshot) -> tuple[Held, ...]:
    held: list[Held] = _held_import_locks(thread)
    for index, frame in enumerate(thread.frames):
        if frame.is_stdlib:
            library = _held_by_library_frame(thread, index, snapshot)
            if library is not None:
                held.append(library)
            continue
        source = snapshot.source(frame.filename)
        if source is None:
            continue
        for taken in sourcecode.held_at(source, frame.line):
            resource = root_expression(sourcecode.spelling(source, taken.expression), frame, snapshot, "lock")
            held.append(Held(resource=resource, frame=index, line=taken.line, how=taken.how))
    return tuple(held)


def _held_by_library_frame(thread: Thread, index: int, snapshot: Snapshot) -> Held | None:
    frame = thread.frames[index]
    rule = match_frame(frame, HOLD_RULES)
    if rule is None or index == 0 or thread.frames[index - 1].method_name != rule.callee:
        return None
    this = frame.local("self")
    if (this is None or this.address is None) and snapshot.has_addresses:
        return None
    lock = _library_lock(this.type_name if this else None, this.address if this else None,
                         rule.lock_attribute, rule.lock_type, rule.library)
    return Held(resource=lock, frame=index, line=_acquired_line(frame, snapshot), how="with")


def _acquired_line(frame: Frame, snapshot: Snapshot) -> int:
    """Where the library took the lock (`with self.lock:`, `self.acquire()`), from its
    source when collected; else the line of the call it is in now."""
    source = snapshot.source(frame.filename)
    taken = sourcecode.held_at(source, frame.line) if source is not None else ()
    return taken[-1].line if taken else frame.line


# Threads parked at one line root the same expressions in the same frames (shared between
# threads by parsing): while `resolve_all` resolves one snapshot, each (expression, frame,
# kind) is rooted once. Per context, so that diagnoses in several threads keep theirs apart.
_ROOTED: ContextVar[dict[tuple[str, Frame, str], Resource] | None] = ContextVar("_ROOTED", default=None)


def root_expression(text: str, frame: Frame, snapshot: Snapshot, kind: str) -> Resource:
    """Name the object an expression evaluates to in `frame`, by what it is rooted in."""
    rooted = _ROOTED.get()
    if rooted is None:
        return _root_expression(text, frame, snapshot, kind)
    key = (text, frame, kind)
    resource = rooted.get(key)
    if resource is None:
        resource = rooted[key] = _root_expression(text, frame, snapshot, kind)
    return resource


def _root_expression(text: str, frame: Frame, snapshot: Snapshot, kind: str) -> Resource:
    parsed = sourcecode.expression_tree(text)
    if parsed is None:
        return Resource(kind=kind, name=text, detail="expression threaddoc could not read", label=text)
    node: ast.expr = parsed
    path: list[str] = []
    while isinstance(node, ast.Attribute):
        path.insert(0, node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        if not snapshot.has_addresses:
            # Without addresses nothing is known better than by its spelling: threads at one
            # `self.slots[i].wait()` are taken to wait alike, as threads by name are.
            return Resource(kind=kind, name=text, label=text, by_name=True,
                            key=("name", frame.module, sourcecode.canonical(text)),
                            detail="computed expression (subscript or call), known by its spelling only")
        return Resource(kind=kind, name=text, label=text,
                        detail="computed expression (subscript or call): identity unknown")
    attributes = "".join(f".{part}" for part in path)
    class_attribute = _class_attribute(node.id, path, frame, snapshot)
    if class_attribute is not None:
        return class_attribute
    local = frame.local(node.id)
    if local is None and not snapshot.has_addresses and _is_local_name(frame, snapshot, node.id):
        return _known_by_name(text, node.id, path, frame, snapshot, kind)
    if local is not None:
        if local.address is None:
            return Resource(kind=kind, name=text, label=text,
                            detail=f"local `{node.id}` without an address")
        lock_type = _lock_type_of_local(local.type_name) if not path else _lock_type_of_attribute(
            frame, snapshot, path[-1])
        owner = _object_label(local.type_name if path else lock_type or local.type_name, local.address)
        return Resource(
            kind=kind, name=text, key=("object", local.address, attributes),
            detail=f"`{text}` in {frame.function}",
            lock_type=lock_type, address=local.address if not path else None,
            label=f"{owner}{attributes}",
        )
    module, name = _global_origin(frame, snapshot, node.id)
    lock_type = (_lock_type_of_global(snapshot, module, name) if not path
                 else _lock_type_of_attribute(frame, snapshot, path[-1]))
    return Resource(
        kind=kind, name=text, key=("global", module, name + attributes),
        detail=f"module global in {module}", lock_type=lock_type, label=name + attributes,
    )


def _is_local_name(frame: Frame, snapshot: Snapshot, name: str) -> bool:
    source = snapshot.source(frame.filename)
    function = sourcecode.enclosing_function(source, frame.line) if source is not None else None
    return function is not None and name in sourcecode.local_names(function)


def _known_by_name(text: str, root: str, path: list[str], frame: Frame, snapshot: Snapshot,
                   kind: str) -> Resource:
    """An object reached from a local or argument, in a dump without addresses: named by
    its attributes (`._lock`), the only identity left. `self._lock` and `other._lock` then
    look alike, whether or not they are one lock."""
    attributes = "".join(f".{part}" for part in path)
    # A bare local (`with left:`) has no name worth matching: the same object is `left` in
    # one thread and `right` in the next. Any bare local is then a candidate for any other.
    key: Key = ("name", attributes) if path else ("name", "<a local>")
    lock_type = _lock_type_of_attribute(frame, snapshot, path[-1]) if path else None
    return Resource(kind=kind, name=text, key=key, label=text, lock_type=lock_type, by_name=True,
                    detail=f"`{text}` in {frame.function}, known by name only (the dump has no addresses)")


def _class_attribute(root: str, path: list[str], frame: Frame, snapshot: Snapshot) -> Resource | None:
    """`self._lock` where `_lock` is set in the class body, not per instance: one lock
    shared by every instance, named like `Account._lock`."""
    if root not in ("self", "cls") or len(path) != 1 or frame.class_name is None:
        return None
    source = snapshot.source(frame.filename)
    if source is None:
        return None
    call = sourcecode.class_attribute_call(source, frame.class_name, path[0])
    if call is None or sourcecode.assigns_instance_attribute(source, path[0]):
        return None
    name = f"{frame.class_name}.{path[0]}"
    return Resource(
        kind="lock", name=f"{root}.{path[0]}", key=("global", frame.module, name),
        detail=f"class attribute of {frame.class_name} in {frame.module}",
        lock_type=LOCK_TYPES.get(sourcecode.callable_name(call.func) or ""), label=name,
    )


def _global_origin(frame: Frame, snapshot: Snapshot, name: str) -> tuple[str, str]:
    """(module, name) where a global was defined: follows `from X import name`."""
    source = snapshot.source(frame.filename)
    imported = sourcecode.imported_from(source, name) if source is not None else None
    return imported if imported is not None else (frame.module, name)


def _lock_type_of_local(type_name: str | None) -> str | None:
    return LOCK_TYPES.get(type_name or "")


def _lock_type_of_global(snapshot: Snapshot, module: str, name: str) -> str | None:
    source = _source_of_module(snapshot, module)
    if source is None:
        return None
    return LOCK_TYPES.get(sourcecode.assigned_constructor(source, name, attribute=False) or "")


def _lock_type_of_attribute(frame: Frame, snapshot: Snapshot, attribute: str) -> str | None:
    source = snapshot.source(frame.filename)
    if source is None:
        return None
    return LOCK_TYPES.get(sourcecode.assigned_constructor(source, attribute, attribute=True) or "")


def _source_of_module(snapshot: Snapshot, module: str) -> SourceFile | None:
    for path, source in snapshot.sources.items():
        if module_of(path)[0] == module:
            return source
    return None

"""Reading the program's own statements: what a frame is doing at its line.

Pure functions over `SourceFile`; parsed trees are cached per file text so a
thousand threads paused in the same function cost one parse, and so are the answers
about a file (what a global is assigned, where a line's statement is): trees and nodes
returned are shared, never to be changed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Union

from threaddoc.model import SourceFile

FunctionNode = Union[ast.FunctionDef, ast.AsyncFunctionDef]


@dataclass(frozen=True)
class Call:
    """A call in a statement: `receiver.name(...)` or `name(...)`."""

    name: str
    receiver: ast.expr | None
    node: ast.Call

    def keyword(self, name: str) -> ast.expr | None:
        for keyword in self.node.keywords:
            if keyword.arg == name:
                return keyword.value
        return None


@dataclass(frozen=True)
class Taken:
    """A lock-like object taken and still held at some line: `with EXPR:` or `EXPR.acquire()`."""

    expression: ast.expr
    line: int
    how: str  # "with" or "acquire"


@lru_cache(maxsize=256)
def _parse(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        return None


def tree(source: SourceFile) -> ast.Module | None:
    return _parse(source.text)


# Threads parked at the same line (a thousand workers behind one lock) ask the same
# questions: answer each (file, line) once.
@lru_cache(maxsize=8192)
def statement_at(source: SourceFile, line: int) -> ast.stmt | None:
    """The innermost statement that starts at or spans `line`."""
    module = tree(source)
    if module is None:
        return None
    found: ast.stmt | None = None
    for node in ast.walk(module):
        if (isinstance(node, ast.stmt) and _spans(node, line, header_only=True)
                and (found is None or _narrower(node, found))):
            found = node
    return found


def _spans(node: ast.stmt, line: int, header_only: bool) -> bool:
    start = node.lineno
    end = node.end_lineno or start
    if header_only and isinstance(node, _COMPOUND):
        # A compound statement is "at" a line only in its header (`with x:`),
        # not anywhere in its body.
        end = _header_end(node)
    return start <= line <= end


_COMPOUND = (ast.With, ast.AsyncWith, ast.For, ast.AsyncFor, ast.While, ast.If, ast.Try,
             ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _header_end(node: ast.stmt) -> int:
    body: list[ast.stmt] = getattr(node, "body", [])
    if body:
        return max(node.lineno, body[0].lineno - 1)
    return node.lineno


def _narrower(node: ast.stmt, other: ast.stmt) -> bool:
    return (node.lineno, -(node.end_lineno or 0)) > (other.lineno, -(other.end_lineno or 0))


def calls_in(statement: ast.stmt) -> list[Call]:
    """Calls the statement makes, innermost (evaluated first) last."""
    return list(_calls_in(statement))


@lru_cache(maxsize=8192)
def _calls_in(statement: ast.stmt) -> tuple[Call, ...]:
    calls: list[Call] = []
    for node in _header_nodes(statement):
        for child in ast.walk(node):
            if isinstance(child, ast.Call):
                calls.append(_as_call(child))
    return tuple(calls)


def _header_nodes(statement: ast.stmt) -> Iterator[ast.AST]:
    """The parts of a statement evaluated at its own line (not a compound body)."""
    if isinstance(statement, (ast.With, ast.AsyncWith)):
        yield from statement.items
    elif isinstance(statement, (ast.For, ast.AsyncFor)):
        yield statement.iter
    elif isinstance(statement, (ast.While, ast.If)):
        yield statement.test
    elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Try)):
        return
    else:
        yield statement


def _as_call(node: ast.Call) -> Call:
    if isinstance(node.func, ast.Attribute):
        return Call(name=node.func.attr, receiver=node.func.value, node=node)
    if isinstance(node.func, ast.Name):
        return Call(name=node.func.id, receiver=None, node=node)
    return Call(name="", receiver=None, node=node)


@lru_cache(maxsize=8192)
def enclosing_function(source: SourceFile, line: int) -> FunctionNode | None:
    module = tree(source)
    if module is None:
        return None
    best: FunctionNode | None = None
    for node in ast.walk(module):
        if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                and node.lineno <= line <= (node.end_lineno or node.lineno)
                and (best is None or node.lineno > best.lineno)):
            best = node
    return best


@lru_cache(maxsize=8192)
def held_at(source: SourceFile, line: int) -> tuple[Taken, ...]:
    """Lock-like objects taken in the function around `line` and still held there.

    `with` blocks whose body encloses the line, and `.acquire()` calls earlier
    in the same function with no `.release()` of the same expression between.
    The `with` whose header is the line itself is being waited for, not held.
    """
    scope: ast.AST | None = enclosing_function(source, line) or tree(source)
    if scope is None:
        return ()
    taken: list[Taken] = []
    for node in ast.walk(scope):
        if (isinstance(node, (ast.With, ast.AsyncWith)) and node is not scope
                and _header_end(node) < line <= (node.end_lineno or node.lineno)
                and _inside_body(node, line)):
            taken.extend(Taken(item.context_expr, node.lineno, "with") for item in node.items)
    taken.extend(_unreleased_acquires(scope, line))
    return tuple(sorted(taken, key=lambda item: item.line))


def _inside_body(node: ast.With | ast.AsyncWith, line: int) -> bool:
    return any(child.lineno <= line <= (child.end_lineno or child.lineno) for child in node.body)


def _unreleased_acquires(scope: ast.AST, line: int) -> list[Taken]:
    events: list[tuple[int, str, ast.expr]] = []
    for node in ast.walk(scope):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("acquire", "release") and node.lineno < line):
            events.append((node.lineno, node.func.attr, node.func.value))
    held: dict[str, Taken] = {}
    for lineno, action, receiver in sorted(events, key=lambda event: event[0]):
        key = ast.dump(receiver)
        if action == "acquire":
            held[key] = Taken(receiver, lineno, "acquire")
        else:
            held.pop(key, None)
    return list(held.values())


def unparse(node: ast.AST) -> str:
    return ast.unparse(node)


@lru_cache(maxsize=8192)
def spelling(source: SourceFile, node: ast.expr) -> str:
    """An expression as the program writes it (`pending["parse"]`, not ast's normalised
    `pending['parse']`): reports quote the user's own code."""
    segment = ast.get_source_segment(source.text, node)
    return " ".join(segment.split()) if segment else ast.unparse(node)


@lru_cache(maxsize=8192)
def expression_tree(text: str) -> ast.expr | None:
    """An expression's tree (`self._lock`), or None if it is not one. Shared: never change it."""
    try:
        return ast.parse(text, mode="eval").body
    except SyntaxError:
        return None


@lru_cache(maxsize=8192)
def canonical(expression: str) -> str:
    """One spelling per expression, for matching (`d["k"]` and `d['k']` are the same)."""
    try:
        return ast.unparse(ast.parse(expression, mode="eval"))
    except SyntaxError:
        return expression


def assigned_constructor(source: SourceFile, target: str, attribute: bool) -> str | None:
    """The callable assigned to a global (`lock = threading.Lock()`) or an attribute
    (`self._lock = RLock()`), as its last dotted component (`Lock`, `RLock`...)."""
    call = assigned_call(source, target, attribute)
    return callable_name(call.func) if call is not None else None


@lru_cache(maxsize=8192)
def assigned_call(source: SourceFile, target: str, attribute: bool) -> ast.Call | None:
    """The call whose result is assigned to a global or (any object's) attribute."""
    module = tree(source)
    if module is None:
        return None
    nodes = ast.walk(module) if attribute else iter(module.body)
    for node in nodes:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = list(node.targets), node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        if not isinstance(value, ast.Call):
            continue
        for candidate in targets:
            if _assigns(candidate, target, attribute):
                return value
    return None


@lru_cache(maxsize=8192)
def imported_from(source: SourceFile, name: str) -> tuple[str, str] | None:
    """(module, name) a global of the file was imported as: `from X import name [as alias]`
    at its top level (absolute imports only)."""
    module = tree(source)
    if module is None:
        return None
    for node in module.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    return node.module, alias.name
    return None


def _assigns(candidate: ast.expr, target: str, attribute: bool) -> bool:
    if attribute:
        return isinstance(candidate, ast.Attribute) and candidate.attr == target
    return isinstance(candidate, ast.Name) and candidate.id == target


def callable_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def assignment_before(function: FunctionNode, name: str, line: int) -> ast.Assign | None:
    """The last plain assignment to `name` in `function` before `line`."""
    found: ast.Assign | None = None
    for node in ast.walk(function):
        if (isinstance(node, ast.Assign) and node.lineno <= line
                and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
                and (found is None or node.lineno > found.lineno)):
            found = node
    return found


@lru_cache(maxsize=8192)
def class_attribute_call(source: SourceFile, class_name: str, attribute: str) -> ast.Call | None:
    """`attribute = SomeLock()` in the body of class `class_name` (a class attribute)."""
    module = tree(source)
    if module is None:
        return None
    for node in ast.walk(module):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for statement in node.body:
                if (isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Call)
                        and any(isinstance(t, ast.Name) and t.id == attribute for t in statement.targets)):
                    return statement.value
    return None


@lru_cache(maxsize=8192)
def assigns_instance_attribute(source: SourceFile, attribute: str) -> bool:
    """Whether any `something.attribute = ...` appears in the file."""
    module = tree(source)
    if module is None:
        return False
    for node in ast.walk(module):
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
        if any(isinstance(t, ast.Attribute) and t.attr == attribute for t in targets):
            return True
    return False


@lru_cache(maxsize=256)
def daemon_thread_targets(source: SourceFile) -> frozenset[str]:
    """Names of functions and Thread subclasses that this file starts as daemon threads:
    `Thread(target=poll, daemon=True)`, `class Poller(Thread)` with `daemon=True` passed
    up or `self.daemon = True`."""
    module = tree(source)
    if module is None:
        return frozenset()
    names: set[str] = set()
    for node in ast.walk(module):
        if isinstance(node, ast.Call) and callable_name(node.func) == "Thread" and _daemon_keyword(node):
            target = next((kw.value for kw in node.keywords if kw.arg == "target"), None)
            if target is not None:
                names.add(callable_name(target) or "")
        if isinstance(node, ast.ClassDef) and any(callable_name(base) == "Thread" for base in node.bases):
            for child in ast.walk(node):
                if (isinstance(child, ast.Call) and _daemon_keyword(child)) or (
                        isinstance(child, ast.Assign) and _sets_daemon(child)):
                    names.add(node.name)
    names.discard("")
    return frozenset(names)


def _daemon_keyword(call: ast.Call) -> bool:
    return any(kw.arg == "daemon" and isinstance(kw.value, ast.Constant) and kw.value.value is True
               for kw in call.keywords)


def _sets_daemon(assign: ast.Assign) -> bool:
    return (isinstance(assign.value, ast.Constant) and assign.value.value is True
            and any(isinstance(t, ast.Attribute) and t.attr == "daemon" for t in assign.targets))


@lru_cache(maxsize=8192)
def inside_infinite_loop(source: SourceFile, line: int) -> bool:
    """Whether `line` sits in a `while True:` (or `while 1:`) loop of its function."""
    scope = enclosing_function(source, line)
    if scope is None:
        return False
    for node in ast.walk(scope):
        if (isinstance(node, ast.While) and isinstance(node.test, ast.Constant) and node.test.value
                and node.lineno <= line <= (node.end_lineno or node.lineno)):
            return True
    return False


@lru_cache(maxsize=8192)
def qualified_function(source: SourceFile, line: int, name: str) -> str | None:
    """`Class.name` for the method `name` running at `line` (a dump that names functions
    by their bare code name, as faulthandler does, loses the class); None if not a method."""
    module = tree(source)
    if module is None:
        return None
    return _qualified_in(module.body, line, name, None)


def _qualified_in(body: list[ast.stmt], line: int, name: str, owner: str | None) -> str | None:
    for node in body:
        if not node.lineno <= line <= (node.end_lineno or node.lineno):
            continue
        if isinstance(node, ast.ClassDef):
            return _qualified_in(node.body, line, name, node.name)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inner = _qualified_in(node.body, line, name, None)
            if inner is not None:
                return inner
            return f"{owner}.{name}" if node.name == name and owner is not None else None
    return None


@lru_cache(maxsize=8192)
def local_names(function: FunctionNode) -> frozenset[str]:
    """The names local to a function: its parameters and what it assigns (not `global`)."""
    arguments = function.args
    names = {arg.arg for arg in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)}
    names.update(arg.arg for arg in (arguments.vararg, arguments.kwarg) if arg is not None)
    declared_global: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            declared_global.update(node.names)
    return frozenset(names - declared_global)


def thread_started_for(source: SourceFile, function: FunctionNode | None, name: str,
                       line: int) -> tuple[str | None, str | None]:
    """For `name = threading.Thread(target=fn, name="label")`, before `line` in `function`
    or at module level: (fn, label), each None where not written as a plain name or string."""
    assign = assignment_before(function, name, line) if function is not None else None
    call = assign.value if assign is not None else assigned_call(source, name, attribute=False)
    if not isinstance(call, ast.Call) or callable_name(call.func) != "Thread":
        return None, None
    started = _as_call(call)
    target, label = started.keyword("target"), started.keyword("name")
    return (callable_name(target) if target is not None else None,
            label.value if isinstance(label, ast.Constant) and isinstance(label.value, str) else None)


def argument_passed(caller: SourceFile, line: int, function: FunctionNode, parameter: str) -> str | None:
    """The caller's spelling of what it passed for `parameter` in its call to `function` at
    `line` (`shutdown(flusher)` -> `flusher`), or None if that call is not in sight."""
    statement = statement_at(caller, line)
    if statement is None:
        return None
    positional = [arg.arg for arg in (*function.args.posonlyargs, *function.args.args)]
    for call in calls_in(statement):
        if call.name != function.name:
            continue
        for keyword in call.node.keywords:
            if keyword.arg == parameter:
                return spelling(caller, keyword.value)
        # `obj.method(x)` passes `obj` as the first parameter.
        bound = 1 if call.receiver is not None and positional[:1] in (["self"], ["cls"]) else 0
        if parameter in positional:
            index = positional.index(parameter) - bound
            if 0 <= index < len(call.node.args):
                return spelling(caller, call.node.args[index])
    return None

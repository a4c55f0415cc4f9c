"""Thread pools whose workers all wait on work queued behind them (PEP 3148)."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass

from threaddoc import sourcecode
from threaddoc.classify import Activity, WaitKind
from threaddoc.model import Frame, Snapshot
from threaddoc.resolve import ThreadAnalysis

from . import fixes
from .evidence import frame_evidence, thread_ref, wait_evidence
from .model import Confidence, Evidence, Finding, ResourceRef, Severity
from .pools import ANONYMOUS, Pool, thread_pools

_FUTURE_WAITS = (WaitKind.FUTURE_RESULT, WaitKind.FUTURES_WAIT)


def detect_executor_starvation(
    snapshot: Snapshot, analyses: Sequence[ThreadAnalysis]
) -> list[Finding]:
    pools = thread_pools(analyses)
    findings = []
    for pool in pools:
        workers = [analyses[i] for i in pool.workers]
        if not all(_waits_forever_on_futures(worker) for worker in workers):
            continue
        if any(_task_is_running(worker, analyses) for worker in workers):
            continue  # the awaited work is running: a wait (maybe a cycle), not a starved queue
        others_busy = any(
            analyses[i].wait.activity is not Activity.IDLE
            for other in pools if other is not pool for i in other.workers
        )
        finding = _starvation_finding(snapshot, analyses, pool, others_busy)
        if finding is not None:
            findings.append(finding)
    return findings


def _task_is_running(worker: ThreadAnalysis, analyses: Sequence[ThreadAnalysis]) -> bool:
    task = worker.waits_for.task if worker.waits_for is not None else None
    return task is not None and any(
        other.runs_task == task for other in analyses if other is not worker)


def _waits_forever_on_futures(analysis: ThreadAnalysis) -> bool:
    return analysis.wait.kind in _FUTURE_WAITS and analysis.wait.has_timeout is not True


def _goes_elsewhere(submit: Submit, pool: Pool) -> bool:
    """The inner work demonstrably goes to another executor: a process pool (its futures run
    in child processes), or a thread pool whose workers are named otherwise."""
    if submit.executor is not None and "ProcessPool" in submit.executor:
        return True
    return submit.name_prefix is not None and submit.name_prefix != pool.name and pool.name != ANONYMOUS


def _starvation_finding(
    snapshot: Snapshot, analyses: Sequence[ThreadAnalysis], pool: Pool, others_busy: bool
) -> Finding | None:
    size = len(pool.workers)
    submits = [_submit_site(analyses[i], snapshot) for i in pool.workers]
    if any(submit is not None and _goes_elsewhere(submit, pool) for submit in submits):
        return None
    every_submit_found = all(submit is not None for submit in submits)
    seen_whole = every_submit_found and not others_busy
    # Workers grouped by name (no addresses) may be two pools taken for one: still a hang,
    # but only possibly this one.
    confidence = Confidence.LIKELY if seen_whole and not pool.by_name else Confidence.POSSIBLE
    workers = tuple(thread_ref(analyses[i], "starved worker") for i in pool.workers)
    blocked = tuple(
        (thread_ref(analysis, f"waits for {_waited_name(analysis)}"), wait_evidence(analysis, snapshot))
        for index, analysis in enumerate(analyses)
        if index not in pool.workers and analysis.wait.kind in _FUTURE_WAITS and not others_busy
    )
    evidence: list[Evidence] = []
    for index, submit in zip(pool.workers, submits):
        analysis = analyses[index]
        waited = _waited_name(analysis)
        at = wait_evidence(analysis, snapshot, note=f"{analysis.thread.label} waits for {waited}")
        if at is not None:
            evidence.append(at)
        if submit is not None:
            evidence.append(submit.evidence)
    only = "its only worker waits" if size == 1 else f"all {size} workers wait"
    return Finding(
        kind="executor-starvation",
        severity=Severity.CRITICAL if seen_whole else Severity.WARNING,
        confidence=confidence,
        title=f"thread pool {pool.name} is starved: {only} for futures queued behind "
              + ("it" if size == 1 else "them"),
        explanation=(
            f"Every worker of {pool.name} ({size} of {size}) is running a task that blocks on a "
            "future it submitted to a pool. If that is this same pool, the inner work sits in its "
            "queue behind the very tasks waiting for it, and no worker will ever be free to run it."
            + ("" if not others_busy else
               " Another pool in the process is busy, so the inner work may be queued there "
               "instead: confirm which executor the submit goes to.")
        ),
        threads=workers + tuple(ref for ref, _ in blocked),
        resources=(ResourceRef("thread-pool", pool.name, pool.size_text),),
        blocked=blocked,
        evidence=tuple(evidence),
        suggestions=fixes.executor_starvation(pool.name, size),
    )


def _waited_name(analysis: ThreadAnalysis) -> str:
    return analysis.waits_for.name if analysis.waits_for else "a future"


@dataclass(frozen=True)
class Submit:
    """Where a waited future was submitted, and what is known of the executor it went to."""

    evidence: Evidence
    executor: str | None  # the constructor: "ThreadPoolExecutor", "ProcessPoolExecutor"...
    name_prefix: str | None  # its `thread_name_prefix=` literal


def _submit_site(analysis: ThreadAnalysis, snapshot: Snapshot) -> Submit | None:
    """Where the waited future was submitted: the `.submit(` that produced it, if in sight."""
    frame = analysis.site_frame
    if frame is None:
        return None
    source = snapshot.source(frame.filename)
    if source is None:
        return None
    statement = sourcecode.statement_at(source, frame.line)
    call = _submit_call(statement) if statement is not None else None
    line = frame.line
    if call is None:
        function = sourcecode.enclosing_function(source, frame.line)
        expression = analysis.wait.expression
        if function is None or expression is None:
            return None
        root = expression.split(".")[0].split("[")[0]
        assignment = sourcecode.assignment_before(function, root, frame.line)
        call = _submit_call(assignment) if assignment is not None else None
        if call is None or assignment is None:
            return None
        line = assignment.lineno
    executor, prefix = _executor_of(call, frame, snapshot)
    evidence = frame_evidence(frame, snapshot, line, note="inner work submitted here")
    return Submit(evidence, executor, prefix)


def _submit_call(node: ast.AST) -> ast.Call | None:
    for child in ast.walk(node):
        if (isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute)
                and child.func.attr in ("submit", "map")):
            return child
    return None


def _executor_of(call: ast.Call, frame: Frame, snapshot: Snapshot) -> tuple[str | None, str | None]:
    """The constructor and `thread_name_prefix` of the executor a `.submit()` goes to, where the
    program's source says (`pool = ThreadPoolExecutor(...)`, `self._pool = ...`), or py-spy's
    type of a local."""
    assert isinstance(call.func, ast.Attribute)
    receiver = call.func.value
    source = snapshot.source(frame.filename)
    if isinstance(receiver, ast.Name):
        local = frame.local(receiver.id)
        if local is not None:
            return local.type_name, None
        constructor = sourcecode.assigned_call(source, receiver.id, attribute=False) if source else None
    elif isinstance(receiver, ast.Attribute):
        constructor = sourcecode.assigned_call(source, receiver.attr, attribute=True) if source else None
    else:
        return None, None
    if constructor is None:
        return None, None
    prefix = next((kw.value.value for kw in constructor.keywords
                   if kw.arg == "thread_name_prefix" and isinstance(kw.value, ast.Constant)
                   and isinstance(kw.value.value, str)), None)
    return sourcecode.callable_name(constructor.func), prefix

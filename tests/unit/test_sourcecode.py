"""Reading statements: what a line waits on, and which locks enclose it."""

from __future__ import annotations

import textwrap

from threaddoc import sourcecode
from threaddoc.model import SourceFile

PROGRAM = SourceFile("/app/bank.py", textwrap.dedent('''\
    import threading
    from threading import RLock

    ledger = threading.Lock()
    audit = RLock()

    class Account:
        def __init__(self):
            self._lock = threading.RLock()

        def transfer(self, other):
            with self._lock:
                total = 1
                with other._lock:
                    total += 1

    def manual():
        ledger.acquire()
        audit.acquire()
        audit.release()
        work()

    def with_open():
        with open("/tmp/x") as handle:
            handle.read()
    '''))


def test_statement_at_a_with_header_is_the_with() -> None:
    statement = sourcecode.statement_at(PROGRAM, 14)
    assert statement is not None and statement.lineno == 14
    assert sourcecode.unparse(statement.items[0].context_expr) == "other._lock"  # type: ignore[attr-defined]


def test_statement_inside_a_with_body_is_the_inner_statement() -> None:
    statement = sourcecode.statement_at(PROGRAM, 15)
    assert statement is not None and statement.lineno == 15


def test_held_at_lists_enclosing_withs_but_not_the_one_being_entered() -> None:
    held = sourcecode.held_at(PROGRAM, 14)
    assert [(sourcecode.unparse(t.expression), t.line, t.how) for t in held] == [("self._lock", 12, "with")]
    inner = sourcecode.held_at(PROGRAM, 15)
    assert [sourcecode.unparse(t.expression) for t in inner] == ["self._lock", "other._lock"]


def test_held_at_counts_acquire_without_release() -> None:
    held = sourcecode.held_at(PROGRAM, 21)
    assert [(sourcecode.unparse(t.expression), t.how) for t in held] == [("ledger", "acquire")]


def test_calls_in_a_statement() -> None:
    statement = sourcecode.statement_at(PROGRAM, 25)
    assert statement is not None
    assert [call.name for call in sourcecode.calls_in(statement)] == ["read"]


def test_assigned_constructor_reads_lock_types() -> None:
    assert sourcecode.assigned_constructor(PROGRAM, "ledger", attribute=False) == "Lock"
    assert sourcecode.assigned_constructor(PROGRAM, "audit", attribute=False) == "RLock"
    assert sourcecode.assigned_constructor(PROGRAM, "_lock", attribute=True) == "RLock"
    assert sourcecode.assigned_constructor(PROGRAM, "missing", attribute=False) is None


def test_unparsable_source_yields_nothing() -> None:
    broken = SourceFile("/app/broken.py", "def (:\n")
    assert sourcecode.statement_at(broken, 1) is None
    assert sourcecode.held_at(broken, 1) == ()

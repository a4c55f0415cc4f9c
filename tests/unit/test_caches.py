"""The caches that make thousands of threads cheap give the answers the uncached code gives."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from threaddoc import sourcecode
from threaddoc.classify import _match_frame, match_frame
from threaddoc.classify.rules import FRAME_RULES, HOLD_RULES
from threaddoc.collect.kernel import read_proc_text
from threaddoc.collect.parse import module_of
from threaddoc.model import Frame, SourceFile


def _frame(module: str, function: str) -> Frame:
    return Frame(function=function, filename=f"/x/{module}.py", line=1, module=module, is_stdlib=True)


def _frames_for(rules: tuple[object, ...]) -> list[Frame]:
    """Frames each rule names, the subclass spellings of its methods, and near misses."""
    frames = []
    for rule in rules:
        module, function = rule.module, rule.function  # type: ignore[attr-defined]
        method = function.rsplit(".", 1)[-1]
        frames += [_frame(module, function.replace("*.", "Anything.")), _frame(module, f"Sub.{method}"),
                   _frame(module, method), _frame(module + "x", function), _frame(module, f"{method}_not")]
    return frames


@pytest.mark.parametrize("rules", [FRAME_RULES, HOLD_RULES], ids=["frame-rules", "hold-rules"])
def test_match_frame_remembers_the_rule_it_found_first(rules: tuple[object, ...]) -> None:
    frames = _frames_for(rules)
    expected = [_match_frame(frame, rules) for frame in frames]
    assert any(rule is not None for rule in expected) and any(rule is None for rule in expected)
    assert [match_frame(frame, rules) for frame in frames] == expected  # the first time
    assert [match_frame(frame, rules) for frame in frames] == expected  # and from the cache


def test_match_frame_keeps_tables_apart() -> None:
    """The same (module, function) asked of two tables gets each table's own answer."""
    frame = _frame(HOLD_RULES[0].module, HOLD_RULES[0].function)
    assert match_frame(frame, HOLD_RULES) is HOLD_RULES[0]
    assert match_frame(frame, ()) is None
    assert match_frame(frame, list(HOLD_RULES)) is HOLD_RULES[0]  # a list is searched, never cached


def test_read_proc_text_reads_all_of_a_file_longer_than_one_read(tmp_path: Path) -> None:
    path = tmp_path / "long"
    data = b"".join(b"line %d \xff\n" % number for number in range(8000))  # > 16 KiB, not ASCII
    path.write_bytes(data)
    with open(path, encoding="ascii", errors="replace") as handle:
        assert read_proc_text(str(path)) == handle.read()


def test_read_proc_text_reads_proc_files_as_text_mode_does() -> None:
    for name in ("stat", "sched", "status"):
        with open(f"/proc/self/{name}", encoding="ascii", errors="replace") as handle:
            expected = handle.read()
        got = read_proc_text(f"/proc/self/{name}")
        # Counters move between the two reads; the shape does not.
        assert got.splitlines()[0].split()[:2] == expected.splitlines()[0].split()[:2]
        assert len(got.splitlines()) == len(expected.splitlines())


def test_read_proc_text_raises_for_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        read_proc_text(str(tmp_path / "gone"))


def test_read_proc_text_closes_what_it_opens(tmp_path: Path) -> None:
    path = tmp_path / "short"
    path.write_text("S\n")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(50):
        assert read_proc_text(str(path)) == "S\n"
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.parametrize("filename", ["/usr/lib/python3.11/threading.py", "<frozen importlib._bootstrap>",
                                      "/srv/app/site-packages/pkg/__init__.py", "/srv/app/main.py", "odd"])
def test_module_of_answers_alike_each_time(filename: str) -> None:
    first = module_of(filename)
    assert module_of(filename) == first == module_of.__wrapped__(filename)


SOURCE = SourceFile("/srv/app/bank.py", """\
import threading
from locks import ledger_lock as ledger, audit_lock
from . import relative_lock

table_lock = threading.RLock()


class Account:
    _registry_lock = threading.Lock()

    def __init__(self):
        self._lock = threading.Lock()
""")


def test_expression_tree_is_what_ast_parses() -> None:
    for text in ("self._lock", "a.b.c", "pending['x']", "f(x)"):
        tree = sourcecode.expression_tree(text)
        assert tree is not None
        assert ast.dump(tree) == ast.dump(ast.parse(text, mode="eval").body)
        assert sourcecode.expression_tree(text) is tree
    assert sourcecode.expression_tree("not an expression (") is None


def test_imported_from_follows_absolute_from_imports_only() -> None:
    assert sourcecode.imported_from(SOURCE, "ledger") == ("locks", "ledger_lock")
    assert sourcecode.imported_from(SOURCE, "audit_lock") == ("locks", "audit_lock")
    assert sourcecode.imported_from(SOURCE, "ledger_lock") is None  # imported under another name
    assert sourcecode.imported_from(SOURCE, "relative_lock") is None
    assert sourcecode.imported_from(SOURCE, "table_lock") is None


def test_cached_source_questions_answer_alike_each_time() -> None:
    for _ in range(2):
        assert sourcecode.assigned_constructor(SOURCE, "table_lock", attribute=False) == "RLock"
        assert sourcecode.assigned_constructor(SOURCE, "_lock", attribute=True) == "Lock"
        call = sourcecode.class_attribute_call(SOURCE, "Account", "_registry_lock")
        assert call is not None and sourcecode.callable_name(call.func) == "Lock"
        assert sourcecode.assigns_instance_attribute(SOURCE, "_lock")
        assert not sourcecode.assigns_instance_attribute(SOURCE, "_registry_lock")
    other = SourceFile(SOURCE.path, SOURCE.text.replace("RLock", "Lock"))  # same path, other text
    assert sourcecode.assigned_constructor(other, "table_lock", attribute=False) == "Lock"

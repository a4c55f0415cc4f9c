"""The caches that make thousands of threads cheap give the answers the uncached code gives."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from conftest import recording_names, snapshot

from threaddoc import sourcecode
from threaddoc.classify import _match_frame, match_frame
from threaddoc.classify.rules import FRAME_RULES, HOLD_RULES
from threaddoc.collect.kernel import kernel_state, read_proc_text
from threaddoc.collect.parse import module_of, parse_threads
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


def _entry(thread_id: int, frames: list[dict[str, object]]) -> dict[str, object]:
    return {"thread_id": thread_id, "os_thread_id": thread_id, "thread_name": f"t{thread_id}",
            "active": False, "owns_gil": False, "frames": frames}


def test_threads_parsed_together_are_parsed_as_alone() -> None:
    """Frames and locals built once per dump are those each thread would get by itself,
    values of other types included (an address 1.0 is no address; 1 is)."""
    def frame(line: int, address: object, value: object = "<Thread object at 0x1>") -> dict[str, object]:
        return {"name": "run", "filename": "/usr/lib/python3.11/threading.py", "line": line,
                "locals": [{"name": "self", "addr": address, "arg": True, "repr": value}]}

    entries = [_entry(1, [frame(10, 1), frame(20, 1)]), _entry(2, [frame(10, 1.0), frame(20, 1)]),
               _entry(3, [frame(10, True, None), frame(10, 1, 7)]), _entry(4, [frame(10, 1)])]
    together = parse_threads(entries)
    assert together == tuple(parse_threads([entry])[0] for entry in entries)
    assert together[0].frames[0].locals[0].address == 1
    assert together[1].frames[0].locals[0].address is None
    assert together[0].frames[0].function == "Thread.run"
    assert together[2].frames[0].locals[0].type_name is None
    assert together[3].frames[0] is together[0].frames[0]  # built once


def test_kernel_state_of_one_system_call_read_twice_is_the_same() -> None:
    raw = {"stat": "S", "syscall": "202 0x7f00 0x189 0x0 0x0 0x0 0xffffffff 0x7ffd 0x7f01",
           "wchan": "futex_wait_queue"}
    first = kernel_state(raw, "x86_64")
    assert first.syscall == "futex" and first.futex_address == 0x7F00 and len(first.arguments) == 6
    assert kernel_state(dict(raw), "x86_64") == first
    other_sp = dict(raw, syscall="202 0x7f00 0x189 0x0 0x0 0x0 0xffffffff 0x1234 0x5678")
    assert kernel_state(other_sp, "x86_64") == first  # the pointers are not part of the state
    assert kernel_state(raw, "aarch64").syscall == "accept"  # 202 is accept() on arm64
    assert kernel_state({"stat": "R", "syscall": "running"}, "x86_64").syscall is None
    assert kernel_state({"syscall": "202 0xzz"}, "x86_64").arguments == ()


def test_calls_in_gives_a_fresh_list_each_time() -> None:
    statement = ast.parse("x = a.get(b.result())").body[0]
    first = sourcecode.calls_in(statement)
    assert [call.name for call in first] == ["get", "result"]
    first.clear()
    assert [call.name for call in sourcecode.calls_in(statement)] == ["get", "result"]


def test_a_diagnosis_run_in_process_leaves_the_cycle_collector_on(tmp_path: Path) -> None:
    """`diagnose` turns the collector off for its own run; whoever called main() gets it back."""
    import gc

    from threaddoc.cli import main

    dump = tmp_path / "dump.json"
    dump.write_text("[]")
    assert gc.isenabled()
    with pytest.raises(SystemExit):
        main(["diagnose", "--from", str(dump), "--json"])
    assert gc.isenabled()


def test_kernel_states_read_from_the_task_directory_are_those_of_each_thread() -> None:
    """Files opened relative to /proc/PID/task hold what the full paths do."""
    import threading

    from threaddoc.collect.kernel import read_kernel_states

    release, started = threading.Event(), threading.Event()
    native_id: list[int] = []

    def blocked() -> None:
        native_id.append(threading.get_native_id())
        started.set()
        release.wait()

    worker = threading.Thread(target=blocked, daemon=True)
    worker.start()
    started.wait(10)
    try:
        tid = native_id[0]
        for _ in range(100):  # until it is asleep in its wait (it may still be on its way)
            states = read_kernel_states(os.getpid(), [tid, 2**22 + 1])  # and a thread that is not there
            if states[str(tid)]["stat"] == "S":
                break
        with open(f"/proc/{os.getpid()}/task/{tid}/syscall", encoding="ascii") as handle:
            syscall = handle.read().strip()
    finally:
        release.set()
        worker.join(10)
    assert list(states) == [str(tid)]
    assert states[str(tid)]["stat"] == "S"
    assert states[str(tid)]["syscall"] == syscall
    assert float(states[str(tid)]["sched"]) > 0
    assert read_kernel_states(2**22 + 1, [1]) == {}


@pytest.mark.parametrize("name", recording_names())
def test_resolving_a_snapshot_roots_each_expression_as_alone(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """resolve_all remembers rooted expressions per (expression, frame, kind); rooting
    each one afresh gives the same analyses."""
    import threaddoc.resolve as resolve
    from threaddoc.classify import classify_all

    shot = snapshot(name)
    waits = classify_all(shot)
    remembered = resolve.resolve_all(shot, waits)
    monkeypatch.setattr(resolve, "_ROOTED", _NeverRemembered())
    assert resolve.resolve_all(shot, waits) == remembered


class _NeverRemembered:
    """A stand-in for the memo's context variable that never holds one."""

    def set(self, value: object) -> None:
        return None

    def reset(self, token: object) -> None:
        return None

    def get(self) -> None:
        return None


@pytest.mark.parametrize("name", recording_names())
def test_classifying_a_snapshot_reads_each_frame_as_alone(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """classify_all remembers what each (shared) frame's statement waits for; reading each
    one afresh gives the same wait states."""
    import threaddoc.classify as classify

    shot = snapshot(name)
    remembered = classify.classify_all(shot)
    monkeypatch.setattr(classify, "_STATEMENTS", _NeverRemembered())
    assert classify.classify_all(shot) == remembered

"""Saved text dumps (faulthandler, pytest-timeout) read as py-spy shows the same threads.

The captures in tests/captures/ are real (see its README): each text was printed by the
process that py-spy dumped (pyspy.json) and threaddoc recorded (recording.json) a moment
before, so the threads read from the text must be py-spy's threads.
"""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest

from threaddoc.collect import load_recording
from threaddoc.collect.parse import is_native, parse_threads
from threaddoc.collect.textdumps import FAULTHANDLER, PYTEST_TIMEOUT, TextDump, parse_text_dump

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
LOGS = CAPTURES / "logs"
FAULTHANDLER_TEXTS = sorted(CAPTURES.glob("*/py3.*/faulthandler.txt")) + sorted(
    CAPTURES.glob("*/py3.*/*/faulthandler-*.txt"))
PYTEST_LOGS = sorted(CAPTURES.glob("*/py3.*/pytest-*/pytest-timeout.log"))
# Programs made to go past faulthandler's limits of 100 frames and 100 threads.
PAST_THE_LIMITS = ("edge-deep_recursion", "edge-many_threads")

# Busy samples in which the recording may find no thread stuck (all of them move).
EVERY_THREAD_MOVES = ("busy_pool_long_queue", "gil_contention")

Frame = tuple[str, str, int]


def _name(path: Path) -> str:
    return str(path.relative_to(CAPTURES))


def _parse(path: Path) -> TextDump:
    dump = parse_text_dump(path.read_text(encoding="utf-8"))
    assert dump is not None, f"no dump found in {_name(path)}"
    return dump


def _frames(entry: dict[str, Any]) -> list[Frame]:
    """(file basename, function, line), innermost first.

    py-spy names a function by its qualified name on 3.11+ (`Thread.run`, `main.<locals>.f`);
    faulthandler and traceback print `co_name` (`run`, `f`) on every version: compare the
    last part. Files by basename: pytest prints the test file relative to its rootdir."""
    return [(re.split(r"[/\\]", frame["filename"])[-1], frame["name"].rsplit(".", 1)[-1], frame["line"])
            for frame in entry["frames"]]


def _pyspy(path: Path) -> dict[int, dict[str, Any]]:
    return {entry["thread_id"]: entry for entry in json.loads((path.parent / "pyspy.json").read_text())}


def _stuck(path: Path) -> set[int]:
    """The threads the live recording saw stuck: the same stack in all its samples, no CPU
    used, and not running when py-spy looked. Only they are still where py-spy saw them
    when the text was printed a moment later; a busy thread (busy_but_healthy,
    gil_contention) or a slowly progressing one (slow_worker_progressing) has moved on."""
    recording = load_recording((path.parent / "recording.json").read_text(encoding="utf-8"))
    pyspy = _pyspy(path)
    return {thread.thread_id for thread in recording.to_snapshot().threads
            if thread.progress is not None and thread.progress.same_stack
            and (thread.progress.cpu_seconds or 0.0) < 0.05
            and not pyspy.get(thread.thread_id, {}).get("active")}


def _by_id(dump: TextDump) -> dict[int, dict[str, Any]]:
    return {entry["thread_id"]: entry for entry in dump.threads}


def _assert_pyspy_shaped(dump: TextDump) -> None:
    """What parse.parse_threads needs, and no frame it would take for a C frame."""
    assert dump.format in (FAULTHANDLER, PYTEST_TIMEOUT)
    for entry in dump.threads:
        assert isinstance(entry["thread_id"], int)
        assert entry["thread_name"] is None or isinstance(entry["thread_name"], str)
        assert entry["os_thread_id"] is None and entry["active"] is False and entry["owns_gil"] is False
        for frame in entry["frames"]:
            assert set(frame) == {"name", "filename", "short_filename", "line", "locals"}
            assert isinstance(frame["line"], int) and frame["locals"] is None
            assert not is_native(frame)
    threads = parse_threads(dump.threads)
    assert [len(thread.frames) for thread in threads] == [len(entry["frames"]) for entry in dump.threads]


# --- Real captures: the same threads as py-spy's ---------------------------------------------


@pytest.mark.parametrize("path", FAULTHANDLER_TEXTS + PYTEST_LOGS, ids=_name)
def test_every_capture_is_read_whole(path: Path) -> None:
    dump = _parse(path)
    _assert_pyspy_shaped(dump)
    assert dump.format == (PYTEST_TIMEOUT if path.suffix == ".log" else FAULTHANDLER)
    assert dump.threads
    assert dump.truncated == (path.parts[-3] in PAST_THE_LIMITS and path.suffix == ".txt")


def test_there_are_captures_of_every_kind() -> None:
    # The parametrised tests would pass vacuously without them.
    names = {path.name for path in FAULTHANDLER_TEXTS + PYTEST_LOGS}
    assert names == {"faulthandler.txt", "faulthandler-register.txt", "faulthandler-later.txt",
                     "pytest-timeout.log"}
    assert {path.parts[-2] for path in CAPTURES.glob("*/py3.*/faulthandler.txt")} == {
        "py3.8", "py3.11", "py3.13"}
    assert {path.parent.name for path in PYTEST_LOGS} == {"pytest-thread", "pytest-signal"}


@pytest.mark.parametrize("path", FAULTHANDLER_TEXTS, ids=_name)
def test_faulthandler_shows_pyspys_threads(path: Path) -> None:
    dump, pyspy = _by_id(_parse(path)), _pyspy(path)
    if path.parts[-3] == "edge-many_threads":
        # faulthandler prints the 100 newest threads; the oldest, the main thread among them, are left out.
        assert len(dump) == 100 and set(dump) < set(pyspy)
        assert "MainThread" not in {pyspy[ident]["thread_name"] for ident in dump}
    else:
        # Every thread, none made up: faulthandler's hex id is py-spy's thread_id.
        assert set(dump) == set(pyspy)
    stuck = _stuck(path) & set(dump)
    assert stuck or path.parts[-3] in EVERY_THREAD_MOVES, "no thread to compare"
    for ident in stuck:
        ours, theirs = _frames(dump[ident]), _frames(pyspy[ident])
        # Deeper than 100 frames, faulthandler prints the 100 innermost.
        assert ours == theirs[:100], f"thread {pyspy[ident]['thread_name']}"


@pytest.mark.parametrize("path", PYTEST_LOGS, ids=_name)
def test_pytest_timeout_shows_pyspys_threads_and_names(path: Path) -> None:
    dump, pyspy = _by_id(_parse(path)), _pyspy(path)
    # pytest-timeout leaves out the thread that prints: its timer thread (method thread), or
    # the main thread handling SIGALRM (method signal), whose stack is the test's report.
    printer = {ident for ident, entry in pyspy.items()
               if str(entry["thread_name"]).startswith("pytest_timeout ")
               or (path.parent.name == "pytest-signal" and entry["thread_name"] == "MainThread")}
    assert len(printer) == 1
    assert set(dump) - {0} == set(pyspy) - printer
    for ident in set(dump) - {0}:
        assert dump[ident]["thread_name"] == pyspy[ident]["thread_name"]
    stuck = _stuck(path) & set(dump)
    assert stuck
    for ident in stuck:
        # The whole stack, pytest's own frames below the test included (method thread).
        assert _frames(dump[ident]) == _frames(pyspy[ident]), f"thread {pyspy[ident]['thread_name']}"


def test_the_signal_methods_main_thread_comes_from_the_failure_report() -> None:
    for path in CAPTURES.glob("*/py3.*/pytest-signal/pytest-timeout.log"):
        dump = _parse(path)
        main = _by_id(dump)[0]
        assert main["thread_name"] == "MainThread" and main["current"]
        (pyspy_main,) = (entry for entry in _pyspy(path).values() if entry["thread_name"] == "MainThread")
        ours = _frames(main)
        # The report starts at the test function; pytest's frames below it are not shown.
        assert ours[-1][1] == f"test_{path.parts[-4]}"
        assert ours == _frames(pyspy_main)[: len(ours)]
        assert any("pytest's report" in note for note in dump.notes)


def test_faulthandler_marks_the_thread_that_got_the_signal() -> None:
    for path in CAPTURES.glob("*/py3.*/faulthandler.txt"):
        if path.parts[-3] == "edge-many_threads":
            continue
        dump = _parse(path)
        current = [entry for entry in dump.threads if entry["current"]]
        assert len(current) == 1, _name(path)
        # The kernel gives a signal sent to the process to the main thread, the one faulthandler
        # prints last, when every thread sleeps; in a busy process a running thread may take it.
        if _stuck(path) >= {entry["thread_id"] for entry in dump.threads}:
            assert current[0] is dump.threads[-1], _name(path)
        assert any("fatal error (Aborted)" in note for note in dump.notes)


def test_dump_traceback_later_has_no_current_thread() -> None:
    # Its watchdog is a C thread: no Python thread is "Current".
    for path in CAPTURES.glob("*/py3.*/later/faulthandler-later.txt"):
        dump = _parse(path)
        assert not any(entry["current"] for entry in dump.threads)
        assert dump.notes == ("printed by faulthandler.dump_traceback_later after 0:00:12",)


def test_two_register_dumps_in_a_row_give_the_last() -> None:
    for path in CAPTURES.glob("*/py3.*/register/faulthandler-register.txt"):
        text = path.read_text(encoding="utf-8")
        dump = _parse(path)
        # Signalled twice: the second dump follows the first without a blank line.
        second = text.index("Thread 0x", text.index("<string>"))
        assert _parse_text(text[second:]).threads == dump.threads
        assert dump.notes[0].startswith("2 thread dumps in the text: the last complete one, at line")
        assert len(dump.threads) == len(_pyspy(path))


def _parse_text(text: str) -> TextDump:
    dump = parse_text_dump(text)
    assert dump is not None
    return dump


# --- faulthandler's limits, escapes and other forms ------------------------------------------


def test_more_than_100_frames() -> None:
    for minor in ("3.11", "3.13"):
        path = CAPTURES / "edge-deep_recursion" / f"py{minor}" / "faulthandler.txt"
        text = path.read_text(encoding="utf-8")
        # 3.11 ends the thread with "  ...", 3.13.0 stops at 100 frames without saying so.
        assert ("\n  ...\n" in text) == (minor == "3.11")
        dump = _parse(path)
        (deep,) = (entry for entry in dump.threads if len(entry["frames"]) == 100)
        assert dump.truncated
        assert f"outermost frames of thread 0x{deep['thread_id']:016x} are missing" in " ".join(dump.notes)


def test_more_than_100_threads() -> None:
    dump = _parse(CAPTURES / "edge-many_threads" / "py3.11" / "faulthandler.txt")
    assert dump.truncated and len(dump.threads) == 100
    assert any("at most 100 threads" in note for note in dump.notes)


def test_a_recursion_folded_by_traceback_is_unfolded() -> None:
    path = CAPTURES / "edge-deep_recursion" / "py3.11" / "pytest-thread" / "pytest-timeout.log"
    assert "[Previous line repeated 147 more times]" in path.read_text(encoding="utf-8")
    (descender,) = (entry for entry in _parse(path).threads if entry["thread_name"] == "descender")
    (theirs,) = (entry for entry in _pyspy(path).values() if entry["thread_name"] == "descender")
    assert _frames(descender) == _frames(theirs) and len(theirs["frames"]) > 150


def test_non_ascii_file_names_are_unescaped() -> None:
    for minor in ("3.11", "3.13"):
        path = CAPTURES / "edge-non_ascii_path" / f"py{minor}" / "faulthandler.txt"
        assert "caf\\xe9_\\u20ac.py" in path.read_text(encoding="utf-8")
        (worker,) = (entry for entry in _parse(path).threads if not entry["current"])
        (theirs,) = (entry for entry in _pyspy(path).values() if entry["thread_name"] == "caisse")
        assert worker["frames"][2]["filename"] == theirs["frames"][2]["filename"]
        assert worker["frames"][2]["filename"].endswith("/kassé/caisse_café_€.py")


def test_a_windows_path_keeps_its_backslashes() -> None:
    text = ('Thread 0x0000000000001a2c (most recent call first):\n'
            '  File "C:\\build\\x86\\app.py", line 3 in run\n'
            '  File "C:\\build\\x86\\app.py", line 9 in <module>\n')
    (thread,) = _parse_text(text).threads
    assert thread["frames"][0]["filename"] == "C:\\build\\x86\\app.py"
    assert thread["frames"][0]["short_filename"] == "app.py"


@pytest.mark.parametrize("name", ["bad\\UFFFFFFFF.py", "undecodable\\udce9.py"])
def test_escapes_of_no_character_are_kept(name: str) -> None:
    # \udce9: how faulthandler writes the byte 0xe9 of a file name that is not UTF-8
    # (surrogateescape); decoded, it would be a lone surrogate no writer takes.
    text = f'Stack (most recent call first):\n  File "/srv/{name}", line 3 in <module>\n'
    (thread,) = _parse_text(text).threads
    assert thread["frames"][0]["filename"] == f"/srv/{name}"


def test_one_thread_without_id() -> None:
    for minor in ("3.11", "3.13"):
        dump = _parse(LOGS / f"one-thread-py{minor}.txt")
        (thread,) = dump.threads
        assert thread["thread_id"] == 0 and thread["current"]
        assert _frames(thread) == [("<string>", "report", 3), ("<string>", "<module>", 4)]
        assert not dump.truncated and "all_threads=False" in dump.notes[0]


def test_a_crash() -> None:
    for minor in ("3.11", "3.13"):
        dump = _parse(LOGS / f"segfault-py{minor}.txt")
        idle, crashed = dump.threads
        assert not idle["current"] and crashed["current"]
        assert [frame[1] for frame in _frames(crashed)] == ["string_at", "read_null", "<module>"]
        assert "fatal error (Segmentation fault)" in dump.notes[0]


# --- Logs: prefixes, several dumps, cuts ---------------------------------------------------


def test_a_dump_with_a_timestamp_on_every_line_inside_a_ci_log() -> None:
    log = (LOGS / "ci-timestamped.log").read_text(encoding="utf-8")
    assert log.startswith("2026-12-01T08:00:00.0000000Z ##[group]Run")
    source = _parse(CAPTURES / "lock_order_deadlock" / "py3.11" / "faulthandler.txt")
    dump = _parse_text(log)
    assert dump == source
    # The same with the CR of a Windows runner and pytest's colours kept.
    coloured = log.replace("\n", "\r\n").replace("Thread 0x", "\x1b[1mThread 0x").replace("):", "):\x1b[0m")
    assert _parse_text(coloured) == source


def test_a_pytest_log_with_a_worker_prefix() -> None:
    source = _parse(CAPTURES / "bank_transfer_deadlock" / "py3.11" / "pytest-thread" / "pytest-timeout.log")
    assert _parse(LOGS / "worker-prefixed-pytest.log") == source


def test_lines_of_another_worker_are_not_mixed_in() -> None:
    lines = (LOGS / "worker-prefixed-pytest.log").read_text(encoding="utf-8").splitlines(keepends=True)
    mixed = "".join(line + line.replace("[worker-3]", "[worker-2]").replace(" in ", " in other_")
                    for line in lines)
    assert _parse_text(mixed) == _parse(LOGS / "worker-prefixed-pytest.log")


def test_a_log_cut_off_in_the_middle_of_a_dump() -> None:
    log = (LOGS / "cut-off.log").read_text(encoding="utf-8")
    assert log.endswith('  File "/ro')
    dump = _parse_text(log)
    whole = _parse(CAPTURES / "dining_philosophers" / "py3.11" / "faulthandler.txt")
    assert dump.truncated
    assert any("cut off after 2 threads" in note for note in dump.notes)
    assert dump.threads[0] == whole.threads[0]
    assert dump.threads[1]["frames"] == whole.threads[1]["frames"][:1]


@pytest.mark.parametrize("path", [CAPTURES / "lock_order_deadlock" / "py3.8" / "faulthandler.txt",
                                  CAPTURES / "exit_blocked_by_polling_thread" / "py3.13" / "faulthandler.txt",
                                  CAPTURES / "nested_submit_starvation" / "py3.11" / "pytest-thread" /
                                  "pytest-timeout.log"], ids=_name)
def test_a_cut_at_any_line_is_seen(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    first = next(index for index, line in enumerate(lines) if "most recent call first" in line
                 or "Stack of" in line)
    whole = _parse(path)
    assert not whole.truncated
    for end in range(first + 1, len(lines) - (path.suffix == ".log")):
        dump = _parse_text("".join(lines[:end]))
        assert dump.truncated, f"cut after line {end}"
        # What was read is right: the innermost frames of a faulthandler thread, the outermost
        # of a pytest-timeout one (printed outermost first).
        frames, complete = dump.threads[0]["frames"], whole.threads[0]["frames"]
        kept = len(frames)
        expected = complete[:kept] if path.suffix == ".txt" else complete[len(complete) - kept:]
        assert frames == expected


def test_a_cut_in_the_middle_of_any_line_is_seen() -> None:
    text = (CAPTURES / "lock_order_deadlock" / "py3.11" / "faulthandler.txt").read_text(encoding="utf-8")
    start = text.index("Thread 0x")
    for end in range(start + 60, len(text) - 1, 7):
        dump = parse_text_dump(text[:end])
        assert dump is not None and dump.truncated, f"cut at {end}: {text[end - 20:end]!r}"


def test_a_paste_without_its_last_newline_is_whole() -> None:
    path = CAPTURES / "threads_join_each_other" / "py3.13" / "faulthandler.txt"
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    assert _parse_text(text.rstrip("\n")) == _parse(path)


def test_the_last_complete_dump_of_several_wins() -> None:
    first = (CAPTURES / "lock_order_deadlock" / "py3.11" / "faulthandler.txt").read_text(encoding="utf-8")
    second = (CAPTURES / "bank_transfer_deadlock" / "py3.11" / "faulthandler.txt").read_text(encoding="utf-8")
    noise = "collected 12 items\nsome test output\n" * 50
    dump = _parse_text(noise + first + noise + second + noise)
    assert dump.threads == _parse_text(second).threads
    # Line numbers count from 1; the second dump's first thread follows its "Fatal Python error" line.
    second_at = 100 + first.count("\n") + 100 + 3
    assert dump.notes[0] == f"2 thread dumps in the text: the last complete one, at line {second_at}, " \
        "was used"
    # A later dump cut off: the complete one before it is used, and the cut one is mentioned.
    cut = second[: second.index("Current thread")]
    dump = _parse_text(noise + first + noise + cut)
    assert dump.threads == _parse_text(first).threads and not dump.truncated
    assert dump.notes[1] == f"the dump after it, at line {second_at}, was cut off"


def test_a_faulthandler_dump_after_a_pytest_timeout_one_wins() -> None:
    pytest_log = (CAPTURES / "lock_order_deadlock" / "py3.11" / "pytest-thread" / "pytest-timeout.log")
    faulthandler = CAPTURES / "threads_join_each_other" / "py3.11" / "faulthandler.txt"
    dump = _parse_text(pytest_log.read_text(encoding="utf-8") + faulthandler.read_text(encoding="utf-8"))
    assert dump.format == FAULTHANDLER and dump.threads == _parse(faulthandler).threads
    dump = _parse_text(faulthandler.read_text(encoding="utf-8") + pytest_log.read_text(encoding="utf-8"))
    assert dump.format == PYTEST_TIMEOUT and dump.threads == _parse(pytest_log).threads


# --- Anything else: None or a dump, never an exception ------------------------------------


@pytest.mark.parametrize("text", ["", "\n", " \n\n", "Traceback (most recent call last):\n  File \"x.py\", "
                                  "line 1, in <module>\nValueError\n", "\x00\x01\x02", "Thread 0x",
                                  "Thread 0xzz (most recent call first):\n", "~~~ Stack of  ~~~\n",
                                  "E   Failed: Timeout\n", "+++++ Timeout +++++\n"])
def test_no_dump_is_none(text: str) -> None:
    assert parse_text_dump(text) is None


def test_random_bytes_never_raise() -> None:
    generator = random.Random(7)
    for _ in range(300):
        data = bytes(generator.randrange(256) for _ in range(generator.randrange(1, 400)))
        for text in (data.decode("utf-8", errors="replace"), data.decode("latin-1")):
            dump = parse_text_dump(text)
            if dump is not None:
                _assert_pyspy_shaped(dump)


def test_random_mixes_of_real_lines_never_raise() -> None:
    generator = random.Random(11)
    pool = [line for path in FAULTHANDLER_TEXTS[:40] + PYTEST_LOGS
            for line in path.read_text(encoding="utf-8").splitlines(keepends=True)]
    found = 0
    for _ in range(400):
        lines = generator.sample(pool, generator.randrange(1, 60))
        if generator.random() < 0.3:
            lines = [line[: generator.randrange(len(line) + 1)] for line in lines]
        dump = parse_text_dump("".join(lines))
        if dump is not None:
            found += 1
            _assert_pyspy_shaped(dump)
    assert found  # the mixes did reach the parsers


def test_huge_input() -> None:
    started = time.monotonic()
    dump_text = (CAPTURES / "lock_order_deadlock" / "py3.13" / "faulthandler.txt").read_text(encoding="utf-8")
    noise = "".join(f"2026-12-01T08:00:{index % 60:02d}Z line {index} of a busy log\n"
                    for index in range(200_000))
    assert _parse_text(noise + dump_text + noise).threads == _parse_text(dump_text).threads
    # Long lines of near misses: a regular expression searched at every position would take
    # hours on these.
    for line in ("x" * 5_000_000, '  File "' * 200_000, "+" * 1_000_000 + " Timeout +",
                 "~ Stack of " * 200_000 + "~", "Thread 0x1 [" * 200_000 + "(most recent call first):",
                 "_ " * 1_000_000, "E " * 1_000_000 + "Failed: Timeout"):
        assert parse_text_dump(line) is None
        assert parse_text_dump(line + "\n") is None
    many = "Thread 0x00007f0000000001 (most recent call first):\n" * 100_000
    dump = parse_text_dump(many)
    assert dump is not None and dump.truncated and len(dump.threads) == 1
    reports = "___ test_x ___\n" + "E   Failed: Timeout (>1s) from pytest-timeout.\nx.py:1: Failed\n" * 50_000
    # Only the first report has its test's header above it.
    dump = parse_text_dump(reports)
    assert dump is not None and [_frames(entry) for entry in dump.threads] == [[("x.py", "?", 1)]]
    # Generous on a loaded machine: this takes about a second.
    assert time.monotonic() - started < 60

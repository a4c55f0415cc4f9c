"""Control characters and bidi controls from the target never reach the terminal raw.

Recordings of the hung samples are made hostile: thread names, file names, function
names, local names and values, source lines, the command line, warnings and the dump's
path carry ESC and CSI sequences (0x1b, 0x9b), BEL, CR, backspace, NUL, DEL, NEL, bidi
overrides and isolates (U+202E, U+2066-2069, U+200F), line and paragraph separators
(U+2028, U+2029) and a lone surrogate. Every line of the text report (with and without
color) and every JSON report must hold none of them raw, and the JSON must still read
back to the very strings the target had.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import pytest
from conftest import RECORDINGS

from threaddoc.collect import Recording, load_recording
from threaddoc.collect.saved import load_saved
from threaddoc.collect.shown import shown_values
from threaddoc.model import SourceFile
from threaddoc.pipeline import Report, analyse, analyse_recording, group_reports
from threaddoc.render import json as json_render
from threaddoc.render import text as text_render
from threaddoc.sanitize import clean, clean_line, json_safe

HOSTILE = ("\x1b[2J\x1b]0;owned\x07\x9b31m\r\x08\x00\x7f\x85"
           "\u202e\u2066\u2067\u2068\u2069\u200f\u2028\u2029\ud800")
# A source file cannot hold NUL, a CR ends its line, and a file on disk holds no lone surrogate.
HOSTILE_IN_SOURCE = "".join(c for c in HOSTILE if c not in "\x00\r\ud800")

RAW_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
                         "\ud800-\udfff]")
OUR_COLORS = re.compile(r"\x1b\[[0-9;]*m")  # what Style itself writes

NAMES = ["lock_order_deadlock-py3.8", "lock_order_deadlock-py3.13", "lock_held_during_slow_request-py3.11",
         "nested_submit_starvation-py3.12", "bank_transfer_deadlock-py3.10", "threads_join_each_other-py3.9",
         "queue_join_missing_task_done-py3.11"]


def hostile_path(path: str) -> str:
    """The top directory gets a hostile name: what the file is (a module of the standard
    library, of site-packages, of the program) stays the same."""
    if not path.startswith("/"):
        return path  # <frozen importlib._bootstrap>
    top, _, rest = path[1:].partition("/")
    return f"/{top}{HOSTILE}/{rest}"


def hostile_frame(frame: dict[str, Any], program: bool) -> dict[str, Any]:
    locals_ = [{**local, "repr": local["repr"][:-1] + HOSTILE + local["repr"][-1]}
               if isinstance(local.get("repr"), str) and local["repr"].startswith('"') else local
               for local in frame.get("locals") or ()]
    if program:
        locals_.append({"name": f"x{HOSTILE}", "addr": 0x6000_0000, "arg": False, "repr": f'"{HOSTILE}"'})
    return {**frame, "filename": hostile_path(str(frame["filename"])), "locals": locals_,
            "name": f"{frame['name']}{HOSTILE}" if program else frame["name"]}


def hostile_entry(entry: dict[str, Any]) -> dict[str, Any]:
    name = entry.get("thread_name") or ""
    frames = [hostile_frame(frame, "/lib/python3" not in str(frame.get("filename")))
              for frame in entry.get("frames") or ()]
    # The main thread is known by its name, a pool's workers by theirs (`thread_name_prefix`
    # and a number): keep them, so that the analysis stays the same.
    kept = name == "MainThread" or re.search(r"_\d+$", name)
    return {**entry, "thread_name": name if kept else f"{HOSTILE}{name}", "frames": frames}


def hostile_source(source: SourceFile) -> SourceFile:
    lines = [line if line.rstrip().endswith("\\") or not line.strip() else f"{line}  # {HOSTILE_IN_SOURCE}"
             for line in source.text.split("\n")]
    return SourceFile(hostile_path(source.path), "\n".join(lines), source.modified_after_start)


def hostile_recording(recording: Recording) -> Recording:
    entries = tuple(hostile_entry(dict(entry)) for entry in recording.pyspy)
    cmdline = tuple(f"{part}{HOSTILE}" for part in recording.process.cmdline)
    process = replace(recording.process, cmdline=cmdline, exe=f"{recording.process.exe}{HOSTILE}",
                      username=f"app{HOSTILE}")
    return replace(recording, pyspy=entries, process=process,
                   sources={hostile_path(path): hostile_source(s) for path, s in recording.sources.items()},
                   warnings=(*recording.warnings, f"a warning {HOSTILE}"),
                   children=tuple(hostile_recording(child) for child in recording.children),
                   shown=shown_values(entries))


def load_named(name: str) -> Recording:
    return load_recording((RECORDINGS / f"{name}.json").read_text(encoding="utf-8"))


def text_lines(render: Callable[[text_render.Style], Iterable[str]]) -> list[tuple[bool, str]]:
    return [(color, line) for color in (False, True) for line in render(text_render.Style(color=color))]


def assert_no_raw_control(lines: list[tuple[bool, str]]) -> None:
    for color, line in lines:
        visible = OUR_COLORS.sub("", line) if color else line
        raw = RAW_CONTROL.findall(visible)
        assert not raw, f"raw {raw!r} in {'colored ' if color else ''}line {line!r}"


def assert_json_is_safe_and_faithful(document: str, names: set[str]) -> None:
    lines = document.split("\n")
    assert_no_raw_control([(False, line) for line in lines])
    parsed = json.loads(document)
    reports = parsed.get("reports", [parsed])
    found = {thread["name"] for report in reports for thread in report["threads"]}
    assert names <= found, "the JSON does not read back to the target's thread names"


@pytest.mark.parametrize("name", NAMES)
def test_hostile_strings_in_a_report_are_escaped_and_the_diagnosis_is_the_same(name: str) -> None:
    original = analyse_recording(load_named(name))
    report = analyse_recording(hostile_recording(load_named(name)))
    assert [f.kind for f in report.findings] == [f.kind for f in original.findings], \
        "the hostile strings changed the diagnosis: the test would check less than it seems"
    lines = text_lines(lambda style: text_render.render(report, style))
    assert_no_raw_control(lines)
    assert any(clean_line(HOSTILE) in line for _, line in lines), "the hostile text was dropped, not escaped"
    assert any("Local variables (--show-locals)" in line for _, line in lines)
    names = {a.thread.name for a in report.analyses}
    for pretty in (True, False):
        assert_json_is_safe_and_faithful(json_render.render(report, pretty=pretty), names)


def test_several_hostile_reports_render_safely() -> None:
    reports = [analyse_recording(hostile_recording(load_named(name))) for name in NAMES[:3]]
    many = group_reports(reports)
    assert_no_raw_control(text_lines(lambda style: text_render.render_many(many, style)))
    names = {a.thread.name for report in reports for a in report.analyses}
    assert_json_is_safe_and_faithful(json_render.render_many(many, pretty=False), names)


def every_string_hostile(value: Any) -> Any:
    """Every string of a py-spy dump, whatever it means (not its keys)."""
    if isinstance(value, str):
        return f"{value}{HOSTILE}"
    if isinstance(value, list):
        return [every_string_hostile(item) for item in value]
    if isinstance(value, dict):
        return {key: every_string_hostile(item) for key, item in value.items()}
    return value


@pytest.mark.parametrize("name", NAMES[:3])
def test_a_dump_whose_every_string_is_hostile_renders_safely(name: str) -> None:
    entries = every_string_hostile([dict(entry) for entry in load_named(name).pyspy])
    dump = json.dumps(entries)
    path = f"dump{HOSTILE}.json"
    reports: list[Report] = [analyse(snapshot) for snapshot in load_saved(dump, path, show_locals=True)]
    (report,) = reports
    lines = text_lines(lambda style: text_render.render(report, style))
    assert_no_raw_control(lines)
    assert sum(clean_line(HOSTILE) in line for _, line in lines) > len(report.analyses)
    for pretty in (True, False):
        assert_json_is_safe_and_faithful(json_render.render(report, pretty=pretty),
                                         {a.thread.name for a in report.analyses})


def test_clean_escapes_each_hostile_character_visibly() -> None:
    assert clean(HOSTILE) == ("\\x1b[2J\\x1b]0;owned\\x07\\x9b31m\\x0d\\x08\\x00\\x7f\\x85"
                              "\\u202e\\u2066\\u2067\\u2068\\u2069\\u200f\\u2028\\u2029\\ud800")


def test_json_safe_keeps_the_json_value() -> None:
    document = {"name": HOSTILE, HOSTILE: [HOSTILE, "ünïcode — ok"]}
    text = json_safe(json.dumps(document, ensure_ascii=False))
    assert json.loads(text) == document
    assert not RAW_CONTROL.search(text)
    assert "ünïcode — ok" in text  # readable text stays readable


def test_a_source_line_is_found_as_python_counts_lines() -> None:
    # U+2028, NEL and a form feed end a line for str.splitlines, not for Python.
    source = SourceFile("m.py", "a = 1  # \u2028 \x85 \x0c\nwith lock:\r\nb = 2\rc = 3\n")
    assert [source.line(number) for number in (1, 2, 3, 4)] == ["a = 1  #", "with lock:", "b = 2", "c = 3"]


def test_an_error_naming_a_hostile_path_is_one_clean_line(capsys: pytest.CaptureFixture[str]) -> None:
    from threaddoc.cli import main

    # What a command line can hold: no NUL, and bytes that are not UTF-8 arrive as
    # surrogate escapes (0xff -> U+DCFF), which cannot be printed as they are.
    argument = "".join(c for c in HOSTILE if c not in "\x00\ud800") + "\udcff"
    with pytest.raises(SystemExit) as exited:
        main(["diagnose", "--from", f"/nonexistent/{argument}.json"])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    # Whitespace-like characters (CR, NEL, U+2028) become spaces; the others are escaped.
    assert error.count("\n") == 1 and all(escaped in error for escaped in ("\\x1b[2J", "\\u202e", "\\udcff"))
    assert_no_raw_control([(False, error.rstrip("\n"))])

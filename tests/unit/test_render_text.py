"""Text report details: verdict first, color only when wanted, target strings made safe."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import load, report

from threaddoc.pipeline import analyse
from threaddoc.render import json as json_render
from threaddoc.render.text import Style, render, use_color


def test_color_only_on_a_terminal_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_color(stream_is_tty=True) is True
    assert use_color(stream_is_tty=False) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_color(stream_is_tty=True) is False
    assert use_color(stream_is_tty=False, requested=True) is True


def test_colored_and_plain_reports_differ_only_by_escapes() -> None:
    deadlock = report("lock_order_deadlock-py3.11")
    plain = "\n".join(render(deadlock))
    colored = "\n".join(render(deadlock, Style(color=True)))
    assert "\x1b[" not in plain
    assert "\x1b[" in colored
    assert colored.replace("\x1b[0m", "").replace("\x1b[1;31m", "").replace("\x1b[1m", "") \
        .replace("\x1b[2m", "").replace("\x1b[33m", "").replace("\x1b[32m", "") == plain


def test_first_line_is_the_verdict() -> None:
    assert next(render(report("lock_order_deadlock-py3.8"))).startswith("threaddoc: DEADLOCK")
    assert next(render(report("nested_submit_starvation-py3.8"))).startswith("threaddoc: HANG")
    assert next(render(report("busy_but_healthy-py3.8"))).startswith("threaddoc: BUSY, not hung")
    assert next(render(report("idle_services-py3.8"))).startswith("threaddoc: no hang found")


def test_escape_sequences_in_thread_names_never_reach_the_terminal() -> None:
    deadlock = report("lock_order_deadlock-py3.12")
    hostile = tuple(
        dataclasses.replace(thread, name="teller-1\x1b]0;owned\x07") if thread.name == "teller-1" else thread
        for thread in deadlock.snapshot.threads
    )
    text = "\n".join(render(analyse(dataclasses.replace(deadlock.snapshot, threads=hostile))))
    assert "\x1b" not in text and "\x07" not in text
    assert "teller-1\\x1b]0;owned\\x07" in text


def test_no_local_value_is_printed_in_text_or_json() -> None:
    # render_report(title) runs with title="quarterly": py-spy shows that value, we never do.
    starved = report("nested_submit_starvation-py3.11")
    raw = json.dumps(load("nested_submit_starvation-py3.11").pyspy)
    assert "quarterly" in raw
    assert "quarterly" not in "\n".join(render(starved))
    assert "quarterly" not in json_render.render(starved)


def test_compact_and_indented_json_carry_the_same_report() -> None:
    deadlock = report("lock_order_deadlock-py3.11")
    compact = json_render.render(deadlock, pretty=False)
    assert compact.count("\n") == 1
    assert json.loads(compact) == json.loads(json_render.render(deadlock, pretty=True))

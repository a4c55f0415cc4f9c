"""The /proc status fields the safety checks read (TracerPid, SigPnd, ShdPnd), from bytes."""

from __future__ import annotations

import os

import pytest

from threaddoc.collect import guardian_process
from threaddoc.collect.guardian_process import _pending_stop, release_if_left_stopped, task_statuses
from threaddoc.collect.process import tracer_of

STATUS = (b"Name:\tpython\nState:\tS (sleeping)\nTgid:\t42\nPid:\t43\nTracerPid:\t%d\n"
          b"SigQ:\t0/63\nSigPnd:\t%s\nShdPnd:\t%s\nSigBlk:\t0000000000000000\n")
STOP = b"0000000000040000"  # bit 19 - 1: SIGSTOP
NONE = b"0000000000000000"


def test_a_pending_sigstop_of_the_thread_or_the_process_is_seen() -> None:
    assert _pending_stop(STATUS % (0, STOP, NONE))
    assert _pending_stop(STATUS % (0, NONE, STOP))
    assert not _pending_stop(STATUS % (0, NONE, b"0000000000000100"))
    assert not _pending_stop(b"Name:\tpython\n")


def test_the_tracer_of_any_thread_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("threaddoc.collect.process.task_statuses",
                        lambda pid: [STATUS % (0, NONE, NONE), STATUS % (os.getpid(), NONE, NONE)])
    assert tracer_of(1) == os.getpid()
    monkeypatch.setattr("threaddoc.collect.process.task_statuses", lambda pid: [STATUS % (0, NONE, NONE)])
    assert tracer_of(1) is None


def test_this_process_has_a_status_per_thread_and_no_tracer() -> None:
    statuses = task_statuses(os.getpid())
    assert statuses and all(b"\nTracerPid:" in status for status in statuses)
    assert tracer_of(os.getpid()) is None


def test_a_clean_run_looks_at_the_state_only(monkeypatch: pytest.MonkeyPatch) -> None:
    looked: list[int] = []
    monkeypatch.setattr(guardian_process, "process_state", lambda pid: "S")
    monkeypatch.setattr(guardian_process, "stop_pending", lambda pid: looked.append(pid) or True)
    monkeypatch.setattr(guardian_process, "_continue", lambda pid: True)
    assert not release_if_left_stopped(7, was_stopped=False, pending_possible=False)
    assert looked == []
    assert release_if_left_stopped(7, was_stopped=False)
    assert looked == [7]

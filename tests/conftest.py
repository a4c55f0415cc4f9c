"""Shared fixtures: recordings of the hung samples, checked into tests/recordings/."""

from __future__ import annotations

from pathlib import Path

import pytest

from threaddoc.collect import Recording, load_recording

__all__ = ["load_recording"]
from threaddoc.model import Snapshot
from threaddoc.pipeline import Report, analyse_recording

TESTS = Path(__file__).resolve().parent
RECORDINGS = TESTS / "recordings"
GOLDEN = TESTS / "golden"


def recording_names(prefix: str = "") -> list[str]:
    return sorted(path.stem for path in RECORDINGS.glob(f"{prefix}*.json"))


def load(name: str) -> Recording:
    return load_recording((RECORDINGS / f"{name}.json").read_text(encoding="utf-8"))


def snapshot(name: str) -> Snapshot:
    return load(name).to_snapshot()


def report(name: str) -> Report:
    return analyse_recording(load(name))


@pytest.fixture(params=recording_names("lock_order_deadlock"))
def lock_order_report(request: pytest.FixtureRequest) -> Report:
    return report(request.param)


@pytest.fixture(params=recording_names("nested_submit_starvation"))
def nested_submit_report(request: pytest.FixtureRequest) -> Report:
    return report(request.param)


@pytest.fixture(params=recording_names("busy_but_healthy"))
def healthy_report(request: pytest.FixtureRequest) -> Report:
    return report(request.param)

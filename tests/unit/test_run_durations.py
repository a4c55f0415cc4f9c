"""`threaddoc run --after DURATION`: what a duration is, and how one is shown."""

from __future__ import annotations

import pytest

from threaddoc.run import exit_status, format_duration, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90.0),
    ("1.5", 1.5),
    ("1.5s", 1.5),
    ("30s", 30.0),
    ("10m", 600.0),
    ("1h", 3600.0),
    ("1h30m", 5400.0),
    ("2m30s", 150.0),
    ("1h0m5s", 3605.0),
    ("1h5s", 3605.0),
    ("0.5m", 30.0),
])
def test_durations_in_seconds_or_hours_minutes_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", [
    "", "s", "h", "abc", "5x", "5 s", " 5s", "5s ", "1m1h", "30s10m", "1s1s", "1.5.3s", ".5s", "5.s",
    "-5", "-5s", "+5", "1e3", "inf", "nan", "0", "0s", "0h0m0s", "0.0", "5ms", "1d",
    "\uff11\uff10s",  # fullwidth digits
])
def test_nonsense_is_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration") as refused:
        parse_duration(text)
    assert "30s, 10m, 1h30m" in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize(("seconds", "shown"), [
    (3.0, "3s"), (1.5, "1.5s"), (0.04, "0s"), (12.34, "12.3s"), (90.0, "1m30s"), (600.0, "10m"),
    (5400.0, "1h30m"), (3605.0, "1h5s"),
])
def test_durations_are_shown_the_way_they_are_written(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown
    if seconds >= 1:
        assert parse_duration(shown) == pytest.approx(seconds, abs=0.05)


@pytest.mark.parametrize(("returncode", "status"), [(0, 0), (7, 7), (-9, 137), (-15, 143), (-2, 130)])
def test_a_command_ended_by_a_signal_exits_as_shells_report_it(returncode: int, status: int) -> None:
    assert exit_status(returncode) == status

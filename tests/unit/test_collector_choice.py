"""Which collector reads the stacks (`--collector auto|py-spy|memory`), without a target.

py-spy and the memory reader are replaced by stand-ins that record being called; the
sampling around them (CPU times, the same-process check) runs against this very
process, which stays the same process throughout.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest

import threaddoc.collect as collect_module
from threaddoc.collect import _collected_samples, _Sampling
from threaddoc.errors import MemoryCollectorUnsupported, NotPython, UsageError

ENTRY = {"pid": 1, "thread_id": 7, "thread_name": "MainThread", "os_thread_id": os.getpid(), "active": False,
         "owns_gil": False, "frames": [], "process_info": None}


def _sampling(samples: int = 2) -> _Sampling:
    return _Sampling(pid=os.getpid(), py_spy="py-spy", timeout=5.0, samples=samples, interval=0.01,
                     native=False, kernel={}, warnings=[], started=None, python_version="3.11.7")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Stand-ins: py-spy refuses (NotPython) unless told otherwise; the memory reader works."""
    seen: dict[str, Any] = {"py-spy": 0, "memory": 0, "caches": set(), "refuse": True, "complete": []}

    def take_samples(*args: Any, **kwargs: Any) -> Any:
        seen["py-spy"] += 1
        if seen["refuse"]:
            raise NotPython("process 1 does not look like a Python interpreter py-spy can read", "remedy")
        return [], [[dict(ENTRY)]], True

    def memory_dump(pid: int, *, timeout: float, python_version: str | None,
                    cache: Any, complete: bool = True) -> list[dict[str, Any]]:
        seen["memory"] += 1
        seen["caches"].add(id(cache))
        seen["complete"].append(complete)
        return [dict(ENTRY)]

    monkeypatch.setattr(collect_module, "_take_samples", take_samples)
    monkeypatch.setattr("threaddoc.collect.memory.dump", memory_dump)
    return seen


def test_auto_falls_back_to_memory_when_py_spy_refuses(calls: dict[str, Any]) -> None:
    sampling = _sampling(samples=3)
    history, dumps, paused = _collected_samples(sampling, "auto", threads=12)
    assert (calls["py-spy"], calls["memory"], len(dumps), len(history), paused) == (1, 3, 3, 3, False)
    assert len(calls["caches"]) == 1, "the samples of one process share one stack cache"
    assert len(sampling.warnings) == 1
    assert "py-spy could not read" in sampling.warnings[0]
    assert "without pausing it" in sampling.warnings[0]


def test_only_the_last_memory_sample_reads_names_and_run_states(calls: dict[str, Any]) -> None:
    # The report takes them from the last sample (representative): the others need stacks only.
    _collected_samples(_sampling(samples=3), "memory", threads=12)
    assert calls["complete"] == [False, False, True]


def test_the_memory_reader_reads_the_kernels_view_of_the_threads_between_its_samples(
        calls: dict[str, Any]) -> None:
    sampling = dataclasses.replace(_sampling(samples=2), kernel_pending=True)
    _collected_samples(sampling, "memory", threads=12)
    assert str(os.getpid()) in sampling.kernel and "stat" in sampling.kernel[str(os.getpid())]


def test_auto_goes_straight_to_memory_past_py_spys_thread_limit(calls: dict[str, Any]) -> None:
    sampling = _sampling()
    _collected_samples(sampling, "auto", threads=10_003)
    assert (calls["py-spy"], calls["memory"]) == (0, 2)
    assert "10,003 threads" in sampling.warnings[0]


def test_auto_keeps_py_spy_when_it_reads_the_process(calls: dict[str, Any]) -> None:
    calls["refuse"] = False
    sampling = _sampling()
    _, _, paused = _collected_samples(sampling, "auto", threads=12)
    assert (calls["py-spy"], calls["memory"], paused, sampling.warnings) == (1, 0, True, [])


def test_py_spy_collector_never_falls_back(calls: dict[str, Any]) -> None:
    with pytest.raises(NotPython):
        _collected_samples(_sampling(), "py-spy", threads=10_003)
    assert calls["memory"] == 0


def test_memory_collector_never_runs_py_spy_and_says_nothing(calls: dict[str, Any]) -> None:
    sampling = _sampling()
    _collected_samples(sampling, "memory", threads=12)
    assert (calls["py-spy"], calls["memory"], sampling.warnings) == (0, 2, [])


def test_fallback_that_cannot_read_the_version_says_both(calls: dict[str, Any],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def unsupported(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        raise MemoryCollectorUnsupported("the memory collector cannot read CPython 3.9 frames yet",
                                         "use `--collector py-spy`")

    monkeypatch.setattr("threaddoc.collect.memory.dump", unsupported)
    with pytest.raises(MemoryCollectorUnsupported) as raised:
        _collected_samples(_sampling(), "auto", threads=12)
    line = raised.value.one_line()
    assert "py-spy can read" in line and "cannot read CPython 3.9 frames yet" in line


def test_unknown_collector_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        collect_module.collect(os.getpid(), collector="gdb")


def test_work_handed_over_for_the_wait_is_done_once_between_samples(calls: dict[str, Any]) -> None:
    from threaddoc.collect.waiting import do_waiting_work, while_waiting

    done: list[int] = []
    with while_waiting(lambda: done.append(calls["memory"])):
        _collected_samples(_sampling(samples=3), "memory", threads=12)
    assert done == [1], "once, after the first sample"
    with while_waiting(lambda: done.append(-1)):
        pass
    do_waiting_work()
    assert done == [1], "work not done within its block is dropped with it"

"""A many-thread recording made from a real small one: a thread-per-request server whose
backend hangs.

`lock_held_during_slow_request` was recorded from a real process: "cache-refresher" holds
`cache_lock` while it waits in recv() for an upstream that never answers, and two
request threads wait for the lock. A server that starts a thread per request has
thousands of such request threads; `cloned_requests` makes that process by copying the
request thread of the recording with new thread ids, OS thread ids and object
addresses (each clone is a thread of its own, with its own `Thread` object and
arguments), and the same copies in the kernel's view and in every sample. Everything
else (the holder, the socket, the source files) is as recorded, so the analysis is
the real one at a size no checked-in file needs to hold.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from conftest import load

from threaddoc.collect import Recording

BASE = "lock_held_during_slow_request-py3.13"
TEMPLATE_THREAD = "request-2"
# Far above any id or address of the recording, so clones collide with nothing in it.
_ID_STEP = 1 << 16
_FIRST_OS_TID = 1_000_000
# The locals that are a thread's own `threading.Thread` object (CPython 3.11 and later name
# the frames by their qualified name).
THREAD_OBJECT = ("Thread.run:self", "Thread._bootstrap_inner:self", "Thread._bootstrap:self")


def cloned_requests(extra: int, base: str = BASE) -> Recording:
    """The recording of `base` with `extra` more threads like its "request-2", named
    request-3, request-4, ... (so a process of `extra` + the recorded threads)."""
    return cloned(base, TEMPLATE_THREAD, extra, "request-{}", own=(*THREAD_OBJECT, "sku"), first=3)


def cloned(base: str, template_name: str, extra: int, name: str, own: tuple[str, ...] = THREAD_OBJECT,
           first: int = 1) -> Recording:
    """The recording `base` with `extra` copies of its thread `template_name`, named
    `name.format(first)`, `name.format(first + 1)`, ...: each with its own ids, and its
    own object for each local in `own` (`name`, or `function:name` for one frame's: its
    `Thread` object, its arguments); the other locals are the objects the template's
    are (the lock or event it waits for, the thread it joins)."""
    recording = load(base)
    template = next(entry for entry in recording.pyspy if entry["thread_name"] == template_name)
    pyspy = list(recording.pyspy)
    kernel = dict(recording.kernel)
    history = [_sample_copy(sample) for sample in recording.history]
    for number in range(extra):
        clone = _clone(template, number, name.format(first + number), own)
        pyspy.append(clone)
        kernel[str(clone["os_thread_id"])] = kernel[str(template["os_thread_id"])]
        for sample in history:
            _add_to_sample(sample, template, clone)
    process = dataclasses.replace(recording.process, num_threads=len(pyspy))
    return dataclasses.replace(recording, process=process, pyspy=tuple(pyspy), kernel=kernel,
                               history=tuple(history))


def _clone(template: Mapping[str, Any], number: int, name: str, own: tuple[str, ...]) -> dict[str, Any]:
    clone = copy.deepcopy(dict(template))
    shift = (number + 1) * _ID_STEP
    clone["thread_name"] = name
    clone["thread_id"] = template["thread_id"] + shift
    clone["os_thread_id"] = _FIRST_OS_TID + number
    for frame in clone["frames"]:
        for local in frame.get("locals") or ():
            if (local["name"] in own or f"{frame['name']}:{local['name']}" in own) \
                    and local.get("addr") is not None:
                local["addr"] += shift
    return clone


def _sample_copy(sample: Mapping[str, Any]) -> dict[str, Any]:
    copied = dict(sample)
    copied["stacks"] = dict(sample["stacks"])
    if sample.get("cpu") is not None:
        copied["cpu"] = dict(sample["cpu"])
    return copied


def _add_to_sample(sample: dict[str, Any], template: Mapping[str, Any], clone: Mapping[str, Any]) -> None:
    stacks = sample["stacks"]
    if str(template["thread_id"]) in stacks:
        stacks[str(clone["thread_id"])] = stacks[str(template["thread_id"])]
    cpu = sample.get("cpu")
    if cpu is not None and str(template["os_thread_id"]) in cpu:
        cpu[str(clone["os_thread_id"])] = cpu[str(template["os_thread_id"])]

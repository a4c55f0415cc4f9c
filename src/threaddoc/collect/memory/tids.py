"""The OS thread id (the kernel's TID) of each Python thread.

3.11+ record it (PyThreadState.native_thread_id). Before, only `thread_id` is there: the
pthread_t, which on glibc is the address of the thread's `struct pthread`, and that struct
holds the TID at a fixed offset. The offset is not hard-coded: it is calibrated on the
target itself, as the one offset at which every thread's struct holds a TID that
/proc/PID/task lists.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence

from .layouts import Layout
from .memory import MemoryReadError, ProcessMemory, pointer_at

PTHREAD_SCAN_BYTES = 2048  # glibc keeps `tid` within the first ~0x300 bytes of struct pthread


CALIBRATION_THREADS = 32  # thread structs read to find the TID's offset


class NativeThreadIds:
    """`of(tstate, thread_id)`: the OS thread id of one thread state of this dump."""

    def __init__(self, pid: int, memory: ProcessMemory, layout: Layout, thread_ids: Sequence[int]) -> None:
        self._pid = pid
        self._memory = memory
        self._layout = layout
        self._thread_ids = [thread_id for thread_id in thread_ids if thread_id > 0]
        self._offset: int | None = None
        self._calibrated = False

    def of(self, tstate: bytes, thread_id: int) -> int | None:
        if self._layout.tstate_native_thread_id >= 0:
            return pointer_at(tstate, self._layout.tstate_native_thread_id) or None
        if not self._calibrated:
            self._offset = self._calibrate()
            self._calibrated = True
        if self._offset is None or thread_id <= 0:
            return None
        try:
            tid = struct.unpack("<i", self._memory.read(thread_id + self._offset, 4))[0]
        except MemoryReadError:
            return None
        return int(tid) if tid > 0 else None

    def _calibrate(self) -> int | None:
        """The offset at which the thread structs hold the most distinct TIDs of the process.

        Distinct, not merely present: glibc's struct pthread also keeps words that equal the
        process id (the main thread's TID) in every thread, and counting those as votes once
        gave every thread the main thread's TID. Threads start and exit while we read (a
        struct of an exited thread holds a stale TID): a majority of the threads read, not
        all of them."""
        tids = self._task_ids()
        seen: dict[int, set[int]] = {}
        sampled = 0
        for thread_id in self._thread_ids[:CALIBRATION_THREADS]:
            try:
                data = self._memory.read(thread_id, PTHREAD_SCAN_BYTES)
            except MemoryReadError:
                continue
            sampled += 1
            words = struct.unpack_from(f"<{PTHREAD_SCAN_BYTES // 4}i", data)
            for index, word in enumerate(words):
                if word in tids:
                    seen.setdefault(4 * index, set()).add(word)
        if not seen:
            return None
        offset, found = max(seen.items(), key=lambda item: (len(item[1]), -item[0]))
        return offset if 2 * len(found) >= sampled else None

    def _task_ids(self) -> frozenset[int]:
        try:
            return frozenset(int(name) for name in os.listdir(f"/proc/{self._pid}/task"))
        except OSError:
            return frozenset()

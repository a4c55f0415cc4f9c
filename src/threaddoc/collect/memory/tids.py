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

from .layouts import Layout
from .memory import MemoryReadError, ProcessMemory, pointer_at

PTHREAD_SCAN_BYTES = 2048  # glibc keeps `tid` within the first ~0x300 bytes of struct pthread


class NativeThreadIds:
    def __init__(self, pid: int, memory: ProcessMemory, layout: Layout) -> None:
        self._pid = pid
        self._memory = memory
        self._layout = layout
        self._tids: frozenset[int] | None = None
        self._candidates: list[int] | None = None  # offsets still consistent with every thread seen

    def of(self, tstate: bytes, thread_id: int) -> int | None:
        if self._layout.tstate_native_thread_id >= 0:
            return pointer_at(tstate, self._layout.tstate_native_thread_id) or None
        return self._from_pthread(thread_id)

    def _from_pthread(self, thread_id: int) -> int | None:
        if thread_id <= 0:
            return None
        try:
            data = self._memory.read(thread_id, PTHREAD_SCAN_BYTES)
        except MemoryReadError:
            return None
        words = struct.unpack_from(f"<{PTHREAD_SCAN_BYTES // 4}i", data)
        tids = self._task_ids()
        matching = [4 * index for index, word in enumerate(words) if word in tids]
        if self._candidates is None:
            self._candidates = matching
        else:
            narrowed = [offset for offset in self._candidates if offset in set(matching)]
            if not narrowed:  # a thread that exited since /proc was listed: keep the calibration
                return None
            self._candidates = narrowed
        if not self._candidates:
            return None
        tid: int = words[self._candidates[0] // 4]
        return tid

    def _task_ids(self) -> frozenset[int]:
        if self._tids is None:
            try:
                self._tids = frozenset(int(name) for name in os.listdir(f"/proc/{self._pid}/task"))
            except OSError:
                self._tids = frozenset()
        return self._tids

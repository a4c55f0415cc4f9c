"""The finding kinds: the words a report's `kind` can be, and what each means.

The vocabulary is part of the JSON contract (kinds are added, never renamed or
removed), so it is kept in one place: the man page and docs/examples/ list it from
here, and the tests check that every kind a detector produces is in it.
"""

from __future__ import annotations

FINDING_KINDS: tuple[tuple[str, str], ...] = (
    ("lock-order-deadlock", "threads each hold a lock the next one waits for: a cycle"),
    ("self-deadlock", "a thread waits for a non-reentrant Lock it already holds"),
    ("join-deadlock", "a cycle through Thread.join"),
    ("executor-starvation",
     "every worker of a pool waits on futures that need a free worker of that same pool"),
    ("future-cross-wait", "futures whose tasks wait for each other's results"),
    ("blocked-shutdown", "interpreter exit or executor shutdown waits on threads that will not finish"),
    ("queue-starvation", "queue consumers or producers that no live thread will serve"),
    ("unsignalled-wait", "Event, Condition or Barrier waits that no thread is positioned to signal"),
    ("lock-held-during-io", "a thread holds a lock while blocked in I/O; others wait for the lock"),
    ("blocking-io-no-timeout", "a thread blocked in socket, pipe or file I/O with no timeout"),
    ("subprocess-pipe-deadlock", "Popen.wait() while the child's piped output is not read"),
    ("import-lock-deadlock", "threads blocked on an import lock whose import waits on them"),
    ("event-loop-blocked", "an asyncio event loop thread is inside a blocking call"),
    ("fork-inherited-lock", "a forked child waits on a lock held by a thread of its parent"),
    ("gil-held-while-blocked",
     "a thread blocked in a C call that keeps the GIL: no other thread runs Python"),
    ("cpu-bound", "informational: threads busy on a CPU (or spinning), not hung"),
    ("gil-contention", "informational: several threads share one CPU through the GIL, not hung"),
)


def kind_names() -> tuple[str, ...]:
    return tuple(kind for kind, _ in FINDING_KINDS)

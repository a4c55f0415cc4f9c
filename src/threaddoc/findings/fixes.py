"""Fix texts, kept apart from detection so each can change without the other.

Each function names the concrete change for the case at hand, with the
program's own names in it.
"""

from __future__ import annotations

from collections.abc import Sequence

from .model import Suggestion


def lock_order(locks: Sequence[str]) -> tuple[Suggestion, ...]:
    ordered = ", ".join(f"`{name}`" for name in locks)
    first, *rest = locks
    nested = f"with {first}:\n" + "".join(
        "    " * (depth + 1) + f"with {name}:\n" for depth, name in enumerate(rest)
    ) + "    " * len(locks) + "..."
    return (
        Suggestion(
            f"Acquire {ordered} in one global order in every code path "
            "(e.g. always in that order, or sorted by a stable key such as an account id).",
            nested,
        ),
        Suggestion(
            "Or hold one lock at a time: copy what you need under the first lock, release it, "
            "then take the next.",
        ),
        Suggestion(
            "To fail loudly instead of hanging while you fix it, acquire the inner lock with a "
            "timeout and raise when it expires.",
            f"if not {rest[0] if rest else first}.acquire(timeout=5):\n"
            "    raise RuntimeError('possible deadlock: lock not acquired in 5 s')",
        ),
    )


def self_deadlock(lock: str) -> tuple[Suggestion, ...]:
    return (
        Suggestion(
            f"The thread already holds `{lock}`, a non-reentrant Lock. Make it an RLock if "
            "re-entry is intended, or split the helper into a locked public method and an "
            "unlocked private one that assumes the lock is held.",
            f"{lock} = threading.RLock()",
        ),
    )


def join_cycle(threads: Sequence[str]) -> tuple[Suggestion, ...]:
    return (
        Suggestion(
            "Do not join a thread while holding a lock it needs; release the lock first, or "
            "signal the thread to stop with an Event and join it with a timeout.",
            "stop.set()\nworker.join(timeout=10)\nif worker.is_alive():\n"
            "    log.error('worker did not stop')",
        ),
    )


def executor_starvation(pool: str, size: int) -> tuple[Suggestion, ...]:
    return (
        Suggestion(
            "Submit the inner work to a separate pool, so outer tasks never wait on the pool "
            "they occupy.",
            "inner_pool = ThreadPoolExecutor(max_workers=4)\n"
            "def outer():\n    return inner_pool.submit(inner).result()",
        ),
        Suggestion(
            "Or do not block inside a worker: run the inner function directly, or chain work "
            "with `add_done_callback` instead of `result()`.",
        ),
        Suggestion(
            f"Raising `max_workers` above {size} only moves the limit: it still hangs when "
            "every worker runs an outer task at once.",
        ),
        Suggestion(
            "Meanwhile, wait with a timeout so a starved pool fails loudly instead of hanging.",
            "value = future.result(timeout=30)  # raises concurrent.futures.TimeoutError",
        ),
    )

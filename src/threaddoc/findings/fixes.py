"""Fix texts, kept apart from detection so each can change without the other.

Each function names the concrete change for the case at hand, with the
program's own names in it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from threaddoc.classify import WaitKind

from .model import ResourceRef, Suggestion


@dataclass(frozen=True)
class Breaker:
    """The acquisition that goes against the order the rest of the cycle follows."""

    thread: str
    holds: str
    acquired_at: str
    waits_for: str
    waits_at: str


def lock_order(
    locks: Sequence[ResourceRef], breaker: Breaker | None, spellings: Sequence[str]
) -> tuple[Suggestion, ...]:
    labels = [lock.label or lock.name for lock in locks]
    ordered = ", then ".join(f"`{label}`" for label in labels)
    program_locks = [lock for lock in locks if lock.library is None]
    inner = program_locks[-1].name if program_locks else locks[-1].name
    where = ""
    if breaker is not None:
        where = (f' "{breaker.thread}" breaks that order: it holds `{breaker.holds}` (acquired at '
                 f"{breaker.acquired_at}) and then waits for `{breaker.waits_for}` at {breaker.waits_at}; "
                 f"take `{breaker.waits_for}` first there.")
    library = [lock for lock in locks if lock.library is not None]
    around_library = tuple(
        Suggestion(
            f"{lock.library} holds `{lock.label}` while it runs your code ({lock.detail}): never take "
            f"an application lock ({', '.join(f'`{p.name}`' for p in program_locks)}) inside that "
            "code, or never call into it while holding one. For logging: do not log while holding "
            "a lock that a handler, filter or formatter takes; log after releasing it, or hand "
            "records to a QueueHandler.",
            "with registry_lock:\n    user = registry.lookup(name)\nlog.info('session opened for %s', user)",
        )
        for lock in library
    )
    if len(set(labels)) < len(labels):
        # Known by name only, the locks of several objects of one kind look alike: the
        # order to impose is the objects', whatever the call's arguments.
        ordered = (f"{' and '.join(f'`{name}`' for name in dict.fromkeys(spellings))} are one attribute "
                   "of different objects: take them in an order of the objects (a stable key, such "
                   "as an id), never in the order of the call's arguments")
        where = ""
    return (
        *around_library,
        Suggestion(
            f"Acquire the locks in one global order in every code path: {ordered}.{where}",
            _ordered_example(locks, spellings),
        ),
        Suggestion(
            "Or hold one lock at a time: copy what you need under the first lock, release it, "
            "then take the next.",
        ),
        Suggestion(
            "To fail loudly instead of hanging while you fix it, acquire the inner lock with a "
            "timeout and raise when it expires.",
            f"if not {inner}.acquire(timeout=5):\n"
            "    raise RuntimeError('possible deadlock: lock not acquired in 5 s')",
        ),
    )


def _ordered_example(locks: Sequence[ResourceRef], spellings: Sequence[str]) -> str:
    labels = [lock.label or lock.name for lock in locks]
    if any(lock.library is not None for lock in locks):
        return ""
    if all("@0x" in label for label in labels) or len(set(labels)) < len(labels):
        # Locks of distinct objects reached by the same code (accounts, forks): no name
        # orders them, a stable key of the objects does.
        shapes = {re.sub(r"@0x[0-9a-f]+", "", label) for label in labels}
        attribute = shapes.pop().partition(".")[2] if len(shapes) == 1 else ""
        names = list(dict.fromkeys(name.split(".")[0] for name in spellings))[:2]
        if len(names) < 2:
            names = ["a", "b"]
        if attribute:
            return (f"first, second = sorted(({names[0]}, {names[1]}), key=lambda item: item.id)\n"
                    f"with first.{attribute}:\n    with second.{attribute}:\n        ...")
        return (f"first, second = sorted(({names[0]}, {names[1]}), key=id)\n"
                "with first:\n    with second:\n        ...")
    return "".join("    " * depth + f"with {label}:\n" for depth, label in enumerate(labels)) + \
        "    " * len(labels) + "..."


def self_deadlock(expression: str, lock: str) -> tuple[Suggestion, ...]:
    return (
        Suggestion(
            f"The thread already holds {lock}, a non-reentrant Lock, when it tries to take it again. "
            "Split the code into a public method that takes the lock and a private helper that "
            "assumes it is held (and never takes it), or call callbacks after releasing the lock.",
            f"def refresh(self):\n    with {expression}:\n        self._refresh_locked()",
        ),
        Suggestion(
            "If re-entry is intended, make it an RLock: its owner may take it again.",
            f"{expression} = threading.RLock()",
        ),
    )


def join_cycle(held_while_joining: Sequence[tuple[str, str, str]]) -> tuple[Suggestion, ...]:
    specific = "".join(
        f' "{joiner}" holds `{lock}` while it joins "{joined}", which needs `{lock}` to finish: '
        f"release `{lock}` before the join."
        for joiner, lock, joined in held_while_joining
    )
    return (
        Suggestion(
            "Never join a thread while holding a lock it needs, and never let two threads join "
            f"each other.{specific}",
            "with state_lock:\n    snapshot = dict(state)\nworker.join(timeout=10)",
        ),
        Suggestion(
            "Stop threads with an Event they check, and join with a timeout that is reported.",
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


_STOP_EVENT = (
    "stop = threading.Event()\n\ndef poll():\n    while not stop.is_set():\n        collect()\n"
    "        stop.wait(0.05)  # sleeps, but wakes at once on stop\n\n"
    "# at exit:\nstop.set()\npoller.join(timeout=10)"
)


def blocked_exit(kinds: set[WaitKind]) -> tuple[Suggestion, ...]:
    suggestions = []
    if WaitKind.QUEUE_GET in kinds:
        suggestions.append(Suggestion(
            "Tell queue consumers to stop: put a sentinel (poison pill) when the producer is done, "
            "and have the consumer return when it sees it.",
            "STOP = object()\n# producer, when done:\norders.put(STOP)\n# consumer:\nwhile True:\n"
            "    order = orders.get()\n    if order is STOP:\n        return",
        ))
    suggestions.append(Suggestion(
        "Give every long-running thread a stop signal: a threading.Event checked by its loop, set "
        "at exit, followed by join(timeout=...) that is reported if it expires.",
        _STOP_EVENT,
    ))
    suggestions.append(Suggestion(
        "Make a thread daemon=True only if its work may be lost at exit (a cache refresher, not a "
        "writer): daemon threads are killed mid-work when the interpreter exits.",
    ))
    return tuple(suggestions)


def executor_shutdown(kinds: set[WaitKind]) -> tuple[Suggestion, ...]:
    return (
        Suggestion(
            "Do not let one stuck task hold the whole shutdown: shut down with "
            "shutdown(wait=False, cancel_futures=True) (Python 3.9+) when leaving early, so queued "
            "tasks are cancelled and the caller is not blocked.",
            "pool.shutdown(wait=False, cancel_futures=True)",
        ),
        Suggestion(
            "Bound every blocking call inside tasks with a timeout (socket, Event.wait, "
            "Future.result, queue.get), so a task that cannot finish fails instead of hanging.",
            "if not reply_received.wait(timeout=30):\n    raise TimeoutError('no reply in 30 s')",
        ),
        Suggestion(
            "Wait for results with a timeout before leaving the `with` block, and decide what to do "
            "with the ones that did not finish.",
            "done, not_done = concurrent.futures.wait(futures, timeout=60)",
        ),
    )


def future_cross_wait(tasks: Sequence[str]) -> tuple[Suggestion, ...]:
    names = ", ".join(f"`{task}`" for task in dict.fromkeys(tasks))
    return (
        Suggestion(
            f"Tasks must not wait for each other's results ({names}): have the code that submits "
            "them wait for both, and pass results forward (or chain with add_done_callback).",
            "parse_future = pool.submit(parse)\nindex_future = pool.submit(index)\n"
            "combine(parse_future.result(), index_future.result())  # in the submitting thread",
        ),
        Suggestion(
            "If one task really needs another's result, submit it from that task only after the "
            "dependency is done, or compute the dependency first, outside the pool.",
        ),
        Suggestion(
            "Wait with a timeout so a cycle fails loudly instead of hanging.",
            "value = future.result(timeout=30)",
        ),
    )


def process_pool_wait() -> tuple[Suggestion, ...]:
    return (
        Suggestion(
            "Wait for process-pool results with a timeout, and cancel what did not finish.",
            "try:\n    digest = future.result(timeout=60)\nexcept concurrent.futures.TimeoutError:\n"
            "    pool.shutdown(wait=False, cancel_futures=True)\n    raise",
        ),
        Suggestion(
            "Fix what the worker waits for: a task must not depend on something the parent only "
            "does after the result (write to the pipe, set the event) before it waits.",
        ),
        Suggestion(
            "Bound every blocking call inside the task with a timeout, so a stuck worker fails "
            "its future with an exception instead of never answering.",
        ),
    )


def import_lock(modules: Sequence[str]) -> tuple[Suggestion, ...]:
    module = modules[0] if modules else "the module"
    return (
        Suggestion(
            f"Never start and join threads (or wait on other threads) while importing: move that "
            f"code out of the module body of `{module}` into a function the program calls after the "
            "import, e.g. from `main()`.",
            "def start():\n    loader = threading.Thread(target=load_plugins)\n    loader.start()\n"
            "    loader.join()\n\n# in main(), after `import plugins`:\nplugins.start()",
        ),
        Suggestion(
            "If a background thread needs the module, import it in the main thread first and pass "
            "what the thread needs as arguments.",
        ),
    )


def queue_starvation(kinds: set[WaitKind], queue: str) -> tuple[Suggestion, ...]:
    suggestions = []
    if WaitKind.QUEUE_JOIN in kinds:
        suggestions.append(Suggestion(
            "Call task_done() for every item got, in a `finally`, so an error or an early "
            "`continue` cannot skip it.",
            f"while True:\n    item = {queue}.get()\n    try:\n        handle(item)\n    finally:\n"
            f"        {queue}.task_done()",
        ))
    suggestions.append(Suggestion(
        "End consumers with a sentinel (poison pill) that the producer puts when it is done, also "
        "when it fails (in a `finally`).",
        f"try:\n    for item in produce():\n        {queue}.put(item)\nfinally:\n    {queue}.put(STOP)",
    ))
    suggestions.append(Suggestion(
        "Wait with a timeout and check that the other side is still alive.",
        f"try:\n    item = {queue}.get(timeout=5)\nexcept queue.Empty:\n    if not producer.is_alive():\n"
        "        raise RuntimeError('producer died')",
    ))
    return tuple(suggestions)


def unsignalled_wait(kinds: set[WaitKind], what: str) -> tuple[Suggestion, ...]:
    signal = (f"with {what}:\n        {what}.notify_all()" if WaitKind.CONDITION_WAIT in kinds
              else f"{what}.set()")
    suggestions = [Suggestion(
        "Signal in a `finally`, so the waiter is released even when the signalling code fails.",
        f"try:\n    prepare()\nfinally:\n    {signal}",
    )]
    if WaitKind.CONDITION_WAIT in kinds:
        suggestions.append(Suggestion(
            "Wait for a condition with a predicate (wait_for): a notify() sent before the wait "
            "started is not lost, because the predicate is checked first.",
            f"with {what}:\n    {what}.wait_for(lambda: ready, timeout=30)",
        ))
    suggestions.append(Suggestion(
        "Wait with a timeout and decide what to do when it expires.",
        f"if not {what}.wait(timeout=30):\n    raise TimeoutError('not signalled in 30 s')",
    ))
    return tuple(suggestions)


def lock_held_during_io(lock: str) -> tuple[Suggestion, ...]:
    return (
        Suggestion(
            f"Do the I/O outside the critical section: prepare under `{lock}`, release it, do the "
            "call, then take the lock again only to store the result.",
            f"with {lock}:\n    key = next_key()\nreply = fetch(key)  # no lock held while waiting\n"
            f"with {lock}:\n    cache[key] = reply",
        ),
        Suggestion(
            "Put a timeout on the I/O, so a silent peer cannot hold everyone up forever.",
            "sock.settimeout(5)\nrequests.get(url, timeout=(3.05, 10))",
        ),
    )


def io_timeouts() -> tuple[Suggestion, ...]:
    return (
        Suggestion(
            "Give every client socket a timeout (socket.settimeout / create_connection(timeout=)), "
            "and every HTTP call one too: requests, urllib and http.client wait forever by default.",
            "sock = socket.create_connection((host, port), timeout=5)\n"
            "requests.get(url, timeout=(3.05, 27))",
        ),
        Suggestion("Handle the timeout: retry with backoff, or fail the request and report it."),
    )


def subprocess_pipe() -> tuple[Suggestion, ...]:
    return (
        Suggestion(
            "Use communicate(), which reads stdout and stderr while it waits: wait() with "
            "stdout=PIPE deadlocks as soon as the child writes more than the pipe holds (64 KiB).",
            "out, err = proc.communicate(timeout=60)",
        ),
        Suggestion(
            "Or do not pipe what you do not read: stdout=subprocess.DEVNULL, or a file; or "
            "subprocess.run(..., capture_output=True, timeout=60).",
        ),
    )


def event_loop_blocked() -> tuple[Suggestion, ...]:
    return (
        Suggestion(
            "Never call blocking functions in a coroutine: use the async equivalent "
            "(asyncio.sleep, asyncio.open_connection / an async HTTP client, asyncio.Lock), or "
            "push the call to a thread with asyncio.to_thread (3.9+) or loop.run_in_executor.",
            "data = await asyncio.to_thread(sock.recv, 4096)\n# or\nreader, writer = await "
            "asyncio.open_connection(host, port)\ndata = await asyncio.wait_for(reader.read(4096), 5)",
        ),
        Suggestion(
            "Run with asyncio debug mode (PYTHONASYNCIODEBUG=1) in tests: it logs callbacks that "
            "block the loop for more than 100 ms.",
        ),
    )


def fork_inherited_lock(lock: str) -> tuple[Suggestion, ...]:
    return (
        Suggestion(
            "Do not fork a process that has threads: use multiprocessing with the 'spawn' or "
            "'forkserver' start method, so children start clean.",
            "multiprocessing.set_start_method('spawn')",
        ),
        Suggestion(
            f"If you must fork, make sure `{lock}` is not held across the fork: take it before and "
            "release it on both sides with os.register_at_fork, or re-create it in the child.",
            f"os.register_at_fork(before={lock}.acquire, after_in_parent={lock}.release,\n"
            f"                    after_in_child={lock}.release)",
        ),
    )


def gil_held_while_blocked() -> tuple[Suggestion, ...]:
    return (
        Suggestion(
            "Release the GIL around the blocking C call: load a ctypes library with `ctypes.CDLL` "
            "(which releases it for every call), not `ctypes.PyDLL`; in a C extension wrap the "
            "call in Py_BEGIN_ALLOW_THREADS / Py_END_ALLOW_THREADS",
            "lib = ctypes.CDLL(path)  # not ctypes.PyDLL(path)",
        ),
        Suggestion(
            "Give the C call a timeout, or run it in a subprocess that can be killed",
        ),
    )


_REGEX_CALLS = frozenset({"match", "search", "fullmatch", "findall", "finditer", "sub", "subn", "split"})


def gil_held_while_computing(call: str | None) -> tuple[Suggestion, ...]:
    bound = Suggestion("Bound the work of the call: limit the size of its input, or split it into "
                       "pieces between which other threads can run")
    if call in _REGEX_CALLS:
        bound = Suggestion(
            f"The regular expression of `{call}()` backtracks catastrophically: remove nested "
            "quantifiers from the pattern (`(\\w+\\s?)*$` -> `[\\w\\s]*$`) and limit the length of "
            "its input",
        )
    return (
        bound,
        Suggestion(
            "Run long C computations that keep the GIL in a process pool, so that the threads of "
            "this process keep running",
            "with concurrent.futures.ProcessPoolExecutor() as pool:\n"
            "    result = pool.submit(compute, data).result(timeout=60)",
        ),
    )


def gil_contention() -> tuple[Suggestion, ...]:
    return (
        Suggestion(
            "For CPU-bound Python code use processes, not threads: only one thread runs Python "
            "code at a time",
            "with concurrent.futures.ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:\n"
            "    results = list(pool.map(work, items))",
        ),
        Suggestion("Or move the hot loop into code that releases the GIL (NumPy, hashlib on large "
                   "buffers, a C extension using Py_BEGIN_ALLOW_THREADS)"),
    )


def spin_wait() -> tuple[Suggestion, ...]:
    return (
        Suggestion(
            "Wait on a threading.Event instead of spinning on a flag, with a timeout so that a "
            "setter that died is noticed",
            "ready = threading.Event()\n"
            "# setter: ready.set()\n"
            "if not ready.wait(timeout=30):\n"
            "    raise TimeoutError(\"never became ready\")",
        ),
    )


def cpu_bound() -> tuple[Suggestion, ...]:
    return (
        Suggestion("Nothing is stuck. If it is slower than expected, profile it: "
                   "`py-spy top --pid PID` shows where the CPU time goes"),
    )


def child_process_wait(kinds: set[WaitKind]) -> tuple[Suggestion, ...]:
    """A parent waiting with no timeout on child processes that are stuck."""
    if WaitKind.POOL_RESULT in kinds:
        return (Suggestion(
            "Wait for pool results with a timeout, and terminate the pool when it expires",
            "result = pool.map_async(task, items)\ntry:\n    values = result.get(timeout=60)\n"
            "except multiprocessing.TimeoutError:\n    pool.terminate()\n    raise",
        ),)
    if WaitKind.SUBPROCESS_WAIT in kinds or WaitKind.SUBPROCESS_COMMUNICATE in kinds:
        return (Suggestion(
            "Join child processes with a timeout, and stop the ones that do not finish",
            "worker.join(timeout=60)\nif worker.is_alive():\n    worker.terminate()",
        ),)
    return process_pool_wait()[:1]

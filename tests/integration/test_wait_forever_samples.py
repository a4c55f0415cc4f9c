"""`threaddoc diagnose` against the wait-forever samples, CPython 3.8 to 3.13.

Each sample in hung_samples/ is one way a thread waits for something that will
never come, mostly with no cycle of locks to show for it: a consumer whose producer died, a
`queue.join()` that misses a `task_done()`, a producer on a full queue whose
consumer died, an Event the crashed warmer never sets, a Condition notified
before anybody waited, a lock held across a read from a silent server, a read
with no timeout, `Popen.wait()` on a child blocked on its full stdout pipe, a
module that joins at import time a thread which imports it, a coroutine that
blocks its event loop, a forked child waiting for a lock held by a thread that
stayed in the parent -- and one healthy service whose threads all idle.  Each
is started under each interpreter, diagnosed once as text and once as JSON (see
`diagnose_sample` in conftest.py; the fork sample's child through
`fork_diagnoses` below), and stopped.

Where the report points at code, the expected line is read from the sample's
source (the function, then the statement in it), never hard-coded; addresses
and PIDs are read from the running sample (psutil), never assumed.
"""

from __future__ import annotations

import ast
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from .conftest import SAMPLES as SAMPLES_DIR
from .conftest import (
    SampleDiagnosis,
    assert_clean_run,
    assert_real_tid,
    run_threaddoc,
    running_sample,
)

pytestmark = pytest.mark.integration

CONSUMER_ORPHANED = "consumer_outlives_producer.py"
JOIN_MISSING_DONE = "queue_join_missing_task_done.py"
FULL_QUEUE = "producer_blocked_on_full_queue.py"
EVENT_NEVER_SET = "event_never_set.py"
LOST_WAKEUP = "condition_lost_wakeup.py"
LOCK_DURING_IO = "lock_held_during_slow_request.py"
READ_NO_TIMEOUT = "client_read_without_timeout.py"
PIPE_DEADLOCK = "popen_wait_with_full_pipe.py"
IMPORT_THREAD = "import_starts_thread.py"
IMPORTED_MODULE = "_plugin_registry.py"  # imported by IMPORT_THREAD; not a sample of its own
LOOP_BLOCKED = "asyncio_handler_blocks_loop.py"
FORK_LOCK = "fork_while_lock_held.py"
IDLE_SERVICES = "idle_services.py"

HANGS = (CONSUMER_ORPHANED, JOIN_MISSING_DONE, FULL_QUEUE, EVENT_NEVER_SET, LOST_WAKEUP,
         LOCK_DURING_IO, READ_NO_TIMEOUT, PIPE_DEADLOCK, IMPORT_THREAD, LOOP_BLOCKED)
SAMPLES = (*HANGS, IDLE_SERVICES)  # diagnosed by PID of the sample; FORK_LOCK by its child's PID

# The kind, and the threads it must name, that each hang is diagnosed as.
EXPECTED = {
    CONSUMER_ORPHANED: ("queue-starvation", ("order-consumer",)),
    JOIN_MISSING_DONE: ("queue-starvation", ("MainThread", "indexer")),
    FULL_QUEUE: ("queue-starvation", ("ingest",)),
    EVENT_NEVER_SET: ("unsignalled-wait", ("request-handler",)),
    LOST_WAKEUP: ("unsignalled-wait", ("job-runner",)),
    LOCK_DURING_IO: ("lock-held-during-io", ("cache-refresher", "request-1", "request-2")),
    READ_NO_TIMEOUT: ("blocking-io-no-timeout", ("MainThread",)),
    PIPE_DEADLOCK: ("subprocess-pipe-deadlock", ("MainThread",)),
    IMPORT_THREAD: ("import-lock-deadlock", ("MainThread", "plugin-loader")),
    LOOP_BLOCKED: ("event-loop-blocked", ("event-loop",)),
}
# The thread the first line of the text report must name.
HEADLINE = {
    CONSUMER_ORPHANED: "order-consumer",
    JOIN_MISSING_DONE: "indexer",
    FULL_QUEUE: "ingest",
    EVENT_NEVER_SET: "request-handler",
    LOST_WAKEUP: "job-runner",
    LOCK_DURING_IO: "cache-refresher",
    READ_NO_TIMEOUT: "MainThread",
    PIPE_DEADLOCK: "MainThread",
    IMPORT_THREAD: "plugin-loader",
    LOOP_BLOCKED: "event-loop",
}
# None of these is a cycle of waits, except the import: the main thread holds the
# module's import lock and joins the thread that waits for it.
EXPECTED_VERDICT = {sample: "hang" for sample in HANGS} | {IMPORT_THREAD: "deadlock"}

DEADLOCK_KINDS = ("lock-order-deadlock", "self-deadlock", "join-deadlock", "future-cross-wait",
                  "import-lock-deadlock")
EXIT_NO_HANG = 0
EXIT_HANG = 1
UNCHECKED: Any = object()  # for assert_waits: whatever the thread's has_timeout says

Diagnose = Callable[[Path, str], SampleDiagnosis]


# ----------------------------------------------------------------------------- the samples' source


@functools.cache
def _source(filename: str) -> tuple[list[str], ast.Module]:
    source = (SAMPLES_DIR / filename).read_text(encoding="utf-8")
    return source.splitlines(), ast.parse(source, filename)


def _is_docstring(node: ast.stmt) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str))


def _lines_of(filename: str, function: str) -> list[int]:
    """The lines of code of `function` ("name", "Class.method", or "<module>" for the
    statements outside any function or class); docstrings left out."""
    _, tree = _source(filename)
    body: list[ast.stmt] = tree.body
    if function != "<module>":
        for part in function.split("."):
            found = [item for item in body
                     if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and item.name == part]
            assert len(found) == 1, f"{filename} has {len(found)} definitions named {part} ({function})"
            body = found[0].body
    statements = [node for node in body if not _is_docstring(node) and not (
        function == "<module>" and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))]
    return sorted({line for node in statements
                   for line in range(node.lineno, (node.end_lineno or node.lineno) + 1)})


@dataclass(frozen=True)
class Place:
    """One line of a file in hung_samples/: where the report should point."""

    file: Path
    function: str
    line: int
    code: str  # the line's code, stripped

    def __str__(self) -> str:
        return f"{self.file.name}:{self.line} in {self.function} ({self.code!r})"


def place(filename: str, function: str, code: str) -> Place:
    """The one line of `function` in hung_samples/<filename> that holds `code`."""
    lines, _ = _source(filename)
    found = [number for number in _lines_of(filename, function) if code in lines[number - 1]]
    assert len(found) == 1, (f"the test is wrong: {len(found)} lines of {function} in {filename} "
                             f"hold {code!r}: {found}")
    return Place(SAMPLES_DIR / filename, function, found[0], lines[found[0] - 1].strip())


# ----------------------------------------------------------------------------- helpers


def only_finding(diagnosis: SampleDiagnosis, kind: str) -> dict[str, Any]:
    findings = diagnosis.findings(kind)
    kinds = [finding["kind"] for finding in diagnosis.report["findings"]]
    assert len(findings) == 1, f"expected one {kind} finding, got {kinds}\n{diagnosis.context()}"
    return findings[0]


def finding_threads(diagnosis: SampleDiagnosis, finding: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The finding's threads by name; each must be a real thread of the sample."""
    threads = {thread["name"]: thread for thread in finding["threads"]}
    for name, thread in threads.items():
        assert_real_tid(diagnosis, thread, f"{finding['kind']} thread {name}")
    return threads


def assert_names_threads(diagnosis: SampleDiagnosis, finding: dict[str, Any], *names: str) -> None:
    named = finding_threads(diagnosis, finding)
    missing = [name for name in names if name not in named]
    assert not missing, (f"the {finding['kind']} finding does not name {missing}: "
                         f"{finding['threads']}\n{diagnosis.context()}")


def finding_text(finding: dict[str, Any]) -> str:
    """Everything a reader of the finding sees, but the suggestions."""
    parts = [finding["title"], finding["explanation"], *finding["notes"]]
    parts += [f"{thread['name']}: {thread['role']}" for thread in finding["threads"]]
    parts += [f"{item['name']} {item.get('label', '')} {item['detail']}" for item in finding["resources"]]
    parts += [f"{item['note']} {item['function']} {item['code']}" for item in finding["evidence"]]
    return "\n".join(parts)


def suggestion_text(finding: dict[str, Any]) -> str:
    return "\n".join(f"{item.get('summary', '')}\n{item.get('example') or ''}"
                     for item in finding["suggestions"])


def assert_evidence_at(diagnosis: SampleDiagnosis, finding: dict[str, Any], *places: Place) -> None:
    """Some evidence of `finding` points at each of `places` and quotes its code."""
    evidence = finding["evidence"]
    problems = []
    for expected in places:
        hits = [item for item in evidence
                if Path(item["file"]) == expected.file and item["line"] == expected.line]
        if not hits:
            problems.append(f"no evidence points at {expected}")
        elif hits[0]["code"].strip() != expected.code:
            problems.append(f"evidence at {expected} quotes {hits[0]['code']!r}")
    assert not problems, (f"the {finding['kind']} finding's evidence differs from the sample:\n  "
                          + "\n  ".join(problems) + f"\nevidence: {evidence}\n{diagnosis.context()}")


def location_problems(location: dict[str, Any] | None, expected: Place, what: str) -> list[str]:
    """How `location` (file, line, code) differs from `expected`; [] if it is that line."""
    if location is None:
        return [f"{what}: no location, expected {expected}"]
    if Path(location["file"]) != expected.file or location["line"] != expected.line:
        return [f"{what}: {location['file']}:{location['line']} ({location['code']!r}), expected {expected}"]
    if location["code"].strip() != expected.code:
        return [f"{what}: code {location['code']!r}, expected {expected.code!r}"]
    return []


def assert_waits(diagnosis: SampleDiagnosis, name: str, kind: str, at: Place,
                 has_timeout: bool | None = False) -> None:
    """Thread `name` is in the report's thread list, waiting (wait kind `kind`) at `at`.

    `has_timeout` is what the wait must say about its timeout (UNCHECKED: anything).
    """
    threads = diagnosis.threads()
    assert name in threads, f"no thread {name} in the report: {sorted(threads)}\n{diagnosis.context()}"
    thread = threads[name]
    assert_real_tid(diagnosis, thread, f"thread {name}")
    wait = thread["wait"]
    got = {"kind": wait["kind"], "at": (wait["at"] or {}).get("file"), "line": (wait["at"] or {}).get("line"),
           "has_timeout": wait["has_timeout"] if has_timeout is not UNCHECKED else UNCHECKED}
    wanted = {"kind": kind, "at": str(at.file), "line": at.line, "has_timeout": has_timeout}
    assert got == wanted, f"{name} should wait at {at}: got {got}, expected {wanted}\n{diagnosis.context()}"


def assert_hang_text(diagnosis: SampleDiagnosis, kind: str, *names: str) -> None:
    """The text report says HANG (or DEADLOCK) on its first line, naming `names`, and shows `kind`."""
    first = diagnosis.text.first_line
    assert "HANG" in first or "DEADLOCK" in first, diagnosis.context()
    assert "no hang" not in first.lower(), diagnosis.context()
    for name in names:
        assert name in first, f"the first line does not name {name}\n{diagnosis.context()}"
    assert f"] {kind} · critical" in diagnosis.text.stdout, (
        f"the text report has no critical {kind} finding\n{diagnosis.context()}")


def assert_not_a_deadlock(diagnosis: SampleDiagnosis) -> None:
    assert diagnosis.report["verdict"] != "deadlock", diagnosis.context()
    kinds = [finding["kind"] for finding in diagnosis.report["findings"]]
    wrong = [kind for kind in kinds if kind in DEADLOCK_KINDS]
    assert not wrong, f"no cycle of waits here, yet: {wrong}\n{diagnosis.context()}"


def listening_address(diagnosis: SampleDiagnosis) -> str:
    """"127.0.0.1:PORT" of the one socket the sample listens on (read with psutil while it hung)."""
    listening = [conn.laddr for conn in diagnosis.connections if conn.status == psutil.CONN_LISTEN]
    assert len(listening) == 1, f"expected one listening socket: {diagnosis.connections}"
    return f"{listening[0].ip}:{listening[0].port}"


def peer_address(diagnosis: SampleDiagnosis) -> str:
    """"127.0.0.1:PORT" of the peer of the sample's one connected socket."""
    connected = [conn.raddr for conn in diagnosis.connections if conn.raddr]
    assert len(connected) == 1, f"expected one connected socket: {diagnosis.connections}"
    return f"{connected[0].ip}:{connected[0].port}"


# ----------------------------------------------------------------------------- the fork sample


@dataclass(frozen=True)
class ForkDiagnoses:
    child: SampleDiagnosis  # the forked worker, which hangs on the inherited lock
    parent: SampleDiagnosis  # the sample's own process


def _diagnose_pid(pid: int) -> tuple[frozenset[int], Any, Any]:
    tids = frozenset(int(tid) for tid in os.listdir(f"/proc/{pid}/task"))
    text = run_threaddoc(["diagnose", str(pid), "--no-color"])
    as_json = run_threaddoc(["diagnose", str(pid), "--json"])
    return tids, text, as_json


@pytest.fixture(scope="session")
def fork_diagnoses() -> Callable[[Path], ForkDiagnoses]:
    """`fork_diagnoses(python)`: the fork sample's child and parent, diagnosed while they hung."""
    cache: dict[Path, ForkDiagnoses] = {}

    def diagnose(python: Path) -> ForkDiagnoses:
        if python not in cache:
            with running_sample(python, FORK_LOCK) as process:
                ready_file = Path(process.args[2])
                child_pid = int(Path(f"{ready_file}.child").read_text(encoding="ascii"))
                children = frozenset(child.pid for child in psutil.Process(process.pid).children())
                assert children == {child_pid}, (
                    f"{FORK_LOCK} names child {child_pid}; its children are {sorted(children)}")
                child_tids, child_text, child_json = _diagnose_pid(child_pid)
                parent_tids, parent_text, parent_json = _diagnose_pid(process.pid)
                alive = process.poll() is None and psutil.pid_exists(child_pid)
            assert alive, f"{FORK_LOCK} died while it was being diagnosed:\n{child_text.describe()}"
            cache[python] = ForkDiagnoses(
                child=SampleDiagnosis(python, FORK_LOCK, child_pid, child_tids, child_text, child_json),
                parent=SampleDiagnosis(python, FORK_LOCK, process.pid, parent_tids, parent_text,
                                       parent_json, children=children))
        return cache[python]

    return diagnose


# ----------------------------------------------------------------------------- all samples


@pytest.mark.parametrize("sample", SAMPLES)
def test_json_report_matches_schema(python_interpreter: Path, diagnose_sample: Diagnose,
                                    validate_json_report: Callable[[Any, str], None], sample: str) -> None:
    diagnosis = diagnose_sample(python_interpreter, sample)
    validate_json_report(diagnosis.report, diagnosis.sample)
    assert diagnosis.report["target"]["pid"] == diagnosis.pid, diagnosis.context()


@pytest.mark.parametrize("sample", HANGS)
def test_hang_is_diagnosed_as_its_kind(python_interpreter: Path, diagnose_sample: Diagnose,
                                       sample: str) -> None:
    diagnosis = diagnose_sample(python_interpreter, sample)
    assert_clean_run(diagnosis, EXIT_HANG)
    assert diagnosis.report["verdict"] == EXPECTED_VERDICT[sample], diagnosis.context()
    kind, names = EXPECTED[sample]
    finding = only_finding(diagnosis, kind)
    assert finding["severity"] == "critical", diagnosis.context()
    assert_names_threads(diagnosis, finding, *names)


@pytest.mark.parametrize("sample", HANGS)
def test_text_report_leads_with_the_hang(python_interpreter: Path, diagnose_sample: Diagnose,
                                         sample: str) -> None:
    diagnosis = diagnose_sample(python_interpreter, sample)
    kind, _ = EXPECTED[sample]
    assert_hang_text(diagnosis, kind, HEADLINE[sample])


@pytest.mark.parametrize("sample", [sample for sample in HANGS if sample != IMPORT_THREAD])
def test_waits_without_a_cycle_are_not_deadlocks(python_interpreter: Path, diagnose_sample: Diagnose,
                                                 sample: str) -> None:
    assert_not_a_deadlock(diagnose_sample(python_interpreter, sample))


# ----------------------------------------------------------------------------- 1-3. queues


def test_consumer_outlives_its_producer(python_interpreter: Path, diagnose_sample: Diagnose) -> None:
    diagnosis = diagnose_sample(python_interpreter, CONSUMER_ORPHANED)
    get = place(CONSUMER_ORPHANED, "book_orders", "orders.get()")
    assert_waits(diagnosis, "order-consumer", "queue-get", get)
    assert "order-producer" not in diagnosis.threads(), (
        f"the producer has died: it cannot be in the report\n{diagnosis.context()}")
    finding = only_finding(diagnosis, "queue-starvation")
    assert_evidence_at(diagnosis, finding, get)
    assert "orders" in finding_text(finding), diagnosis.context()
    assert "sentinel" in suggestion_text(finding), finding["suggestions"]


def test_queue_join_with_a_missing_task_done(python_interpreter: Path, diagnose_sample: Diagnose) -> None:
    diagnosis = diagnose_sample(python_interpreter, JOIN_MISSING_DONE)
    get = place(JOIN_MISSING_DONE, "index_documents", "documents.get()")
    join = place(JOIN_MISSING_DONE, "main", "documents.join()")
    assert_waits(diagnosis, "indexer", "queue-get", get)
    assert_waits(diagnosis, "MainThread", "queue-join", join, has_timeout=UNCHECKED)  # join() takes none
    finding = only_finding(diagnosis, "queue-starvation")
    assert_evidence_at(diagnosis, finding, get, join)
    assert "documents" in finding_text(finding), diagnosis.context()
    assert "task_done()" in suggestion_text(finding), finding["suggestions"]


def test_producer_blocked_on_a_full_queue(python_interpreter: Path, diagnose_sample: Diagnose) -> None:
    diagnosis = diagnose_sample(python_interpreter, FULL_QUEUE)
    put = place(FULL_QUEUE, "ingest_logs", "outbox.put(record)")
    assert_waits(diagnosis, "ingest", "queue-put", put)
    assert "uploader" not in diagnosis.threads(), (
        f"the consumer has died: it cannot be in the report\n{diagnosis.context()}")
    finding = only_finding(diagnosis, "queue-starvation")
    assert_evidence_at(diagnosis, finding, put)
    text = finding_text(finding)
    assert "outbox" in text and "full" in text, diagnosis.context()


# ----------------------------------------------------------------------------- 4, 5. signals


def test_event_never_set(python_interpreter: Path, diagnose_sample: Diagnose) -> None:
    diagnosis = diagnose_sample(python_interpreter, EVENT_NEVER_SET)
    wait = place(EVENT_NEVER_SET, "handle_requests", "warm.wait()")
    assert_waits(diagnosis, "request-handler", "event-wait", wait)
    assert "cache-warmer" not in diagnosis.threads(), diagnosis.context()
    finding = only_finding(diagnosis, "unsignalled-wait")
    assert_evidence_at(diagnosis, finding, wait)
    assert "warm" in finding_text(finding), diagnosis.context()
    suggestions = suggestion_text(finding)
    for fix in ("finally", "timeout"):
        assert fix in suggestions, f"no suggestion mentions {fix!r}:\n{suggestions}"


def test_condition_notified_before_the_wait(python_interpreter: Path, diagnose_sample: Diagnose) -> None:
    diagnosis = diagnose_sample(python_interpreter, LOST_WAKEUP)
    wait = place(LOST_WAKEUP, "JobQueue._run", "self._cond.wait()")
    assert_waits(diagnosis, "job-runner", "condition-wait", wait)
    assert "job-submitter" not in diagnosis.threads(), diagnosis.context()
    finding = only_finding(diagnosis, "unsignalled-wait")
    assert_evidence_at(diagnosis, finding, wait)
    assert "_cond" in finding_text(finding), diagnosis.context()
    assert "wait_for" in suggestion_text(finding), finding["suggestions"]


# ----------------------------------------------------------------------------- 6-8. I/O


def test_lock_held_during_a_read_from_a_silent_server(python_interpreter: Path,
                                                      diagnose_sample: Diagnose) -> None:
    diagnosis = diagnose_sample(python_interpreter, LOCK_DURING_IO)
    taken = place(LOCK_DURING_IO, "refresh_cache", "with cache_lock:")
    recv = place(LOCK_DURING_IO, "fetch_prices", "sock.recv(")
    waits = place(LOCK_DURING_IO, "handle_request", "with cache_lock:")
    assert_waits(diagnosis, "cache-refresher", "socket-recv", recv, has_timeout=UNCHECKED)
    for request in ("request-1", "request-2"):
        assert_waits(diagnosis, request, "lock-acquire", waits)
    finding = only_finding(diagnosis, "lock-held-during-io")
    assert_evidence_at(diagnosis, finding, taken, recv, waits)
    assert "cache_lock" in [resource["name"] for resource in finding["resources"]], (
        f"the finding's resources do not name cache_lock: {finding['resources']}")
    server = listening_address(diagnosis)
    assert server in finding_text(finding), (
        f"the finding does not name the silent server {server}\n{diagnosis.context()}")


def test_lock_held_during_io_agrees_with_the_thread_table(python_interpreter: Path,
                                                         diagnose_sample: Diagnose) -> None:
    # What the finding says about cache_lock is what the thread table says about it:
    # a Lock (module global), held by cache-refresher since `with cache_lock:`.
    diagnosis = diagnose_sample(python_interpreter, LOCK_DURING_IO)
    taken = place(LOCK_DURING_IO, "refresh_cache", "with cache_lock:")
    threads = diagnosis.threads()
    holds = [(entry["resource"]["name"], entry["how"], Path(entry["file"]), entry["line"])
             for entry in threads["cache-refresher"]["holds"]]
    assert holds == [("cache_lock", "with", taken.file, taken.line)], (
        f"cache-refresher holds {holds}, expected cache_lock since {taken}\n{diagnosis.context()}")
    problems = []
    for request in ("request-1", "request-2"):
        wait = threads[request]["wait"]
        resource = wait["resource"] or {}
        got = (resource.get("name"), resource.get("lock_type"), wait["held_by"])
        wanted = ("cache_lock", "Lock", ["cache-refresher"])
        if got != wanted:
            problems.append(f"{request} waits for (name, lock_type, held_by) {got}, expected {wanted}")
    finding = only_finding(diagnosis, "lock-held-during-io")
    locks = [resource for resource in finding["resources"] if resource["name"] == "cache_lock"]
    if [lock["lock_type"] for lock in locks] != ["Lock"]:
        problems.append(f"the finding's cache_lock resource {locks} should have the lock_type 'Lock'")
    assert not problems, "\n".join(problems) + f"\n{diagnosis.context()}"


def test_read_without_timeout_sample_holds_only_the_client_socket(python_interpreter: Path,
                                                                  diagnose_sample: Diagnose) -> None:
    # The silent server runs in a child process: the sample's one socket is the client's.
    diagnosis = diagnose_sample(python_interpreter, READ_NO_TIMEOUT)
    assert len(diagnosis.connections) == 1 and diagnosis.connections[0].raddr, (
        f"expected one connected socket: {diagnosis.connections}")
    assert len(diagnosis.children) == 1, f"expected the server's process: {sorted(diagnosis.children)}"


def test_read_without_timeout_from_a_silent_server(python_interpreter: Path,
                                                   diagnose_sample: Diagnose) -> None:
    diagnosis = diagnose_sample(python_interpreter, READ_NO_TIMEOUT)
    recv = place(READ_NO_TIMEOUT, "fetch_manifest", "sock.recv(")
    finding = only_finding(diagnosis, "blocking-io-no-timeout")
    assert_names_threads(diagnosis, finding, "MainThread")
    assert_evidence_at(diagnosis, finding, recv)
    text = finding_text(finding)
    server = peer_address(diagnosis)
    assert server in text, f"the finding does not name the peer {server}\n{diagnosis.context()}"
    assert "recvfrom" in text, f"the finding does not name the system call\n{diagnosis.context()}"


def test_read_without_timeout_thread_says_no_timeout(python_interpreter: Path,
                                                     diagnose_sample: Diagnose) -> None:
    # The finding says "no timeout" (the kernel shows recvfrom, not poll): the thread's
    # wait must say so too, not "unknown".
    diagnosis = diagnose_sample(python_interpreter, READ_NO_TIMEOUT)
    recv = place(READ_NO_TIMEOUT, "fetch_manifest", "sock.recv(")
    assert_waits(diagnosis, "MainThread", "socket-recv", recv, has_timeout=False)
    assert diagnosis.threads()["MainThread"]["kernel"]["syscall"] == "recvfrom", diagnosis.context()


def test_popen_wait_with_a_full_pipe(python_interpreter: Path, diagnose_sample: Diagnose) -> None:
    diagnosis = diagnose_sample(python_interpreter, PIPE_DEADLOCK)
    assert len(diagnosis.children) == 1, (
        f"expected one child process, got {sorted(diagnosis.children)}\n{diagnosis.context()}")
    (child,) = diagnosis.children
    wait = place(PIPE_DEADLOCK, "collect_export", "proc.wait()")
    assert_waits(diagnosis, "MainThread", "subprocess-wait", wait)
    finding = only_finding(diagnosis, "subprocess-pipe-deadlock")
    assert_evidence_at(diagnosis, finding, wait)
    text = finding_text(finding)
    assert str(child) in text, f"the finding does not name child process {child}\n{diagnosis.context()}"
    assert "write" in text, f"the finding does not say the child is blocked writing\n{diagnosis.context()}"
    assert "communicate()" in suggestion_text(finding), finding["suggestions"]


# ----------------------------------------------------------------------------- 9. import lock


def test_import_joins_a_thread_that_imports_the_module(python_interpreter: Path,
                                                       diagnose_sample: Diagnose) -> None:
    diagnosis = diagnose_sample(python_interpreter, IMPORT_THREAD)
    import_call = place(IMPORTED_MODULE, "_load_plugins", "importlib.import_module(")
    join = place(IMPORTED_MODULE, "<module>", "_loader.join()")
    imported = place(IMPORT_THREAD, "main", "import _plugin_registry")
    assert_waits(diagnosis, "MainThread", "thread-join", join)
    assert_waits(diagnosis, "plugin-loader", "import-lock", import_call, has_timeout=UNCHECKED)
    finding = only_finding(diagnosis, "import-lock-deadlock")
    assert "_plugin_registry" in finding_text(finding), (
        f"the finding does not name the module being imported\n{diagnosis.context()}")

    # The cycle: MainThread joins plugin-loader (in the module's body), plugin-loader
    # waits for the import lock of _plugin_registry, held by MainThread since its import.
    steps = {step["thread"]["name"]: step for step in finding["cycle"]}
    assert sorted(steps) == ["MainThread", "plugin-loader"], (
        f"cycle threads {sorted(steps)}\n{diagnosis.context()}")
    problems: list[str] = []
    main_step, loader_step = steps["MainThread"], steps["plugin-loader"]
    for step in (main_step, loader_step):
        assert_real_tid(diagnosis, step["thread"], f"cycle step {step['thread']['name']}")
        assert_real_tid(diagnosis, step["held_by"], f"cycle step {step['thread']['name']}, holder")
    got = {"main.via": main_step["via"], "main.held_by": main_step["held_by"]["name"],
           "loader.via": loader_step["via"], "loader.held_by": loader_step["held_by"]["name"],
           "loader.waits_for": loader_step["waits_for"]["name"]}
    wanted = {"main.via": "join", "main.held_by": "plugin-loader", "loader.via": "import",
              "loader.held_by": "MainThread", "loader.waits_for": "_plugin_registry"}
    problems += [f"{key} {got[key]!r}, expected {wanted[key]!r}" for key in wanted if got[key] != wanted[key]]
    problems += location_problems(main_step["waits_at"], join, "MainThread waits_at")
    problems += location_problems(loader_step["waits_at"], import_call, "plugin-loader waits_at")
    problems += location_problems(loader_step["taken_at"], imported, "the import lock's taken_at")
    assert not problems, ("the import-lock-deadlock cycle differs from the sample:\n  "
                          + "\n  ".join(problems) + f"\n{diagnosis.context()}")


# ----------------------------------------------------------------------------- 10. event loop


def test_coroutine_blocks_its_event_loop(python_interpreter: Path, diagnose_sample: Diagnose) -> None:
    diagnosis = diagnose_sample(python_interpreter, LOOP_BLOCKED)
    recv = place(LOOP_BLOCKED, "fetch_profile", "sock.recv(")
    assert_waits(diagnosis, "event-loop", "socket-recv", recv, has_timeout=UNCHECKED)
    finding = only_finding(diagnosis, "event-loop-blocked")
    assert_names_threads(diagnosis, finding, "event-loop")
    assert_evidence_at(diagnosis, finding, recv)
    coroutine_named = "fetch_profile" in finding["title"] or any(
        item["function"] == "fetch_profile" for item in finding["evidence"])
    assert coroutine_named, f"the finding does not name the coroutine fetch_profile\n{diagnosis.context()}"
    assert "profile-store" not in finding_threads(diagnosis, finding), (
        f"the server thread is idle, not part of the blocked loop\n{diagnosis.context()}")


# ----------------------------------------------------------------------------- 11. fork


def test_fork_sample_report_matches_schema(python_interpreter: Path,
                                           fork_diagnoses: Callable[[Path], ForkDiagnoses],
                                           validate_json_report: Callable[[Any, str], None]) -> None:
    diagnoses = fork_diagnoses(python_interpreter)
    for diagnosis in (diagnoses.child, diagnoses.parent):
        validate_json_report(diagnosis.report, f"{FORK_LOCK} (pid {diagnosis.pid})")
        assert diagnosis.report["target"]["pid"] == diagnosis.pid, diagnosis.context()


def test_forked_child_waits_for_a_lock_held_in_the_parent(
        python_interpreter: Path, fork_diagnoses: Callable[[Path], ForkDiagnoses]) -> None:
    diagnoses = fork_diagnoses(python_interpreter)
    child = diagnoses.child
    assert_clean_run(child, EXIT_HANG)
    assert child.report["verdict"] == "hang", child.context()
    assert_hang_text(child, "fork-inherited-lock", "MainThread")
    acquire = place(FORK_LOCK, "count", "with stats_lock:")
    assert_waits(child, "MainThread", "lock-acquire", acquire)
    finding = only_finding(child, "fork-inherited-lock")
    assert finding["severity"] == "critical", child.context()
    assert_names_threads(child, finding, "MainThread")
    assert_evidence_at(child, finding, acquire)
    text = finding_text(finding)
    assert "stats_lock" in text, child.context()
    locks = [resource for resource in finding["resources"] if resource["name"] == "stats_lock"]
    assert [lock["lock_type"] for lock in locks] == ["Lock"], f"{finding['resources']}\n{child.context()}"
    assert str(diagnoses.parent.pid) in text, (
        f"the finding does not name the parent process {diagnoses.parent.pid}\n{child.context()}")


def test_forking_parent_is_not_a_deadlock(python_interpreter: Path,
                                          fork_diagnoses: Callable[[Path], ForkDiagnoses]) -> None:
    parent = fork_diagnoses(python_interpreter).parent
    assert parent.text.returncode in (EXIT_NO_HANG, EXIT_HANG), parent.context()
    assert "Traceback" not in parent.text.stderr + parent.json.stderr, parent.context()
    assert_not_a_deadlock(parent)
    assert not parent.findings("fork-inherited-lock"), (
        f"the parent is not a forked child\n{parent.context()}")
    assert "stats-flusher" in parent.threads(), parent.context()


# ----------------------------------------------------------------------------- 12. idle


IDLE_THREADS = ("MainThread", "metrics-listener", "control-channel", "health-poller", "event-loop")


def test_idle_services_are_no_hang(python_interpreter: Path, diagnose_sample: Diagnose) -> None:
    diagnosis = diagnose_sample(python_interpreter, IDLE_SERVICES)
    assert_clean_run(diagnosis, EXIT_NO_HANG)
    assert diagnosis.report["verdict"] == "no-hang", diagnosis.context()
    assert "no hang" in diagnosis.text.first_line.lower(), diagnosis.context()
    critical = [finding["kind"] for finding in diagnosis.report["findings"]
                if finding["severity"] == "critical"]
    assert not critical, f"critical findings in a process that is not hung: {critical}\n{diagnosis.context()}"
    threads = diagnosis.threads()
    workers = [name for name in threads if name.startswith("render_")]
    missing = [name for name in IDLE_THREADS if name not in threads]
    assert not missing and workers, (f"the report misses threads {missing} (pool workers: {workers})\n"
                                     f"{diagnosis.context()}")

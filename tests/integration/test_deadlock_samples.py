"""`threaddoc diagnose` against the deadlock samples (and their look-alikes), CPython 3.8 to 3.13.

Each sample in hung_samples/ is one real way threads deadlock -- two locks in
opposite order, a ring of three, a helper or a callback re-taking a Lock, two
RLocks, a join under a lock, two threads joining each other, a logging handler
that takes an application lock -- or one way they merely look stuck: lock
contention, an RLock re-entered by its owner, a long computation under a lock.
Each is started under each interpreter, diagnosed once as text and once as JSON
(see `diagnose_sample` in conftest.py), and stopped.

Where the report points at code, the expected place is found in the source
(the function, then the statement in it), never as a hard-coded line number.
"""

from __future__ import annotations

import ast
import functools
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import assert_clean_run, assert_real_tid

pytestmark = pytest.mark.integration

BANK_TRANSFER = "bank_transfer_deadlock.py"
PHILOSOPHERS = "dining_philosophers.py"
HELPER_REACQUIRES = "helper_reacquires_lock.py"
CALLBACK_REENTERS = "callback_reenters_lock.py"
RLOCK_PAIR = "rlock_pair_deadlock.py"
JOIN_HOLDING_LOCK = "join_while_holding_lock.py"
JOIN_EACH_OTHER = "threads_join_each_other.py"
LOGGING_HANDLER = "logging_handler_deadlock.py"
CONTENTION = "lock_contention_progress.py"
RLOCK_OWNER = "rlock_reentered_by_owner.py"
LONG_COMPUTATION = "long_computation_holds_lock.py"

DEADLOCKS = (BANK_TRANSFER, PHILOSOPHERS, HELPER_REACQUIRES, CALLBACK_REENTERS, RLOCK_PAIR,
             JOIN_HOLDING_LOCK, JOIN_EACH_OTHER, LOGGING_HANDLER)
NOT_DEADLOCKS = (CONTENTION, RLOCK_OWNER, LONG_COMPUTATION)
SAMPLES = DEADLOCKS + NOT_DEADLOCKS

DEADLOCK_KINDS = ("lock-order-deadlock", "self-deadlock", "join-deadlock")
EXIT_NO_HANG = 0
EXIT_HANG = 1
PROBE_TIMEOUT = 30.0  # seconds for `python -c ...` asking an interpreter where its stdlib is


# ----------------------------------------------------------------------------- expected places


@dataclass(frozen=True)
class Site:
    """A statement: the one line of `function` whose code is one of `code`.

    `function` is a qualified name ("Account.transfer", "dine").  `module` None
    means the sample itself; otherwise a stdlib module of the target's
    interpreter ("logging"), whose code may differ between versions: hence
    several spellings, of which exactly one must occur in the function.
    """

    function: str
    code: tuple[str, ...]
    module: str | None = None


def site(function: str, *code: str, module: str | None = None) -> Site:
    return Site(function, code, module)


@dataclass(frozen=True)
class Step:
    """One step of an expected cycle: `thread` waits for `waits_for`, held by `held_by`."""

    thread: str
    waits_for: str  # the program's spelling: "other._lock", "right", a thread's name for a join
    lock_type: str | None
    held_by: str
    waits_at: Site
    taken_at: Site | None  # None for a join: a thread is not "taken"
    via: str = "lock"


@dataclass(frozen=True)
class Place:
    """A Site resolved for one interpreter: the file, its line, and that line's code."""

    file: Path
    line: int
    code: str


@functools.cache
def _source(path: Path) -> tuple[str, ...]:
    return tuple(path.read_text(encoding="utf-8").splitlines())


@functools.cache
def _functions(path: Path) -> dict[str, tuple[int, int]]:
    """Qualified function name -> (first line, last line) of its definition."""
    found: dict[str, tuple[int, int]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                if not isinstance(child, ast.ClassDef):
                    found[name] = (child.lineno, child.end_lineno or child.lineno)
                visit(child, name + ".")

    visit(ast.parse("\n".join(_source(path)), str(path)), "")
    return found


@functools.cache
def stdlib_file(python: Path, module: str) -> Path:
    """The file of a stdlib module, as the interpreter `python` imports it."""
    completed = subprocess.run(
        [str(python), "-I", "-c", f"import {module}; print({module}.__file__)"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=PROBE_TIMEOUT, check=False)
    assert completed.returncode == 0, f"{python} cannot import {module}: {completed.stderr}"
    return Path(completed.stdout.strip())


def resolve(diagnosis: Any, where: Site) -> Place:
    """Where `where` is, in the sample or in the stdlib of the diagnosed interpreter."""
    if where.module is None:
        path = Path(__file__).resolve().parents[2] / "hung_samples" / diagnosis.sample
    else:
        path = stdlib_file(diagnosis.python, where.module)
    functions = _functions(path)
    assert where.function in functions, f"no function {where.function} in {path}"
    first, last = functions[where.function]
    source = _source(path)
    lines = [number for number in range(first, last + 1) if source[number - 1].strip() in where.code]
    assert len(lines) == 1, (
        f"the test is ambiguous: {where.code} occurs {len(lines)} times in {where.function} of {path}")
    return Place(path, lines[0], source[lines[0] - 1].strip())


# ----------------------------------------------------------------------------- expected cycles

LOCK_ORDER_CYCLES: dict[str, tuple[Step, ...]] = {
    BANK_TRANSFER: (
        Step("alice-to-bob", "other._lock", "Lock", "bob-to-alice",
             waits_at=site("Account.transfer", "with other._lock:"),
             taken_at=site("Account.transfer", "with self._lock:")),
        Step("bob-to-alice", "other._lock", "Lock", "alice-to-bob",
             waits_at=site("Account.transfer", "with other._lock:"),
             taken_at=site("Account.transfer", "with self._lock:")),
    ),
    PHILOSOPHERS: tuple(
        Step(name, "right", "Lock", neighbour,
             waits_at=site("dine", "with right:"), taken_at=site("dine", "with left:"))
        for name, neighbour in (("aristotle", "kant"), ("kant", "spinoza"), ("spinoza", "aristotle"))
    ),
    # An RLock is taken where its holder first acquired it; the re-entry one frame
    # deeper only counts up.
    RLOCK_PAIR: (
        Step("repricer", "pricing_lock", "RLock", "rules-sync",
             waits_at=site("_reprice_item", "with pricing_lock:"),
             taken_at=site("sync_price_rules", "with pricing_lock:")),
        Step("rules-sync", "catalog_lock", "RLock", "repricer",
             waits_at=site("_apply_rules", "with catalog_lock:"),
             taken_at=site("reprice_catalog", "with catalog_lock:")),
    ),
    # The handler's lock is taken inside logging (Handler.handle: `self.acquire()`
    # up to 3.12, `with self.lock:` from 3.13); login waits for it at its own
    # logging call, the last line of the program's code before logging.
    LOGGING_HANDLER: (
        Step("http-worker", "registry_lock", "Lock", "login",
             waits_at=site("SessionTagHandler.emit", "with registry_lock:"),
             taken_at=site("log_in", "with registry_lock:")),
        Step("login", "self.lock", "RLock", "http-worker",
             waits_at=site("log_in", 'log.info("session opened for %s", user)'),
             taken_at=site("Handler.handle", "self.acquire()", "with self.lock:", module="logging")),
    ),
}

SELF_DEADLOCKS: dict[str, Step] = {
    HELPER_REACQUIRES: Step("config-reader", "self._lock", "Lock", "config-reader",
                            waits_at=site("ConfigCache._reload", "with self._lock:"),
                            taken_at=site("ConfigCache.get", "with self._lock:")),
    CALLBACK_REENTERS: Step("signup-worker", "self._lock", "Lock", "signup-worker",
                            waits_at=site("EventBus.subscribe", "with self._lock:"),
                            taken_at=site("EventBus.publish", "with self._lock:")),
}

JOIN_CYCLES: dict[str, tuple[Step, ...]] = {
    JOIN_HOLDING_LOCK: (
        Step("MainThread", "metrics-flusher", None, "metrics-flusher",
             waits_at=site("shutdown", "flusher.join()"), taken_at=None, via="join"),
        Step("metrics-flusher", "state_lock", "Lock", "MainThread",
             waits_at=site("flush", "with state_lock:"), taken_at=site("shutdown", "with state_lock:")),
    ),
    JOIN_EACH_OTHER: (
        Step("migrate-users", "migrate-orders", None, "migrate-orders",
             waits_at=site("MigrationStep.run", "self.peer.join()"), taken_at=None, via="join"),
        Step("migrate-orders", "migrate-users", None, "migrate-users",
             waits_at=site("MigrationStep.run", "self.peer.join()"), taken_at=None, via="join"),
    ),
}

# Threads that wait behind a cycle without being part of it: `blocked`, not a finding.
BLOCKED_BEHIND = {
    BANK_TRANSFER: {"MainThread"},
    PHILOSOPHERS: {"MainThread"},
    RLOCK_PAIR: {"MainThread"},
    LOGGING_HANDLER: {"MainThread"},
    HELPER_REACQUIRES: {"MainThread"},
    CALLBACK_REENTERS: {"MainThread"},
    JOIN_HOLDING_LOCK: set(),
    JOIN_EACH_OTHER: {"MainThread"},
}

EXPECTED_KIND = {
    **{sample: "lock-order-deadlock" for sample in LOCK_ORDER_CYCLES},
    **{sample: "self-deadlock" for sample in SELF_DEADLOCKS},
    **{sample: "join-deadlock" for sample in JOIN_CYCLES},
}


def expected_cycle(sample: str) -> tuple[Step, ...]:
    if sample in SELF_DEADLOCKS:
        return (SELF_DEADLOCKS[sample],)
    return {**LOCK_ORDER_CYCLES, **JOIN_CYCLES}[sample]


# ----------------------------------------------------------------------------- helpers


def location_problems(diagnosis: Any, location: dict[str, Any] | None, where: Site,
                      what: str) -> list[str]:
    """How `location` (file, line, code) differs from the statement `where`; [] if it is that one."""
    expected = resolve(diagnosis, where)
    if location is None:
        return [f"{what}: no location, expected {expected.file}:{expected.line} {expected.code!r}"]
    problems = []
    if Path(location["file"]) != expected.file:
        problems.append(f"{what}: file {location['file']}, expected {expected.file}")
    if location["line"] != expected.line:
        problems.append(f"{what}: line {location['line']} ({location['code']!r}), expected "
                        f"{expected.line} ({expected.code!r})")
    elif location["code"].strip() != expected.code:
        problems.append(f"{what}: code {location['code']!r}, expected {expected.code!r}")
    return problems


def only_finding(diagnosis: Any, kind: str) -> dict[str, Any]:
    """The one finding of `kind`; no other deadlock finding beside it."""
    findings = diagnosis.findings(kind)
    assert len(findings) == 1, f"expected one {kind} finding\n{diagnosis.context()}"
    others = [finding["kind"] for finding in diagnosis.report["findings"]
              if finding["kind"] in DEADLOCK_KINDS and finding is not findings[0]]
    assert not others, f"deadlock findings beside the {kind}: {others}\n{diagnosis.context()}"
    return findings[0]


def assert_cycle(diagnosis: Any, finding: dict[str, Any], expected: tuple[Step, ...]) -> None:
    """The cycle holds exactly the expected threads, each waiting where and for what it does.

    Every difference is listed at once, so that one run tells all that is wrong.
    """
    cycle = finding["cycle"]
    names = [step["thread"]["name"] for step in cycle]
    assert sorted(names) == sorted(step.thread for step in expected), (
        f"cycle threads {names}, expected {[step.thread for step in expected]}\n{diagnosis.context()}")
    steps = {step["thread"]["name"]: step for step in cycle}
    problems: list[str] = []
    for want in expected:
        step = steps[want.thread]
        what = f"{want.thread}"
        got = {"via": step["via"], "waits_for.name": step["waits_for"]["name"],
               "waits_for.lock_type": step["waits_for"]["lock_type"], "held_by.name": step["held_by"]["name"]}
        wanted = {"via": want.via, "waits_for.name": want.waits_for,
                  "waits_for.lock_type": want.lock_type, "held_by.name": want.held_by}
        problems += [f"{what}: {key} {got[key]!r}, expected {wanted[key]!r}"
                     for key in wanted if got[key] != wanted[key]]
        assert_real_tid(diagnosis, step["thread"], what)
        assert_real_tid(diagnosis, step["held_by"], f"{what}, holder")
        problems += location_problems(diagnosis, step["waits_at"], want.waits_at, f"{what}: waits_at")
        if want.taken_at is None:
            if step["taken_at"] is not None:
                problems.append(f"{what}: taken_at {step['taken_at']}, expected none (a thread is "
                                f"joined, not taken)")
        else:
            problems += location_problems(diagnosis, step["taken_at"], want.taken_at, f"{what}: taken_at")
    assert not problems, (f"the {finding['kind']} cycle differs from the sample:\n  "
                          + "\n  ".join(problems) + f"\n{diagnosis.context()}")


def assert_blocked_behind(diagnosis: Any, finding: dict[str, Any], sample: str) -> None:
    blocked = {entry["thread"]["name"] for entry in finding["blocked"]}
    assert blocked == BLOCKED_BEHIND[sample], (
        f"blocked behind the cycle: {sorted(blocked)}, expected {sorted(BLOCKED_BEHIND[sample])}\n"
        f"{diagnosis.context()}")
    in_cycle = {step["thread"]["name"] for step in finding["cycle"]}
    assert not blocked & in_cycle, f"threads both in the cycle and blocked behind it: {finding}"


def assert_no_deadlock(diagnosis: Any) -> None:
    report = diagnosis.report
    assert report["verdict"] != "deadlock", diagnosis.context()
    kinds = [finding["kind"] for finding in report["findings"]]
    assert not set(kinds) & set(DEADLOCK_KINDS), f"deadlock findings {kinds}\n{diagnosis.context()}"
    assert "DEADLOCK" not in diagnosis.text.first_line, diagnosis.context()


def assert_wait(diagnosis: Any, name: str, kind: str, held_by: list[str] | None = None) -> None:
    """Thread `name` waits with `kind`; `held_by` (if given) is exactly who holds what it waits for."""
    threads = diagnosis.threads()
    assert name in threads, f"thread {name} missing from threads[]: {sorted(threads)}"
    wait = threads[name]["wait"]
    assert wait["kind"] == kind, f"{name} should wait with kind {kind}, got {wait}"
    assert_real_tid(diagnosis, threads[name], f"threads[{name}]")
    if held_by is not None:
        assert wait.get("held_by") == held_by, (
            f"{name}: wait.held_by should be {held_by}, got {wait.get('held_by', '<missing>')}: {wait}")


# ----------------------------------------------------------------------------- all samples


@pytest.mark.parametrize("sample", SAMPLES)
def test_json_report_matches_schema(python_interpreter, diagnose_sample, validate_json_report,  # type: ignore[no-untyped-def]
                                    sample):
    diagnosis = diagnose_sample(python_interpreter, sample)
    validate_json_report(diagnosis.report, diagnosis.sample)
    assert diagnosis.report["target"]["pid"] == diagnosis.pid, diagnosis.context()


# ----------------------------------------------------------------------------- deadlocks


@pytest.mark.parametrize("sample", DEADLOCKS)
def test_deadlock_verdict(python_interpreter, diagnose_sample, sample):  # type: ignore[no-untyped-def]
    diagnosis = diagnose_sample(python_interpreter, sample)
    assert_clean_run(diagnosis, EXIT_HANG)
    assert diagnosis.report["verdict"] == "deadlock", diagnosis.context()
    finding = only_finding(diagnosis, EXPECTED_KIND[sample])
    assert finding["severity"] == "critical", finding
    assert "DEADLOCK" in diagnosis.text.first_line, diagnosis.context()


@pytest.mark.parametrize("sample", DEADLOCKS)
def test_deadlock_cycle(python_interpreter, diagnose_sample, sample):  # type: ignore[no-untyped-def]
    diagnosis = diagnose_sample(python_interpreter, sample)
    finding = only_finding(diagnosis, EXPECTED_KIND[sample])
    assert_cycle(diagnosis, finding, expected_cycle(sample))


@pytest.mark.parametrize("sample", DEADLOCKS)
def test_threads_behind_the_cycle_are_blocked_not_findings(python_interpreter, diagnose_sample,  # type: ignore[no-untyped-def]
                                                           sample):
    diagnosis = diagnose_sample(python_interpreter, sample)
    finding = only_finding(diagnosis, EXPECTED_KIND[sample])
    assert_blocked_behind(diagnosis, finding, sample)


@pytest.mark.parametrize("sample", sorted(SELF_DEADLOCKS))
def test_self_deadlock_holds_what_it_waits_for(python_interpreter, diagnose_sample, sample):  # type: ignore[no-untyped-def]
    diagnosis = diagnose_sample(python_interpreter, sample)
    cycle = only_finding(diagnosis, "self-deadlock")["cycle"]
    assert len(cycle) == 1, f"a self-deadlock is one step: {cycle}"
    (step,) = cycle
    assert step["thread"]["name"] == step["held_by"]["name"], step
    assert step["thread"]["os_thread_id"] == step["held_by"]["os_thread_id"], step
    name = step["thread"]["name"]
    # In threads[] too, it waits for a lock held by itself, taken at taken_at.
    assert_wait(diagnosis, name, "lock-acquire", held_by=[name])
    holds = diagnosis.threads()[name]["holds"]
    taken = [entry for entry in holds if entry["line"] == step["taken_at"]["line"]
             and entry["resource"]["name"] == step["waits_for"]["name"]]
    assert taken, f"{name} holds nothing taken at {step['taken_at']} (holds {holds})"


def test_threads_joining_each_other_is_confirmed(python_interpreter, diagnose_sample):  # type: ignore[no-untyped-def]
    # Both edges are read from the stacks (who joins which Thread object): nothing is inferred.
    diagnosis = diagnose_sample(python_interpreter, JOIN_EACH_OTHER)
    finding = only_finding(diagnosis, "join-deadlock")
    assert finding["confidence"] == "confirmed", finding


def test_bank_transfer_text_tells_the_two_accounts_apart(python_interpreter, diagnose_sample):  # type: ignore[no-untyped-def]
    # Both threads wait for `other._lock`: the report must say whose.
    diagnosis = diagnose_sample(python_interpreter, BANK_TRANSFER)
    first = diagnosis.text.first_line
    for name in ("alice-to-bob", "bob-to-alice"):
        assert name in first, f"the first line does not name {name}\n{diagnosis.context()}"
    labels = set(re.findall(r"Account@0x[0-9a-f]+\._lock", first))
    assert len(labels) == 2, f"the first line should name both Account@0x…._lock\n{diagnosis.context()}"


def test_dining_philosophers_text_names_the_ring(python_interpreter, diagnose_sample):  # type: ignore[no-untyped-def]
    diagnosis = diagnose_sample(python_interpreter, PHILOSOPHERS)
    first = diagnosis.text.first_line
    for name in ("aristotle", "kant", "spinoza"):
        assert name in first, f"the first line does not name {name}\n{diagnosis.context()}"


def test_helper_reacquire_text_names_thread_and_lock(python_interpreter, diagnose_sample):  # type: ignore[no-untyped-def]
    diagnosis = diagnose_sample(python_interpreter, HELPER_REACQUIRES)
    first = diagnosis.text.first_line
    assert "config-reader" in first, diagnosis.context()
    assert re.search(r"ConfigCache@0x[0-9a-f]+\._lock", first), diagnosis.context()


def test_logging_handler_text_names_both_locks(python_interpreter, diagnose_sample):  # type: ignore[no-untyped-def]
    diagnosis = diagnose_sample(python_interpreter, LOGGING_HANDLER)
    first = diagnosis.text.first_line
    for name in ("http-worker", "login", "registry_lock"):
        assert name in first, f"the first line does not name {name}\n{diagnosis.context()}"
    assert re.search(r"SessionTagHandler@0x[0-9a-f]+", first), diagnosis.context()


def test_logging_threads_hold_only_their_locks(python_interpreter, diagnose_sample):  # type: ignore[no-untyped-def]
    # Logger.handle() takes no lock: only the handler's lock and registry_lock are held.
    diagnosis = diagnose_sample(python_interpreter, LOGGING_HANDLER)
    threads = diagnosis.threads()
    held = {name: [entry["resource"]["name"] for entry in threads[name]["holds"]]
            for name in ("http-worker", "login")}
    assert held["login"] == ["registry_lock"], held
    assert len(held["http-worker"]) == 1, held


def test_rlock_pair_waits_are_rlock_waits(python_interpreter, diagnose_sample):  # type: ignore[no-untyped-def]
    diagnosis = diagnose_sample(python_interpreter, RLOCK_PAIR)
    assert_wait(diagnosis, "repricer", "rlock-acquire", held_by=["rules-sync"])
    assert_wait(diagnosis, "rules-sync", "rlock-acquire", held_by=["repricer"])


# ----------------------------------------------------------------------------- not deadlocks


def test_lock_contention_is_no_hang(python_interpreter, diagnose_sample):  # type: ignore[no-untyped-def]
    diagnosis = diagnose_sample(python_interpreter, CONTENTION)
    assert_clean_run(diagnosis, EXIT_NO_HANG)
    assert_no_deadlock(diagnosis)
    first = diagnosis.text.first_line.lower()
    assert "no hang" in first or "busy, not hung" in first, diagnosis.context()


def test_rlock_reentered_by_owner_is_not_a_deadlock(python_interpreter, diagnose_sample):  # type: ignore[no-untyped-def]
    diagnosis = diagnose_sample(python_interpreter, RLOCK_OWNER)
    assert_no_deadlock(diagnosis)
    assert_wait(diagnosis, "lookup", "rlock-acquire", held_by=["indexer"])
    assert_wait(diagnosis, "indexer", "sleep")
    holds = diagnosis.threads()["indexer"]["holds"]
    assert len(holds) >= 4 and {entry["resource"]["lock_type"] for entry in holds} == {"RLock"}, holds


def test_long_computation_under_lock_is_no_hang(python_interpreter, diagnose_sample):  # type: ignore[no-untyped-def]
    diagnosis = diagnose_sample(python_interpreter, LONG_COMPUTATION)
    assert_clean_run(diagnosis, EXIT_NO_HANG)
    assert_no_deadlock(diagnosis)
    first = diagnosis.text.first_line.lower()
    assert "no hang" in first or "busy, not hung" in first, diagnosis.context()
    assert_wait(diagnosis, "cruncher", "running")
    for reader in ("reader-1", "reader-2"):
        assert_wait(diagnosis, reader, "lock-acquire", held_by=["cruncher"])

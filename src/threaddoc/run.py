"""`threaddoc run -- CMD`: run a command, and make it explain itself when it hangs.

CMD runs with threaddoc's own stdin, stdout, stderr and other open files (inherited,
never piped), in a session and process group of its own, so that its whole tree can
be signalled.  When it is still running after DURATION, or whenever threaddoc gets
SIGQUIT (Ctrl-\\), the Python processes of its tree are diagnosed and the report goes
to stderr: stdout belongs to the command.  With `--kill` the tree is then stopped.

The main thread only waits: for the command to end, for the timer, for signals (they
arrive as bytes on a wakeup pipe, so no work happens in a signal handler) and for the
diagnosis.  The diagnosis runs in a thread of its own, so that a Ctrl-C or SIGTERM is
passed on at once even while py-spy is reading the target.
"""

from __future__ import annotations

import ctypes
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import ClassVar, Optional, Union

import psutil

from threaddoc.collect.guardian import GUARDIAN
from threaddoc.collect.process import process_facts
from threaddoc.collect.pyspy import process_state, release_if_left_stopped
from threaddoc.errors import ThreaddocError, UsageError
from threaddoc.files import write_private
from threaddoc.pipeline import Failure, Report, group_reports
from threaddoc.render import json as json_render
from threaddoc.render import text as text_render
from threaddoc.sanitize import clean_line

EXIT_HUNG_AND_KILLED = 124  # as timeout(1): still running at the deadline, so stopped
EXIT_CANNOT_EXECUTE = 126   # as shells: found, but not executable
EXIT_NOT_FOUND = 127        # as shells: no such command

KILL_GRACE_SECONDS = 5.0    # --kill: from SIGTERM to SIGKILL
STOP_GRACE_SECONDS = 10.0   # threaddoc told to stop: how long the command may take to follow
EXIT_WAIT_SECONDS = 5.0     # for processes to disappear after SIGKILL
DIAGNOSIS_ABORT_SECONDS = 5.0
LOOP_WAKE_SECONDS = 1.0     # the loop re-checks at least this often, should a wakeup be lost

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_STOPPING = (signal.SIGTERM, signal.SIGHUP)
_DIAGNOSIS_DONE = 0  # the byte the diagnosis thread writes to the wakeup pipe; no signal is 0


class CommandNotFound(ThreaddocError):
    exit_code = EXIT_NOT_FOUND


class CommandNotExecutable(ThreaddocError):
    exit_code = EXIT_CANNOT_EXECUTE


# --------------------------------------------------------------------------- durations

_NUMBER = r"[0-9]+(?:\.[0-9]+)?"  # ASCII digits only: \d also matches other scripts' digits
_UNITS = re.compile(rf"(?:(?P<h>{_NUMBER})h)?(?:(?P<m>{_NUMBER})m)?(?:(?P<s>{_NUMBER})s)?")
_SECONDS_PER_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str) -> float:
    """Seconds in `90`, `1.5`, `30s`, `10m`, `1h30m`: a bare number is seconds; otherwise
    numbers with the units h, m and s, each at most once and in that order."""
    forms = "give seconds (90, 1.5) or numbers with units h, m, s in that order (30s, 10m, 1h30m)"
    if re.fullmatch(_NUMBER, text):
        seconds = float(text)
    else:
        match = _UNITS.fullmatch(text)
        if match is None or not any(match.groups()):
            raise ValueError(f"{text!r} is not a duration: {forms}")
        seconds = sum(float(value) * _SECONDS_PER_UNIT[unit]
                      for unit, value in match.groupdict().items() if value)
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a duration longer than 0: {forms}")
    return seconds


def format_duration(seconds: float) -> str:
    """`3s`, `1.5s`, `1m30s`, `1h30m`: the way `parse_duration` reads them."""
    if seconds < 60:
        return f"{round(seconds, 1):g}s"
    whole = round(seconds)
    hours, minutes, rest = whole // 3600, whole % 3600 // 60, whole % 60
    parts = [(hours, "h"), (minutes, "m"), (rest, "s")]
    return "".join(f"{value}{unit}" for value, unit in parts if value)


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class RunPlan:
    command: tuple[str, ...]
    after: float | None            # diagnose when still running after this many seconds
    kill: bool                     # stop the tree after a diagnosis
    json_file: Path | None         # also write the JSON report here
    diagnose: Callable[[int], Report]  # one process with its Python descendants


def supervise(plan: RunPlan) -> int:
    """Run the command to its end (or, with --kill, to its first diagnosis); the exit status."""
    if plan.json_file is not None:
        check_writable(plan.json_file)
    with SignalInbox() as inbox:
        process = start_command(plan.command, inbox.ignored_at_start)
        return _Supervisor(plan, process, inbox).run()


def check_writable(path: Path) -> None:
    """Refuse a --json-file that cannot be written now rather than when the command hangs."""
    directory = path.parent
    if path.is_dir():
        raise UsageError(f"--json-file {path} is a directory", "give the path of a file")
    if not directory.is_dir() or not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"--json-file {path}: cannot create files in {directory}",
                         "give a path in an existing, writable directory")


# --------------------------------------------------------------------------- starting


def start_command(command: Sequence[str], ignored: Iterable[int]) -> subprocess.Popen[bytes]:
    """Start CMD in a new session, hence a process group of its own: its whole tree can be
    signalled without signalling threaddoc, and, having no controlling terminal, it is
    never stopped for reading or writing the terminal (SIGTTIN, SIGTTOU) while threaddoc
    keeps the terminal's Ctrl-C and Ctrl-\\ (passed on, or used to diagnose)."""
    try:
        return subprocess.Popen(
            list(command),
            start_new_session=True,
            # Pass every inherited descriptor on, as a shell does (make's jobserver pipes, a
            # CI runner's extra fds); threaddoc's own are close-on-exec.
            close_fds=False,
            preexec_fn=_child_setup(os.getpid(), tuple(ignored)),
        )
    except FileNotFoundError:
        raise CommandNotFound(f"command not found: {clean_line(command[0])}",
                              "check its name and PATH, or give its path") from None
    except PermissionError:
        if os.path.isdir(command[0]):
            raise CommandNotExecutable(f"cannot execute {clean_line(command[0])}: it is a directory",
                                       "give the program to run") from None
        raise CommandNotExecutable(f"cannot execute {clean_line(command[0])}: permission denied",
                                   "make it executable (chmod +x) or run it with its interpreter, "
                                   "e.g. `threaddoc run -- python script.py`") from None
    except OSError as error:
        raise CommandNotExecutable(f"cannot execute {clean_line(command[0])}: {error.strerror}",
                                   "run it with its interpreter, e.g. `threaddoc run -- sh script`") from None


_PR_SET_PDEATHSIG = 1


def _child_setup(parent: int, ignored: tuple[int, ...]) -> Callable[[], None]:
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork: no dlopen in the child

    def setup() -> None:
        # Should threaddoc be SIGKILLed (it cannot pass that on), the command gets SIGTERM.
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # threaddoc died before the prctl took effect
            os._exit(128 + signal.SIGTERM)  # (SIGTERM itself would reach threaddoc's inherited handler)
        # Signals the caller ignored (a background job ignores SIGQUIT) stay ignored in the
        # command, although threaddoc catches them.
        for signum in ignored:
            signal.signal(signum, signal.SIG_IGN)

    return setup


# --------------------------------------------------------------------------- signals


_Handler = Union[Callable[[int, Optional[FrameType]], object], int, signal.Handlers, None]


def _noted(signum: int, frame: FrameType | None) -> None:
    """The signal's number is already on the wakeup pipe; the main loop acts on it."""


class SignalInbox:
    """Signals as events with a timeout: each caught signal writes its number to a pipe
    (signal.set_wakeup_fd), which `wait` reads."""

    CAUGHT: ClassVar[tuple[int, ...]] = (signal.SIGCHLD, signal.SIGQUIT, *_FORWARDED)

    def __init__(self) -> None:
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._open = True
        self._previous_fd = -1
        self._previous: dict[int, _Handler] = {}
        self.ignored_at_start: tuple[int, ...] = ()

    def __enter__(self) -> SignalInbox:
        self._previous_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        ignored = []
        for signum in self.CAUGHT:
            if signal.getsignal(signum) == signal.SIG_IGN and signum != signal.SIGCHLD:
                ignored.append(signum)
                if signum in _FORWARDED:
                    continue  # ignored by our caller: nothing to pass on, and the command inherits it
            self._previous[signum] = signal.signal(signum, _noted)
        self.ignored_at_start = tuple(ignored)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(self._previous_fd)
        self._open = False  # before closing: a diagnosis thread that outlived an abort may still wake us
        os.close(self._read)
        os.close(self._write)

    def wait(self, timeout: float) -> list[int]:
        """The signals that arrived, waiting up to `timeout` seconds for the first."""
        ready, _, _ = select.select([self._read], [], [], max(0.0, timeout))
        if not ready:
            return []
        try:
            return list(os.read(self._read, 4096))
        except BlockingIOError:
            return []

    def wake(self) -> None:
        """Wake `wait` from another thread (a full pipe is awake already)."""
        if self._open:
            with suppress(OSError):
                os.write(self._write, bytes([_DIAGNOSIS_DONE]))


# --------------------------------------------------------------------------- the tree


def has_exited(pid: int) -> bool:
    """Whether our child `pid` has ended, without reaping it: while it is a zombie its PID,
    which is also its process group's ID, cannot be reused, so signalling the group stays
    safe until we reap it."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def descendants(root: int) -> list[psutil.Process]:
    try:
        return list(psutil.Process(root).children(recursive=True))
    except psutil.Error:
        return []


def _alive(process: psutil.Process) -> bool:
    """Running, and still the same process (psutil compares start times: PIDs get reused)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def python_tops(root: int) -> tuple[list[int], list[str]]:
    """The Python processes of the tree nearest to its root, and the names of the tree's
    processes.  Each is diagnosed with its Python descendants (`children=True`), so a shell,
    make or tox in between is passed over and pytest-xdist's workers are diagnosed together
    with the pytest that waits on them."""
    members = []
    with suppress(psutil.Error):
        members = [psutil.Process(root), *descendants(root)]
    parent_of = {member.pid: _ppid(member) for member in members}
    python = {pid for pid in parent_of if _is_python(pid)}
    tops = [pid for pid in parent_of if pid in python and not _under(pid, python, parent_of)]
    return tops, [_name(member) for member in members]


def _under(pid: int, python: set[int], parent_of: dict[int, int | None]) -> bool:
    parent = parent_of.get(pid)
    while parent in parent_of:
        if parent in python:
            return True
        parent = parent_of.get(parent)
    return False


def _is_python(pid: int) -> bool:
    try:
        process_facts(pid)
    except ThreaddocError:
        return False
    return True


def _ppid(process: psutil.Process) -> int | None:
    try:
        return process.ppid()
    except psutil.Error:
        return None


def _name(process: psutil.Process) -> str:
    try:
        return str(process.name())
    except psutil.Error:
        return str(process.pid)


def stopped_pids(root: int) -> set[int]:
    return {pid for pid in (root, *(p.pid for p in descendants(root))) if process_state(pid) in ("T", "t")}


def release_stopped(root: int, stopped_before: set[int]) -> None:
    """A py-spy killed mid-attach can leave a process stopped (or a stop pending): continue
    every process of the tree that was not stopped before the diagnosis."""
    for pid in (root, *(p.pid for p in descendants(root))):
        release_if_left_stopped(pid, was_stopped=pid in stopped_before)


def kill_tree(root: int, grace: float | None) -> list[int]:
    """SIGTERM, then SIGKILL after `grace` seconds (at once if None), to the command's
    process group and to each descendant that left it, found before the first signal and
    again before the last.  Returns the PIDs still alive at the end."""
    members = descendants(root)
    if grace is not None:
        _signal_tree(root, members, signal.SIGTERM)
        _wait_until_gone(root, members, grace)
        members = _with_new_descendants(root, members)
    _signal_tree(root, members, signal.SIGKILL)
    _wait_until_gone(root, members, EXIT_WAIT_SECONDS)
    survivors = [member.pid for member in members if _alive(member)]
    return ([] if has_exited(root) else [root]) + survivors


def _signal_tree(root: int, members: Sequence[psutil.Process], signum: int) -> None:
    _signal_group(root, signum)
    for member in members:
        if _group_of(member.pid) != root:
            _signal_process(member, signum)
    if signum != signal.SIGKILL:
        # A stopped process would act on the signal only once continued.
        _signal_group(root, signal.SIGCONT)
        for member in members:
            if _group_of(member.pid) != root:
                _signal_process(member, signal.SIGCONT)


def _signal_group(root: int, signum: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(root, signum)


def _signal_process(process: psutil.Process, signum: int) -> None:
    with suppress(psutil.Error):
        process.send_signal(signum)  # refuses a PID that now belongs to another process


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _wait_until_gone(root: int, members: Sequence[psutil.Process], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if has_exited(root) and not any(_alive(member) for member in members):
            return
        time.sleep(0.05)


def _with_new_descendants(root: int, members: Sequence[psutil.Process]) -> list[psutil.Process]:
    """Children started during the grace period (a test runner replacing a worker), also of
    members whose parent has died and which the kernel gave to another parent."""
    known = {member.pid: member for member in members}
    for member in members:
        if _alive(member):
            for child in _children(member):
                known.setdefault(child.pid, child)
    for child in descendants(root):
        known.setdefault(child.pid, child)
    return list(known.values())


def _children(process: psutil.Process) -> list[psutil.Process]:
    try:
        return list(process.children(recursive=True))
    except psutil.Error:
        return []


def exit_status(returncode: int) -> int:
    """As shells report it: 128+N for a command ended by signal N."""
    return 128 - returncode if returncode < 0 else returncode


# --------------------------------------------------------------------------- diagnosis


@dataclass(frozen=True)
class Outcome:
    text: str = ""        # the text report, for stderr
    document: str = ""    # the JSON report, for --json-file
    failure: str = ""     # why there is no report: one line, without the "threaddoc: " prefix


def diagnose_tree(root: int, diagnose: Callable[[int], Report], color: bool) -> Outcome:
    tops, names = python_tops(root)
    if not tops:
        listed = ", ".join(dict.fromkeys(names)) or "it has exited"
        return Outcome(failure=f"no Python process in its process tree ({listed}) — threaddoc "
                               "diagnoses Python programs (CPython 3.8 to 3.13) and what they start")
    reports, failures = [], []
    for pid in tops:
        try:
            reports.append(diagnose(pid))
        except ThreaddocError as error:
            failures.append(Failure(pid, error.one_line().removeprefix("threaddoc: ")))
    if not reports:
        if len(failures) == 1:
            return Outcome(failure=failures[0].message)
        return Outcome(failure="; ".join(f"pid {failure.pid}: {failure.message}" for failure in failures))
    style = text_render.Style(color=color)
    if len(reports) == 1 and not failures:
        return Outcome("\n".join(text_render.render(reports[0], style)) + "\n",
                       json_render.render(reports[0], pretty=False))
    many = group_reports(reports, failures)
    return Outcome("\n".join(text_render.render_many(many, style)) + "\n",
                   json_render.render_many(many, pretty=False))


class _Diagnosis:
    """One diagnosis of the tree, in a thread; it wakes the main loop when it is done."""

    def __init__(self, root: int, diagnose: Callable[[int], Report], wake: Callable[[], None]) -> None:
        self.root = root
        self.started = time.monotonic()
        self.stopped_before = stopped_pids(root)
        self.outcome = Outcome(failure="the diagnosis did not finish")
        self._diagnose = diagnose
        self._wake = wake
        self._thread = threading.Thread(target=self._run, name="threaddoc-diagnosis", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            color = text_render.use_color(sys.stderr is not None and sys.stderr.isatty())
            self.outcome = diagnose_tree(self.root, self._diagnose, color)
        except Exception as error:  # it must end with an outcome, whatever happens
            self.outcome = Outcome(failure=f"internal error: {type(error).__name__}: {error} — please "
                                           "report it")
        finally:
            self._wake()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def abort(self) -> None:
        """Kill the py-spy processes it runs (our children other than the command; each leads
        its own process group) until the thread gives up, then continue whatever they left
        stopped."""
        deadline = time.monotonic() + DIAGNOSIS_ABORT_SECONDS
        while not self.done and time.monotonic() < deadline:
            for helper in _children_of_threaddoc(exclude=self.root):
                _kill_helper(helper)
            self._thread.join(timeout=0.1)
        self.finish()

    def finish(self) -> None:
        release_stopped(self.root, self.stopped_before)


def _children_of_threaddoc(exclude: int) -> list[psutil.Process]:
    """py-spy processes: our children but the command and the guardian (which must outlive
    us, should we be killed: collect/guardian.py)."""
    spared = (exclude, GUARDIAN.pid)
    try:
        return [child for child in psutil.Process().children() if child.pid not in spared]
    except psutil.Error:
        return []


def _kill_helper(helper: psutil.Process) -> None:
    if _group_of(helper.pid) == helper.pid:
        _signal_group(helper.pid, signal.SIGKILL)
    _signal_process(helper, signal.SIGKILL)


# --------------------------------------------------------------------------- the loop


class _Supervisor:
    def __init__(self, plan: RunPlan, process: subprocess.Popen[bytes], inbox: SignalInbox) -> None:
        self.plan = plan
        self.process = process
        self.pid = process.pid
        self.inbox = inbox
        self.started = time.monotonic()
        self.deadline = self.started + plan.after if plan.after is not None else None
        self.stop_deadline: float | None = None  # set when threaddoc is told to stop
        self.diagnosis: _Diagnosis | None = None
        self.name = _display(plan.command)

    def run(self) -> int:
        while not has_exited(self.pid):
            if self._report_if_diagnosed() and self.plan.kill and not has_exited(self.pid):
                return self._kill_as_hung()
            if self._stop_grace_is_over():
                break
            self._diagnose_if_due()
            for signum in self.inbox.wait(self._until_next_event()):
                self._on_signal(signum)
        if not self._report_if_diagnosed() and self.diagnosis is not None:
            self.diagnosis.abort()  # the command ended: nothing is hung any more
        return exit_status(self._reap())

    def _report_if_diagnosed(self) -> bool:
        if self.diagnosis is None or not self.diagnosis.done:
            return False
        self._report(self.diagnosis)
        self.diagnosis = None
        return True

    def _stop_grace_is_over(self) -> bool:
        """Told to stop, the command did not: kill it rather than leave it orphaned."""
        if self.stop_deadline is None or time.monotonic() < self.stop_deadline:
            return False
        self._say(f"{self.name} did not stop within {format_duration(STOP_GRACE_SECONDS)} of being "
                  "told to: killing it (SIGKILL)")
        self._warn_survivors(kill_tree(self.pid, grace=None))
        return True

    def _diagnose_if_due(self) -> None:
        if self.deadline is None or time.monotonic() < self.deadline:
            return
        self.deadline = None
        if self.diagnosis is None:  # else the one a SIGQUIT started answers for the timer too
            self._start_diagnosis(f"is still running after {format_duration(self.plan.after or 0)}")

    def _until_next_event(self) -> float:
        now = time.monotonic()
        wake = [now + LOOP_WAKE_SECONDS]
        wake += [t for t in (self.deadline, self.stop_deadline) if t is not None]
        return min(wake) - now

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGQUIT:
            if self.stop_deadline is None and self.diagnosis is None:
                self._start_diagnosis(f"got SIGQUIT after {format_duration(self._elapsed())}")
        elif signum in _FORWARDED:
            self._forward(signum)

    def _forward(self, signum: int) -> None:
        _signal_group(self.pid, signum)
        if signum not in _STOPPING:
            return  # Ctrl-C is the command's to handle, as it would be without threaddoc
        _signal_group(self.pid, signal.SIGCONT)  # a stopped process acts on SIGTERM only when continued
        if self.stop_deadline is None:
            self.stop_deadline = time.monotonic() + STOP_GRACE_SECONDS
            self.deadline = None
            self._say(f"got {signal.Signals(signum).name}: passed it on to {self.name} (pid {self.pid}); "
                      f"it is killed if still running in {format_duration(STOP_GRACE_SECONDS)}")
        if self.diagnosis is not None:
            self.diagnosis.abort()
            self.diagnosis = None

    def _start_diagnosis(self, why: str) -> None:
        self._say(f"{self.name} (pid {self.pid}) {why}: diagnosing it")
        self.diagnosis = _Diagnosis(self.pid, self.plan.diagnose, self.inbox.wake)

    def _report(self, diagnosis: _Diagnosis) -> None:
        diagnosis.finish()
        outcome = diagnosis.outcome
        runs_on = "" if self.plan.kill else (f"; {self.name} keeps running (--kill would stop it); "
                                             f"`kill -QUIT {os.getpid()}` diagnoses it again")
        if outcome.failure:
            self._say(f"could not diagnose {self.name} (pid {self.pid}): {outcome.failure}{runs_on}")
            return
        _write_stderr(outcome.text)
        if self.plan.json_file is not None:
            self._write_json(outcome.document)
        self._say(f"diagnosed in {format_duration(time.monotonic() - diagnosis.started)}{runs_on}")

    def _write_json(self, document: str) -> None:
        assert self.plan.json_file is not None
        try:
            write_private(self.plan.json_file, document)
        except OSError as error:
            self._say(f"could not write the JSON report to {self.plan.json_file}: "
                      f"{error.strerror or error} — check that the directory exists and is writable")

    def _kill_as_hung(self) -> int:
        self._say(f"stopping {self.name} (pid {self.pid}) and its descendants (--kill): SIGTERM, then "
                  f"SIGKILL after {format_duration(KILL_GRACE_SECONDS)}")
        self._warn_survivors(kill_tree(self.pid, grace=KILL_GRACE_SECONDS))
        self._reap()
        self._say(f"{self.name} hung and was killed after {format_duration(self._elapsed())}: "
                  f"exit status {EXIT_HUNG_AND_KILLED}")
        return EXIT_HUNG_AND_KILLED

    def _warn_survivors(self, survivors: list[int]) -> None:
        if survivors:
            self._say(f"processes {', '.join(map(str, survivors))} survived SIGKILL (uninterruptible "
                      "sleep?) — check them with `ps -o pid,stat,wchan -p PID`")

    def _reap(self) -> int:
        try:
            return self.process.wait(timeout=EXIT_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            return -signal.SIGKILL

    def _elapsed(self) -> float:
        return time.monotonic() - self.started

    @staticmethod
    def _say(message: str) -> None:
        _write_stderr(clean_line(" ".join(f"threaddoc: {message}".split())) + "\n")


def _display(command: Sequence[str], limit: int = 72) -> str:
    joined = clean_line(shlex.join([os.path.basename(command[0]), *command[1:]]))
    return f"`{joined if len(joined) <= limit else joined[:limit - 1] + '…'}`"


def _write_stderr(text: str) -> None:
    """One write, so that the report is not interleaved line by line with the command's output;
    a closed stderr must not change the exit status."""
    if sys.stderr is None:  # started with stderr closed
        return
    with suppress(OSError):
        sys.stderr.write(text)
        sys.stderr.flush()

"""The snapshot of a process, as every stage after collection sees it.

Everything here is frozen: collection builds a `Snapshot` once and the analysis
stages only derive new values from it.  Local variables carry their identity
(type and address), never their value: a report cannot leak what the model
never held.  Only when asked (`--show-locals`) does a local also carry `shown`:
its value as redaction left it, so a secret is replaced before it enters the model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_PYTHON_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class ShownValue:
    """A local's value as `--show-locals` prints it: py-spy's repr of it, or, when its name
    or its content looks secret, a placeholder and the reason."""

    text: str
    redacted: bool = False
    reason: str | None = None  # why it is hidden: "its name looks like a password"


@dataclass(frozen=True)
class Local:
    """A local variable or argument of a frame, by identity; its value only if asked for."""

    name: str
    address: int | None
    type_name: str | None
    is_arg: bool
    shown: ShownValue | None = None  # only with --show-locals, and only for display


@dataclass(frozen=True)
class Frame:
    """One Python frame; `function` is the qualified name where it can be known."""

    function: str
    filename: str
    line: int
    module: str
    is_stdlib: bool
    locals: tuple[Local, ...] = ()

    def local(self, name: str) -> Local | None:
        for candidate in self.locals:
            if candidate.name == name:
                return candidate
        return None

    @property
    def method_name(self) -> str:
        return self.function.rsplit(".", 1)[-1]

    @property
    def class_name(self) -> str | None:
        if "." in self.function:
            return self.function.rsplit(".", 1)[0].rsplit(".", 1)[-1]
        return None


@dataclass(frozen=True)
class NativeFrame:
    """A frame of C code (collected with py-spy's --native): the function and its library."""

    function: str
    library: str

    @property
    def library_name(self) -> str:
        return self.library.rsplit("/", 1)[-1]


# System calls whose first argument is the file descriptor they block on.
FD_SYSCALLS = frozenset({"read", "readv", "pread64", "recvfrom", "recvmsg", "recvmmsg", "write", "sendto",
                         "sendmsg", "accept", "accept4", "connect"})


@dataclass(frozen=True)
class KernelState:
    """What Linux says a thread is doing (/proc/PID/task/TID/{stat,syscall,wchan})."""

    state: str  # "R" running, "S" sleeping, "D" uninterruptible...
    syscall: str | None = None  # the blocking system call by name ("futex", "recvfrom"), if blocked
    arguments: tuple[int, ...] = ()
    wchan: str = ""
    idle_seconds: float | None = None  # since it last ran on a CPU (/proc/.../sched)

    @property
    def blocked_fd(self) -> int | None:
        """The file descriptor a thread is blocked on in a read/write-like system call. A
        socket with a timeout waits in poll() first, so being here means no timeout."""
        return self.arguments[0] if self.syscall in FD_SYSCALLS and self.arguments else None

    @property
    def futex_address(self) -> int | None:
        """The user address a thread sleeps on in futex(2): equal for waiters of one lock."""
        return self.arguments[0] if self.syscall == "futex" and self.arguments else None


@dataclass(frozen=True)
class Progress:
    """What several samples taken a moment apart say about a thread."""

    samples: int
    same_stack: bool  # the same frames at the same lines in every sample
    cpu_seconds: float | None = None  # CPU time used between the first and the last sample
    window_seconds: float = 0.0  # from the first sample to the last
    # Found at one place in most samples (a poller back at its sleep): it circles, and is
    # shown where it spends its time.
    settled: bool = True
    gil_samples: int = 0  # samples in which it held the GIL
    # The innermost frame's lines over the samples, when only they changed (a tight loop
    # found at its header or its body); else empty.
    innermost_lines: tuple[int, ...] = ()
    queued_seconds: float | None = None  # runnable but waiting for a CPU, over the window

    @property
    def progressed(self) -> bool:
        return self.samples > 1 and not self.settled

    @property
    def cpu_share(self) -> float | None:
        """CPU time used over the window, as a share of one core (1.0 = a whole core)."""
        if self.cpu_seconds is None or self.window_seconds <= 0:
            return None
        return self.cpu_seconds / self.window_seconds

    @property
    def demand_share(self) -> float | None:
        """The share of the window it was on a CPU or waiting for one: what it would use on
        an idle machine. A spinning thread on a loaded machine gets little, but wants it all."""
        if self.cpu_seconds is None or self.window_seconds <= 0:
            return None
        return (self.cpu_seconds + (self.queued_seconds or 0.0)) / self.window_seconds

    @property
    def held_gil_throughout(self) -> bool:
        return self.samples > 1 and self.gil_samples == self.samples


@dataclass(frozen=True)
class Thread:
    """A thread of the target; frames are innermost first."""

    name: str
    thread_id: int
    os_thread_id: int | None
    active: bool
    owns_gil: bool
    frames: tuple[Frame, ...]
    kernel: KernelState | None = None
    progress: Progress | None = None
    # With --native: the C frames above the innermost Python frame, innermost first.
    native_frames: tuple[NativeFrame, ...] = ()

    @property
    def waiting_for_seconds(self) -> float | None:
        """How long it has not run: from the kernel's scheduler, else at least the sampling
        window if every sample found it at the same place."""
        if self.kernel is not None and self.kernel.idle_seconds is not None:
            return self.kernel.idle_seconds
        if self.progress is not None and self.progress.same_stack and self.progress.window_seconds:
            return self.progress.window_seconds
        return None

    @property
    def innermost_own_index(self) -> int | None:
        """Index of the innermost frame of the program itself (not the standard library)."""
        for index, frame in enumerate(self.frames):
            if not frame.is_stdlib:
                return index
        return None

    @property
    def innermost_own_frame(self) -> Frame | None:
        index = self.innermost_own_index
        return self.frames[index] if index is not None else None

    @property
    def thread_object_address(self) -> int | None:
        """Address of the `threading.Thread` object this thread runs, if visible."""
        for frame in reversed(self.frames):
            if frame.is_stdlib and frame.method_name in ("_bootstrap", "_bootstrap_inner"):
                this = frame.local("self")
                if this is not None and this.address is not None:
                    return this.address
        return None

    @property
    def target(self) -> str | None:
        """The function a thread was started for (what `Thread.run` calls), or the class of
        a Thread subclass that overrides `run`."""
        for inner, outer in zip(self.frames, self.frames[1:]):
            if outer.module == "threading" and outer.method_name == "run":
                return inner.method_name
            if inner.method_name == "run" and not inner.is_stdlib and outer.module == "threading":
                return inner.class_name
        return None

    @property
    def label(self) -> str:
        return f'"{self.name}"'


@dataclass(frozen=True)
class SourceFile:
    """The text of one source file of the target, as the target sees it."""

    path: str
    text: str
    modified_after_start: bool = False

    def line(self, number: int) -> str:
        # Lines as Python counts them: `str.splitlines` also ends a line at U+2028, NEL or a
        # form feed, which a hostile (or merely odd) file holds in a comment or a string.
        lines = _PYTHON_LINE_END.split(self.text)
        if 1 <= number <= len(lines):
            return lines[number - 1].strip()
        return ""


@dataclass(frozen=True)
class ProcessFacts:
    """What the operating system says about the target process."""

    pid: int
    cmdline: tuple[str, ...] = ()
    exe: str | None = None
    python_version: str | None = None
    username: str | None = None
    create_time: float | None = None
    num_threads: int | None = None
    ppid: int | None = None
    parent_cmdline: tuple[str, ...] = ()

    @property
    def looks_forked(self) -> bool:
        """A fork without exec runs its parent's command line: a multiprocessing 'fork' worker,
        an os.fork() child (the parent's threads did not come along)."""
        return bool(self.parent_cmdline) and self.parent_cmdline == self.cmdline


@dataclass(frozen=True)
class FileDescriptor:
    """An open file of a process: what /proc/PID/fd/N points to, and a socket's endpoints."""

    fd: int
    target: str  # "socket:[123]", "pipe:[456]", "/var/log/app.log"
    local: str | None = None  # "127.0.0.1:5432"
    remote: str | None = None
    status: str | None = None  # "ESTABLISHED", "LISTEN"

    @property
    def describe(self) -> str:
        if self.target.startswith("socket:") and self.remote:
            return f"socket {self.local} -> {self.remote} ({self.status})" if self.status else \
                f"socket {self.local} -> {self.remote}"
        if self.target.startswith("socket:") and self.local:
            return f"socket {self.local}" + (f" ({self.status})" if self.status else "")
        return self.target


@dataclass(frozen=True)
class ChildProcess:
    """A direct child of the target, as the kernel shows it."""

    pid: int
    cmdline: tuple[str, ...]
    kernel: KernelState | None
    fds: Mapping[int, str] = field(default_factory=dict)  # fd -> /proc link target


@dataclass(frozen=True)
class Origin:
    """Where a snapshot read from a file came from; a live process has none.

    A saved dump may lack what a live read has: object addresses (faulthandler,
    pytest-timeout and py-spy without --locals have none, so `self._lock` of one
    object and `other._lock` of another can only be told apart by name), thread
    names, kernel facts and several samples. The analysis says so instead of guessing."""

    format: str  # "faulthandler", "pytest-timeout", "py-spy-json", "threaddoc-report", "core"...
    path: str  # the file it was read from; "-" for standard input
    addresses: bool  # the dump carries object addresses (py-spy's locals)
    notes: tuple[str, ...] = ()  # what the reader saw: truncation, several dumps in one log...

    @property
    def described(self) -> str:
        return f"the {self.format} dump " + ("on standard input" if self.path == "-" else self.path)


@dataclass(frozen=True)
class Snapshot:
    """Everything collection learned about the target at one moment."""

    process: ProcessFacts
    threads: tuple[Thread, ...]
    sources: Mapping[str, SourceFile] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    # Worker processes collected with it (a process pool's), each a snapshot of its own.
    children: tuple[Snapshot, ...] = ()
    open_files: Mapping[int, FileDescriptor] = field(default_factory=dict)
    child_processes: tuple[ChildProcess, ...] = ()
    native: bool = False  # collected with native frames (py-spy --native)
    origin: Origin | None = None  # read from a saved dump or a core file, not a live process
    shows_locals: bool = False  # --show-locals: locals carry their (redacted) values

    def source(self, path: str) -> SourceFile | None:
        return self.sources.get(path)

    @property
    def has_addresses(self) -> bool:
        """Objects are known by address: identities are exact, not inferred from names."""
        return self.origin is None or self.origin.addresses

    @property
    def shown_values(self) -> tuple[ShownValue, ...]:
        """The values of its locals shown with --show-locals, redacted ones included."""
        return tuple(local.shown for thread in self.threads for frame in thread.frames
                     for local in frame.locals if local.shown is not None)


def report_order(thread: Thread) -> tuple[int, int, str]:
    """The order threads are listed in: the main thread, then by OS thread id."""
    return (0 if thread.name == "MainThread" else 1, thread.os_thread_id or 0, thread.name)

"""A hostile target cannot make a root threaddoc print, hang on or leak a file.

The target names the source files (`exec(compile(src, "/etc/shadow", "exec"))`) and
threaddoc runs as root. Real hung processes (tests/integration/hostile_target.py) block
in code "from" files they must not get read:

* as user nobody: a root-only file, a symlink to one, `..` into a directory nobody may
  enter, a symlinked directory and a symlink leading into it, a FIFO, /dev/zero,
  /proc/self/environ (which threaddoc would see as its own environment), the target's
  own /proc/PID/environ, a file over the size limit, a file under a write lease (an
  open would wait 45 s), and a file it may read, which must be read;
* a path on a filesystem that never answers (a FUSE mount whose server never replies):
  reading stops at the time limit, and the report says what was not read;
* as root in a chroot of its own (a container's view): absolute symlinks, `..` and host
  paths resolve inside its root, never to the host's files.

Each forbidden file holds its own canary; no canary may appear in the text or JSON
report, in stderr, or in the recording `--save` writes (which keeps every source read
whole). The report still comes out, its warnings name the files that were not read, and
threaddoc finishes within a bound. Every process started here is stopped by its process
group, and every subprocess call has a timeout.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from threaddoc.collect.sources import MAX_SOURCE_BYTES, SOURCE_READ_SECONDS

pytestmark = pytest.mark.integration

TARGET = Path(__file__).resolve().with_name("hostile_target.py")
SYSTEM_PYTHON = Path("/usr/bin/python3")
NOBODY = 65534
READY_WAIT = 30.0  # seconds for the target to block in every named file
REAP_WAIT = 10.0
# One diagnosis of a hostile target, all sources included: the sources' own time limit,
# py-spy's attach and the analysis, on a loaded machine.
BOUND = SOURCE_READ_SECONDS + 25.0
TARGET_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LC_ALL": "C.UTF-8",
              "PYTHONDONTWRITEBYTECODE": "1"}

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="runs threaddoc as root against other users' files")


def canary(label: str) -> str:
    return f"CANARY-{label}-{uuid.uuid4().hex[:12]}"


@dataclass
class Setup:
    """The files a hostile target names, and what must (not) come out."""

    workdir: Path
    names: list[str] = field(default_factory=list)
    canaries: dict[str, str] = field(default_factory=dict)  # label -> text that must never appear
    must_read: dict[str, str] = field(default_factory=dict)  # name -> text that must be read
    not_read: list[str] = field(default_factory=list)  # names the warnings must list
    lease: Path | None = None


def _write(path: Path, text: str, mode: int = 0o644, owner: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chown(path, owner, owner)
    os.chmod(path, mode)
    return path


def _forbidden(setup: Setup, label: str, path: Path, mode: int = 0o600) -> Path:
    """A file whose every line is a canary, so whichever line a frame names would show it."""
    text = setup.canaries.setdefault(label, canary(label))
    return _write(path, f"{text} = 1\n" * 20, mode)


@pytest.fixture
def workdir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="threaddoc-hostile-", dir="/tmp"))
    os.chmod(directory, 0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _hostile_names(workdir: Path) -> Setup:
    setup = Setup(workdir)
    open_dir, secret, closed = workdir / "open", workdir / "secret", workdir / "closed"
    for directory, mode in ((open_dir, 0o755), (secret, 0o755), (closed, 0o700)):
        directory.mkdir()
        os.chmod(directory, mode)
    _forbidden(setup, "root-only", secret / "root_only.py")
    _forbidden(setup, "symlink-target", secret / "linked.py")
    (open_dir / "link_to_secret.py").symlink_to("../secret/linked.py")
    _forbidden(setup, "dotdot", closed / "dotdot.py", mode=0o644)  # readable, in a closed directory
    _forbidden(setup, "symlinked-dir", closed / "via_dir.py", mode=0o644)
    (open_dir / "closed_link").symlink_to("../closed")
    _forbidden(setup, "symlink-into-closed", closed / "via_link.py", mode=0o644)
    (open_dir / "to_closed.py").symlink_to(closed / "via_link.py")
    os.mkfifo(open_dir / "fifo.py", 0o666)
    huge = _forbidden(setup, "huge", open_dir / "huge.py", mode=0o644)
    os.truncate(huge, MAX_SOURCE_BYTES + 1024 * 1024)
    setup.lease = _write(open_dir / "leased.py", "lock.acquire()  # under a lease\n", owner=NOBODY)
    good = _write(open_dir / "good.py", f"lock.acquire()  # {canary('readable')}\n")
    setup.must_read[str(good)] = good.read_text()
    setup.canaries["threaddoc-environ"] = canary("threaddoc-environ")  # put in threaddoc's environment
    setup.canaries["target-environ"] = canary("target-environ")  # put in the target's
    setup.not_read = [str(secret / "root_only.py"), str(open_dir / "link_to_secret.py"),
                      f"{open_dir}/../closed/dotdot.py", str(open_dir / "closed_link" / "via_dir.py"),
                      str(open_dir / "to_closed.py"), str(open_dir / "fifo.py"), "/dev/zero",
                      "/proc/self/environ", str(huge), str(setup.lease)]
    setup.names = [*setup.not_read, "/proc/{pid}/environ", str(good)]
    return setup


# --------------------------------------------------------------------------- processes


@contextmanager
def running(command: Sequence[str], ready: Path, env: dict[str, str], cwd: Path) -> Iterator[int]:
    """Start `command` in a session of its own; yield the pid it wrote to `ready`; kill its group."""
    log = cwd / "target.stderr"
    with open(log, "wb") as stderr:
        process = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=stderr, env=env, cwd=cwd, start_new_session=True)
    try:
        deadline = time.monotonic() + READY_WAIT
        while not ready.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the hostile target (exit {process.poll()}) did not get ready: "
                            f"{log.read_text(errors='replace')[-2000:]}", pytrace=False)
            time.sleep(0.02)
        yield int(ready.read_text())
        assert process.poll() is None, "the target died while it was diagnosed"
    finally:
        if process.returncode is None:  # not reaped: its group id cannot have been reused
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=REAP_WAIT)


def _as_nobody() -> list[str]:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("needs setpriv (util-linux) to run the target as nobody")
    if not SYSTEM_PYTHON.is_file():
        pytest.skip(f"needs {SYSTEM_PYTHON} to run the target as nobody")
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


@dataclass(frozen=True)
class Diagnosis:
    text: Any
    json: Any
    saved: str
    report: dict[str, Any]

    @property
    def runs(self) -> tuple[Any, Any]:
        return self.text, self.json

    def everything(self) -> str:
        return "\n".join([self.saved, *(run.stdout + run.stderr for run in self.runs)])


def diagnose_three_ways(threaddoc: Any, pid: int, workdir: Path, env: dict[str, str]) -> Diagnosis:
    """Text, and JSON with --save: each a report, no traceback, within the bound."""
    saved = workdir / "saved.json"
    text = threaddoc(["diagnose", str(pid), "--no-color", "--samples", "1"], env=env, timeout=BOUND + 30)
    as_json = threaddoc(["diagnose", str(pid), "--json", "--samples", "1", "--save", str(saved)], env=env,
                        timeout=BOUND + 30)
    for run in (text, as_json):
        assert run.returncode in (0, 1) and run.stdout.strip(), run.describe()
        assert "Traceback" not in run.stderr and "internal error" not in run.stderr, run.describe()
        assert run.seconds < BOUND, f"took {run.seconds:.1f}s (bound {BOUND:g}s)\n{run.describe()}"
    return Diagnosis(text, as_json, saved.read_text(encoding="utf-8"), json.loads(as_json.stdout))


def _with_secret(threaddoc_env: Any, setup: Setup) -> dict[str, str]:
    """threaddoc's environment, with a canary: /proc/self/environ is threaddoc's own."""
    return dict(threaddoc_env({"THREADDOC_TEST_SECRET": setup.canaries["threaddoc-environ"]}))


def assert_no_canary(diagnosis: Diagnosis, canaries: dict[str, str]) -> None:
    leaked = {label: text for label, text in canaries.items() if text in diagnosis.everything()}
    assert not leaked, f"forbidden content reached the output: {sorted(leaked)}"


def assert_sources(diagnosis: Diagnosis, must_read: dict[str, str]) -> None:
    sources = json.loads(diagnosis.saved)["sources"]
    for name, text in must_read.items():
        assert name in sources and sources[name]["text"] == text, (name, sorted(sources))


# --------------------------------------------------------------------------- the tests


@needs_root
def test_a_hostile_target_run_by_nobody_gets_nothing_it_may_not_read(
        threaddoc: Any, threaddoc_env: Any, workdir: Path) -> None:
    setup = _hostile_names(workdir)
    ready = workdir / "ready"
    os.chmod(workdir, 0o777)  # the target, as nobody, writes its ready file here
    env = {**TARGET_ENV, "TARGET_SECRET": setup.canaries["target-environ"]}
    command = [*_as_nobody(), str(SYSTEM_PYTHON), str(TARGET), str(ready), "--lease", str(setup.lease),
               *setup.names]
    with running(command, ready, env, workdir) as pid:
        assert os.stat(f"/proc/{pid}").st_uid == NOBODY
        diagnosis = diagnose_three_ways(threaddoc, pid, workdir, _with_secret(threaddoc_env, setup))
    assert_no_canary(diagnosis, setup.canaries)
    assert_sources(diagnosis, setup.must_read)
    warnings = "\n".join(diagnosis.report["warnings"])
    for name in [*setup.not_read, f"/proc/{pid}/environ"]:
        assert name in warnings, f"no warning names {name}:\n{warnings}"
    assert "lease" in warnings and "FIFO" in warnings and "character device" in warnings, warnings


class _HungFilesystem:
    """A FUSE mount whose server never answers: every lookup under it blocks in the kernel
    (as on a dead NFS server) until the connection is closed."""

    MS_NOSUID, MS_NODEV, MNT_DETACH = 2, 4, 2

    def __init__(self, mountpoint: Path) -> None:
        self.mountpoint = mountpoint
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
        options = f"fd={self.fd},rootmode=40755,user_id=0,group_id=0,allow_other".encode()
        if self.libc.mount(b"threaddoc-hung", bytes(mountpoint), b"fuse", self.MS_NOSUID | self.MS_NODEV,
                           options) != 0:
            error = ctypes.get_errno()
            os.close(self.fd)
            raise OSError(error, os.strerror(error))

    def close(self) -> None:
        self.libc.umount2(bytes(self.mountpoint), self.MNT_DETACH)
        os.close(self.fd)  # aborts the connection: whatever still waits on it fails


@needs_root
def test_a_file_on_a_hung_filesystem_stops_at_the_time_limit(
        threaddoc: Any, threaddoc_env: Any, workdir: Path) -> None:
    if not os.path.exists("/dev/fuse"):
        pytest.skip("needs /dev/fuse to mount a filesystem that never answers")
    good = _write(workdir / "good.py", "lock.acquire()  # read before the hung one\n")
    # The frame names the mount point itself: looking at it blocks. (A file *in* it would hang
    # py-spy first: it looks for an __init__.py beside each frame's file, bounded by --timeout.)
    mountpoint = workdir / "zz-hung.py"  # sorted after good.py: read in order, it is the last
    mountpoint.mkdir()
    try:
        hung = _HungFilesystem(mountpoint)
    except OSError as error:
        pytest.skip(f"cannot mount a FUSE filesystem here: {error}")
    ready = workdir / "ready"
    os.chmod(workdir, 0o777)
    try:
        hung_name = str(mountpoint)
        command = [*_as_nobody(), str(SYSTEM_PYTHON), str(TARGET), str(ready), str(good), hung_name]
        with running(command, ready, TARGET_ENV, workdir) as pid:
            saved = workdir / "saved.json"
            run = threaddoc(["diagnose", str(pid), "--json", "--samples", "1", "--save", str(saved)],
                            env=threaddoc_env(), timeout=BOUND + 30)
    finally:
        hung.close()
    assert run.returncode in (0, 1) and "Traceback" not in run.stderr, run.describe()
    assert run.seconds < BOUND, f"took {run.seconds:.1f}s on a hung filesystem\n{run.describe()}"
    warnings = "\n".join(json.loads(run.stdout)["warnings"])
    assert f"longer than {SOURCE_READ_SECONDS:g}s" in warnings and hung_name in warnings, warnings
    assert str(good) in json.loads(saved.read_text())["sources"]


def _container_root(workdir: Path, host: Path) -> Path:
    """A root with the host's /usr bind-mounted (inside the target's own mount namespace
    only), the target program, and at the host directory's path a copy of its own."""
    root = workdir / "root"
    for directory in ("usr", "tmp", "app"):
        (root / directory).mkdir(parents=True)
    for link in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink(f"/{link}"):
            (root / link).symlink_to(os.readlink(f"/{link}"))
    os.chmod(root / "tmp", 0o1777)
    shutil.copy(TARGET, root / "app" / "prog.py")
    return root


@needs_root
def test_a_container_target_resolves_every_name_inside_its_own_root(
        threaddoc: Any, threaddoc_env: Any, workdir: Path) -> None:
    tools = {tool: shutil.which(tool) for tool in ("unshare", "chroot", "mount")}
    for tool, found in tools.items():
        if found is None:
            pytest.skip(f"needs {tool} to run a target in a root of its own")
    host = workdir / "host"
    setup = Setup(workdir)
    _forbidden(setup, "host-file", host / "secret.py", mode=0o644)
    _forbidden(setup, "host-only", host / "only_on_host.py", mode=0o644)
    setup.canaries["threaddoc-environ"] = canary("threaddoc-environ")
    root = _container_root(workdir, host)
    inside = _write(root / str(host).lstrip("/") / "secret.py", "lock.acquire()  # the container's own\n")
    _write(root / "app" / "good.py", "lock.acquire()  # the container's app\n")
    (root / "app" / "abs.py").symlink_to(host / "secret.py")  # absolute: must resolve in the root
    (root / "app" / "hostdir").symlink_to(host)
    setup.names = ["/app/good.py", "/app/abs.py", "/app/hostdir/secret.py", str(host / "only_on_host.py"),
                   f"/app/../../../../..{host}/secret.py", "/proc/self/environ"]
    setup.must_read = {"/app/good.py": "lock.acquire()  # the container's app\n",
                       **{name: inside.read_text() for name in setup.names[1:3] + setup.names[4:5]}}
    ready = root / "tmp" / "ready"
    script = (f"{tools['mount']} --bind /usr {root}/usr && exec {tools['chroot']} {root} /usr/bin/python3 "
              "/app/prog.py /tmp/ready " + " ".join(f"'{name}'" for name in setup.names))
    command = [str(tools["unshare"]), "--mount", "--fork", "--", "/bin/sh", "-c", script]
    with running(command, ready, TARGET_ENV, workdir) as pid:
        assert os.readlink(f"/proc/{pid}/root") == str(root)
        diagnosis = diagnose_three_ways(threaddoc, pid, workdir, _with_secret(threaddoc_env, setup))
    assert_no_canary(diagnosis, setup.canaries)
    assert_sources(diagnosis, setup.must_read)
    assert str(host / "only_on_host.py") not in json.loads(diagnosis.saved)["sources"]

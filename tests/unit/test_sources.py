"""Source files are read as the target would open them: inside its root, symlinks
resolved inside that root, regular files only, within limits, and only where its own
user could read them.

A directory tree stands in for a container's root (`TargetView` with its descriptor):
absolute symlinks in it must resolve inside it, `..` must stop at it. Every test runs
twice: with the kernel's openat2 and with the step-by-step walk alone (a kernel or a
seccomp filter without openat2).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from threaddoc.collect import safeopen, sources
from threaddoc.collect.safeopen import FileUser, Unreadable, within_time_limit
from threaddoc.collect.sources import TargetView, read_in_root, read_sources, target_user
from threaddoc.model import SourceFile

NOBODY = FileUser(65534, frozenset({65534}))
ROOT = FileUser(0, frozenset({0}), reads_anything=True)
CANARY = "HOST-CANARY-never-in-a-report"
AS_ROOT = os.geteuid() == 0


@pytest.fixture(params=["openat2", "walk-only"])
def resolution(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "walk-only":
        monkeypatch.setattr(safeopen, "_openat2", lambda *arguments: None)
    return str(request.param)


@pytest.fixture
def tree() -> Iterator[Path]:
    """A world-enterable scratch directory (pytest's tmp_path sits below a 0700 directory)."""
    directory = Path(tempfile.mkdtemp(prefix="threaddoc-sources-", dir="/tmp"))
    os.chmod(directory, 0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def container(tree: Path) -> Iterator[tuple[Path, Path]]:
    """(root, host): a root with the files a container would have, and a host directory
    holding canaries at the very paths the container's absolute symlinks name."""
    root, host = tree / "root", tree / "host"
    _write(host / "secret.py", f"{CANARY}\n")
    _write(root / "app" / "main.py", "import threading\nlock = threading.Lock()\n")
    # The host's path, again inside the container: an absolute symlink must land here.
    _write(root / str(host).lstrip("/") / "secret.py", "inside = 'the container copy'\n")
    _write(root / "opt" / "lib" / "inner.py", "inner = 'inside'\n")
    _write(root / "etc" / "conf.py", "etc = 'inside'\n")
    (root / "app" / "lib").symlink_to("/opt/lib")
    (root / "app" / "abs.py").symlink_to(host / "secret.py")
    (root / "app" / "up.py").symlink_to("../../../../../../../.." + str(host / "secret.py"))
    (root / "app" / "hostdir").symlink_to(host)
    (root / "app" / "loop.py").symlink_to("loop.py")
    yield root, host


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    for parent in [path.parent, *path.parent.parents]:
        if parent == Path("/tmp"):
            break
        os.chmod(parent, 0o755)
    path.write_text(text)
    os.chmod(path, mode)
    return path


def _view(root: Path, user: FileUser | None = NOBODY, cwd: str | None = "/app") -> TargetView:
    return TargetView(os.open(root, os.O_PATH | os.O_DIRECTORY), cwd, user)


def _read(root: Path, path: str, user: FileUser | None = NOBODY, **options: object) -> SourceFile:
    view = _view(root, user)
    try:
        return read_in_root(view, path, None, **options)  # type: ignore[arg-type]
    finally:
        view.close()


def _refusal(root: Path, path: str, user: FileUser | None = NOBODY) -> str:
    with pytest.raises(Unreadable) as refused:
        _read(root, path, user)
    return refused.value.reason


# --- Resolution inside the root --------------------------------------------------------------


def test_a_file_of_the_root_is_read(container: tuple[Path, Path], resolution: str) -> None:
    root, _ = container
    assert _read(root, "/app/main.py").line(2) == "lock = threading.Lock()"


def test_an_absolute_symlink_resolves_inside_the_root(container: tuple[Path, Path], resolution: str) -> None:
    root, _ = container
    assert _read(root, "/app/abs.py").text == "inside = 'the container copy'\n"
    assert _read(root, "/app/lib/inner.py").text == "inner = 'inside'\n"


def test_dotdot_stops_at_the_root(container: tuple[Path, Path], resolution: str) -> None:
    root, _ = container
    assert _read(root, "/app/../../../../../../etc/conf.py").text == "etc = 'inside'\n"
    assert _read(root, "/app/up.py").text == "inside = 'the container copy'\n"


def test_a_symlinked_directory_leading_out_stays_in(container: tuple[Path, Path], resolution: str) -> None:
    root, _ = container
    assert _read(root, "/app/hostdir/secret.py").text == "inside = 'the container copy'\n"


def test_a_host_path_missing_in_the_root_is_not_read_from_the_host(tree: Path, resolution: str) -> None:
    root, host = tree / "root", tree / "host"
    _write(host / "secret.py", f"{CANARY}\n")
    _write(root / "app" / "main.py", "x = 1\n")
    with pytest.raises(FileNotFoundError):
        _read(root, str(host / "secret.py"))


def test_a_relative_name_is_looked_up_in_the_working_directory(container: tuple[Path, Path],
                                                               resolution: str) -> None:
    root, _ = container
    source = _read(root, "main.py")
    assert source.path == "main.py" and source.line(1) == "import threading"


def test_a_symlink_loop_is_refused(container: tuple[Path, Path], resolution: str) -> None:
    root, _ = container
    assert "symlinks" in _refusal(root, "/app/loop.py")


# --- What is a source file -------------------------------------------------------------------


def test_a_fifo_is_refused_without_blocking(tree: Path, resolution: str) -> None:
    os.mkfifo(tree / "fifo.py", 0o666)
    started = time.monotonic()
    assert "a FIFO" in _refusal(tree, "/fifo.py")
    assert time.monotonic() - started < 1.0


def test_devices_are_never_opened(resolution: str) -> None:
    for device in ("/dev/zero", "/dev/null", "/dev/tty"):
        assert "character device" in _refusal(Path("/"), device, ROOT)


def test_kernel_filesystems_hold_no_source(resolution: str) -> None:
    # /proc/self is threaddoc itself: its environment must never reach a report.
    for path in ("/proc/self/environ", "/proc/self/cmdline", f"/proc/{os.getpid()}/environ",
                 "/sys/kernel/mm/transparent_hugepage/enabled"):
        assert "kernel filesystem" in _refusal(Path("/"), path, ROOT)


def test_a_directory_is_no_source(tree: Path, resolution: str) -> None:
    (tree / "package.py").mkdir()
    assert "a directory" in _refusal(tree, "/package.py")


def test_a_file_over_the_size_limit_is_refused(tree: Path, resolution: str) -> None:
    huge = _write(tree / "huge.py", f"{CANARY}\n")
    os.truncate(huge, sources.MAX_SOURCE_BYTES + 1)
    assert "larger than 2 MiB" in _refusal(tree, "/huge.py")


def test_names_that_cannot_exist_are_missing(tree: Path, resolution: str) -> None:
    for name in ("/a\0b.py", "/" + "x" * 300 + ".py", "/\udcff.py", "/\ud800.py"):
        with pytest.raises(OSError):
            _read(tree, name)


# --- Who may read it -------------------------------------------------------------------------


@pytest.mark.skipif(not AS_ROOT, reason="needs root to own files the target's user cannot read")
def test_a_root_only_file_is_refused_to_the_target_user(tree: Path, resolution: str) -> None:
    _write(tree / "secret.py", f"{CANARY}\n", mode=0o600)
    assert "permissions" in _refusal(tree, "/secret.py")
    assert _read(tree, "/secret.py", ROOT).text == f"{CANARY}\n"


@pytest.mark.skipif(not AS_ROOT, reason="needs root to own directories the target's user cannot enter")
def test_a_symlink_into_a_closed_directory_is_refused(tree: Path, resolution: str) -> None:
    # The file is world-readable, but it lies in a directory the target cannot enter: the
    # directories of the path the symlink leads to count, not those of the name.
    _write(tree / "closed" / "inner.py", f"{CANARY}\n")
    os.chmod(tree / "closed", 0o700)
    (tree / "open").mkdir(mode=0o755)
    (tree / "open" / "link.py").symlink_to("/closed/inner.py")
    (tree / "open" / "dirlink").symlink_to("../closed")
    for path in ("/open/link.py", "/open/dirlink/inner.py", "/closed/inner.py"):
        assert "directory the target's user cannot enter" in _refusal(tree, path)


@pytest.mark.skipif(not AS_ROOT, reason="needs root to own directories the target's user cannot enter")
def test_dotdot_through_a_closed_directory_is_refused(tree: Path, resolution: str) -> None:
    # `..` is looked up in the closed directory itself, which needs search permission there.
    _write(tree / "open" / "app.py", "x = 1\n")
    (tree / "closed").mkdir(mode=0o700)
    os.chmod(tree / "closed", 0o700)
    assert "directory the target's user cannot enter" in _refusal(tree, "/closed/../open/app.py")


def test_an_unknown_user_reads_nothing(tree: Path, resolution: str) -> None:
    _write(tree / "app.py", "x = 1\n")
    assert "could not be known" in _refusal(tree, "/app.py", None)


def test_permission_classes_apply_in_order() -> None:
    found = safeopen.Found(os.stat_result((stat.S_IFREG | 0o604, 0, 0, 1, 1000, 1000, 0, 0, 0, 0)), ())
    owner = FileUser(1000, frozenset({1000}))
    other = FileUser(2000, frozenset({2000}))
    assert owner.refusal(found) is None and other.refusal(found) is None
    group_only = safeopen.Found(os.stat_result((stat.S_IFREG | 0o064, 0, 0, 1, 1000, 1000, 0, 0, 0, 0)), ())
    assert owner.refusal(group_only) is not None  # the owner's own bits deny it, whatever the group's


def test_the_target_user_comes_from_proc_status() -> None:
    me = target_user(os.getpid())
    assert me is not None and me.uid == os.getuid() and os.getgid() in me.gids
    assert me.reads_anything == AS_ROOT  # root in our own user namespace


# --- read_sources: a live process, warnings, time ----------------------------------------------


def test_read_sources_warns_about_each_file_it_did_not_read(tree: Path) -> None:
    good = _write(tree / "good.py", "good = 1\n")
    os.mkfifo(tree / "fifo.py")
    found, warnings = read_sources(os.getpid(), [str(good), str(tree / "fifo.py"), "/dev/zero",
                                                 "/proc/self/environ", "<string>", str(tree / "gone.py")],
                                   None)
    assert list(found) == [str(good)]
    text = "\n".join(warnings)
    for path in (str(tree / "fifo.py"), "/dev/zero", "/proc/self/environ"):
        assert path in text
    assert "gone.py" not in text and "<string>" not in text


def test_a_file_changed_after_start_is_flagged(tree: Path) -> None:
    path = _write(tree / "changed.py", "x = 1\n")
    found, warnings = read_sources(os.getpid(), [str(path)], create_time=path.stat().st_mtime - 60)
    assert found[str(path)].modified_after_start
    assert any("changed after the process started" in warning for warning in warnings)


def test_reading_stops_at_the_time_limit(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [str(_write(tree / f"m{index}.py", "x = 1\n")) for index in range(5)]
    real = sources.read_in_root

    def slow(view: TargetView, path: str, create_time: float | None, max_bytes: int) -> SourceFile:
        if path.endswith("m2.py"):
            time.sleep(5)  # a hung filesystem, as far as the caller can tell
        return real(view, path, create_time, max_bytes)

    monkeypatch.setattr(sources, "read_in_root", slow)
    started = time.monotonic()
    found, warnings = read_sources(os.getpid(), paths, None, time_limit=0.5)
    assert time.monotonic() - started < 2.0
    assert sorted(found) == paths[:2]
    assert any("longer than 0.5s" in warning and "m2.py" in warning and "m4.py" in warning
               for warning in warnings), warnings


def test_the_total_size_of_all_sources_is_bounded(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "MAX_TOTAL_SOURCE_BYTES", 10)
    paths = [str(_write(tree / f"m{index}.py", "x = 12345\n")) for index in range(3)]
    found, warnings = read_sources(os.getpid(), paths, None)
    assert list(found) == paths[:1]
    assert any("reached" in warning and paths[2] in warning for warning in warnings), warnings


def test_within_time_limit_passes_on_what_work_raises() -> None:
    def broken(item: str) -> int:
        raise RuntimeError(item)

    with pytest.raises(RuntimeError, match="boom"):
        within_time_limit(["boom"], broken, 1.0)


def test_the_working_directory_is_placed_in_the_root() -> None:
    assert sources._cwd_in_root(os.getpid()) == os.getcwd()

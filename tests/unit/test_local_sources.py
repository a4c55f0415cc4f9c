"""`--from`: the files a saved dump names are read only where the rules let them be.

A dump may come from anyone: it must not make threaddoc print a file through a symlink
planted as `x.py`, hang on a FIFO named `x.py`, read a huge file, or, run as root, print
a file that not every user may read, unless it lies under a `--source-root` given.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from threaddoc.collect import localsources
from threaddoc.collect.localsources import SourceRoot, find_local_sources, read_local_sources

CANARY = "FROM-CANARY-never-in-a-report"
AS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not AS_ROOT, reason="the rules for root are tested as root")


@pytest.fixture
def tree() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="threaddoc-from-", dir="/tmp"))
    os.chmod(directory, 0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    return path


def _texts(paths: list[str], roots: list[SourceRoot] | None = None) -> tuple[str, list[str]]:
    """Everything read for `paths`, and the warnings."""
    sources, warnings = read_local_sources(paths, roots or [], None)
    return "\n".join(source.text for source in sources.values()), warnings


def test_a_plain_python_file_is_read(tree: Path) -> None:
    path = _write(tree / "app" / "jobs.py", "import threading\n")
    sources, warnings = read_local_sources([str(path)], [], None)
    assert sources[str(path)].text == "import threading\n" and warnings == []


def test_a_symlink_within_its_directory_is_followed(tree: Path) -> None:
    _write(tree / "app" / "real.py", "real = 1\n")
    (tree / "app" / "alias.py").symlink_to("real.py")
    assert _texts([str(tree / "app" / "alias.py")])[0] == "real = 1\n"


def test_a_symlink_leading_out_of_its_directory_is_refused(tree: Path) -> None:
    _write(tree / "elsewhere" / "secret.py", f"{CANARY}\n")
    (tree / "app").mkdir()
    (tree / "app" / "x.py").symlink_to(tree / "elsewhere" / "secret.py")
    (tree / "app" / "y.py").symlink_to("../elsewhere/secret.py")
    text, warnings = _texts([str(tree / "app" / "x.py"), str(tree / "app" / "y.py")])
    assert CANARY not in text
    assert any("leads out" in warning and "x.py" in warning and "y.py" in warning for warning in warnings)


@needs_root
def test_a_symlink_to_a_root_only_file_is_refused(tree: Path) -> None:
    secret = _write(tree / "secret.py", f"{CANARY}\n", mode=0o600)
    (tree / "x.py").symlink_to("secret.py")  # within the directory: the permission rule refuses it
    text, warnings = _texts([str(tree / "x.py"), str(secret)])
    assert CANARY not in text
    assert any("not every user may read it" in warning and "--source-root" in warning for warning in warnings)


@needs_root
def test_as_root_a_file_under_a_source_root_is_read(tree: Path) -> None:
    _write(tree / "checkout" / "app" / "private.py", "private = 1\n", mode=0o600)
    roots = [SourceRoot.parse(f"/builds/app={tree / 'checkout' / 'app'}")]
    assert _texts(["/builds/app/private.py"], roots)[0] == "private = 1\n"


def test_a_source_root_is_never_left(tree: Path) -> None:
    _write(tree / "outside.py", f"{CANARY}\n")
    checkout = tree / "checkout"
    checkout.mkdir()
    (checkout / "link.py").symlink_to(tree / "outside.py")
    (checkout / "sub").symlink_to(tree)
    roots = [SourceRoot.parse(f"/builds={checkout}")]
    text, warnings = _texts(["/builds/../outside.py", "/builds/link.py", "/builds/sub/outside.py"], roots)
    assert CANARY not in text
    assert warnings and all("outside.py" not in warning or "leads out" in warning for warning in warnings)


def test_a_fifo_named_py_neither_blocks_nor_is_read(tree: Path) -> None:
    os.mkfifo(tree / "x.py", 0o666)
    started = time.monotonic()
    text, warnings = _texts([str(tree / "x.py")])
    assert time.monotonic() - started < 2.0
    assert text == "" and any("a FIFO" in warning for warning in warnings)


@needs_root
def test_a_device_named_py_is_never_opened(tree: Path) -> None:
    os.mknod(tree / "zero.py", 0o666 | 0o020000, os.makedev(1, 5))  # /dev/zero's numbers
    text, warnings = _texts([str(tree / "zero.py")])
    assert text == "" and any("character device" in warning for warning in warnings)


def test_a_huge_file_is_not_read(tree: Path) -> None:
    huge = _write(tree / "huge.py", f"{CANARY}\n")
    os.truncate(huge, 3 * 1024 * 1024)
    text, warnings = _texts([str(huge)])
    assert CANARY not in text and any("larger than 2 MiB" in warning for warning in warnings)


def test_only_python_files_are_read(tree: Path) -> None:
    secret = _write(tree / "secret.txt", f"{CANARY}\n")
    text, warnings = _texts([str(secret), "/etc/shadow", str(tree)])
    assert text == "" and any("source not found" in warning for warning in warnings)


def test_names_no_file_can_have_are_missing(tree: Path) -> None:
    found = find_local_sources(["/a\0b.py", "/\ud800.py", "/" + "x" * 5000 + ".py", "\0.py"], [])
    assert not found.found and not found.refused and len(found.missing) == 4


def test_looking_stops_at_the_time_limit(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [str(_write(tree / f"m{index}.py", "x = 1\n")) for index in range(4)]
    real = localsources._read

    def slow(lookup: localsources._Lookup) -> localsources.LocalFile:
        if lookup.inside == "m1.py":
            time.sleep(5)  # a hung network filesystem, as far as the caller can tell
        return real(lookup)

    monkeypatch.setattr(localsources, "_read", slow)
    started = time.monotonic()
    found = find_local_sources(paths, [], time_limit=0.5)
    assert time.monotonic() - started < 2.0
    assert list(found.found) == paths[:1] and found.timed_out == paths[1:]
    assert "longer than 0.5s" in found.warnings()[-1]

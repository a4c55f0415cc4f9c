"""Source files are read only where the target's own user could read them."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from threaddoc.collect.sources import _read_one
from threaddoc.model import SourceFile

NOBODY = (65534, {65534})


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A directory every user may enter (pytest's own tmp_path sits below a 0700 directory)."""
    directory = Path(tempfile.mkdtemp(prefix="threaddoc-sources-", dir="/tmp"))
    os.chmod(directory, 0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _file(directory: Path, mode: int, directory_mode: int = 0o755) -> Path:
    directory.mkdir(mode=directory_mode)
    os.chmod(directory, directory_mode)
    path = directory / "app.py"
    path.write_text("import threading\n")
    os.chmod(path, mode)
    return path


def test_world_readable_file_is_read(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    path = _file(tmp_path / "open", 0o644)
    source = _read_one(str(path), str(path), NOBODY, None)
    assert isinstance(source, SourceFile) and source.text == "import threading\n"


def test_file_the_target_user_cannot_read_is_refused(tmp_path: Path) -> None:
    if os.getuid() != 0:
        return  # as non-root we cannot own a file the target cannot read in this layout
    os.chmod(tmp_path, 0o755)
    path = _file(tmp_path / "secret", 0o600)
    assert "not readable by the target's user" in str(_read_one(str(path), str(path), NOBODY, None))


def test_file_in_a_directory_the_target_user_cannot_enter_is_refused(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    path = _file(tmp_path / "closed", 0o644, directory_mode=0o700)
    if os.getuid() == 0:
        assert "not readable" in str(_read_one(str(path), str(path), NOBODY, None))
    os.chmod(path.parent, 0o755)


def test_file_changed_after_start_is_flagged(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    path = _file(tmp_path / "changed", 0o644)
    source = _read_one(str(path), str(path), NOBODY, create_time=path.stat().st_mtime - 60)
    assert isinstance(source, SourceFile) and source.modified_after_start

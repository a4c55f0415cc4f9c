"""The CPython interpreters (3.8 to 3.13) that pyenv holds on this machine.

The one interpreter discovery of the test suite: the integration tests
(`tests/integration/conftest.py`) and `tests/tools/record_samples.py` both use it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

MINORS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13")
PYENV_TIMEOUT = 15.0  # seconds for `pyenv root` / `python -c ...`


@dataclass(frozen=True)
class Interpreters:
    """What discovery found: minor -> python executable, and why a minor is missing."""

    root: Path
    found: dict[str, Path]
    missing: dict[str, str]


def pyenv_root() -> Path:
    """`pyenv root` if pyenv is on PATH, else $PYENV_ROOT, else ~/.pyenv."""
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            completed = subprocess.run([pyenv, "root"], stdin=subprocess.DEVNULL,
                                       capture_output=True, text=True, timeout=PYENV_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired):
            completed = None
        if completed is not None and completed.returncode == 0 and completed.stdout.strip():
            return Path(completed.stdout.strip())
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    return Path.home() / ".pyenv"


def discover_interpreters() -> Interpreters:
    """versions/<X.Y.Z>/bin/python under the pyenv root, highest patch per minor.

    A candidate must also run and report the version its directory claims.
    """
    root = pyenv_root()
    versions = root / "versions"
    candidates: dict[str, list[tuple[int, Path]]] = {}
    if versions.is_dir():
        for entry in versions.iterdir():
            matched = re.fullmatch(r"(3\.\d+)\.(\d+)", entry.name)
            if not matched or matched.group(1) not in MINORS:
                continue
            python = entry / "bin" / "python"
            if python.is_file() and os.access(python, os.X_OK):
                candidates.setdefault(matched.group(1), []).append((int(matched.group(2)), python))

    found: dict[str, Path] = {}
    missing: dict[str, str] = {}
    for minor in MINORS:
        if minor not in candidates:
            missing[minor] = f"no CPython {minor}.x at {versions}/{minor}.*/bin/python"
            continue
        patch, python = max(candidates[minor])
        problem = _check_runs(python, f"{minor}.{patch}")
        if problem:
            missing[minor] = problem
        else:
            found[minor] = python
    return Interpreters(root=root, found=found, missing=missing)


def _check_runs(python: Path, version: str) -> str | None:
    """None if `python` runs and is CPython `version`; otherwise what is wrong with it."""
    try:
        completed = subprocess.run(
            [str(python), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=PYENV_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{python} does not run: {error}"
    if completed.returncode != 0 or completed.stdout.strip() != version:
        return (f"{python} does not run as CPython {version} (exit {completed.returncode}, "
                f"printed {completed.stdout.strip()!r}, {completed.stderr.strip()[-200:]!r})")
    return None


def interpreters() -> dict[str, Path]:
    """Minor version -> python executable of its highest installed patch release that runs."""
    return discover_interpreters().found

"""The CPython interpreters (3.8 to 3.13) that pyenv holds on this machine."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

MINORS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13")


def pyenv_root() -> Path:
    if shutil.which("pyenv"):
        try:
            found = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=30,
                                   check=True).stdout.strip()
            if found:
                return Path(found)
        except (subprocess.SubprocessError, OSError):
            pass
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def interpreters() -> dict[str, Path]:
    """Minor version -> python executable of its highest installed patch release."""
    found: dict[str, tuple[tuple[int, ...], Path]] = {}
    versions = pyenv_root() / "versions"
    if not versions.is_dir():
        return {}
    for entry in versions.iterdir():
        matched = re.fullmatch(r"(3\.\d+)\.(\d+)", entry.name)
        python = entry / "bin" / "python"
        if not matched or matched.group(1) not in MINORS or not python.exists():
            continue
        patch = (int(matched.group(2)),)
        if matched.group(1) not in found or found[matched.group(1)][0] < patch:
            found[matched.group(1)] = (patch, python)
    return {minor: found[minor][1] for minor in MINORS if minor in found}

"""Short, still-unambiguous spellings of the target's file paths."""

from __future__ import annotations

import re

_LIBRARY = re.compile(r"^.*/lib/python3\.\d+t?/(?:(?:site|dist)-packages/)?")


def display_path(path: str) -> str:
    """Library files by their import path (`concurrent/futures/_base.py`); program files in full."""
    return _LIBRARY.sub("", path)

"""Making strings from the target safe for a terminal.

Thread names, file names and source lines come from the target and may carry
escape sequences that would rewrite the on-call engineer's screen.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """Replace control characters (C0, C1, bidi overrides) with a visible escape."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}" if ord(match.group()) < 256
                        else f"\\u{ord(match.group()):04x}", text)


def clean_line(text: str) -> str:
    """`clean`, and a newline or tab too, for text that must stay on one line."""
    return clean(text.replace("\t", " ")).replace("\n", "\\n")

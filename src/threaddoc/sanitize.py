"""Making strings from the target safe for a terminal.

Thread names, file names, source lines and local values come from the target and
may carry escape sequences that would rewrite the on-call engineer's screen, or
bidi controls that make a line read other than it is (Trojan Source).
"""

from __future__ import annotations

import re

# Bidi marks, embeddings, overrides and isolates, and the Unicode line and paragraph
# separators; then lone surrogates, which no terminal can print (encoding them fails).
_BIDI_AND_SEPARATORS = "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_SURROGATES = "\ud800-\udfff"
_CONTROL = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI_AND_SEPARATORS}{_SURROGATES}]")
# What json.dumps(ensure_ascii=False) leaves raw (it escapes C0 itself).
_UNSAFE_IN_JSON = re.compile(f"[\x7f-\x9f{_BIDI_AND_SEPARATORS}{_SURROGATES}]")


def clean(text: str) -> str:
    """Replace control characters (C0, C1, bidi controls) with a visible escape."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}" if ord(match.group()) < 256
                        else f"\\u{ord(match.group()):04x}", text)


def clean_line(text: str) -> str:
    """`clean`, and a newline or tab too, for text that must stay on one line."""
    return clean(text.replace("\t", " ")).replace("\n", "\\n")


def json_safe(document: str) -> str:
    """JSON text whose C1 and bidi controls are written as `\\uXXXX` escapes, so that JSON
    printed to a terminal is as safe as text. The value is the same: outside strings JSON
    text is ASCII, and inside one the escape is how JSON writes any character."""
    if document.isascii() and "\x7f" not in document:
        return document  # nothing to escape: two scans in C, not a regex over megabytes
    return _UNSAFE_IN_JSON.sub(lambda match: f"\\u{ord(match.group()):04x}", document)

from __future__ import annotations

from threaddoc.sanitize import clean, clean_line


def test_escape_sequences_are_made_visible() -> None:
    assert clean("\x1b]0;pwned\x07name") == "\\x1b]0;pwned\\x07name"
    assert clean("a\x9bb") == "a\\x9bb"


def test_bidi_overrides_are_made_visible() -> None:
    assert clean("admin\u202euser") == "admin\\u202euser"


def test_clean_line_keeps_one_line() -> None:
    assert clean_line("a\nb\tc") == "a\\nb c"


def test_ordinary_text_is_unchanged() -> None:
    assert clean("worker-1 waits for ledger_lock — ünïcode") == "worker-1 waits for ledger_lock — ünïcode"

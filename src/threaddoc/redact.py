"""Which local values look secret: the rule table `--show-locals` redacts by.

Pure: a variable's name and py-spy's repr of its value in, the rule that matched
(or None) out.  A rule looks at the variable's name, at the text of its value, or
at the keys written inside that value (`{"password": ...}`, `?access_token=...`,
`Cookie: ...`).  A value is hidden whole as soon as one rule matches: py-spy cuts
long reprs short, and half a key is still a key.

The rules err on the side of hiding: a value wrongly redacted costs a look at the
code, a secret wrongly shown ends up in a ticket.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

REDACTED = "<redacted>"


@dataclass(frozen=True)
class Rule:
    """One shape of secret. `pattern` is searched in a compacted name (lowercase letters
    and digits only: `apiKey`, `API_KEY` and `api-key` all read `apikey`) or in a value;
    `accept`, when given, has the last word on the text the pattern matched."""

    id: str
    what: str  # for the report: "a password", "a Bearer token"
    pattern: re.Pattern[str]
    accept: Callable[[str], bool] | None = None

    def search(self, text: str) -> bool:
        return any(self.accept is None or self.accept(found.group()) for found in self.pattern.finditer(text))


@dataclass(frozen=True)
class Redaction:
    """Why a value is hidden: the rule, and a phrase for the report."""

    rule: str
    reason: str


def _mixed_like_a_key(text: str) -> bool:
    """An AWS secret access key is 40 random base64 characters: upper and lower case and
    digits all occur (all but 1 in 1000 keys have a digit), unlike a SHA-1 (hex, one case)
    or a long name."""
    return all(any(test(c) for c in text) for test in (str.isupper, str.islower, str.isdigit))


# Names, compacted. "auth" but not "author"/"authority" (yet "authorization");
# "token" but not "tokenizer"/"tokenize".
NAME_RULES: tuple[Rule, ...] = (
    Rule("password", "a password", re.compile(r"pass(?:word|wd|phrase)")),
    Rule("secret", "a secret", re.compile(r"secret")),
    Rule("token", "a token", re.compile(r"token(?!iz)")),
    Rule("api-key", "an API key", re.compile(r"api_?key|accesskey")),
    Rule("private-key", "a private key", re.compile(r"(?:private|signing)key")),
    Rule("auth", "authentication data", re.compile(r"auth(?!or(?!iz))")),
    Rule("credential", "credentials", re.compile(r"credential|creds")),
    Rule("cookie", "a cookie", re.compile(r"cookie")),
    Rule("session", "a session", re.compile(r"session")),
)

VALUE_RULES: tuple[Rule, ...] = (
    Rule("pem-block", "a PEM block (a key or certificate)", re.compile(r"-----BEGIN [A-Z0-9 ]*-----")),
    # Also when py-spy cut the repr short before the `@` ("postgresql://app:s3cr...").
    Rule("url-credentials", "a URL with a password (scheme://user:pass@host)",
         re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/?#@:\"']*:[^\s/?#@\"']+(?:@|\.\.\.[\"']?$)")),
    Rule("bearer-token", "a Bearer token", re.compile(r"\b[Bb]earer\s+[A-Za-z0-9._~+/=-]{6,}")),
    Rule("jwt", "a JSON Web Token", re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}")),
    Rule("aws-access-key-id", "an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")),
    Rule("aws-secret-key", "an AWS secret access key",
         re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"), _mixed_like_a_key),
    Rule("github-token", "a GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}")),
    Rule("slack-token", "a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    Rule("stripe-key", "a Stripe-style secret key", re.compile(r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}")),
)

# A key written inside a value: `"password": `, `password=`, `Cookie: `.
_KEY = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*)[\"']?\s*[:=]")
# Values that tell nothing but that there is no value, or an identity py-spy already
# gives as type and address: a secret-sounding name alone does not hide them.
_SAYS_NOTHING = re.compile(r"None|True|False|<[\w.]+(?: object)? at 0x[0-9a-f]+>")


def compact(name: str) -> str:
    """`apiKey`, `API_KEY`, `api-key` -> `apikey`: one spelling for the name rules."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def redaction(name: str, value: str) -> Redaction | None:
    """Why the value of local `name` (py-spy's repr) must not be shown, or None if it may."""
    if not _SAYS_NOTHING.fullmatch(value):
        rule = _name_rule(name)
        if rule is not None:
            return Redaction(rule.id, f"its name looks like {rule.what}")
    for rule in VALUE_RULES:
        if rule.search(value):
            return Redaction(rule.id, f"it holds {rule.what}")
    for key in _keys_in(value):
        rule = _name_rule(key)
        if rule is not None:
            return Redaction(rule.id, f"it holds a key that looks like {rule.what}")
    return None


def _name_rule(name: str) -> Rule | None:
    compacted = compact(name)
    return next((rule for rule in NAME_RULES if rule.search(compacted)), None)


def _keys_in(value: str) -> Iterator[str]:
    for found in _KEY.finditer(value):
        yield found.group(1)


def redacted_command_line(argv: Sequence[str]) -> tuple[str, ...]:
    """A command line with its secrets hidden: `--password=…`, the word after `--token`,
    and arguments that hold a secret themselves (a DSN with a password, a Bearer header)."""
    shown: list[str] = []
    hide_next = False
    for word in argv:
        flag, equals, value = word.partition("=")
        if hide_next and not word.startswith("-"):
            shown.append(REDACTED)
        elif equals and flag.startswith("-") and redaction(flag, value) is not None:
            shown.append(f"{flag}={REDACTED}")
        elif redaction("", word) is not None:
            shown.append(REDACTED)
        else:
            shown.append(word)
        hide_next = word.startswith("-") and not equals and _name_rule(word) is not None
    return tuple(shown)

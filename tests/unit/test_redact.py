"""The redaction rule table: each rule catches its secrets and leaves look-alikes alone.

Values are written as py-spy prints them (`"..."` for a str, `{"k": "v"}` for a dict).
"""

from __future__ import annotations

import pytest

from threaddoc.redact import NAME_RULES, REDACTED, VALUE_RULES, compact, redacted_command_line, redaction

# (rule, variable name, value): the value must be hidden, by that rule.
BY_NAME = [
    ("password", "password", '"hunter2"'),
    ("password", "db_password", '"hunter2"'),
    ("password", "userPassword", '"hunter2"'),
    ("password", "PASSWD", '"hunter2"'),
    ("password", "passphrase", '"correct horse"'),
    ("secret", "client_secret", '"abc"'),
    ("secret", "SECRETS", '{"a": 1}'),
    ("token", "api_token", '"tok_1"'),
    ("token", "accessToken", '"x"'),
    ("token", "token", "123456"),  # a one-time code is a number
    ("api-key", "api_key", '"k"'),
    ("api-key", "apiKey", '"k"'),
    ("api-key", "X-API-KEY", '"k"'),
    ("private-key", "private_key", '"k"'),
    ("private-key", "signingKey", '"k"'),
    ("auth", "auth", '("user", "pw")'),
    ("auth", "authorization", '"Basic dXNlcjpwdw=="'),
    ("auth", "oauth_state", '"s"'),
    ("credential", "credentials", '{"u": "p"}'),
    ("credential", "creds", '("u", "p")'),
    ("cookie", "cookie_jar", '"sid=1"'),
    ("session", "session_id", '"a1b2"'),
]


@pytest.mark.parametrize(("rule", "name", "value"), BY_NAME)
def test_a_secret_name_hides_the_value(rule: str, name: str, value: str) -> None:
    found = redaction(name, value)
    assert found is not None and found.rule == rule
    assert "name" in found.reason


# (rule, value): hidden whatever the variable is called.
BY_CONTENT = [
    ("pem-block", '"-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBg..."'),
    ("pem-block", '"-----BEGIN RSA PRIVATE KEY-----\\nMIIE"'),
    ("pem-block", '"-----BEGIN OPENSSH PRIVATE KEY-----"'),
    ("url-credentials", '"postgresql://orders:s3cr3t@db.internal:5432/orders"'),
    ("url-credentials", '"redis://:s3cr3t@cache:6379/0"'),
    ("url-credentials", '"https://user:pass@example.com/path"'),
    ("url-credentials", '{"dsn": "postgresql://orders:2ecd8c4d..."'),  # cut short before the @
    ("bearer-token", '{"Authorization": "Bearer abcdef123456", "Accept": "json"}'),
    ("bearer-token", '"bearer eyJhbGciOiJIUzI1NiJ9"'),
    ("jwt", '"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"'),
    ("jwt", '"eyJhbGciOiJIUzI1NiJ9..."'),  # cut short by py-spy, still a token
    ("aws-access-key-id", '("AKIAIOSFODNN7EXAMPLE", None)'),
    ("aws-access-key-id", '"ASIAY34FZKBOKMUTVV7A"'),
    ("aws-secret-key", '"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"'),
    ("github-token", '"ghp_' + "a1B2" * 9 + '"'),
    ("slack-token", '"xoxb-1234567890-abcdefghij"'),
    ("stripe-key", '"sk_live_' + "4eC39HqLyjWDarjtT1zdp7dc" + '"'),
]


@pytest.mark.parametrize(("rule", "value"), BY_CONTENT)
def test_a_secret_shape_in_the_value_hides_it(rule: str, value: str) -> None:
    found = redaction("value", value)
    assert found is not None and found.rule == rule
    assert found.reason.startswith("it holds ")


# (rule, value): a key inside the value that names a secret.
BY_KEY = [
    ("password", '{"user": "app", "password": "hunter2"}'),
    ("password", '"grant_type=password&username=orders&password=pw-1"'),
    ("password", '"host=db user=app password=pw"'),
    ("token", '"https://api.example.com/v1?access_token=abc"'),
    ("cookie", '"Cookie: sid=31d4d96e407aad42"'),
    ("auth", '{"Authorization": "Basic dXNlcjpwdw=="}'),
    ("api-key", "{'X-Api-Key': 'k'}"),
]


@pytest.mark.parametrize(("rule", "value"), BY_KEY)
def test_a_secret_key_inside_the_value_hides_it(rule: str, value: str) -> None:
    found = redaction("settings", value)
    assert found is not None and found.rule == rule
    assert "key" in found.reason


# Look-alikes: shown as they are.
NOT_SECRET = [
    ("author", '"Jane Doe"'),
    ("authority", '"example.com:443"'),
    ("tokenizer", "<Tokenizer at 0x7f00aa10>"),
    ("tokenize_mode", '"words"'),
    ("keys", '["a", "b"]'),
    ("passed", "True"),
    ("url", '"https://example.com:8443/path?q=1"'),
    ("url", '"ssh://git@github.com/org/repo"'),  # a user, no password
    ("url", '"http://localhost:8080"'),
    ("digest", '"da39a3ee5e6b4b0d3255bfef95601890afd80709"'),  # a SHA-1: hex, one case
    ("identifier", '"ThisIsAVeryLongCamelCaseIdentifierNames"'),  # 40 letters, no digit
    ("message", '"token expired, please log in again"'),
    ("headers", '{"Accept": "application/json", "User-Agent": "curl/8"}'),
    ("key", '"sku-100"'),
    ("count", "42"),
    ("region", '"eu-west-1"'),
    ("certificate_path", '"/etc/ssl/certs/ca.pem"'),
    ("begin", '"-----BEGIN"'),
]


@pytest.mark.parametrize(("name", "value"), NOT_SECRET)
def test_look_alikes_are_shown(name: str, value: str) -> None:
    assert redaction(name, value) is None


@pytest.mark.parametrize("value", ["None", "True", "False", "<Session at 0x7f3a1c2b4d10>",
                                   "<requests.sessions.Session object at 0x7f3a1c2b4d10>"])
def test_a_value_that_says_nothing_is_shown_whatever_its_name(value: str) -> None:
    # `password = None` or `session = <Session at 0x…>` tell no secret: py-spy's identity only.
    assert redaction("session", value) is None
    assert redaction("password", value) is None


def test_a_secret_shape_is_hidden_even_where_the_name_says_nothing() -> None:
    assert redaction("password", '"-----BEGIN PRIVATE KEY-----"') is not None
    assert redaction("x", '"-----BEGIN PRIVATE KEY-----"') is not None


def test_names_are_compared_in_one_spelling() -> None:
    assert compact("API-Key") == compact("apiKey") == compact("api_key") == "apikey"


def test_every_rule_has_an_id_and_says_what_it_found() -> None:
    rules = [*NAME_RULES, *VALUE_RULES]
    assert len({rule.id for rule in VALUE_RULES}) == len(VALUE_RULES)
    assert len({rule.id for rule in NAME_RULES}) == len(NAME_RULES)
    assert all(rule.what and rule.id == rule.id.lower() for rule in rules)
    assert {rule.id for rule in NAME_RULES} <= {rule for rule, _, _ in BY_NAME}
    assert {rule.id for rule in VALUE_RULES} <= {rule for rule, _ in BY_CONTENT}


def test_the_placeholder_holds_nothing_of_the_value() -> None:
    assert REDACTED == "<redacted>"


@pytest.mark.parametrize(("argv", "shown"), [
    (["app", "--password=hunter2", "--port=80"], ("app", "--password=<redacted>", "--port=80")),
    (["app", "--token", "abc123", "--verbose"], ("app", "--token", "<redacted>", "--verbose")),
    (["app", "postgres://svc:s3cret@db/app"], ("app", "<redacted>")),
    (["app", "-H", "Authorization: Bearer abc.def.ghi"], ("app", "-H", "<redacted>")),
    (["python", "-m", "pytest", "-x", "tests/"], ("python", "-m", "pytest", "-x", "tests/")),
    (["app", "--api-key", "--debug"], ("app", "--api-key", "--debug")),  # a flag, not its value
])
def test_a_command_line_loses_its_secrets(argv: list[str], shown: tuple[str, ...]) -> None:
    assert redacted_command_line(argv) == shown

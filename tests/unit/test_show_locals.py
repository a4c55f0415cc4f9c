"""Local values: never in a report or a saved file by default; with --show-locals, in the
report with every secret redacted and counted.

Canaries are planted in recordings of the hung samples (real py-spy dumps, values and
all): each program frame gets locals holding secrets of every shape the redaction rules
know, and plain values, each a unique string. The recording then goes the way a live
read goes (`values_apart`, as `collect` does) or the way a `--from` py-spy dump goes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import jsonschema
import pytest
from conftest import load

from threaddoc.collect import Recording
from threaddoc.collect.saved import load_saved
from threaddoc.collect.shown import MAX_SHOWN_CHARS, shown_value, values_apart
from threaddoc.pipeline import Report, analyse, analyse_recording
from threaddoc.redact import REDACTED
from threaddoc.render import json as json_render
from threaddoc.render import text as text_render
from threaddoc.schema import load_schema

NAMES = ["lock_order_deadlock-py3.8", "lock_order_deadlock-py3.13", "lock_held_during_slow_request-py3.11",
         "nested_submit_starvation-py3.12", "bank_transfer_deadlock-py3.10"]

# (variable name, py-spy's repr with {c} for the canary): every one must be redacted.
SECRET_SHAPES = [
    ("password", '"{c}"'),
    ("api_token", '"{c}"'),
    ("client_secret", '"{c}"'),
    ("request_headers", '{{"Authorization": "Bearer {c}", "Accept": "application/json"}}'),
    ("dsn", '"postgresql://orders:{c}@db.internal:5432/orders"'),
    ("signing_pem", '"-----BEGIN PRIVATE KEY-----\\nMIIE{c}\\n-----END PRIVATE KEY-----\\n"'),
    ("aws_keys", '("AKIA{c}", None)'),
    ("material", '"{c}"'),  # an AWS secret access key: 40 characters of base64
    ("assertion", '"eyJhbGciOiJIUzI1NiJ9.{c}.c2ln"'),
    ("jar", '{{"Cookie": "sid={c}"}}'),
    ("session_id", '"{c}"'),
    ("form", '"grant_type=password&username=orders&password={c}"'),
]
PLAIN_SHAPES = [("region", '"{c}"'), ("label", '"{c}"'), ("spec", '("{c}", 3)')]


@dataclass(frozen=True)
class Planted:
    entries: tuple[dict[str, Any], ...]
    secret: frozenset[str]
    plain: frozenset[str]


def canary(number: int, name: str) -> str:
    """Unique, and in the shape its variable needs (an AWS key id is 16 upper-case letters
    and digits after AKIA, a secret key 40 characters of base64)."""
    if name == "aws_keys":
        return f"CNRY{number:012d}"
    if name == "material":
        return f"Cnry{number:06d}/wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLE"[:40]
    return f"cnry{number:06d}{name[:3]}"


def plant(entries: tuple[Mapping[str, Any], ...]) -> Planted:
    """Each program frame of each thread gets every secret and plain shape as a local."""
    secret, plain, planted, number = set(), set(), [], 0
    for entry in entries:
        frames = []
        for frame in entry.get("frames") or ():
            extra = []
            if "/lib/python3" not in str(frame.get("filename")):
                for shapes, bucket in ((SECRET_SHAPES, secret), (PLAIN_SHAPES, plain)):
                    for name, shape in shapes:
                        number += 1
                        value = canary(number, name)
                        bucket.add(value)
                        extra.append({"name": name, "addr": 0x5000_0000 + number, "arg": False,
                                      "repr": shape.format(c=value)})
            frames.append({**frame, "locals": [*(frame.get("locals") or ()), *extra]})
        planted.append({**entry, "frames": frames})
    return Planted(tuple(planted), frozenset(secret), frozenset(plain))


def as_collected(recording: Recording, planted: Planted, show_locals: bool) -> Recording:
    """What `collect` makes of that dump: values apart, and kept only if asked for."""
    raw, shown = values_apart(planted.entries, show_locals)
    return replace(recording, pyspy=tuple(raw), shown=shown)


def outputs(report: Report) -> dict[str, str]:
    return {
        "text": "\n".join(text_render.render(report, text_render.Style(color=False))),
        "color text": "\n".join(text_render.render(report, text_render.Style(color=True))),
        "json": json_render.render(report, pretty=True),
        "one-line json": json_render.render(report, pretty=False),
    }


def leaked(canaries: frozenset[str], texts: Mapping[str, str]) -> dict[str, list[str]]:
    found = {where: sorted(c for c in canaries if c in text) for where, text in texts.items()}
    return {where: values for where, values in found.items() if values}


def baseline_redactions(name: str) -> int:
    """What the sample's own locals (no secrets in them) give: none redacted."""
    recording = load(name)
    _, shown = values_apart(recording.pyspy, True)
    assert shown is not None
    return sum(1 for value in shown.values() if value.redacted)


@pytest.mark.parametrize("name", NAMES)
def test_by_default_no_value_reaches_a_report_or_a_saved_file(name: str) -> None:
    recording = load(name)
    planted = plant(recording.pyspy)
    collected = as_collected(recording, planted, show_locals=False)
    texts = {**outputs(analyse_recording(collected)), "--save": collected.to_json()}
    assert leaked(planted.secret | planted.plain, texts) == {}
    assert "Local variables" not in texts["text"]
    assert "shown_locals" not in json.loads(texts["json"])


@pytest.mark.parametrize("name", NAMES)
def test_show_locals_shows_plain_values_and_redacts_and_counts_every_secret(name: str) -> None:
    recording = load(name)
    planted = plant(recording.pyspy)
    collected = as_collected(recording, planted, show_locals=True)
    report = analyse_recording(collected)
    texts = outputs(report)
    assert leaked(planted.secret, {**texts, "--save": collected.to_json()}) == {}
    assert all(value in texts["text"] and value in texts["json"] for value in planted.plain)
    assert leaked(planted.plain, {"--save": collected.to_json()}) == {}, "a value was saved"
    redacted = len(planted.secret) + baseline_redactions(name)
    assert baseline_redactions(name) == 0
    document = json.loads(texts["json"])
    jsonschema.validate(document, load_schema())
    assert document["shown_locals"]["redacted"] == redacted
    assert f", {redacted} redacted because their names or contents look secret" in texts["text"]
    assert _redacted_in_document(document) == redacted


def _redacted_in_document(document: Mapping[str, Any]) -> int:
    shown = [local["shown"] for thread in document["threads"] for frame in thread["frames"]
             for local in frame["locals"] if local["shown"] is not None]
    assert all(item["text"] == REDACTED and item["reason"] for item in shown if item["redacted"])
    assert all(item["reason"] is None for item in shown if not item["redacted"])
    assert document["shown_locals"]["values"] == len(shown)
    return sum(1 for item in shown if item["redacted"])


@pytest.mark.parametrize("name", NAMES[:2])
def test_each_planted_secret_is_redacted_by_the_rule_for_its_shape(name: str) -> None:
    planted = plant(load(name).pyspy)
    _, shown = values_apart(planted.entries, True)
    assert shown is not None
    by_name = {key[2]: value for key, value in shown.items()}
    assert all(by_name[secret].redacted for secret, _ in SECRET_SHAPES)
    assert not any(by_name[plain].redacted for plain, _ in PLAIN_SHAPES)
    assert "Bearer" in (by_name["request_headers"].reason or "")
    assert "AWS secret" in (by_name["material"].reason or "")
    assert "password" in (by_name["dsn"].reason or "")


@pytest.mark.parametrize("name", NAMES)
def test_a_pyspy_dump_read_from_a_file_shows_its_values_only_when_asked(name: str) -> None:
    planted = plant(load(name).pyspy)
    dumped = json.dumps(list(planted.entries))
    (hidden,) = [analyse(snapshot) for snapshot in load_saved(dumped, "dump.json")]
    assert leaked(planted.secret | planted.plain, outputs(hidden)) == {}
    (shown,) = [analyse(snapshot) for snapshot in load_saved(dumped, "dump.json", show_locals=True)]
    texts = outputs(shown)
    assert leaked(planted.secret, texts) == {}
    assert all(value in texts["text"] for value in planted.plain)
    assert json.loads(texts["json"])["shown_locals"]["redacted"] == len(planted.secret)


@pytest.mark.parametrize("name", NAMES[:2])
def test_a_file_threaddoc_wrote_has_no_values_to_show(name: str) -> None:
    recording = load(name)
    planted = plant(recording.pyspy)
    collected = as_collected(recording, planted, show_locals=True)
    report_json = json_render.render(analyse_recording(collected))
    for saved in (collected.to_json(), report_json):
        (again,) = [analyse(snapshot) for snapshot in load_saved(saved, "saved.json", show_locals=True)]
        texts = outputs(again)
        assert leaked(planted.secret | planted.plain, texts) == {}
        assert "Local variables (--show-locals): none to show: the threaddoc-" in texts["text"]
        assert json.loads(texts["json"])["shown_locals"] == {"values": 0, "redacted": 0}


def test_the_schema_still_forbids_a_value_or_repr_on_a_local() -> None:
    recording = load(NAMES[0])
    document = json.loads(json_render.render(analyse_recording(as_collected(
        recording, plant(recording.pyspy), show_locals=True))))
    local = document["threads"][0]["frames"][0]["locals"][0]
    for forbidden in ("value", "repr"):
        local[forbidden] = "hunter2"
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(document, load_schema())
        del local[forbidden]
    jsonschema.validate(document, load_schema())


def test_a_long_value_is_shortened_after_redaction_looked_at_all_of_it() -> None:
    long = '"' + "x" * 300 + ' password=hunter2"'
    assert shown_value("blob", long).redacted
    shortened = shown_value("blob", '"' + "x" * 300 + '"')
    assert not shortened.redacted and len(shortened.text) == MAX_SHOWN_CHARS + 1

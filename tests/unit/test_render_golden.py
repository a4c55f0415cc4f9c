"""The renderers print exactly the golden files (regenerate: tests/tools/update_goldens.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

from conftest import GOLDEN, recording_names
from update_goldens import MANY_THREADS, golden_json, golden_names, golden_text

from threaddoc.schema import load_schema

NAMES = golden_names()


@pytest.mark.parametrize("name", NAMES)
def test_text_report_matches_golden(name: str) -> None:
    expected = (GOLDEN / f"{name}.txt").read_text(encoding="utf-8")
    assert golden_text(name) == expected, "run tests/tools/update_goldens.py and review the diff"


@pytest.mark.parametrize("name", NAMES)
def test_json_report_matches_golden(name: str) -> None:
    expected = (GOLDEN / f"{name}.json").read_text(encoding="utf-8")
    assert golden_json(name) == expected, "run tests/tools/update_goldens.py and review the diff"


@pytest.mark.parametrize("name", recording_names())
def test_json_report_validates_against_the_shipped_schema(name: str) -> None:
    jsonschema.validate(json.loads(golden_json(name)), load_schema())


def test_every_sample_has_goldens_and_no_golden_is_stale() -> None:
    samples = {name.rsplit("-py", 1)[0] for name in recording_names()}
    assert samples and {name.rsplit("-py", 1)[0] for name in NAMES if name not in MANY_THREADS} == samples
    expected = {f"{name}.{suffix}" for name in NAMES for suffix in ("txt", "json")}
    assert {path.name for path in GOLDEN.iterdir()} == expected

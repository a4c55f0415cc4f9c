"""docs/examples/ is what the recordings give today (regenerate: tests/tools/update_examples.py)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

from conftest import report
from update_examples import (
    EXAMPLES,
    INDEX,
    SAMPLE_OF_KIND,
    all_kinds,
    expected_files,
    produced_kinds,
    program_of,
    recording_of,
)

from threaddoc.findings.kinds import kind_names

REGENERATE = "run `python tests/tools/update_examples.py` and review `git diff docs/examples`"
ROOT = EXAMPLES.parent.parent
EXPECTED = expected_files()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_matches_what_the_recordings_give(name: str) -> None:
    path = EXAMPLES / name
    assert path.is_file(), f"{path} is missing: {REGENERATE}"
    assert path.read_text(encoding="utf-8") == EXPECTED[name], f"{path} is out of date: {REGENERATE}"


def test_no_stale_example() -> None:
    assert {path.name for path in EXAMPLES.iterdir()} == set(EXPECTED), REGENERATE


def test_every_kind_the_recordings_produce_is_in_the_vocabulary_and_has_an_example() -> None:
    produced = produced_kinds()
    assert produced <= set(kind_names()), "add the kind to threaddoc/findings/kinds.py"
    assert {name.removesuffix(".txt") for name in EXPECTED if name != INDEX} == produced


@pytest.mark.parametrize("kind", sorted(SAMPLE_OF_KIND))
def test_each_chosen_recording_shows_its_kind(kind: str) -> None:
    assert kind in set(all_kinds(report(recording_of(kind))))
    assert (ROOT / program_of(kind)[0]).is_file()


def test_index_links_every_example() -> None:
    links = set(re.findall(r"\]\(([^)]+)\)", EXPECTED[INDEX]))
    assert {name for name in EXPECTED if name != INDEX} <= links
    for link in links:
        assert (EXAMPLES / link).resolve().is_file(), link


def test_readme_links_the_examples() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## What it recognises", 1)[1].split("\n## ", 1)[0]
    assert "(docs/examples/README.md)" in section

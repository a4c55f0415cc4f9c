"""The README, the man page and CI say the same as the code."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import click
import pytest

from threaddoc import manpage
from threaddoc.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^python3 -m venv .*$", readme, flags=re.MULTILINE)


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    commands = _readme_commands()
    assert len(commands) == 2, commands
    install_and_test = commands[1]
    assert "pytest" in install_and_test
    assert install_and_test in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()


def test_readme_first_command_installs_and_runs_the_demo() -> None:
    assert _readme_commands()[0].endswith("threaddoc demo")


def test_man_page_is_generated_from_the_cli() -> None:
    committed = (ROOT / "man" / "threaddoc.1").read_text(encoding="utf-8")
    assert committed == manpage.render(), "run: python -m threaddoc.manpage > man/threaddoc.1"


def test_man_page_documents_every_option_of_every_command() -> None:
    page = manpage.render()
    assert isinstance(cli, click.Group)
    for name, command in cli.commands.items():
        assert f".SS threaddoc {name}" in page
        for parameter in command.params:
            if isinstance(parameter, click.Option):
                for option in parameter.opts + parameter.secondary_opts:
                    assert option.replace("-", "\\-") in page, (name, option)


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
def test_man_page_renders_without_warnings() -> None:
    result = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-z", str(ROOT / "man" / "threaddoc.1")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0
    assert result.stderr == ""

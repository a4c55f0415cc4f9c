"""The README, the man page and CI say the same as the code."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from threaddoc import __version__, manpage
from threaddoc.cli import cli
from threaddoc.findings.kinds import kind_names

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

# An option as written in prose, tables and command lines: `--json`, `-h`, `--no-color`;
# not the dash inside `py-spy` or `lock-order`, nor the `--` that ends options.
OPTION = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")

# Where README documents each command's options (the heading the section starts with).
OPTIONS_SECTION = {"diagnose": "Usage", "demo": "Usage", "run": "Hangs in CI", "schema": "Usage"}

# Options README documents outside their command's section, and where.
DOCUMENTED_ELSEWHERE = {
    ("diagnose", "--source-root"): "When nobody can attach any more",
    ("run", "--show-locals"): "Secrets",
}

# Options README deliberately leaves out, with the reason.
UNDOCUMENTED = {
    "-h": "short for --help, which README shows; --help lists both",
    "-V": "short for --version, which README shows; --help lists both",
}


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


def _readme() -> str:
    return README.read_text(encoding="utf-8")


def _section(title: str) -> str:
    """The README section (## heading) whose title starts with `title`, up to the next one."""
    match = re.search(rf"^## {re.escape(title)}[^\n]*\n(.*?)(?=^## |\Z)", _readme(), re.MULTILINE | re.DOTALL)
    assert match, f"README has no section '## {title}'"
    return match.group(1)


def _usage_block() -> list[str]:
    """The command lines of the first code block under '## Usage'."""
    block = _section("Usage").split("```", 2)[1]
    return [line for line in block.splitlines() if line.startswith("threaddoc")]


def _context(command: click.Command, name: str) -> click.Context:
    parent = cli.make_context("threaddoc", ["--help"], resilient_parsing=True)
    return parent if command is cli else click.Context(command, info_name=name, parent=parent)


def _options(command: click.Command, name: str) -> set[str]:
    """Every spelling of every option of a command, --help included (as --help shows them)."""
    names: set[str] = set()
    for parameter in command.get_params(_context(command, name)):
        if isinstance(parameter, click.Option):
            names.update(parameter.opts + parameter.secondary_opts)
    return names


def _commands() -> Iterator[tuple[str, click.Command]]:
    assert isinstance(cli, click.Group)
    yield from sorted(cli.commands.items())


def _usage_without_block() -> str:
    first, _, rest = _section("Usage").partition("```")
    return first + rest.partition("```")[2]


def test_readme_usage_lines_name_real_commands_and_their_options() -> None:
    assert isinstance(cli, click.Group)
    shown = set()
    for line in _usage_block():
        words = line.split()
        name = words[1] if len(words) > 1 and not words[1].startswith("-") else ""
        command = cli.commands.get(name) if name else cli
        assert command is not None, f"README Usage shows `threaddoc {name}`, which does not exist"
        shown.add(name)
        # A line is the command, then (after a run of spaces) what it does.
        missing = set(OPTION.findall(re.split(r"\s{2,}", line)[0])) - _options(command, name)
        assert not missing, f"README Usage line {line!r}: no such option {sorted(missing)}"
    assert {name for name, _ in _commands()} <= shown, "a command is missing from README's Usage block"


def test_readme_options_table_and_prose_name_real_options() -> None:
    # The table is "Options of `diagnose` (and `demo`)", and the prose around it is about them.
    known = _options(cli.commands["diagnose"], "diagnose") | _options(cli.commands["demo"], "demo")
    missing = set(OPTION.findall(_usage_without_block())) - known
    assert not missing, f"README Usage mentions options diagnose and demo do not have: {sorted(missing)}"


def _undocumented(name: str, command: click.Command) -> list[str]:
    section = _section(OPTIONS_SECTION[name])
    # Every command's --help is the one `threaddoc --version | --help` shows.
    helps = set(_context(cli, "threaddoc").help_option_names)
    missing = []
    for option in sorted(_options(command, name) - helps):
        where = DOCUMENTED_ELSEWHERE.get((name, option))
        text = _section(where) if where else section
        if option not in UNDOCUMENTED and option not in set(OPTION.findall(text)):
            missing.append(option)
    return missing


@pytest.mark.parametrize("name", sorted(OPTIONS_SECTION))
def test_readme_documents_every_option_of_every_command(name: str) -> None:
    assert isinstance(cli, click.Group)
    missing = _undocumented(name, cli.commands[name])
    assert not missing, (f"README section '{OPTIONS_SECTION[name]}' does not mention {name}'s {missing}: "
                         "document them (or list them in UNDOCUMENTED in this test, with the reason)")


def test_readme_documents_the_top_level_options() -> None:
    shown = {option for line in _usage_block() for option in OPTION.findall(line)}
    assert _options(cli, "threaddoc") - set(UNDOCUMENTED) <= shown


def test_every_command_has_a_documented_options_section() -> None:
    assert {name for name, _ in _commands()} == set(OPTIONS_SECTION)


def test_readme_and_man_page_list_every_finding_kind() -> None:
    recognised = _section("What it recognises")
    page = manpage.render()
    for kind in kind_names():
        assert f"`{kind}`" in recognised, kind
        assert "\\fB" + kind.replace("-", "\\-") + "\\fR" in page, kind


def _threaddoc(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The installed entry point, as a shell runs it (else the module, as in a bare checkout)."""
    script = Path(sys.executable).parent / "threaddoc"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "threaddoc"]
    return subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=60, check=False, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_script_is_produced(shell: str) -> None:
    result = _threaddoc({"_THREADDOC_COMPLETE": f"{shell}_source"})
    assert result.returncode == 0, result.stderr
    assert "_threaddoc_completion" in result.stdout and "_THREADDOC_COMPLETE" in result.stdout


def test_shell_completion_completes_commands_and_options() -> None:
    def complete(words: str) -> list[str]:
        result = _threaddoc({"_THREADDOC_COMPLETE": "bash_complete", "COMP_WORDS": words,
                             "COMP_CWORD": str(len(words.split()) - 1)})
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert "plain,diagnose" in complete("threaddoc di")
    assert {"plain,--samples", "plain,--save"} <= set(complete("threaddoc diagnose --sa"))
    assert "plain,nested-submit" in complete("threaddoc demo nest")


def test_shell_completion_is_documented_in_readme_and_man_page() -> None:
    readme, page = _readme(), manpage.render()
    assert ".SH SHELL COMPLETION" in page
    for shell, command, _ in manpage.SHELL_COMPLETION:
        assert f"{shell}_source" in command
        assert command in readme, f"README should show the {shell} completion command as the man page does"


def test_changelog_has_the_current_version_and_unreleased_work() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\]", changelog, flags=re.MULTILINE)
    assert headings[:1] == ["Unreleased"], "Keep a Changelog: Unreleased comes first"
    assert __version__ in headings, f"CHANGELOG.md has no '## [{__version__}]' section"

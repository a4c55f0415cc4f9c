"""man/threaddoc.1, generated from the click commands so the two cannot drift.

    python -m threaddoc.manpage > man/threaddoc.1
"""

from __future__ import annotations

from collections.abc import Iterator

import click

from threaddoc import __version__
from threaddoc.cli import cli

FINDING_KINDS = (
    ("lock-order-deadlock", "threads each hold a lock the next one waits for: a cycle"),
    ("self-deadlock", "a thread waits for a non-reentrant Lock it already holds"),
    ("join-deadlock", "a cycle through Thread.join"),
    ("executor-starvation",
     "every worker of a pool waits on futures that need a free worker of that same pool"),
    ("future-cross-wait", "futures whose tasks wait for each other's results"),
    ("blocked-shutdown", "interpreter exit or executor shutdown waits on threads that will not finish"),
    ("queue-starvation", "queue consumers or producers that no live thread will serve"),
    ("unsignalled-wait", "Event, Condition or Barrier waits that no thread is positioned to signal"),
    ("lock-held-during-io", "a thread holds a lock while blocked in I/O; others wait for the lock"),
    ("blocking-io-no-timeout", "a thread blocked in socket, pipe or file I/O with no timeout"),
    ("subprocess-pipe-deadlock", "Popen.wait() while the child's piped output is not read"),
    ("import-lock-deadlock", "threads blocked on an import lock whose import waits on them"),
    ("event-loop-blocked", "an asyncio event loop thread is inside a blocking call"),
    ("fork-inherited-lock", "a forked child waits on a lock held by a thread of its parent"),
    ("cpu-bound, gil-contention", "informational: busy, not hung"),
)

EXAMPLES = (
    ("threaddoc demo", "Diagnose a bundled lock-order deadlock; proves attaching works on this host."),
    ("sudo threaddoc diagnose 4242", "Diagnose the hung process 4242."),
    ("threaddoc diagnose 4242 --json > report.json", "The same report for tooling."),
    ("threaddoc diagnose 4242 --save capture.json",
     "Diagnose, and keep what was read to diagnose again later."),
    ("threaddoc diagnose --from ci-job.log --source-root .",
     "Diagnose the faulthandler or pytest-timeout dump in a CI log, with the source of this checkout."),
    ("threaddoc diagnose --core core.4242", "Diagnose a core file written by the kernel."),
    ("threaddoc run --after 20m --kill -- python -m pytest",
     "Run a test suite; if it still runs after 20 minutes, diagnose it on stderr and stop it (exit 124)."),
    ("threaddoc schema", "Print the JSON Schema of the report."),
)


def _escape(text: str) -> str:
    escaped = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in escaped.splitlines())


def _paragraphs(help_text: str) -> Iterator[str]:
    for block in help_text.split("\n\n"):
        lines = [line for line in block.splitlines() if line.strip() != "\b"]
        if block.lstrip().startswith("\b"):
            yield ".nf"
            yield from (_escape(line) for line in lines)
            yield ".fi"
        else:
            yield ".PP"
            yield _escape(" ".join(line.strip() for line in lines))


def _options(command: click.Command, context: click.Context) -> Iterator[str]:
    for parameter in command.get_params(context):
        if not isinstance(parameter, click.Option):
            continue
        record = parameter.get_help_record(context)
        if record is None:
            continue
        names, text = record
        yield ".TP"
        yield f"\\fB{_escape(names)}\\fR"
        yield _escape(text)


def render() -> str:
    context = cli.make_context("threaddoc", ["--help"], resilient_parsing=True)
    lines = [
        f'.TH THREADDOC 1 "" "threaddoc {__version__}" "User Commands"',
        ".SH NAME",
        "threaddoc \\- diagnose hung Python programs",
        ".SH SYNOPSIS",
    ]
    assert isinstance(cli, click.Group)
    for name, command in sorted(cli.commands.items()):
        usage = " ".join(command.collect_usage_pieces(click.Context(command, info_name=name)))
        lines += [f"\\fBthreaddoc {name}\\fR {_escape(usage)}", ".br"]
    lines += ["\\fBthreaddoc\\fR [\\fB\\-\\-version\\fR] [\\fB\\-\\-help\\fR]", ".SH DESCRIPTION"]
    lines += list(_paragraphs(cli.help or ""))
    lines += [".SH OPTIONS"]
    lines += list(_options(cli, context))
    lines += [".SH COMMANDS"]
    for name, command in sorted(cli.commands.items()):
        lines += [f".SS threaddoc {name}"]
        lines += list(_paragraphs(command.help or ""))
        lines += list(_options(command, click.Context(command, info_name=name, parent=context)))
    lines += [".SH FINDING KINDS",
              "The \\fBkind\\fR of each finding in the report; kinds are added, never renamed."]
    for kind, meaning in FINDING_KINDS:
        lines += [".TP", f"\\fB{_escape(kind)}\\fR", _escape(meaning)]
    lines += [
        ".SH EXIT STATUS",
        ".TP", "\\fB0\\fR", "No hang found.",
        ".TP", "\\fB1\\fR", "A hang or deadlock was diagnosed.",
        ".TP", "\\fB2\\fR", "Usage error.",
        ".TP", "\\fB3\\fR",
        "The target could not be inspected: no such process, not Python, permission denied, "
        "py\\-spy missing, failing or timing out.",
        ".PP",
        "\\fBthreaddoc run\\fR exits with the command's own status (128+N when signal N ended it), "
        "124 when the command was diagnosed and stopped by \\fB\\-\\-kill\\fR, 126 when it cannot be "
        "executed and 127 when it is not found.",
        ".SH ENVIRONMENT",
        ".TP", "\\fBNO_COLOR\\fR", "When set, the text report has no color, even on a terminal.",
        ".TP", "\\fBTHREADDOC_PY_SPY\\fR", "Path of the py\\-spy executable to use.",
        ".TP", "\\fBTHREADDOC_DEBUG\\fR",
        "When set, an internal error shows its traceback instead of one line.",
        ".SH PERMISSIONS",
        "Reading another process's memory needs ptrace permission: run as root, with "
        "CAP_SYS_PTRACE, or with \\fBkernel.yama.ptrace_scope\\fR set to 0 for processes of your own "
        "user. The target is only read, never written to, and is paused only while py\\-spy reads "
        "its stacks. Local variables' values are never printed.",
        ".SH EXAMPLES",
    ]
    for command_line, meaning in EXAMPLES:
        lines += [".TP", f"\\fB{_escape(command_line)}\\fR", _escape(meaning)]
    lines += [".SH SEE ALSO", "\\fBpy\\-spy\\fR(1), \\fBgdb\\fR(1), \\fBproc\\fR(5)"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")

"""Command line: options -> pipeline -> renderer; errors -> one line and an exit status."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable

import click

from threaddoc import __version__, demo
from threaddoc.collect.process import python_processes_named
from threaddoc.errors import (
    EXIT_CANNOT_INSPECT,
    EXIT_HANG,
    EXIT_NO_HANG,
    EXIT_USAGE,
    NoSuchProcess,
    TargetError,
    ThreaddocError,
)
from threaddoc.findings import Verdict
from threaddoc.pipeline import (
    DEFAULT_INTERVAL,
    DEFAULT_SAMPLES,
    Failure,
    ManyReports,
    Report,
    diagnose,
    group_reports,
)
from threaddoc.render import json as json_render
from threaddoc.render import text as text_render
from threaddoc.sanitize import clean_line
from threaddoc.schema import schema_text

EXIT_STATUS_HELP = """\b
Exit status:
  0  no hang found (the process may be busy: verdict no-hang or busy)
  1  a hang or deadlock was diagnosed
  2  usage error
  3  the target could not be inspected (no such process, not Python,
     permission denied, py-spy missing or failing)"""


def _sampling_options(command: click.decorators.FC) -> click.decorators.FC:
    command = click.option("--interval", type=click.FloatRange(min=0.01, max=10.0), default=DEFAULT_INTERVAL,
                           show_default=True, metavar="SECONDS",
                           help="Time between two samples.")(command)
    command = click.option("--samples", type=click.IntRange(min=1, max=100), default=DEFAULT_SAMPLES,
                           show_default=True, metavar="N",
                           help="How many times to read the stacks; a thread is stuck only if it did "
                                "not move between them. 1 is fastest.")(command)
    return command


def _output_options(command: click.decorators.FC) -> click.decorators.FC:
    command = click.option("--json", "as_json", is_flag=True,
                           help="Print the report as JSON (schema_version 1) instead of text: "
                                "indented on a terminal, one line otherwise.")(command)
    command = click.option("--color/--no-color", "color", default=None,
                           help="Force color on or off "
                                "(default: on a terminal, unless NO_COLOR is set).")(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]},
             epilog=EXIT_STATUS_HELP)
@click.version_option(__version__, "-V", "--version", prog_name="threaddoc")
def cli() -> None:
    """Diagnose hung Python programs: who waits for what, who holds it, and the fix.

    \b
    Examples:
      threaddoc demo                 see a diagnosis of a bundled deadlock
      sudo threaddoc diagnose 4242   diagnose the hung process 4242
      threaddoc diagnose 4242 --json > report.json
    """


@cli.command(epilog=EXIT_STATUS_HELP)
@click.argument("pids", nargs=-1, type=click.IntRange(min=1), metavar="PID...")
@click.option("--name", "names", multiple=True, metavar="NAME",
              help="Diagnose every Python process whose name or command line contains NAME "
                   "(repeatable), e.g. all gunicorn workers.")
@click.option("--children", is_flag=True,
              help="Also diagnose the target's Python child processes (multiprocessing, process "
                   "pools, subprocesses) and link a parent waiting on them to the child that is stuck.")
@_output_options
@_sampling_options
@click.option("--timeout", type=click.FloatRange(min=1.0), default=20.0, show_default=True,
              metavar="SECONDS",
              help="Seconds to let py-spy read the target before giving up.")
@click.option("--native", is_flag=True,
              help="Also read C frames (py-spy --native): tells a thread waiting for the GIL, "
                   "and what a C extension holding it is doing.")
@click.option("--py-spy", "py_spy", metavar="PATH", default=None,
              help="The py-spy executable (default: $THREADDOC_PY_SPY, then beside threaddoc, "
                   "then PATH).")
def diagnose_command(pids: tuple[int, ...], names: tuple[str, ...], children: bool, as_json: bool,
                     color: bool | None, samples: int, interval: float, timeout: float, native: bool,
                     py_spy: str | None) -> None:
    """Attach to the running Python process PID and diagnose why it hangs.

    Reads every thread's stack with py-spy (the target needs no preparation and
    is paused only while its stacks are read), works out what each thread waits
    for and who holds it, and prints the verdict with the fix.  Several PIDs (or
    --name) diagnose several processes and group those stuck the same way.
    """
    targets = _targets(pids, names)
    run = functools.partial(diagnose, py_spy=py_spy, timeout=timeout, samples=samples, interval=interval,
                            native=native, children=children)
    if len(targets) == 1 and not names:
        report = run(targets[0])
        _emit(report, as_json, color)
        sys.exit(_exit_status(report.verdict))
    reports, failures = [], []
    for pid in targets:
        try:
            reports.append(run(pid))
        except TargetError as error:
            failures.append(Failure(pid, error.one_line().removeprefix("threaddoc: ")))
    if not reports:
        raise TargetError(f"none of the {len(targets)} processes could be inspected: {failures[0].message}")
    many = group_reports(reports, failures)
    _emit_many(many, as_json, color)
    sys.exit(_exit_status(many.verdict))


def _targets(pids: tuple[int, ...], names: tuple[str, ...]) -> list[int]:
    if not pids and not names:
        raise click.UsageError("give the PID of the process to diagnose, or --name NAME")
    targets = list(dict.fromkeys(pids))
    for name in names:
        matching = python_processes_named(name, exclude=os.getpid())
        if not matching:
            raise NoSuchProcess(f"no Python process matches {name!r}",
                                "check the name with `ps -ef | grep NAME`, or give PIDs")
        targets.extend(pid for pid in matching if pid not in targets)
    return targets


diagnose_command.name = "diagnose"


@cli.command("demo", epilog=EXIT_STATUS_HELP)
@click.argument("scenario", required=False, default="lock-order", metavar="[SCENARIO]",
                type=click.Choice(list(demo.SCENARIOS)))
@_output_options
@_sampling_options
@click.option("--list", "list_only", is_flag=True, help="List the demo scenarios and exit.")
def demo_command(scenario: str, as_json: bool, color: bool | None, samples: int, interval: float,
                 list_only: bool) -> None:
    """Run a bundled hung program, diagnose it, and stop it.

    SCENARIO is lock-order (default) or another of `threaddoc demo --list`.  Exits
    0 when the diagnosis is the one the scenario expects, which also proves that
    threaddoc can attach to processes on this host.
    """
    if list_only:
        for item in demo.SCENARIOS.values():
            click.echo(f"{item.name:18} {item.story} (expect: {item.expected_verdict})")
        return
    chosen = demo.scenario(scenario)
    with demo.running_sample(chosen.sample) as process:
        report = diagnose(process.pid, samples=samples, interval=interval)
    _emit(report, as_json, color)
    if report.verdict.value != chosen.expected_verdict:
        click.echo(f"threaddoc: demo {chosen.name} expected verdict {chosen.expected_verdict} "
                   f"but got {report.verdict.value}", err=True)
        sys.exit(EXIT_HANG)
    sys.exit(EXIT_NO_HANG)


@cli.command("schema")
def schema_command() -> None:
    """Print the JSON Schema that every `--json` report validates against."""
    click.echo(schema_text(), nl=False)


def _emit(report: Report, as_json: bool, color: bool | None) -> None:
    _write(lambda: json_render.render(report, pretty=sys.stdout.isatty()),
           lambda style: text_render.render(report, style), as_json, color)


def _emit_many(many: ManyReports, as_json: bool, color: bool | None) -> None:
    _write(lambda: json_render.render_many(many, pretty=sys.stdout.isatty()),
           lambda style: text_render.render_many(many, style), as_json, color)


def _write(as_document: Callable[[], str], as_lines: Callable[[text_render.Style], Iterable[str]],
           as_json: bool, color: bool | None) -> None:
    try:
        if as_json:
            click.echo(as_document(), nl=False)
            return
        style = text_render.Style(color=text_render.use_color(sys.stdout.isatty(), color))
        for line in as_lines(style):
            click.echo(line, color=style.color)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`threaddoc diagnose PID | head -1`): the exit status must
        # still be the diagnosis, not click's 1 for a broken pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _exit_status(verdict: Verdict) -> int:
    return EXIT_NO_HANG if verdict in (Verdict.NO_HANG, Verdict.BUSY) else EXIT_HANG


def main(argv: list[str] | None = None) -> None:
    """Entry point: every failure becomes one line on stderr and a documented status."""
    try:
        status = cli.main(args=argv, prog_name="threaddoc", standalone_mode=False)
    except click.UsageError as error:
        hint = f"see `{error.ctx.command_path} --help`" if error.ctx else "see `threaddoc --help`"
        _fail(f"threaddoc: {error.format_message()} — {hint}", EXIT_USAGE)
    except click.exceptions.Abort:
        _fail("threaddoc: interrupted", 130)
    except ThreaddocError as error:
        _fail(error.one_line(), error.exit_code)
    except KeyboardInterrupt:
        _fail("threaddoc: interrupted", 130)
    except SystemExit:
        raise
    except Exception as error:
        if os.environ.get("THREADDOC_DEBUG"):
            raise
        _fail(f"threaddoc: internal error: {type(error).__name__}: {error} — please report it; "
              "THREADDOC_DEBUG=1 shows the traceback", EXIT_CANNOT_INSPECT)
    sys.exit(status if isinstance(status, int) else EXIT_NO_HANG)


def _fail(message: str, status: int) -> None:
    click.echo(clean_line(" ".join(message.split())), err=True)
    sys.exit(status)

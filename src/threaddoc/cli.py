"""Command line: options -> pipeline -> renderer; errors -> one line and an exit status."""

from __future__ import annotations

import functools
import gc
import importlib
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

# Only what the command line itself needs is loaded here: the rest is imported by the
# command that uses it, so that `threaddoc diagnose PID` reaches py-spy sooner.
from threaddoc import __version__, stopsignals
from threaddoc.errors import (
    EXIT_CANNOT_INSPECT,
    EXIT_HANG,
    EXIT_NO_HANG,
    EXIT_USAGE,
    Interrupted,
    NoSuchProcess,
    TargetError,
    ThreaddocError,
    UsageError,
)
from threaddoc.pipeline import DEFAULT_INTERVAL, DEFAULT_SAMPLES, Failure
from threaddoc.sanitize import clean_line

if TYPE_CHECKING:
    from threaddoc.findings import Verdict
    from threaddoc.pipeline import ManyReports, Report
    from threaddoc.render import text as text_render

EXIT_STATUS_HELP = """\b
Exit status:
  0  no hang found (the process may be busy: verdict no-hang or busy)
  1  a hang or deadlock was diagnosed
  2  usage error
  3  the target could not be inspected (no such process, not Python,
     permission denied, py-spy missing or failing)
  129, 130, 143  stopped by SIGHUP, SIGINT, SIGTERM (the target is left
     as it was)"""


def _sampling_options(command: click.decorators.FC) -> click.decorators.FC:
    command = click.option("--interval", type=click.FloatRange(min=0.01, max=10.0), default=DEFAULT_INTERVAL,
                           show_default=True, metavar="SECONDS",
                           help="Time between two samples.")(command)
    command = click.option("--samples", type=click.IntRange(min=1, max=100), default=DEFAULT_SAMPLES,
                           show_default=True, metavar="N",
                           help="How many times to read the stacks; a thread is stuck only if it did "
                                "not move between them. 1 is fastest.")(command)
    return command


def _reading_options(command: click.decorators.FC) -> click.decorators.FC:
    """How py-spy reads the target: shared by every command that reads a live process."""
    command = click.option("--py-spy", "py_spy", metavar="PATH", default=None,
                           help="The py-spy executable (default: $THREADDOC_PY_SPY, then beside "
                                "threaddoc, then PATH).")(command)
    command = click.option("--native", is_flag=True,
                           help="Also read C frames (py-spy --native): tells a thread waiting for the "
                                "GIL, and what a C extension holding it is doing.")(command)
    command = click.option("--timeout", type=click.FloatRange(min=1.0), default=20.0, show_default=True,
                           metavar="SECONDS",
                           help="Seconds to let py-spy read the target before giving up.")(command)
    command = click.option("--collector", type=click.Choice(["auto", "py-spy", "memory"]), default="auto",
                           show_default=True,
                           help="Who reads the stacks: py-spy (pauses the target for a moment), memory "
                                "(threaddoc reads the interpreter's memory itself, without pausing it, "
                                "and past py-spy's limits of 4,096 threads and 4,096 frames; CPython "
                                "3.8 to 3.13), or auto: py-spy, and memory when py-spy cannot read "
                                "the process.")(command)
    return command


def _locals_option(command: click.decorators.FC) -> click.decorators.FC:
    return click.option("--show-locals", is_flag=True,
                        help="Also print the values of each frame's local variables (text and JSON). "
                             "Values whose names or contents look secret (passwords, tokens, keys, "
                             "cookies, URLs with a password, Bearer/JWT/PEM/AWS shapes) are redacted, "
                             "and the report says how many. Never written to --save files.")(command)


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
@click.option("--from", "saved", metavar="FILE", default=None,
              help="Diagnose a saved dump instead of a live process (- reads standard input): "
                   "py-spy dump --json output, a faulthandler dump, pytest-timeout output (a whole "
                   "CI log will do), or a file threaddoc wrote (--save, --json).")
@click.option("--core", metavar="CORE", default=None,
              help="Diagnose a core file written by the kernel (read with py-spy; the Python binary "
                   "and libraries it names must be at the same paths here).")
@click.option("--source-root", "source_roots", multiple=True, metavar="DIR|OLD=NEW",
              help="With --from/--core: where the dumped program's files are on this machine. DIR is "
                   "searched for each file's trailing path; OLD=NEW replaces the prefix OLD "
                   "(repeatable).")
@click.option("--save", metavar="FILE", default=None,
              help="Also write what was read from the process (stacks, kernel and process facts, "
                   "sources) to FILE (mode 0600), to re-run the diagnosis later with --from or "
                   "attach it to a ticket; with several processes, FILE.PID for each.")
@_output_options
@_locals_option
@_sampling_options
@_reading_options
def diagnose_command(pids: tuple[int, ...], names: tuple[str, ...], children: bool, saved: str | None,
                     core: str | None, source_roots: tuple[str, ...], save: str | None, as_json: bool,
                     color: bool | None, show_locals: bool, samples: int, interval: float, timeout: float,
                     native: bool, py_spy: str | None, collector: str) -> None:
    """Attach to the running Python process PID and diagnose why it hangs.

    Reads every thread's stack with py-spy (the target needs no preparation and
    is paused only while its stacks are read), works out what each thread waits
    for and who holds it, and prints the verdict with the fix.  Several PIDs (or
    --name) diagnose several processes and group those stuck the same way.
    --from FILE and --core CORE diagnose what was saved when nobody can attach
    any more.
    """
    _without_cycle_collection()
    if saved is not None or core is not None:
        from threaddoc.collect.saved import SourceRoot
        from threaddoc.pipeline import diagnose_core, diagnose_saved

        _check_offline_options(pids, names, children, save, native, saved, core)
        roots = [SourceRoot.parse(root) for root in source_roots]
        reports = (diagnose_saved(saved, roots, show_locals) if saved is not None
                   else [diagnose_core(str(core), py_spy=py_spy, timeout=timeout, roots=roots,
                                       show_locals=show_locals)])
        _finish(reports, [], single=len(reports) == 1, as_json=as_json, color=color)
    if source_roots:
        raise click.UsageError("--source-root applies to --from and --core only")
    targets = _targets(pids, names)
    run = functools.partial(_diagnose_live, save=save, several=len(targets) > 1, as_json=as_json,
                            py_spy=py_spy, timeout=timeout, samples=samples, interval=interval, native=native,
                            children=children, show_locals=show_locals, collector=collector)
    if len(targets) == 1 and not names:
        _finish([run(targets[0])], [], single=True, as_json=as_json, color=color)
    reports, failures = [], []
    for pid in targets:
        try:
            reports.append(run(pid))
        except TargetError as error:
            failures.append(Failure(pid, error.one_line().removeprefix("threaddoc: ")))
    if not reports:
        raise TargetError(f"none of the {len(targets)} processes could be inspected: {failures[0].message}")
    _finish(reports, failures, single=False, as_json=as_json, color=color)


def _without_cycle_collection() -> None:
    """For a command that diagnoses once and exits: nearly everything it builds (py-spy's
    JSON, the model, the report) lives until the end, and the cycle collector's passes over
    it took a third of the time at thousands of threads, for next to no garbage."""
    gc.disable()


def _finish(reports: Sequence[Report], failures: Sequence[Failure], *, single: bool, as_json: bool,
            color: bool | None) -> NoReturn:
    if single:
        _emit(reports[0], as_json, color)
        sys.exit(_exit_status(reports[0].verdict))
    from threaddoc.pipeline import group_reports

    many = group_reports(reports, failures)
    _emit_many(many, as_json, color)
    sys.exit(_exit_status(many.verdict))


def _check_offline_options(pids: tuple[int, ...], names: tuple[str, ...], children: bool, save: str | None,
                           native: bool, saved: str | None, core: str | None) -> None:
    given = "--from" if saved is not None else "--core"
    if saved is not None and core is not None:
        raise click.UsageError("give --from FILE or --core CORE, not both")
    if pids or names:
        raise click.UsageError(f"{given} diagnoses a saved dump: give it without a PID or --name")
    for flag, used in (("--children", children), ("--save", save is not None), ("--native", native)):
        if used:
            raise click.UsageError(f"{flag} needs a live process; it does not apply to {given}")


def _diagnose_live(pid: int, *, save: str | None, several: bool, as_json: bool, **options: Any) -> Report:
    from threaddoc.collect.waiting import while_waiting
    from threaddoc.pipeline import analyse_recording, load_analysis, record

    with while_waiting(functools.partial(_load_stages, load_analysis, as_json)):
        recording = record(pid, **options)
    if save is not None:
        _save(f"{save}.{pid}" if several else save, recording.to_json())
    return analyse_recording(recording)


def _load_stages(load_analysis: Callable[[], None], as_json: bool) -> None:
    """The analysis and the renderer, loaded while collection waits for py-spy (or between
    two samples) rather than after."""
    load_analysis()
    importlib.import_module("threaddoc.render.json" if as_json else "threaddoc.render.text")


def _save(path: str, text: str) -> None:
    from threaddoc.files import write_private

    try:
        write_private(Path(path), text)
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror}",
                         "choose a path in a directory you can write to") from None


def _targets(pids: tuple[int, ...], names: tuple[str, ...]) -> list[int]:
    if not pids and not names:
        raise click.UsageError("give the PID of the process to diagnose, or --name NAME")
    from threaddoc.collect.process import python_processes_named

    targets = list(dict.fromkeys(pids))
    for name in names:
        matching = python_processes_named(name, exclude=os.getpid())
        if not matching:
            raise NoSuchProcess(f"no Python process matches {name!r}",
                                "check the name with `ps -ef | grep NAME`, or give PIDs")
        targets.extend(pid for pid in matching if pid not in targets)
    return targets


diagnose_command.name = "diagnose"


class _DemoScenario(click.Choice):  # type: ignore[type-arg]
    """The demo's scenarios as a click.Choice, loaded (with the demo and what it imports)
    when the choice is first needed: no other command pays for them."""

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        from threaddoc import demo

        return tuple(demo.SCENARIOS)

    @choices.setter
    def choices(self, _: tuple[str, ...]) -> None:
        """Choice.__init__ sets them; they are read from the demo module instead."""

    def to_info_dict(self) -> Any:
        return {**super().to_info_dict(), "param_type": "Choice"}  # as a plain Choice describes itself


@cli.command("demo", epilog=EXIT_STATUS_HELP)
@click.argument("scenario", required=False, default="lock-order", metavar="[SCENARIO]",
                type=_DemoScenario())
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
    _without_cycle_collection()
    from threaddoc import demo
    from threaddoc.pipeline import diagnose

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
    from threaddoc.schema import schema_text

    click.echo(schema_text(), nl=False)


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    from threaddoc.run import parse_duration

    try:
        return None if value is None else parse_duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx, param) from None


@cli.command("run", context_settings={"allow_interspersed_args": False})
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED, metavar="[--] CMD [ARGS]...")
@click.option("--after", callback=_duration, default=None, metavar="DURATION",
              help="Diagnose CMD if it is still running after DURATION: 90 or 1.5 (seconds), 30s, "
                   "10m, 1h30m. Without it, only SIGQUIT (Ctrl-\\) diagnoses.")
@click.option("--kill", is_flag=True,
              help="After the diagnosis, stop CMD and all its descendants (SIGTERM, SIGKILL 5s later) "
                   "and exit 124. Without it CMD runs on, and threaddoc exits with its status.")
@click.option("--json-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE",
              help="Also write the JSON report (schema_version 1) to FILE, mode 0600, replaced by "
                   "each later diagnosis.")
@_locals_option
@_sampling_options
@_reading_options
def run_command(command: tuple[str, ...], after: float | None, kill: bool, json_file: Path | None,
                show_locals: bool, samples: int, interval: float, timeout: float, native: bool,
                py_spy: str | None, collector: str) -> None:
    """Run CMD and diagnose it if it hangs: how a hung CI job explains itself.

    CMD keeps threaddoc's stdin, stdout and stderr and its exit status.  If it is
    still running after --after DURATION, or whenever threaddoc gets SIGQUIT
    (Ctrl-\\, `kill -QUIT`), the Python processes of its tree (past a shell, make or
    tox) are diagnosed, and the report goes to stderr.  CMD runs in a session of its
    own: Ctrl-C, SIGTERM and SIGHUP are passed on to its process group, and a
    threaddoc told to stop stops CMD too.

    \b
    Exit status:
      CMD's own when it ends by itself (128+N when signal N ended it)
      124  CMD was diagnosed, then stopped by --kill (as timeout(1) does)
      126  CMD cannot be executed (permission denied, a directory)
      127  CMD was not found
      2    usage error (a bad --after DURATION, no CMD)"""
    gc.enable()  # it supervises CMD for as long as CMD runs: collect garbage as usual
    from threaddoc.pipeline import diagnose
    from threaddoc.run import RunPlan, supervise

    sys.exit(supervise(RunPlan(command, after, kill, json_file, functools.partial(
        diagnose, py_spy=py_spy, timeout=timeout, samples=samples, interval=interval, native=native,
        children=True, show_locals=show_locals, collector=collector))))


def _emit(report: Report, as_json: bool, color: bool | None) -> None:
    def as_document() -> str:
        from threaddoc.render import json as json_render

        return json_render.render(report, pretty=sys.stdout.isatty())

    def as_lines(style: text_render.Style) -> Iterable[str]:
        from threaddoc.render import text as text_render

        return text_render.render(report, style)

    _write(as_document, as_lines, as_json, color)


def _emit_many(many: ManyReports, as_json: bool, color: bool | None) -> None:
    def as_document() -> str:
        from threaddoc.render import json as json_render

        return json_render.render_many(many, pretty=sys.stdout.isatty())

    def as_lines(style: text_render.Style) -> Iterable[str]:
        from threaddoc.render import text as text_render

        return text_render.render_many(many, style)

    _write(as_document, as_lines, as_json, color)


def _write(as_document: Callable[[], str], as_lines: Callable[[text_render.Style], Iterable[str]],
           as_json: bool, color: bool | None) -> None:
    try:
        if as_json:
            click.echo(as_document(), nl=False)
            return
        from threaddoc.render import text as text_render

        style = text_render.Style(color=text_render.use_color(sys.stdout.isatty(), color))
        for line in as_lines(style):
            click.echo(line, color=style.color)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`threaddoc diagnose PID | head -1`): the exit status must
        # still be the diagnosis, not click's 1 for a broken pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _exit_status(verdict: Verdict) -> int:
    from threaddoc.findings import Verdict

    return EXIT_NO_HANG if verdict in (Verdict.NO_HANG, Verdict.BUSY) else EXIT_HANG


def main(argv: list[str] | None = None) -> None:
    """Entry point: every failure becomes one line on stderr and a documented status;
    SIGINT, SIGTERM and SIGHUP too (128+N), after py-spy is stopped (stopsignals.py)."""
    stopsignals.raise_in_main_thread()
    collecting = gc.isenabled()  # a diagnosis turns the cycle collector off; called in-process, back on
    try:
        _main(argv)
    except Interrupted as error:  # arrived as a finished run was exiting
        _fail(error.one_line(), error.exit_code)
    finally:
        stopsignals.disarm()
        if collecting:
            gc.enable()


def _main(argv: list[str] | None) -> None:
    try:
        status = cli.main(args=argv, prog_name="threaddoc", standalone_mode=False)
    except click.UsageError as error:
        hint = f"see `{error.ctx.command_path} --help`" if error.ctx else "see `threaddoc --help`"
        _fail(f"threaddoc: {error.format_message()} — {hint}", EXIT_USAGE)
    except click.exceptions.Abort:
        _fail("threaddoc: interrupted", 130)
    except (ThreaddocError, Interrupted) as error:
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

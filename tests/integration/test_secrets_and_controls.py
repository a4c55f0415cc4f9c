"""Secrets and control characters, on a real hung process, on every interpreter.

hung_samples/credential_refresh_holds_lock.py holds a lock across an HTTP call that
never returns, with a password, an API token, a Bearer header, a DSN with a password,
a PEM key, an AWS key pair and a JWT in its frame, each a string made up at random for
the run (it writes them to `<ready file>.canaries`). Its threads are named after
tenants whose names carry terminal escapes, C1 controls, NUL, bidi overrides and a line
separator, and one of its functions comes from generated code with a hostile file and
function name.

Without --show-locals no value reaches the text, the JSON, stderr or a --save file; with
it, every secret is redacted and counted and the plain values are shown; a --save file
holds no value either way. No raw control character is printed, and the JSON reads back
to the very names the target had.
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import stat
import subprocess
import sys
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from threaddoc.collect.pyspy import find_py_spy
from threaddoc.redact import REDACTED
from threaddoc.sanitize import clean_line

from .conftest import (
    SAMPLES,
    Run,
    parse_report,
    run_threaddoc,
    running_sample,
    sample_ready_file,
    threaddoc_env,
)

pytestmark = pytest.mark.integration

SAMPLE = "credential_refresh_holds_lock.py"
PY_SPY_TIMEOUT = 30.0

# Anything but the newline that ends a line.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029"
                         "\u202a-\u202e\u2066-\u2069]")

# (function, local): what must be redacted, and nothing else.
REDACTED_LOCALS = {
    ("main", "vault"),
    *(("refresh_credentials", name) for name in ("vault", "password", "api_token", "request_headers", "dsn",
                                                "signing_pem", "aws_keys", "client_assertion", "form")),
}


def sample_constant(name: str) -> Any:
    """A constant of the sample, as its source spells it."""
    tree = ast.parse((SAMPLES / SAMPLE).read_text(encoding="utf-8"))
    for node in tree.body:
        targets = [target.id for target in getattr(node, "targets", ()) if isinstance(target, ast.Name)]
        if isinstance(node, ast.Assign) and name in targets:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{SAMPLE} defines no {name}")


@dataclass(frozen=True)
class Canaries:
    secret: tuple[str, ...]
    plain: tuple[str, ...]

    def found_in(self, text: str, which: tuple[str, ...]) -> list[str]:
        """Canaries in `text`, whole or their first 12 characters (a value cut short)."""
        return [canary for canary in which if canary in text or canary[:12] in text]


@dataclass(frozen=True)
class Outcome:
    canaries: Canaries
    runs: dict[str, Run]  # by what was asked
    saved: dict[str, Path]  # --save files by the run that wrote them
    dump: Path  # py-spy's own JSON dump, values and all

    def report(self, key: str) -> dict[str, Any]:
        return parse_report(self.runs[key])


def py_spy_dump(pid: int, path: Path) -> None:
    command = [find_py_spy(), "dump", "--pid", str(pid), "--json", "--locals"]
    completed = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=PY_SPY_TIMEOUT,
                               check=False)
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    path.write_bytes(completed.stdout)


@pytest.fixture(scope="module")
def outcome(python_interpreter: Path, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """The sample diagnosed every way, once per interpreter, while it hangs."""
    work = tmp_path_factory.mktemp("secrets")
    saved = {"text": work / "default.save", "show text": work / "shown.save"}
    with running_sample(python_interpreter, SAMPLE) as process:
        canaries = sample_ready_file(process).with_name("ready.canaries")
        loaded = json.loads(canaries.read_text(encoding="utf-8"))
        pid = str(process.pid)
        runs = {
            "text": run_threaddoc(["diagnose", pid, "--no-color", "--save", str(saved["text"])]),
            "json": run_threaddoc(["diagnose", pid, "--json"]),
            "show text": run_threaddoc(["diagnose", pid, "--no-color", "--show-locals",
                                        "--save", str(saved["show text"])]),
            "show json": run_threaddoc(["diagnose", pid, "--json", "--show-locals"]),
        }
        dump = work / "py-spy.json"
        py_spy_dump(process.pid, dump)
        assert process.poll() is None, "the sample died while it was diagnosed"
    runs["from dump"] = run_threaddoc(["diagnose", "--from", str(dump), "--json"])
    runs["from dump, show"] = run_threaddoc(["diagnose", "--from", str(dump), "--json", "--show-locals"])
    runs["from save, show"] = run_threaddoc(["diagnose", "--from", str(saved["show text"]), "--no-color",
                                             "--show-locals"])
    return Outcome(Canaries(tuple(loaded["secret"]), tuple(loaded["plain"])), runs, saved, dump)


def test_every_run_diagnoses_the_hang_without_a_traceback(outcome: Outcome) -> None:
    for key, run in outcome.runs.items():
        # A py-spy dump has no kernel facts: I/O with no timeout is not known to be forever.
        assert run.returncode == 1 or (key.startswith("from dump") and run.returncode == 0), \
            f"{key}:\n{run.describe()}"
        assert "Traceback" not in run.stderr, f"{key}:\n{run.describe()}"
    kinds = {finding["kind"] for finding in outcome.report("json")["findings"]}
    assert "lock-held-during-io" in kinds, outcome.runs["json"].describe()


def test_the_py_spy_dump_really_holds_the_canaries(outcome: Outcome) -> None:
    # Otherwise "none leaked" would prove nothing.
    dumped = outcome.dump.read_text(encoding="utf-8")
    assert set(outcome.canaries.found_in(dumped, outcome.canaries.secret)) == set(outcome.canaries.secret)
    assert set(outcome.canaries.found_in(dumped, outcome.canaries.plain)) == set(outcome.canaries.plain)


def test_by_default_no_value_is_printed_or_saved(outcome: Outcome) -> None:
    everything = outcome.canaries.secret + outcome.canaries.plain
    for key in ("text", "json", "from dump"):
        run = outcome.runs[key]
        assert outcome.canaries.found_in(run.stdout + run.stderr, everything) == [], f"{key} leaked"
    saved = outcome.saved["text"].read_text(encoding="utf-8")
    assert outcome.canaries.found_in(saved, everything) == [], "the --save file holds a value"
    assert "shown_locals" not in outcome.report("json")


def test_with_show_locals_every_secret_is_redacted_and_plain_values_are_shown(outcome: Outcome) -> None:
    for key in ("show text", "show json", "from dump, show", "from save, show"):
        run = outcome.runs[key]
        leaked = outcome.canaries.found_in(run.stdout + run.stderr, outcome.canaries.secret)
        assert leaked == [], f"{key} leaked"
    for key in ("show text", "show json", "from dump, show"):
        assert outcome.canaries.found_in(outcome.runs[key].stdout, outcome.canaries.plain) == list(
            outcome.canaries.plain), f"{key} does not show the plain values"
    saved = outcome.saved["show text"].read_text(encoding="utf-8")
    everything = outcome.canaries.secret + outcome.canaries.plain
    assert outcome.canaries.found_in(saved, everything) == [], "--show-locals put a value in the --save file"
    assert "none to show" in outcome.runs["from save, show"].stdout


def redacted_locals(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(frame["function"], local["name"]) for thread in report["threads"] for frame in thread["frames"]
            for local in frame["locals"] if local["shown"] is not None and local["shown"]["redacted"]}


@pytest.mark.parametrize("key", ["show json", "from dump, show"])
def test_the_redacted_values_are_the_secrets_and_the_count_is_right(outcome: Outcome, key: str) -> None:
    report = outcome.report(key)
    assert redacted_locals(report) == REDACTED_LOCALS
    counted = sum(1 for thread in report["threads"] for frame in thread["frames"] for local in frame["locals"]
                  if local["shown"] is not None and local["shown"]["redacted"])
    assert report["shown_locals"]["redacted"] == counted
    refresher = next(t for t in report["threads"] if t["name"] == "credential-refresher")
    frame = next(f for f in refresher["frames"] if f["function"] == "refresh_credentials")
    shown = {local["name"]: local["shown"] for local in frame["locals"]}
    assert shown["attempt"] == {"text": "1", "redacted": False, "reason": None}
    assert shown["region"]["text"] == f'"{outcome.canaries.plain[0]}"'
    assert shown["password"]["text"] == REDACTED and "password" in shown["password"]["reason"]


def test_the_text_report_says_how_many_were_redacted(outcome: Outcome) -> None:
    count = outcome.report("show json")["shown_locals"]["redacted"]
    assert count == len(REDACTED_LOCALS)
    text = outcome.runs["show text"].stdout
    assert f", {count} redacted because their names or contents look secret" in text
    assert text.count(REDACTED) == count


def test_files_threaddoc_writes_are_private(outcome: Outcome) -> None:
    for path in outcome.saved.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_no_raw_control_character_is_printed(outcome: Outcome) -> None:
    for key, run in outcome.runs.items():
        for stream, text in (("stdout", run.stdout), ("stderr", run.stderr)):
            raw = RAW_CONTROL.findall(text)
            assert not raw, f"{key} printed raw {sorted(set(raw))!r} on {stream}"


def test_hostile_names_are_escaped_in_text_and_exact_in_json(outcome: Outcome) -> None:
    tenants = {f"tenant-{tenant}" for tenant in sample_constant("HOSTILE_TENANTS")}
    plugin_file, plugin_function = sample_constant("PLUGIN_FILE"), sample_constant("PLUGIN_FUNCTION")
    for key in ("text", "show text"):
        text = outcome.runs[key].stdout
        assert all(f'"{clean_line(name)}"' in text for name in tenants), outcome.runs[key].describe()
        assert clean_line(plugin_file) in text
    for key in ("json", "show json", "from dump, show"):
        report = outcome.report(key)
        assert tenants <= {thread["name"] for thread in report["threads"]}, f"{key}: names not kept exactly"
        frames = [frame for thread in report["threads"] for frame in thread["frames"]]
        assert any(frame["file"] == plugin_file and frame["function"] == plugin_function for frame in frames)


def _kill_sample_started_with(ready: Path) -> None:
    """`threaddoc run --kill` stops the sample; if the test failed first, stop it by PID
    (found by the unique ready path on its command line) and its process group."""
    for process in psutil.process_iter(["pid", "cmdline"]):
        if str(ready) in (process.info["cmdline"] or ()):
            with suppress(OSError):
                os.killpg(process.info["pid"], signal.SIGKILL)


def test_run_show_locals_reports_redacted_values_to_stderr_and_a_private_json_file(tmp_path: Path) -> None:
    ready, report_path = tmp_path / "ready", tmp_path / "report.json"
    command = [sys.executable, str(SAMPLES / SAMPLE), str(ready)]
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "threaddoc", "run", "--after", "6s", "--kill", "--show-locals",
             "--json-file", str(report_path), "--", *command],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace", timeout=120,
            env=threaddoc_env(), check=False)
    finally:
        _kill_sample_started_with(ready)
    assert completed.returncode == 124, completed.stderr
    loaded = json.loads(ready.with_name("ready.canaries").read_text(encoding="utf-8"))
    canaries = Canaries(tuple(loaded["secret"]), tuple(loaded["plain"]))
    assert stat.S_IMODE(report_path.stat().st_mode) == 0o600
    document = report_path.read_text(encoding="utf-8")
    outputs = {"stderr": completed.stderr, "--json-file": document, "stdout": completed.stdout}
    for where, text in outputs.items():
        assert canaries.found_in(text, canaries.secret) == [], f"{where} leaked a secret"
        assert not RAW_CONTROL.findall(text), f"{where} holds a raw control character"
    assert canaries.found_in(completed.stderr, canaries.plain) == list(canaries.plain)
    report = json.loads(document)
    # `run` diagnoses the command with its Python descendants: the sample is the report.
    assert redacted_locals(report) == REDACTED_LOCALS
    assert report["shown_locals"]["redacted"] == len(REDACTED_LOCALS)

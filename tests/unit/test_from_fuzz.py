"""`threaddoc diagnose --from FILE` on whatever a file may hold: fuzzed with hypothesis.

Whatever the input (random bytes, non-UTF-8, corrupt or truncated JSON, real captures
from tests/captures/ cut, spliced and mutated, dumps naming hostile files), the outcome
is one of two, and nothing else:

- a report: exit 0 or 1, the whole of it on stdout (JSON that parses and matches the
  schema, or text that starts with the verdict line), nothing on stderr;
- a usage error: exit 2, nothing on stdout (no partial output to mistake for a report),
  and one line on stderr that starts with `threaddoc: `.

Never a traceback, never "internal error". The CLI runs in-process (`threaddoc.cli.main`)
with its output captured, so that hundreds of inputs take seconds; the integration tests
(`tests/integration/test_from_hostile.py`) run some through the real executable.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from threaddoc.cli import main
from threaddoc.collect.recording import FORMAT as RECORDING_FORMAT
from threaddoc.schema import load_schema

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
# Small enough that a mutated capture is diagnosed in well under a second.
CAPTURE_FILES = sorted(path for path in CAPTURES.rglob("*")
                       if path.is_file() and path.suffix in (".json", ".txt", ".log")
                       and path.stat().st_size < 150_000)
TEXT_CAPTURES = [path for path in CAPTURE_FILES if path.suffix != ".json"]

FUZZ = settings(max_examples=int(os.environ.get("THREADDOC_FUZZ_EXAMPLES", "200")), deadline=10_000,
                database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

HOSTILE_NAMES = ["/etc/shadow", "/proc/self/environ", "/dev/zero", "/dev/watchdog.py",
                 "../../../etc/passwd.py", "/proc/self/fd/0.py", "/tmp/\x1b[31mred\x1b[0m.py", "/a\x00b.py",
                 "/\udcff.py", "x" * 5000 + ".py", "<string>", "", "C:\\build\\x86\\app.py",
                 "/root/.ssh/id_rsa.py", "/\u202egnp.py"]


@dataclass(frozen=True)
class Outcome:
    status: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="threaddoc-fuzz-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def run_from(data: bytes, scratch: Path, *options: str) -> Outcome:
    """`threaddoc diagnose --from FILE OPTIONS` in-process, FILE holding `data`."""
    path = scratch / "input"
    path.write_bytes(data)
    stdout, stderr = io.StringIO(), io.StringIO()
    status: Any = None
    with redirect_stdout(stdout), redirect_stderr(stderr):
        try:
            main(["diagnose", "--from", str(path), *options])
        except SystemExit as exit_:
            status = exit_.code
    return Outcome(status if isinstance(status, int) else -1, stdout.getvalue(), stderr.getvalue())


_VALIDATOR: Any = None


def _validator() -> Any:
    global _VALIDATOR
    if _VALIDATOR is None:
        import jsonschema

        schema = load_schema()
        _VALIDATOR = jsonschema.validators.validator_for(schema)(schema)
    return _VALIDATOR


def assert_report_or_one_line(outcome: Outcome, as_json: bool, data: bytes = b"") -> None:
    context = (f"exit {outcome.status}\nstdout: {outcome.stdout[:1500]!r}\n"
               f"stderr: {outcome.stderr[:1500]!r}\ninput: {data[:300]!r}")
    assert "Traceback" not in outcome.stderr + outcome.stdout, context
    assert "internal error" not in outcome.stderr, context
    if outcome.status == 2:
        assert outcome.stdout == "", f"output on stdout with a usage error\n{context}"
        lines = outcome.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("threaddoc: "), context
        return
    assert outcome.status in (0, 1), context
    assert outcome.stderr == "", context
    if as_json:
        report = json.loads(outcome.stdout)
        errors = list(_validator().iter_errors(report))
        assert not errors, f"{errors[0].message[:300]}\n{context}"
    else:
        assert outcome.stdout.startswith("threaddoc: ") and outcome.stdout.endswith("\n"), context


# --- What a file may hold ------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True) | st.text(max_size=30) | st.sampled_from(HOSTILE_NAMES),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25)


@st.composite
def pyspy_shaped(draw: st.DrawFn) -> bytes:
    """py-spy `dump --json` output with fields of any type and any value."""
    def frame() -> dict[str, Any]:
        return {"name": draw(st.sampled_from(["acquire", "join", "wait", "run", "<module>"]) | json_values),
                "filename": draw(st.sampled_from([*HOSTILE_NAMES, "/usr/lib/python3.11/threading.py"])
                                 | json_values),
                "line": draw(st.integers(min_value=-5, max_value=10**12) | json_values),
                "locals": draw(st.none() | st.lists(st.fixed_dictionaries(
                    {"name": st.text(max_size=8),
                     "addr": st.integers(min_value=-1, max_value=2**64) | json_values,
                     "repr": json_values, "arg": json_values}), max_size=3) | json_values)}

    threads = [{"thread_id": draw(st.integers(min_value=-1, max_value=2**64) | json_values),
                "thread_name": draw(st.text(max_size=20) | json_values),
                "os_thread_id": draw(st.integers(min_value=-1, max_value=2**40) | json_values),
                "active": draw(json_values), "owns_gil": draw(json_values),
                "frames": [frame() for _ in range(draw(st.integers(0, 4)))]}
               for _ in range(draw(st.integers(1, 4)))]
    return json.dumps(threads).encode("utf-8", "surrogatepass")


@st.composite
def threaddoc_shaped(draw: st.DrawFn) -> bytes:
    """A damaged recording (--save) or report (--json): the right header, anything inside."""
    header = draw(st.sampled_from([{"format": RECORDING_FORMAT}, {"schema_version": 1},
                                   {"schema_version": 1, "reports": draw(json_values)}]))
    body = draw(st.dictionaries(st.sampled_from(["threads", "process", "pyspy", "sources", "target", "kernel",
                                                 "children", "warnings", "history", "origin", "version"]),
                                json_values, max_size=6))
    return json.dumps({**header, **body}).encode("utf-8", "surrogatepass")


@st.composite
def faulthandler_shaped(draw: st.DrawFn) -> bytes:
    """faulthandler text with hostile file names, odd line numbers and stray lines."""
    lines = ["Fatal Python error: Aborted", ""]
    for _ in range(draw(st.integers(1, 4))):
        header = draw(st.sampled_from(["Thread", "Current thread"]))
        lines.append(f"{header} 0x{draw(st.integers(0, 2**64)):016x} (most recent call first):")
        for _ in range(draw(st.integers(0, 5))):
            name = draw(st.sampled_from(HOSTILE_NAMES) | st.text(max_size=40))
            line = draw(st.sampled_from(["1", "0", "???", "99999999999999999999999", "-3"]))
            function = draw(st.sampled_from(["acquire", "join", "wait", "<module>", "run"])
                            | st.text(max_size=20))
            lines.append(f'  File "{name}", line {line} in {function}')
        if draw(st.booleans()):
            lines.append(draw(st.text(max_size=60)))
        lines.append("")
    text = "\n".join(lines)
    return text.encode("utf-8", "surrogateescape") if draw(st.booleans()) else text.encode("utf-8", "replace")


@st.composite
def mutated_capture(draw: st.DrawFn) -> bytes:
    """A real capture, cut, spliced with another, and with bytes flipped, dropped or added."""
    data = bytearray(draw(st.sampled_from(CAPTURE_FILES)).read_bytes())
    rng = random.Random(draw(st.integers(0, 2**32)))
    for _ in range(draw(st.integers(1, 6))):
        _mutate(data, draw(st.sampled_from(MUTATIONS)), rng)
    return bytes(data)


MUTATIONS = ["cut", "drop", "insert", "flip", "repeat", "splice", "latin1"]


def _mutate(data: bytearray, how: str, rng: random.Random) -> None:
    at = rng.randrange(len(data) + 1)
    if how == "cut":
        del data[at:]
    elif how == "drop":
        del data[at:at + rng.randrange(1, 400)]
    elif how == "insert":
        data[at:at] = rng.randbytes(rng.randrange(1, 40))
    elif how == "flip" and data:
        data[min(at, len(data) - 1)] ^= 1 << rng.randrange(8)
    elif how == "repeat":
        data[at:at] = data[at:at + rng.randrange(1, 2000)] * rng.randrange(2, 5)
    elif how == "splice":  # a dump of another format in the middle of this one
        other = rng.choice(CAPTURE_FILES).read_bytes()
        start = rng.randrange(len(other) + 1)
        data[at:at] = other[start:start + rng.randrange(1, 20_000)]
    elif how == "latin1":  # a log re-encoded badly: bytes that are no UTF-8
        data[at:at] = "Grüße ÿ".encode("latin-1")


@st.composite
def mutated_json_capture(draw: st.DrawFn) -> bytes:
    """A real py-spy dump or recording whose structure is intact but whose values are not."""
    path = draw(st.sampled_from([path for path in CAPTURE_FILES if path.suffix == ".json"]))
    document = json.loads(path.read_text(encoding="utf-8"))
    rng = random.Random(draw(st.integers(0, 2**32)))
    for _ in range(draw(st.integers(1, 4))):
        _replace_somewhere(document, draw(json_values), rng)
    return json.dumps(document).encode("utf-8", "surrogatepass")


def _replace_somewhere(document: Any, value: Any, rng: random.Random) -> None:
    """Walk down a random path of the document and replace what is at its end."""
    node = document
    for _ in range(rng.randrange(1, 8)):
        keys: list[Any] = list(node) if isinstance(node, dict) else list(range(len(node))) \
            if isinstance(node, list) else []
        if not keys:
            return
        key = rng.choice(keys)
        child = node[key]
        if not isinstance(child, (dict, list)) or rng.random() < 0.2:
            node[key] = value
            return
        node = child


any_input = (st.binary(max_size=3000)
             | st.text(max_size=3000).map(lambda text: text.encode("utf-8", "surrogatepass"))
             | pyspy_shaped() | threaddoc_shaped() | faulthandler_shaped() | mutated_capture()
             | mutated_json_capture())


# --- The properties ------------------------------------------------------------------------------


@FUZZ
@given(data=any_input, as_json=st.booleans())
def test_any_input_gives_a_report_or_one_line(data: bytes, as_json: bool, scratch: Path) -> None:
    outcome = run_from(data, scratch, *(["--json"] if as_json else ["--no-color"]))
    event(f"exit {outcome.status}")
    assert_report_or_one_line(outcome, as_json, data)


@FUZZ
@given(data=mutated_capture() | mutated_json_capture())
def test_mutated_captures_give_a_report_or_one_line(data: bytes, scratch: Path) -> None:
    outcome = run_from(data, scratch, "--json")
    event(f"exit {outcome.status}")
    assert_report_or_one_line(outcome, True, data)


@pytest.mark.parametrize("path", TEXT_CAPTURES[::7], ids=lambda path: str(path.relative_to(CAPTURES)))
def test_every_cut_of_a_capture_gives_a_report_or_one_line(path: Path, scratch: Path) -> None:
    data = path.read_bytes()
    for end in sorted({len(data) * share // 20 for share in range(21)}):
        assert_report_or_one_line(run_from(data[:end], scratch, "--json"), True, data[:end])


def test_a_file_over_the_size_limit_is_refused_unread(scratch: Path) -> None:
    from threaddoc.collect.saved import MAX_DUMP_BYTES

    path = scratch / "huge.log"
    with open(path, "wb") as handle:
        handle.truncate(MAX_DUMP_BYTES + 1)  # sparse: no disk, and not a byte of it is read
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr), pytest.raises(SystemExit) as exit_:
        main(["diagnose", "--from", str(path)])
    outcome = Outcome(int(exit_.value.code or 0), stdout.getvalue(), stderr.getvalue())
    assert_report_or_one_line(outcome, False)
    assert outcome.status == 2 and "larger than 256 MiB" in outcome.stderr

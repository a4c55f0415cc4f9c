"""`--from FILE`: what was saved gives the diagnosis a live read gives, or says what it lacks.

Run on the recordings of every hung sample: each is written out as the user would have
it (py-spy's JSON with and without --locals, threaddoc's own report and recording) and
read back through `load_saved`, the one entry point of `threaddoc diagnose --from`.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import load, recording_names, report

from threaddoc.collect.parse import without_values
from threaddoc.collect.saved import SourceRoot, load_saved, read_local_sources
from threaddoc.errors import UsageError
from threaddoc.findings import Finding
from threaddoc.pipeline import Report, analyse
from threaddoc.render import json as json_render
from threaddoc.render import text as text_render

# One recording per sample and interpreter; the children of process trees come with
# their parent.
TOP_LEVEL = [name for name in recording_names() if "-child-" not in name]
# The samples were recorded in another checkout: find their files in this one.
SAMPLE_ROOTS = [SourceRoot.parse(str(Path(__file__).resolve().parents[2] / "hung_samples"))]

# Kinds that rest on facts a JSON report summarises but does not keep whole: the file
# descriptor a read blocks on and its socket, the child processes and their pipes, the
# parent's command line (fork ancestry), time spent queued for a CPU. Re-analysing a
# report can miss them (a --save recording keeps them); it must never invent them.
NEEDS_RAW_FACTS = frozenset({"blocking-io-no-timeout", "subprocess-pipe-deadlock", "fork-inherited-lock",
                             "lock-held-during-io", "cpu-bound", "gil-contention"})


def signature(outcome: Report) -> list[tuple[str, str, tuple[int, ...]]]:
    return sorted((finding.kind, finding.confidence.value,
                   tuple(sorted(thread.os_thread_id or 0 for thread in finding.threads)))
                  for finding in outcome.findings)


def reread(text: str, path: str = "saved.json", **options: Any) -> list[Report]:
    return [analyse(snapshot) for snapshot in load_saved(text, path, **options)]


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_a_saved_recording_gives_the_live_diagnosis(name: str) -> None:
    live = report(name)
    (again,) = reread(load(name).to_json())
    assert signature(again) == signature(live)
    assert again.verdict is live.verdict
    assert again.snapshot.origin is not None and again.snapshot.origin.format == "threaddoc-recording"
    # The report is the live one but for its first line, which says where it came from.
    live_text = list(text_render.render(live, text_render.Style(color=False)))
    saved_text = list(text_render.render(again, text_render.Style(color=False)))
    assert saved_text[1:] == live_text[1:]
    assert "threaddoc-recording dump saved.json" in saved_text[0]


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_a_json_report_re_analysed_finds_what_the_live_one_found(name: str) -> None:
    live = report(name)
    (again,) = reread(json_render.render(live))
    kept = [item for item in signature(live) if item[0] not in NEEDS_RAW_FACTS]
    found = signature(again)
    assert [item for item in found if item[0] not in NEEDS_RAW_FACTS] == kept
    assert {kind for kind, _, _ in found} <= {kind for kind, _, _ in signature(live)}, \
        "re-analysis invented a kind of finding"
    assert [t.thread.thread_id for t in again.analyses] == [t.thread.thread_id for t in live.analyses]


@pytest.mark.parametrize("name", [n for n in TOP_LEVEL if n.endswith(("py3.8", "py3.11", "py3.13"))
                                  and not load(n).children])  # py-spy dumps one process
def test_a_pyspy_json_dump_with_locals_keeps_every_identity(name: str) -> None:
    recording = load(name)
    live = report(name)
    (again,) = reread(json.dumps(list(recording.pyspy)), roots=SAMPLE_ROOTS)
    assert again.snapshot.has_addresses
    # No kernel facts and one sample: the findings resting on stacks and addresses alone.
    stack_only = {"lock-order-deadlock", "self-deadlock", "join-deadlock", "future-cross-wait",
                  "executor-starvation", "import-lock-deadlock"}
    expected = [item for item in signature(live) if item[0] in stack_only]
    assert [item for item in signature(again) if item[0] in stack_only] == expected


def _without_locals(entries: Any) -> list[dict[str, Any]]:
    return [{**entry, "frames": [{**frame, "locals": None} for frame in entry["frames"]]}
            for entry in entries]


# What a dump without addresses (py-spy without --locals; faulthandler and pytest-timeout
# have none either) still finds, at lower confidence, per sample. Each other sample's
# critical findings rest on addresses it does not have (say `self.peer.join()` across two
# objects), and such a dump must then not claim a deadlock.
FOUND_BY_NAME = {
    "lock_order_deadlock": "lock-order-deadlock",  # module globals: exact even by name
    "bank_transfer_deadlock": "lock-order-deadlock",
    "dining_philosophers": "lock-order-deadlock",
    "helper_reacquires_lock": "self-deadlock",
    "callback_reenters_lock": "self-deadlock",
    "join_while_holding_lock": "join-deadlock",
    "nested_submit_starvation": "executor-starvation",
}


@pytest.mark.parametrize("sample", sorted(FOUND_BY_NAME))
@pytest.mark.parametrize("python", ["py3.8", "py3.11", "py3.13"])
def test_a_dump_without_addresses_finds_the_same_kind_and_threads_by_name(sample: str, python: str) -> None:
    name = f"{sample}-{python}"
    recording = load(name)
    live = report(name)
    (again,) = reread(json.dumps(_without_locals(recording.pyspy)), roots=SAMPLE_ROOTS)
    assert not again.snapshot.has_addresses
    kind = FOUND_BY_NAME[sample]
    (expected,) = [f for f in live.findings if f.kind == kind]
    (found,) = [f for f in again.findings if f.kind == kind]
    # The threads the finding is about; who is blocked behind them may not be traceable
    # without addresses (`for t in threads: t.join()`).
    assert _principals(found) == _principals(expected)
    assert again.verdict is live.verdict
    if sample != "lock_order_deadlock":
        assert found.confidence.value == "possible"
        assert any("by name only" in note for note in found.notes) or kind == "executor-starvation"


def _principals(finding: Finding) -> set[int | None]:
    behind = {ref.os_thread_id for ref, _ in finding.blocked}
    return {ref.os_thread_id for ref in finding.threads} - behind


@pytest.mark.parametrize("name", [n for n in TOP_LEVEL if n.endswith("py3.11")])
def test_a_dump_without_addresses_never_claims_a_deadlock_the_live_read_did_not(name: str) -> None:
    recording = load(name)
    live = report(name)
    (again,) = reread(json.dumps(_without_locals(recording.pyspy)), roots=SAMPLE_ROOTS)
    if again.verdict.value == "deadlock":
        assert live.verdict.value == "deadlock", [f.title for f in again.findings]


def test_a_rlock_reentered_by_its_owner_is_no_deadlock_even_by_name() -> None:
    recording = load("rlock_reentered_by_owner-py3.11")
    (again,) = reread(json.dumps(_without_locals(recording.pyspy)), roots=SAMPLE_ROOTS)
    assert again.verdict.value != "deadlock"


def test_source_roots_map_a_dumped_path_to_this_machine(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "app").mkdir(parents=True)
    (checkout / "app" / "jobs.py").write_text("import threading\nlock = threading.Lock()\n")
    by_prefix = SourceRoot.parse(f"/builds/ci/project={checkout}")
    by_search = SourceRoot.parse(str(checkout))
    for roots in ([by_prefix], [by_search]):
        sources, warnings = read_local_sources(["/builds/ci/project/app/jobs.py"], roots, None)
        assert sources["/builds/ci/project/app/jobs.py"].line(2) == "lock = threading.Lock()"
        assert warnings == []
    missing, warnings = read_local_sources(["/builds/ci/project/app/gone.py"], [by_prefix], None)
    assert missing == {} and "--source-root" in warnings[0]


def test_a_source_changed_after_the_dump_is_flagged(tmp_path: Path) -> None:
    module = tmp_path / "job.py"
    module.write_text("x = 1\n")
    written = os.stat(module).st_mtime - 60
    sources, warnings = read_local_sources([str(module)], [], written)
    assert sources[str(module)].modified_after_start
    assert "changed after the dump was written" in warnings[0]


def test_only_python_source_files_are_read(tmp_path: Path) -> None:
    # The dump names the files and may come from anyone: a frame "in" /etc/shadow must
    # not put a line of it into a report.
    secret = tmp_path / "secret.txt"
    secret.write_text("root:$6$hash\n")
    sources, _ = read_local_sources([str(secret), str(tmp_path)], [], None)
    assert sources == {}


@pytest.mark.parametrize("text", ["", "   \n", "hello world\n", "{", "[1, 2, 3]", '{"a": 1}', "\x00\xff" * 50,
                                  '{"schema_version": 1, "threads": "nope"}',
                                  '{"format": "threaddoc-recording", "process": 3}'])
def test_input_that_holds_no_dump_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError) as raised:
        load_saved(text, "input.log")
    assert raised.value.remedy


def test_a_report_of_an_unknown_schema_version_is_refused() -> None:
    with pytest.raises(UsageError, match="schema_version 2"):
        load_saved('{"schema_version": 2, "threads": []}', "new.json")


@pytest.mark.parametrize("name", [n for n in TOP_LEVEL if n.endswith(("py3.8", "py3.13"))])
def test_what_is_saved_holds_no_value_yet_diagnoses_the_same(name: str) -> None:
    # Collection keeps a local's type and address and drops its value, so a --save file
    # never carries a password a frame held; the diagnosis needs identities only.
    recording = load(name)
    stripped = replace(recording, pyspy=tuple(without_values(entry) for entry in recording.pyspy))
    saved = stripped.to_json()
    values = {local["repr"] for entry in recording.pyspy for frame in entry["frames"]
              for local in frame.get("locals") or () if local.get("repr")}
    kept = {local["repr"] for entry in json.loads(saved)["pyspy"] for frame in entry["frames"]
            for local in frame.get("locals") or () if local.get("repr")}
    assert all(value.startswith("<") and value.endswith(">") and " object" in value for value in kept)
    assert not {value for value in values if not value.startswith("<")} & kept
    (again,) = reread(saved)
    assert signature(again) == signature(report(name))

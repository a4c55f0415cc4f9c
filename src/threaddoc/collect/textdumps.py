"""Saved text dumps to py-spy shaped threads (pure: the text may be a whole CI log).

Two formats are read, wherever they sit in the text:

- faulthandler (`faulthandler.dump_traceback(all_threads=True)`, `dump_traceback_later`,
  `register(signal)`, and the dump of a fatal signal): blocks of
  `Thread 0x… (most recent call first):` followed by `  File "path", line N in func`,
  innermost first. The hex number is the thread's `threading.get_ident()`, which is what
  py-spy calls `thread_id`.
- pytest-timeout: sections `~~~ Stack of NAME (IDENT) ~~~` of `traceback.format_stack()`
  output (outermost first) between `+++ Timeout +++` banners. With `timeout_method =
  signal` the thread that ran the test (the main thread, where SIGALRM is handled) is
  left out of them; its stack is pytest's report of the failed test, which is read too.

Each thread becomes an entry shaped like one of `py-spy dump --json`, frames innermost
first and without locals, so that `parse.parse_threads` takes it unchanged. Names are
the bare `co_name` (no class) and nothing says which thread held the GIL.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

FAULTHANDLER = "faulthandler"
PYTEST_TIMEOUT = "pytest-timeout"


@dataclass(frozen=True)
class TextDump:
    format: str  # FAULTHANDLER or PYTEST_TIMEOUT
    threads: tuple[dict[str, Any], ...]  # py-spy `dump --json` shaped entries
    truncated: bool  # the dump says frames or threads were left out, or it was cut off
    notes: tuple[str, ...] = ()  # what the report should say about how the dump was read


def parse_text_dump(text: str) -> TextDump | None:
    """The last complete thread dump found anywhere in `text` (a whole CI log may be passed), or None."""
    lines, fragment_dropped = _clean_lines(text)
    dumps = sorted(_faulthandler_dumps(lines) + _pytest_timeout_dumps(lines), key=lambda dump: dump.start)
    dumps = [dump for dump in dumps if dump.threads]
    if not dumps:
        return None
    chosen = _choose(dumps)
    if fragment_dropped and chosen.end >= len(lines) and not chosen.cut_off:
        chosen.cut_off = True
        chosen.notes.append("the text ends in the middle of a line of the dump: it was cut off")
    return TextDump(
        format=chosen.format,
        threads=tuple(thread.entry() for thread in chosen.threads),
        truncated=chosen.truncated or chosen.cut_off,
        notes=tuple(_choice_notes(dumps, chosen) + chosen.notes),
    )


# --- What was read -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Frame:
    filename: str
    line: int
    function: str

    def entry(self) -> dict[str, Any]:
        # No "module" key: parse.is_native takes a frame with one for a C frame.
        return {"name": self.function, "filename": self.filename,
                "short_filename": re.split(r"[/\\]", self.filename)[-1], "line": self.line, "locals": None}


@dataclass
class _Thread:
    ident: int
    name: str | None
    current: bool = False
    frames: list[_Frame] = field(default_factory=list)  # innermost first
    frames_left_out: bool = False  # the printer stopped before the outermost frame
    marker: str | None = None  # what faulthandler printed instead of frames: "<no Python frame>"

    def entry(self) -> dict[str, Any]:
        return {"thread_id": self.ident, "thread_name": self.name, "os_thread_id": None, "active": False,
                "owns_gil": False, "frames": [frame.entry() for frame in self.frames],
                "current": self.current}


@dataclass
class _Dump:
    format: str
    start: int  # index of its first line
    end: int  # index after its last line
    threads: list[_Thread] = field(default_factory=list)
    cut_off: bool = False  # the text stops (or something else starts) before the dump's end
    truncated: bool = False  # the dump itself says it left frames or threads out
    threads_left_out: bool = False  # it stopped printing threads at its limit
    notes: list[str] = field(default_factory=list)
    idents: set[int] = field(default_factory=set)  # of `threads`: a repeated one starts the next dump

    def add(self, thread: _Thread) -> None:
        self.threads.append(thread)
        self.idents.add(thread.ident)


def _choose(dumps: Sequence[_Dump]) -> _Dump:
    """The last dump that was not cut off; if every one was, the last one."""
    complete = [dump for dump in dumps if not dump.cut_off]
    return complete[-1] if complete else dumps[-1]


def _choice_notes(dumps: Sequence[_Dump], chosen: _Dump) -> list[str]:
    if len(dumps) == 1:
        return []
    which = "the last one (all were cut off)" if chosen.cut_off else "the last complete one"
    notes = [f"{len(dumps)} thread dumps in the text: {which}, at line {chosen.start + 1}, was used"]
    later = [str(dump.start + 1) for dump in dumps if dump.start > chosen.start]
    if len(later) == 1:
        notes.append(f"the dump after it, at line {later[0]}, was cut off")
    elif later:
        shown = ", ".join(later[:_MAX_LISTED]) + (f" and {len(later) - _MAX_LISTED} more"
                                                    if len(later) > _MAX_LISTED else "")
        notes.append(f"the dumps after it, at lines {shown}, were cut off")
    return notes


_MAX_LISTED = 5


# --- Lines and their prefixes --------------------------------------------------------------

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def _clean_lines(text: str) -> tuple[list[str], bool]:
    """The text's lines without line ends and terminal colours (CI logs keep pytest's).

    A last line without its newline that is no whole line of a dump is the fragment a cut
    leaves (`  File "/ro`): it is dropped, and the second value says so. A whole one is
    kept: pasted text often lacks the last newline."""
    lines = [_ANSI_ESCAPE.sub("", line).rstrip() for line in text.split("\n")]
    last = lines.pop()
    if not last:
        return lines, False
    if _is_whole_line(last):
        return [*lines, last], False
    return lines, True


def _is_whole_line(line: str) -> bool:
    """Whether a line could end a dump as it is: a frame, a header, a banner."""
    return bool(_find_at(_FH_FRAME, line, "  File ") or _find_at(_TB_FRAME, line, "  File ")
                or _find_at(_TB_REPEATED, line, "  [Previous ") or _faulthandler_header(line)
                or _is_banner(line))


def _find_at(pattern: re.Pattern[str], line: str, anchor: str) -> re.Match[str] | None:
    """`pattern` tried where `anchor` first occurs: one attempt, where re.search makes one at
    every position, which takes quadratic time on a long line of near misses."""
    at = line.find(anchor)
    return pattern.match(line, at) if at >= 0 else None


# Longer than this, what comes before a dump's line is no log prefix: the line is no dump's.
_MAX_PREFIX = 200


# A prefix with this many digits is a timestamp: different on every line.
_TIMESTAMP_DIGITS = 6


@dataclass(frozen=True)
class _Prefix:
    """What a log puts before every line of a dump (a timestamp, `[worker-3] `), learned
    from the line that starts the dump."""

    pattern: re.Pattern[str]
    trailing_space: int  # stripped with the line's end when the rest of the line is blank

    @classmethod
    def of(cls, prefix: str) -> _Prefix:
        bare = prefix.rstrip()
        escaped = re.escape(bare)
        # A timestamp changes from line to line; a shorter prefix (a worker's name) does not,
        # and the lines of another worker interleaved with ours must not be read as ours.
        if sum(char.isdigit() for char in bare) >= _TIMESTAMP_DIGITS:
            escaped = re.sub(r"\d+", r"\\d+", escaped)
        return cls(re.compile(escaped), len(prefix) - len(bare))

    def strip(self, line: str) -> str | None:
        """The line without the prefix, or None when it does not carry it (another source's line)."""
        matched = self.pattern.match(line)
        if matched is None:
            return None
        rest = line[matched.end():]
        spaces = min(self.trailing_space, len(rest) - len(rest.lstrip(" ")))
        return rest[spaces:]


def _carrying(lines: Sequence[str], start: int, prefix: _Prefix) -> Iterator[tuple[int, str]]:
    """(index, content) of the lines from `start` on that carry the prefix."""
    for index in range(start, len(lines)):
        content = prefix.strip(lines[index])
        if content is not None:
            yield index, content


# --- faulthandler --------------------------------------------------------------------------

_FH_THREAD = re.compile(
    r"(?P<current>Current thread|Thread) 0x(?P<ident>[0-9a-fA-F]+)"
    # Tolerate a name after the id, should a CPython print one.
    r"(?: \[(?P<name>[^\]]*)\])? \(most recent call first\):$")
# One thread only (all_threads=False): no id is printed.
_FH_STACK = re.compile(r"(?:Stack|Traceback) \(most recent call first\):$")
_FH_FRAME = re.compile(r'  File (?:"(?P<file>.*)"|\?\?\?), line (?P<line>\d+|\?\?\?) in (?P<function>.*)$')
_FH_FATAL = re.compile(r"Fatal Python error: (?P<error>.*)$")
_FH_TIMEOUT = re.compile(r"Timeout \((?P<after>[\d:.]+)\)!$")
# faulthandler prints at most this many frames per thread and this many threads.
_FH_MAX_FRAMES = 100
_FH_MAX_THREADS = 100
# The outermost frame of a main thread, which faulthandler prints last: a dump that ends
# at the end of the text with another thread last was probably cut off there.
_MAIN_THREAD_BOTTOMS = frozenset({"<module>", "_run_module_as_main", "_shutdown", "_python_exit"})


def _faulthandler_dumps(lines: Sequence[str]) -> list[_Dump]:
    return _dumps_in(lines, _faulthandler_header, _read_faulthandler_dump)


def _dumps_in(lines: Sequence[str], header_of: Callable[[str], re.Match[str] | None],
              read: Callable[[Sequence[str], int, _Prefix], _Dump]) -> list[_Dump]:
    """Every dump whose first line `header_of` recognises, each read from there on with the
    prefix (timestamps, a worker's tag) its header line carries."""
    dumps = []
    index = 0
    while index < len(lines):
        header = header_of(lines[index])
        if header is None:
            index += 1
            continue
        dump = read(lines, index, _Prefix.of(lines[index][: header.start()]))
        dumps.append(dump)
        index = max(dump.end, index + 1)
    return dumps


def _faulthandler_header(line: str) -> re.Match[str] | None:
    """A thread's header anywhere in the line (after a log's prefix); it ends the line."""
    if not line.endswith("(most recent call first):"):
        return None
    at = max(line.rfind("Thread 0x"), line.rfind("thread 0x"))
    if at >= 8 and line[at - 8:at] == "Current ":
        at -= 8
    if at < 0:
        at = max(line.rfind("Stack ("), line.rfind("Traceback ("))
    matched = (_FH_THREAD.match(line, at) or _FH_STACK.match(line, at)) if at >= 0 else None
    return matched if matched and matched.start() <= _MAX_PREFIX else None


def _read_faulthandler_dump(lines: Sequence[str], start: int, prefix: _Prefix) -> _Dump:
    """Thread blocks, each after a blank line, from `start` to the first line that is not
    one; a header right after a frame (no blank line) starts the next dump, as two
    `register` dumps in a row print."""
    dump = _Dump(FAULTHANDLER, start=start, end=start + 1)
    dump.notes.extend(_faulthandler_preamble(lines, start, prefix))
    index = start
    while True:
        content = prefix.strip(lines[index]) or ""
        thread = _thread_of_header(content, len(dump.threads))
        if thread is None or (thread.ident and thread.ident in dump.idents):
            break  # not a header, or a thread seen already: the next dump
        dump.add(thread)
        if _FH_STACK.match(content):
            dump.notes.append("faulthandler printed the current thread only (all_threads=False), "
                              "without its thread id")
        header = index
        index, dump.end = _read_faulthandler_block(lines, index + 1, prefix, thread, dump)
        if dump.end == header + 1:
            _note_empty(dump, thread)
            break
        following = _next_block(lines, index, prefix, dump) if index < len(lines) else None
        if following is None:
            break
        index = following
    _note_frames_left_out(dump)
    if not dump.cut_off and not dump.threads_left_out and _text_ends(lines, dump.end, prefix):
        _check_faulthandler_ending(dump)
    return dump


def _thread_of_header(content: str, position: int) -> _Thread | None:
    matched = _FH_THREAD.match(content)
    if matched:
        return _Thread(ident=int(matched.group("ident"), 16), name=matched.group("name"),
                       current=matched.group("current").startswith("Current"))
    if position == 0 and _FH_STACK.match(content):
        return _Thread(ident=0, name=None, current=True)
    return None


def _read_faulthandler_block(lines: Sequence[str], start: int, prefix: _Prefix, thread: _Thread,
                             dump: _Dump) -> tuple[int, int]:
    """The frame lines after a header; returns the index of the first line after them and
    the end of the dump so far."""
    end = start
    for index, content in _carrying(lines, start, prefix):
        frame = _FH_FRAME.match(content)
        if frame and len(thread.frames) < _MAX_KEPT_FRAMES:
            thread.frames.append(_faulthandler_frame(frame, dump))
        elif frame:  # no faulthandler prints this many: read on, keep none of them
            _note_kept_frames(thread, dump)
        elif content == "  ...":
            thread.frames_left_out = True
        elif content.startswith("  <") or content == "  Garbage-collecting":
            dump.notes.append(_faulthandler_marker(content.strip(), thread, dump))
        else:
            return _stopped_at(thread, index), end
        end = index + 1
    return _stopped_at(thread, len(lines)), end


# Frames kept of one thread, whatever the text holds (faulthandler prints 100, a traceback
# of a recursion about 1000): past that, memory and time grow with the text, not the program.
_MAX_KEPT_FRAMES = 2_000


def _note_kept_frames(thread: _Thread, dump: _Dump) -> None:
    if not thread.frames_left_out:
        thread.frames_left_out = dump.truncated = True
        dump.notes.append(f"thread {_hex(thread.ident)} has more than {_MAX_KEPT_FRAMES} frames: "
                          f"{_MAX_KEPT_FRAMES} of them, the innermost, were read")


def _stopped_at(thread: _Thread, index: int) -> int:
    # CPython 3.13 stops at its limit without printing the "  ..." line earlier versions print.
    if len(thread.frames) >= _FH_MAX_FRAMES:
        thread.frames_left_out = True
    return index


def _note_empty(dump: _Dump, thread: _Thread) -> None:
    """faulthandler prints a frame or a marker under every header: none means a cut."""
    dump.cut_off = True
    dump.notes.append(f"the dump stops right after the header of thread {_hex(thread.ident)}: "
                      f"it was cut off after {len(dump.threads) - 1} whole threads")


def _note_frames_left_out(dump: _Dump) -> None:
    deep = [_hex(thread.ident) for thread in dump.threads if thread.frames_left_out
            and len(thread.frames) >= _FH_MAX_FRAMES]
    if deep:
        dump.truncated = True
        dump.notes.append(f"faulthandler prints at most {_FH_MAX_FRAMES} frames a thread: the outermost "
                          f"frames of thread {', '.join(deep)} are missing")


def _faulthandler_frame(matched: re.Match[str], dump: _Dump) -> _Frame:
    filename = _unescape(matched.group("file") or "???")
    function = _unescape(matched.group("function"))
    # faulthandler cuts strings at 500 characters and marks the cut with "...".
    if filename.endswith("...") and len(filename) > 500:
        dump.truncated = True
    line = matched.group("line")
    return _Frame(filename=filename, line=int(line) if line.isdigit() else 0, function=function)


def _faulthandler_marker(marker: str, thread: _Thread, dump: _Dump) -> str:
    if marker == "Garbage-collecting":
        return f"thread {_hex(thread.ident)} was collecting garbage when the dump was taken"
    thread.marker = marker
    if marker == "<no Python frame>":
        return f"thread {_hex(thread.ident)} had no Python frame (it runs only C code)"
    dump.truncated = True
    thread.frames_left_out = True
    return f"faulthandler could not read all of thread {_hex(thread.ident)}: {marker}"


def _next_block(lines: Sequence[str], index: int, prefix: _Prefix, dump: _Dump) -> int | None:
    """The index of the next thread's header in this dump, or None at the dump's end (which
    is then recorded). Blocks are separated by exactly one blank line."""
    content = prefix.strip(lines[index])
    if content != "":
        return None
    for following, content in _carrying(lines, index + 1, prefix):
        if content == "...":
            dump.truncated = dump.threads_left_out = True
            dump.end = following + 1
            dump.notes.append(f"faulthandler prints at most {_FH_MAX_THREADS} threads, newest first: the "
                              "others are missing, normally the main thread among them")
            return None
        return following if _FH_THREAD.match(content) else None
    return None


def _text_ends(lines: Sequence[str], start: int, prefix: _Prefix) -> bool:
    return all(not content for _, content in _carrying(lines, start, prefix))


def _check_faulthandler_ending(dump: _Dump) -> None:
    """The dump runs to the end of the text. faulthandler prints the main thread last, so
    ending with another one means the text was cut off (as a killed CI job leaves it)."""
    last = dump.threads[-1]
    if last.frames_left_out or last.marker or not last.frames:
        return
    if last.frames[-1].function not in _MAIN_THREAD_BOTTOMS:
        dump.cut_off = True
        dump.notes.append(f"the text ends in the stack of thread {_hex(last.ident)}, before the main "
                          "thread faulthandler prints last: the dump was cut off after "
                          f"{len(dump.threads)} threads")


def _faulthandler_preamble(lines: Sequence[str], start: int, prefix: _Prefix) -> list[str]:
    """Why faulthandler printed: the fatal error or the timeout line just before the dump."""
    notes = []
    for index in range(start - 1, max(start - 4, -1), -1):
        content = (prefix.strip(lines[index]) or "").strip()
        fatal = _FH_FATAL.match(content)
        timeout = _FH_TIMEOUT.match(content)
        if fatal:
            notes.append(f"faulthandler printed this dump on a fatal error ({fatal.group('error')}); "
                         "the current thread is the one that received it")
        elif timeout:
            notes.append(f"printed by faulthandler.dump_traceback_later after {timeout.group('after')}")
    return notes


_ESCAPE = re.compile(r"\\x([0-9a-f]{2})|\\u([0-9a-f]{4})|\\U([0-9a-f]{8})")


def _unescape(text: str) -> str:
    r"""faulthandler writes non-ASCII characters as \xNN, \uNNNN, \UNNNNNNNN. A string with
    other backslashes (a Windows path: C:\build\x86) is left as it is, and so is one that
    would decode to no character or to a lone surrogate (an undecodable byte of a file name,
    \udce9), which no terminal or JSON writer takes."""
    if "\\" not in text:
        return text
    escapes = _ESCAPE.findall(text)
    codes = [int(next(group for group in groups if group), 16) for groups in escapes]
    if text.count("\\") != len(escapes) or any(code > 0x10FFFF or 0xD800 <= code <= 0xDFFF for code in codes):
        return text
    return _ESCAPE.sub(lambda matched: chr(int(next(group for group in matched.groups() if group), 16)),
                       text)


def _hex(ident: int) -> str:
    return f"0x{ident:016x}"


# --- pytest-timeout ------------------------------------------------------------------------

_PT_STACK_OF = re.compile(r"~+ Stack of (?P<name>.*) \((?P<ident>\d+)\) ~+$")
_TB_FRAME = re.compile(r'  File "(?P<file>.*)", line (?P<line>\d+), in (?P<function>.*)$')
_TB_REPEATED = re.compile(r"  \[Previous line repeated (?P<count>\d+) more times?\]$")
# Expanded repetitions of one frame (a recursion): enough to see it, not the whole recursion limit.
_MAX_REPEATED = 1000


def _pytest_timeout_dumps(lines: Sequence[str]) -> list[_Dump]:
    stacks = _pytest_stack_dumps(lines)
    for failure in _pytest_timeout_failures(lines):
        _pair_with_main_thread(stacks, failure)
    return stacks


def _pytest_stack_dumps(lines: Sequence[str]) -> list[_Dump]:
    return _dumps_in(lines, _stack_of_header, _read_pytest_stacks)


def _read_pytest_stacks(lines: Sequence[str], start: int, prefix: _Prefix) -> _Dump:
    """`Stack of` sections from `start` on; the closing `+++ Timeout +++` banner says that
    every thread was printed."""
    dump = _Dump(PYTEST_TIMEOUT, start=start, end=start + 1)
    index = start
    while index < len(lines):
        header = _PT_STACK_OF.match(prefix.strip(lines[index]) or "")
        if header is None:
            break
        thread = _Thread(ident=int(header.group("ident")), name=_thread_name(header.group("name")))
        if thread.ident in dump.idents:
            break
        dump.add(thread)
        outermost_first, index = _read_format_stack(lines, index + 1, prefix, dump)
        thread.frames = outermost_first[::-1]
        dump.end = index
        if not outermost_first:
            break
    content = prefix.strip(lines[index]) if index < len(lines) else None
    # The closing banner may follow another source's prefix (pytest writes it to the terminal).
    if index < len(lines) and _is_banner(lines[index]):
        dump.end = index + 1
    else:
        dump.cut_off = True
        dump.notes.append(_pytest_cut_note(dump, content))
    return dump


def _stack_of_header(line: str) -> re.Match[str] | None:
    """`~~~ Stack of NAME (IDENT) ~~~` anywhere in the line (after a log's prefix)."""
    at = line.find("~ Stack of ") if line.endswith("~") else -1
    while at > 0 and line[at - 1] == "~":
        at -= 1
    return _PT_STACK_OF.match(line, at) if 0 <= at <= _MAX_PREFIX else None


def _is_banner(line: str) -> bool:
    """pytest-timeout's `+++++ Timeout +++++`, maybe after other output on the line (the
    test's progress line, `test_x.py `)."""
    head, found, tail = line.rpartition(" Timeout ")
    return bool(found) and head.endswith("+") and tail.startswith("+") and not tail.strip("+")


def _thread_name(name: str) -> str | None:
    # pytest-timeout names a thread it does not find in threading.enumerate() "<unknown>".
    return None if name == "<unknown>" else name


def _pytest_cut_note(dump: _Dump, content: str | None) -> str:
    where = "the text ends" if content is None else "other output follows"
    return (f"{where} after {len(dump.threads)} threads without pytest-timeout's closing "
            "'+++ Timeout +++' line: the dump was cut off")


def _read_format_stack(lines: Sequence[str], start: int, prefix: _Prefix,
                       dump: _Dump) -> tuple[list[_Frame], int]:
    """`traceback.format_stack()` lines (outermost first): a frame line, then the source line
    and, on 3.11+, a line of carets, both indented further. Returns the frames and the index
    of the first line after them. Of more than _MAX_KEPT_FRAMES, the innermost are kept."""
    frames: deque[_Frame] = deque(maxlen=_MAX_KEPT_FRAMES)
    for index, content in _carrying(lines, start, prefix):
        frame = _TB_FRAME.match(content)
        repeated = _TB_REPEATED.match(content)
        if frame:
            frames.append(_Frame(frame.group("file"), int(frame.group("line")), frame.group("function")))
        elif repeated and frames:
            count = int(repeated.group("count"))
            if count > _MAX_REPEATED:
                dump.truncated = True
                dump.notes.append(f"a recursion of {count} frames was read as {_MAX_REPEATED}")
            frames.extend([frames[-1]] * min(count, _MAX_REPEATED))
        elif not (frames and content.startswith("    ")):
            return list(frames), index
    return list(frames), len(lines)


# --- pytest's report of a test failed by pytest-timeout (timeout_method = signal) -----------

_PT_TIMEOUT_FAILED = re.compile(r"(?:^|\s)(?P<e>E) +Failed: Timeout\b")
_PT_TEST_HEADER = re.compile(r"_{3,} .+ _{3,}$")
_PT_SEPARATOR = re.compile(r"(?:_ )+_?$")
# Not a source line marked `>` nor an `E` line of the error.
_PT_LOCATION = re.compile(r"(?![>E] )(?P<file>\S.*?):(?P<line>\d+):(?: (?P<rest>.*))?$")
_PT_DEF = re.compile(r"^[> ]\s*(?:async\s+)?def\s+(?P<name>\w+)\s*\(")
# pytest-timeout fails few tests in a run; the last ones are those that matter.
_PT_MAX_FAILURES = 10


@dataclass
class _Failure:
    thread: _Thread
    start: int  # the line of the test's header in the failures section
    end: int  # after the location line of the innermost frame
    section_end: int  # where this test's report ends (captured output included)


def _pytest_timeout_failures(lines: Sequence[str]) -> list[_Failure]:
    """The reports of the last tests pytest-timeout failed, oldest first."""
    failures = []
    floor = 0  # a report starts after the previous failure line: each line is looked at once
    for index, line in enumerate(lines):
        matched = _PT_TIMEOUT_FAILED.search(line) if "Failed: Timeout" in line else None
        if matched is None or matched.start("e") > _MAX_PREFIX:
            continue
        failure = _read_failure(lines, index, _Prefix.of(line[: matched.start("e")]), floor)
        floor = index + 1
        if failure is not None:
            failures.append(failure)
    return failures[-_PT_MAX_FAILURES:]


def _read_failure(lines: Sequence[str], failed_at: int, prefix: _Prefix, floor: int) -> _Failure | None:
    """The main thread's stack from pytest's traceback of the failed test: entries outermost
    first, from the test function to where the SIGALRM handler interrupted it."""
    start = _report_start(lines, failed_at, prefix, floor)
    location = _innermost_location(lines, failed_at, prefix) if start is not None else None
    if start is None or location is None:
        return None
    outermost_first = []
    for entry in _entries(lines, start + 1, location + 1, prefix):
        outermost_first.extend(_entry_frames(entry))
    if not outermost_first:
        return None
    # SIGALRM is handled in the main thread; the report does not say its id.
    thread = _Thread(ident=0, name="MainThread", current=True, frames=outermost_first[::-1])
    return _Failure(thread, start, location + 1, _report_end(lines, location + 1, prefix))


def _report_start(lines: Sequence[str], failed_at: int, prefix: _Prefix, floor: int) -> int | None:
    for index in range(failed_at - 1, floor - 1, -1):
        content = prefix.strip(lines[index])
        if content is not None and _PT_TEST_HEADER.match(content):
            return index
    return None


def _innermost_location(lines: Sequence[str], failed_at: int, prefix: _Prefix) -> int | None:
    """The `path:line: Failed` line after the E lines."""
    for index, content in _carrying(lines, failed_at + 1, prefix):
        if content.startswith("E ") or not content:
            continue
        return index if _PT_LOCATION.match(content) else None
    return None


def _report_end(lines: Sequence[str], start: int, prefix: _Prefix) -> int:
    """The next test's report or the next `===` section: the captured output in between is
    this test's."""
    for index, content in _carrying(lines, start, prefix):
        if _PT_TEST_HEADER.match(content) or content.startswith("==="):
            return index
    return len(lines)


def _entries(lines: Sequence[str], start: int, end: int, prefix: _Prefix) -> Iterator[list[str]]:
    """The traceback's entries, as pytest separates them with `_ _ _` lines."""
    entry: list[str] = []
    for index in range(start, end):
        content = prefix.strip(lines[index])
        if content is None:
            continue
        if _PT_SEPARATOR.match(content):
            yield entry
            entry = []
        else:
            entry.append(content)
    yield entry


def _entry_frames(entry: Sequence[str]) -> list[_Frame]:
    """Frames of one entry, outermost first: short style (`path:line: in func` then the
    source, several in a row), long style (source with `>` at the line, then `path:line: `),
    or --tb=native (Python's own `File "…", line N, in func`)."""
    frames = []
    definition: str | None = None
    for content in entry:
        native = _TB_FRAME.match(content)
        location = _PT_LOCATION.match(content)
        named = _PT_DEF.match(content)
        if native:
            frames.append(_Frame(native.group("file"), int(native.group("line")), native.group("function")))
        elif location and (location.group("rest") or "").startswith("in "):
            frames.append(_Frame(location.group("file"), int(location.group("line")),
                                 (location.group("rest") or "")[3:]))
        elif location:
            # A long entry names no function: the source it shows starts with the def.
            frames.append(_Frame(location.group("file"), int(location.group("line")), definition or "?"))
        elif named and definition is None:
            definition = named.group("name")
    return frames


def _pair_with_main_thread(stacks: list[_Dump], failure: _Failure) -> None:
    """With the signal method pytest-timeout prints every thread but the one handling SIGALRM,
    the main thread, in the test's captured output (or before the report with -s); the
    report's traceback is the main thread's stack. Without other threads there is no
    `Stack of` section at all: the report is the whole dump."""
    candidates = [dump for dump in stacks if not any(thread.name == "MainThread" for thread in dump.threads)]
    inside = [dump for dump in candidates if failure.end <= dump.start < failure.section_end]
    before = [dump for dump in candidates if dump.end <= failure.start]
    note = ("the main thread's stack is pytest's report of the test that timed out (timeout_method "
            "signal): it starts at the test function and has no thread id")
    if inside or before:
        dump = inside[0] if inside else before[-1]
        dump.add(failure.thread)
        dump.start, dump.end = min(dump.start, failure.start), max(dump.end, failure.end)
        dump.notes.append(note)
        return
    stacks.append(_Dump(PYTEST_TIMEOUT, start=failure.start, end=failure.end, threads=[failure.thread],
                        notes=[note, "pytest-timeout printed no other thread: the test ran in one thread"]))
    stacks.sort(key=lambda dump: dump.start)

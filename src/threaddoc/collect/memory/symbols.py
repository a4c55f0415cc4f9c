"""Where the interpreter is in the target: `_PyRuntime`'s address and the Python version.

The ELF file that exports `_PyRuntime` in its dynamic symbol table is found among the
target's mappings (/proc/PID/maps): pyenv's pythons link a shared libpython3.X.so.1.0,
distro pythons are executables that export it themselves. The file is read through
/proc/PID/map_files/<range> (the very file mapped, even if deleted or replaced since) or
else /proc/PID/root/<path> (the target's own root: containers work). The load bias
comes from the mapping of the file's first page and its first PT_LOAD header.

A small ELF reader of our own (64-bit little-endian only) rather than a dependency:
three structs and two tables are all that is needed.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from typing import BinaryIO, Callable

from threaddoc.errors import NotPython

from .memory import unreadable

ELF_MAGIC = b"\x7fELF"
ELFCLASS64 = 2
ELFDATA2LSB = 1
PT_LOAD = 1
SHT_DYNSYM = 11
MAX_TABLE_BYTES = 64 * 1024 * 1024  # a header or symbol table larger than this is not one

_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
_PROGRAM_HEADER = struct.Struct("<IIQQQQQQ")
_SECTION_HEADER = struct.Struct("<IIQQQQIIQQ")
_SYMBOL = struct.Struct("<IBBHQQ")

_MAPS_LINE = re.compile(r"^(?P<start>[0-9a-f]+)-(?P<end>[0-9a-f]+) (?P<perms>\S+) (?P<offset>[0-9a-f]+) "
                        r"\S+ (?P<inode>\d+)\s*(?P<path>.*)$")
_LIBPYTHON = re.compile(r"libpython(?P<version>3\.\d+)")
_PYTHON_EXE = re.compile(r"python(?P<version>3\.\d+)")


class ElfError(ValueError):
    """Not an ELF file threaddoc reads (or a damaged one)."""


@dataclass(frozen=True)
class ElfSymbol:
    name: str
    value: int
    size: int


@dataclass(frozen=True)
class ElfFile:
    """The parts of an ELF file that locate an exported symbol at run time."""

    loads: tuple[tuple[int, int], ...]  # (p_offset, p_vaddr) of each PT_LOAD
    symbols: dict[str, ElfSymbol]  # .dynsym, by name

    @property
    def first_load_vaddr(self) -> int:
        """p_vaddr - p_offset of the PT_LOAD that maps the file's start (page-aligned)."""
        offset, vaddr = min(self.loads)
        return vaddr - offset


def parse_elf(source: bytes | BinaryIO, wanted: frozenset[str] | None = None) -> ElfFile:
    """The PT_LOAD headers and the dynamic symbols (`wanted` only, if given) of an ELF file,
    given whole or as an open file (then only the headers and the two tables are read)."""
    read = _reader(source)
    header = read(0, _HEADER.size)
    if header[:4] != ELF_MAGIC:
        raise ElfError("not an ELF file")
    if header[4] != ELFCLASS64 or header[5] != ELFDATA2LSB:
        raise ElfError("only 64-bit little-endian ELF files are read (x86_64, aarch64)")
    (_, _, _, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum, _) = _HEADER.unpack_from(header)
    if phentsize < _PROGRAM_HEADER.size or (shnum and shentsize < _SECTION_HEADER.size):
        raise ElfError("damaged ELF headers")
    program_headers = read(phoff, phnum * phentsize)
    loads = []
    for index in range(phnum):
        p_type, _, p_offset, p_vaddr, *_ = _PROGRAM_HEADER.unpack_from(program_headers, index * phentsize)
        if p_type == PT_LOAD:
            loads.append((p_offset, p_vaddr))
    if not loads:
        raise ElfError("no loadable segment")
    section_headers = read(shoff, shnum * shentsize)
    sections = [_SECTION_HEADER.unpack_from(section_headers, index * shentsize) for index in range(shnum)]
    symbols: dict[str, ElfSymbol] = {}
    for section in sections:
        if section[1] != SHT_DYNSYM:
            continue
        offset, size, link, entsize = section[4], section[5], section[6], section[9] or _SYMBOL.size
        if link >= len(sections) or entsize < _SYMBOL.size:
            raise ElfError("the symbol table names no string table")
        table = read(offset, size)
        strings = read(sections[link][4], sections[link][5])
        for start in range(0, size - entsize + 1, entsize):
            st_name, _, _, st_shndx, st_value, st_size = _SYMBOL.unpack_from(table, start)
            if not st_shndx or not st_value:
                continue  # undefined here: imported from another object
            end = strings.find(b"\0", st_name)
            name = strings[st_name:end if end >= 0 else len(strings)].decode("utf-8", "replace")
            if wanted is None or name in wanted:
                symbols[name] = ElfSymbol(name, st_value, st_size)
    return ElfFile(loads=tuple(loads), symbols=symbols)


def _reader(source: bytes | BinaryIO) -> Callable[[int, int], bytes]:
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)

        def from_bytes(offset: int, size: int) -> bytes:
            if offset < 0 or size < 0 or offset + size > len(data):
                raise ElfError("truncated ELF file")
            return data[offset:offset + size]

        return from_bytes
    stream = source

    def from_file(offset: int, size: int) -> bytes:
        if offset < 0 or size < 0 or size > MAX_TABLE_BYTES:
            raise ElfError("damaged ELF file")
        stream.seek(offset)
        chunk = stream.read(size)
        if len(chunk) != size:
            raise ElfError("truncated ELF file")
        return chunk

    return from_file


@dataclass(frozen=True)
class Mapping:
    start: int
    end: int
    offset: int
    path: str


@dataclass(frozen=True)
class Interpreter:
    """Where the target's interpreter is, and which Python it is."""

    runtime: int  # address of _PyRuntime in the target
    version: tuple[int, int]
    hexversion: int | None  # Py_Version (3.11+), None before
    path: str  # the ELF file that exports _PyRuntime

    @property
    def version_text(self) -> str:
        if self.hexversion is None:
            return f"{self.version[0]}.{self.version[1]}"
        return f"{self.hexversion >> 24}.{(self.hexversion >> 16) & 0xFF}.{(self.hexversion >> 8) & 0xFF}"


def read_maps(pid: int) -> list[Mapping]:
    try:
        with open(f"/proc/{pid}/maps") as maps:
            text = maps.read()
    except (FileNotFoundError, PermissionError) as error:
        raise unreadable(pid, "memory maps", error) from None
    return parse_maps(text)


def parse_maps(text: str) -> list[Mapping]:
    mappings = []
    for line in text.splitlines():
        matched = _MAPS_LINE.match(line)
        if matched and matched.group("path").startswith("/"):
            mappings.append(Mapping(int(matched.group("start"), 16), int(matched.group("end"), 16),
                                    int(matched.group("offset"), 16), matched.group("path")))
    return mappings


def _candidates(mappings: list[Mapping]) -> list[Mapping]:
    """The first mapping (file offset 0) of each file that may hold the interpreter:
    libpython first, then python executables, then anything else mapped."""
    firsts: dict[str, Mapping] = {}
    for mapping in mappings:
        if mapping.offset == 0 and mapping.path not in firsts:
            firsts[mapping.path] = mapping

    def rank(mapping: Mapping) -> int:
        name = os.path.basename(mapping.path)
        if _LIBPYTHON.search(name):
            return 0
        return 1 if _PYTHON_EXE.search(name) or name.startswith("python") else 2

    return sorted((m for m in firsts.values() if rank(m) < 2), key=rank)


def _parse_mapped_file(pid: int, mapping: Mapping) -> ElfFile:
    """The mapped file itself, seen from the target (the mapping's own file, or its path
    in the target's root), parsed for the two symbols the collector needs."""
    for path in (f"/proc/{pid}/map_files/{mapping.start:x}-{mapping.end:x}",
                 f"/proc/{pid}/root{mapping.path.removesuffix(' (deleted)')}"):
        try:
            with open(path, "rb") as elf:
                return parse_elf(elf, frozenset({"_PyRuntime", "Py_Version"}))
        except OSError:
            continue
    raise OSError(f"cannot read {mapping.path}")


def find_interpreter(pid: int, fallback_version: str | None = None) -> Interpreter:
    """_PyRuntime's address and the version of the interpreter of `pid`.

    `fallback_version` ("3.9.18", from the process facts) is used before 3.11, where no
    Py_Version symbol says it."""
    mappings = read_maps(pid)
    for mapping in _candidates(mappings):
        try:
            elf = _parse_mapped_file(pid, mapping)
        except (OSError, ElfError):
            continue
        runtime = elf.symbols.get("_PyRuntime")
        if runtime is None:
            continue
        bias = mapping.start - (elf.first_load_vaddr & ~0xFFF)
        version_symbol = elf.symbols.get("Py_Version")
        hexversion = _read_py_version(pid, bias + version_symbol.value) if version_symbol else None
        version = _version_of(hexversion, mapping.path, fallback_version)
        if version is None:
            continue
        return Interpreter(runtime=bias + runtime.value, version=version, hexversion=hexversion,
                           path=mapping.path)
    raise NotPython(f"process {pid} has no CPython interpreter threaddoc can locate "
                    "(no mapped file exports _PyRuntime)",
                    "point threaddoc at the python process itself (see `ps -ef`); supported targets "
                    "are CPython 3.8 to 3.13")


def _read_py_version(pid: int, address: int) -> int | None:
    from .memory import MemoryReadError, ProcessMemory
    try:
        with ProcessMemory(pid) as memory:
            return memory.u32(address)
    except MemoryReadError:
        return None


def _version_of(hexversion: int | None, path: str, fallback: str | None) -> tuple[int, int] | None:
    if hexversion is not None and hexversion >> 24 == 3:
        return 3, (hexversion >> 16) & 0xFF
    for pattern in (_LIBPYTHON, _PYTHON_EXE):
        matched = pattern.search(os.path.basename(path))
        if matched:
            major, minor = matched.group("version").split(".")
            return int(major), int(minor)
    if fallback:
        parts = fallback.split(".")
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            return int(parts[0]), int(parts[1])
    return None

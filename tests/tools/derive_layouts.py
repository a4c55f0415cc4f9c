"""Derive src/threaddoc/collect/memory/layouts.py from each CPython's own headers.

For every minor version 3.8..3.13 that pyenv holds (tests/pythons.py), a small C
program is compiled with gcc against that version's headers (`Py_BUILD_CORE` and the
`internal/pycore_*.h` headers) and prints `offsetof`/`sizeof` of the fields below; the
result is written as one frozen `Layout` per minor. A field a version does not have is
-1 in its layout.

The table `SPEC` is the one place to add a field: a row names the layout field, the C
expression that gives it, and the versions it applies to (several rows may give the
same field for different version ranges). Run:

    .venv/bin/python tests/tools/derive_layouts.py          # rewrites layouts.py
    .venv/bin/python tests/tools/derive_layouts.py --check  # exit 1 if it would change
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pythons import discover_interpreters

OUTPUT = Path(__file__).resolve().parents[2] / "src" / "threaddoc" / "collect" / "memory" / "layouts.py"
GCC_TIMEOUT = 60.0
RUN_TIMEOUT = 10.0

Version = tuple[int, int]
FIRST: Version = (3, 8)
LAST: Version = (3, 13)


@dataclass(frozen=True)
class Row:
    field: str
    expression: str  # a C expression of type size_t (offsetof/sizeof)
    since: Version = FIRST
    until: Version = LAST  # inclusive
    doc: str = ""

    def applies(self, version: Version) -> bool:
        return self.since <= version <= self.until


def _o(struct: str, member: str) -> str:
    return f"offsetof({struct}, {member})"



def _pointer_before(function: str, flags: str) -> str:
    """How many bytes before an object the pointer `function(obj)` returns lies: the inline
    function of the headers is called on a stand-in object whose type has `flags`."""
    return ("({ static PyTypeObject stand_in_type; static struct { PyObject *pad[8]; PyObject object; } "
            f"stand_in; stand_in_type.tp_flags = {flags}; stand_in_type.tp_basicsize = sizeof(PyObject); "
            "stand_in.object.ob_type = &stand_in_type; "
            f"(size_t)((char *)&stand_in.object - (char *){function}(&stand_in.object)); }})")


def _pointer_after(function: str, flags: str) -> str:
    """How many bytes after the start of an object `function(obj)` points (see _pointer_before)."""
    return ("({ static PyTypeObject stand_in_type; static struct { PyObject object; PyObject *pad[8]; } "
            f"stand_in; stand_in_type.tp_flags = {flags}; stand_in_type.tp_basicsize = sizeof(PyObject); "
            "stand_in.object.ob_type = &stand_in_type; "
            f"(size_t)((char *){function}(&stand_in.object) - (char *)&stand_in.object); }})")


V38, V39, V310, V311, V312, V313 = (3, 8), (3, 9), (3, 10), (3, 11), (3, 12), (3, 13)

SPEC: tuple[Row, ...] = (
    # --- runtime and interpreter ------------------------------------------------------
    Row("runtime_interpreters_head", _o("_PyRuntimeState", "interpreters.head")),
    Row("runtime_main_interpreter", _o("_PyRuntimeState", "interpreters.main")),
    Row("interp_next", _o("PyInterpreterState", "next")),
    Row("interp_id", _o("PyInterpreterState", "id")),
    Row("interp_threads_head", _o("PyInterpreterState", "tstate_head"), until=V310),
    Row("interp_threads_head", _o("PyInterpreterState", "threads.head"), since=V311),
    # --- thread state -----------------------------------------------------------------
    Row("tstate_size", "sizeof(PyThreadState)"),
    Row("tstate_next", _o("PyThreadState", "next")),
    Row("tstate_prev", _o("PyThreadState", "prev")),
    Row("tstate_interp", _o("PyThreadState", "interp")),
    Row("tstate_thread_id", _o("PyThreadState", "thread_id")),
    Row("tstate_native_thread_id", _o("PyThreadState", "native_thread_id"), since=V311),
    Row("tstate_frame", _o("PyThreadState", "frame"), until=V310,
        doc="the innermost PyFrameObject"),
    Row("tstate_cframe", _o("PyThreadState", "cframe"), since=V310, until=V312),
    Row("cframe_current_frame", _o("_PyCFrame", "current_frame"), since=V311, until=V312),
    Row("tstate_current_frame", _o("PyThreadState", "current_frame"), since=V313),
    Row("tstate_datastack_chunk", _o("PyThreadState", "datastack_chunk"), since=V311,
        doc="3.11+: the data-stack chunk the thread's newest frames live in, up to datastack_top"),
    Row("tstate_datastack_top", _o("PyThreadState", "datastack_top"), since=V311),
    # --- 3.11+ _PyInterpreterFrame ----------------------------------------------------
    Row("iframe_size", "sizeof(_PyInterpreterFrame)", since=V311),
    Row("iframe_code", _o("_PyInterpreterFrame", "f_code"), since=V311, until=V312),
    Row("iframe_code", _o("_PyInterpreterFrame", "f_executable"), since=V313),
    Row("iframe_previous", _o("_PyInterpreterFrame", "previous"), since=V311),
    Row("iframe_localsplus", _o("_PyInterpreterFrame", "localsplus"), since=V311),
    Row("iframe_instr", _o("_PyInterpreterFrame", "prev_instr"), since=V311, until=V312,
        doc="3.11/3.12: the last instruction started; 3.13: instr_ptr, the one executing"),
    Row("iframe_instr", _o("_PyInterpreterFrame", "instr_ptr"), since=V313),
    Row("iframe_owner", _o("_PyInterpreterFrame", "owner"), since=V311),
    Row("iframe_is_entry", _o("_PyInterpreterFrame", "is_entry"), since=V311, until=V311),
    Row("iframe_stacktop", _o("_PyInterpreterFrame", "stacktop"), since=V311, until=V312),
    # --- 3.8-3.10 PyFrameObject (A3's frames_38) --------------------------------------
    Row("frame_size", "sizeof(PyFrameObject)", until=V310),
    Row("frame_back", _o("PyFrameObject", "f_back"), until=V310),
    Row("frame_code", _o("PyFrameObject", "f_code"), until=V310),
    Row("frame_lasti", _o("PyFrameObject", "f_lasti"), until=V310),
    Row("frame_lineno", _o("PyFrameObject", "f_lineno"), until=V310),
    Row("frame_trace", _o("PyFrameObject", "f_trace"), until=V310,
        doc="3.8/3.9: while set, f_lineno is the frame's line (PyFrame_GetLineNumber)"),
    Row("frame_localsplus", _o("PyFrameObject", "f_localsplus"), until=V310),
    # --- code objects -----------------------------------------------------------------
    Row("code_size", "sizeof(PyCodeObject)"),
    Row("code_argcount", _o("PyCodeObject", "co_argcount")),
    Row("code_posonlyargcount", _o("PyCodeObject", "co_posonlyargcount")),
    Row("code_kwonlyargcount", _o("PyCodeObject", "co_kwonlyargcount")),
    Row("code_flags", _o("PyCodeObject", "co_flags")),
    Row("code_firstlineno", _o("PyCodeObject", "co_firstlineno")),
    Row("code_filename", _o("PyCodeObject", "co_filename")),
    Row("code_name", _o("PyCodeObject", "co_name")),
    Row("code_qualname", _o("PyCodeObject", "co_qualname"), since=V311),
    Row("code_nlocals", _o("PyCodeObject", "co_nlocals"),
        doc="the plain locals (py-spy's locals); 3.11+: the first entries of localsplus"),
    Row("code_varnames", _o("PyCodeObject", "co_varnames"), until=V310),
    Row("code_code", _o("PyCodeObject", "co_code"), until=V310),
    Row("code_lnotab", _o("PyCodeObject", "co_lnotab"), until=V39),
    Row("code_linetable", _o("PyCodeObject", "co_linetable"), since=V310),
    Row("code_nlocalsplus", _o("PyCodeObject", "co_nlocalsplus"), since=V311),
    Row("code_localsplusnames", _o("PyCodeObject", "co_localsplusnames"), since=V311),
    Row("code_localspluskinds", _o("PyCodeObject", "co_localspluskinds"), since=V311),
    Row("code_code_adaptive", _o("PyCodeObject", "co_code_adaptive"), since=V311),
    # --- objects ----------------------------------------------------------------------
    Row("object_type", _o("PyObject", "ob_type")),
    Row("var_size", _o("PyVarObject", "ob_size")),
    Row("type_name", _o("PyTypeObject", "tp_name")),
    Row("type_flags", _o("PyTypeObject", "tp_flags")),
    Row("tuple_items", _o("PyTupleObject", "ob_item")),
    Row("bytes_data", _o("PyBytesObject", "ob_sval")),
    Row("unicode_length", _o("PyASCIIObject", "length")),
    Row("unicode_state", _o("PyASCIIObject", "state")),
    Row("unicode_ascii_size", "sizeof(PyASCIIObject)",
        doc="an ASCII compact string's characters follow its PyASCIIObject"),
    Row("unicode_compact_size", "sizeof(PyCompactUnicodeObject)",
        doc="a non-ASCII compact string's characters follow its PyCompactUnicodeObject"),
    Row("long_digits", _o("PyLongObject", "ob_digit"), until=V311),
    Row("long_digits", _o("PyLongObject", "long_value.ob_digit"), since=V312),
    Row("long_tag", _o("PyLongObject", "long_value.lv_tag"), since=V312,
        doc="3.12+: sign and digit count; before, ob_size (var_size) holds them"),
    # --- 3.13 _Py_DebugOffsets: where, inside it, each published offset is ------------
    Row("debug_cookie", _o("_Py_DebugOffsets", "cookie"), since=V313),
    Row("debug_version", _o("_Py_DebugOffsets", "version"), since=V313),
    Row("debug_free_threaded", _o("_Py_DebugOffsets", "free_threaded"), since=V313,
        doc="3.13+: non-zero in a free-threaded build (3.13t), whose objects this table does not describe"),
    Row("debug_runtime_interpreters_head", _o("_Py_DebugOffsets", "runtime_state.interpreters_head"),
        since=V313),
    Row("debug_interp_next", _o("_Py_DebugOffsets", "interpreter_state.next"), since=V313),
    Row("debug_interp_threads_head", _o("_Py_DebugOffsets", "interpreter_state.threads_head"), since=V313),
    Row("debug_tstate_size", _o("_Py_DebugOffsets", "thread_state.size"), since=V313),
    Row("debug_tstate_next", _o("_Py_DebugOffsets", "thread_state.next"), since=V313),
    Row("debug_tstate_prev", _o("_Py_DebugOffsets", "thread_state.prev"), since=V313),
    Row("debug_tstate_interp", _o("_Py_DebugOffsets", "thread_state.interp"), since=V313),
    Row("debug_tstate_current_frame", _o("_Py_DebugOffsets", "thread_state.current_frame"), since=V313),
    Row("debug_tstate_thread_id", _o("_Py_DebugOffsets", "thread_state.thread_id"), since=V313),
    Row("debug_tstate_native_thread_id", _o("_Py_DebugOffsets", "thread_state.native_thread_id"),
        since=V313),
    Row("debug_iframe_size", _o("_Py_DebugOffsets", "interpreter_frame.size"), since=V313),
    Row("debug_iframe_previous", _o("_Py_DebugOffsets", "interpreter_frame.previous"), since=V313),
    Row("debug_iframe_code", _o("_Py_DebugOffsets", "interpreter_frame.executable"), since=V313),
    Row("debug_iframe_instr", _o("_Py_DebugOffsets", "interpreter_frame.instr_ptr"), since=V313),
    Row("debug_iframe_localsplus", _o("_Py_DebugOffsets", "interpreter_frame.localsplus"), since=V313),
    Row("debug_iframe_owner", _o("_Py_DebugOffsets", "interpreter_frame.owner"), since=V313),
    Row("debug_code_size", _o("_Py_DebugOffsets", "code_object.size"), since=V313),
    Row("debug_code_filename", _o("_Py_DebugOffsets", "code_object.filename"), since=V313),
    Row("debug_code_name", _o("_Py_DebugOffsets", "code_object.name"), since=V313),
    Row("debug_code_qualname", _o("_Py_DebugOffsets", "code_object.qualname"), since=V313),
    Row("debug_code_linetable", _o("_Py_DebugOffsets", "code_object.linetable"), since=V313),
    Row("debug_code_firstlineno", _o("_Py_DebugOffsets", "code_object.firstlineno"), since=V313),
    Row("debug_code_argcount", _o("_Py_DebugOffsets", "code_object.argcount"), since=V313),
    Row("debug_code_localsplusnames", _o("_Py_DebugOffsets", "code_object.localsplusnames"), since=V313),
    Row("debug_code_localspluskinds", _o("_Py_DebugOffsets", "code_object.localspluskinds"), since=V313),
    Row("debug_code_code_adaptive", _o("_Py_DebugOffsets", "code_object.co_code_adaptive"), since=V313),
    Row("debug_object_type", _o("_Py_DebugOffsets", "pyobject.ob_type"), since=V313),
    Row("debug_type_name", _o("_Py_DebugOffsets", "type_object.tp_name"), since=V313),
    Row("debug_tuple_items", _o("_Py_DebugOffsets", "tuple_object.ob_item"), since=V313),
    Row("debug_tuple_size", _o("_Py_DebugOffsets", "tuple_object.ob_size"), since=V313),
    Row("debug_unicode_size", _o("_Py_DebugOffsets", "unicode_object.size"), since=V313),
    Row("debug_unicode_state", _o("_Py_DebugOffsets", "unicode_object.state"), since=V313),
    Row("debug_unicode_length", _o("_Py_DebugOffsets", "unicode_object.length"), since=V313),
    Row("debug_unicode_ascii_size", _o("_Py_DebugOffsets", "unicode_object.asciiobject_size"),
        since=V313),
    # --- dicts, instance attributes, thread names, the GIL (names.py, dicts.py) -------
    Row("type_basicsize", _o("PyTypeObject", "tp_basicsize")),
    Row("type_itemsize", _o("PyTypeObject", "tp_itemsize")),
    Row("type_dictoffset", _o("PyTypeObject", "tp_dictoffset")),
    Row("heaptype_cached_keys", _o("PyHeapTypeObject", "ht_cached_keys"),
        doc="the shared keys of the type's instances' split dicts / inline values"),
    Row("flag_managed_dict", "Py_TPFLAGS_MANAGED_DICT", since=V311),
    Row("flag_inline_values", "Py_TPFLAGS_INLINE_VALUES", since=V313),
    Row("managed_values_before", _pointer_before("_PyObject_ValuesPointer", "Py_TPFLAGS_MANAGED_DICT"),
        since=V311, until=V311, doc="3.11: the PyDictValues* is this many bytes before the object"),
    Row("managed_dict_before", _pointer_before("_PyObject_ManagedDictPointer", "Py_TPFLAGS_MANAGED_DICT"),
        since=V311, until=V311, doc="the managed dict (3.12: dict-or-values) pointer is this far before"),
    Row("managed_dict_before", _pointer_before("_PyObject_DictOrValuesPointer", "Py_TPFLAGS_MANAGED_DICT"),
        since=V312, until=V312),
    Row("managed_dict_before", _pointer_before("_PyObject_ManagedDictPointer", "Py_TPFLAGS_MANAGED_DICT"),
        since=V313),
    Row("managed_values_tag",
        "({ PyDictOrValues dorv; _PyDictOrValues_SetValues(&dorv, (PyDictValues *)64); "
        "(size_t)(64 - (uintptr_t)dorv.values); })", since=V312, until=V312,
        doc="3.12: a dict-or-values with its low bit set is values - this"),
    Row("inline_values_after",
        _pointer_after("_PyObject_InlineValues", "Py_TPFLAGS_MANAGED_DICT | Py_TPFLAGS_INLINE_VALUES"),
        since=V313, doc="3.13: inline values follow the object (at tp_basicsize, sizeof(PyObject))"),
    Row("dict_used", _o("PyDictObject", "ma_used")),
    Row("dict_keys", _o("PyDictObject", "ma_keys")),
    Row("dict_values", _o("PyDictObject", "ma_values")),
    Row("dictkeys_size", _o("PyDictKeysObject", "dk_size"), until=V310),
    Row("dictkeys_log2_size", _o("PyDictKeysObject", "dk_log2_size"), since=V311),
    Row("dictkeys_log2_index_bytes", _o("PyDictKeysObject", "dk_log2_index_bytes"), since=V311),
    Row("dictkeys_kind", _o("PyDictKeysObject", "dk_kind"), since=V311),
    Row("dictkeys_kind_general", "DICT_KEYS_GENERAL", since=V311,
        doc="dk_kind of a table of PyDictKeyEntry (others hold PyDictUnicodeEntry)"),
    Row("dictkeys_nentries", _o("PyDictKeysObject", "dk_nentries")),
    Row("dictkeys_indices", _o("PyDictKeysObject", "dk_indices")),
    Row("dict_entry_size", "sizeof(PyDictKeyEntry)"),
    Row("dict_entry_key", _o("PyDictKeyEntry", "me_key")),
    Row("dict_entry_value", _o("PyDictKeyEntry", "me_value")),
    Row("dict_unicode_entry_size", "sizeof(PyDictUnicodeEntry)", since=V311),
    Row("dict_unicode_entry_key", _o("PyDictUnicodeEntry", "me_key"), since=V311),
    Row("dict_unicode_entry_value", _o("PyDictUnicodeEntry", "me_value"), since=V311),
    Row("dictvalues_values", _o("PyDictValues", "values"), since=V311),
    Row("dictvalues_capacity", _o("PyDictValues", "capacity"), since=V313),
    Row("dictvalues_valid", _o("PyDictValues", "valid"), since=V313),
    Row("interp_modules", _o("PyInterpreterState", "modules"), until=V311, doc="sys.modules"),
    Row("interp_modules", _o("PyInterpreterState", "imports.modules"), since=V312),
    Row("runtime_gil_locked", _o("_PyRuntimeState", "ceval.gil.locked"), until=V311),
    Row("runtime_gil_last_holder", _o("_PyRuntimeState", "ceval.gil.last_holder"), until=V311),
    Row("interp_ceval_gil", _o("PyInterpreterState", "ceval.gil"), since=V312,
        doc="3.12+: a pointer to the interpreter's _gil_runtime_state"),
    Row("interp_gil_runtime_state", _o("PyInterpreterState", "_gil"), since=V312,
        doc="3.12+: the interpreter's own _gil_runtime_state (locked/holder: minus this, within one)"),
    Row("interp_gil_locked", _o("PyInterpreterState", "_gil.locked"), since=V312),
    Row("interp_gil_holder", _o("PyInterpreterState", "_gil.last_holder"), since=V312),
    Row("debug_interp_modules", _o("_Py_DebugOffsets", "interpreter_state.imports_modules"), since=V313),
    Row("debug_interp_ceval_gil", _o("_Py_DebugOffsets", "interpreter_state.ceval_gil"), since=V313),
    Row("debug_interp_gil_runtime_state", _o("_Py_DebugOffsets", "interpreter_state.gil_runtime_state"),
        since=V313),
    Row("debug_interp_gil_locked", _o("_Py_DebugOffsets", "interpreter_state.gil_runtime_state_locked"),
        since=V313),
    Row("debug_interp_gil_holder", _o("_Py_DebugOffsets", "interpreter_state.gil_runtime_state_holder"),
        since=V313),
    Row("debug_type_flags", _o("_Py_DebugOffsets", "type_object.tp_flags"), since=V313),
    Row("debug_dict_keys", _o("_Py_DebugOffsets", "dict_object.ma_keys"), since=V313),
    Row("debug_dict_values", _o("_Py_DebugOffsets", "dict_object.ma_values"), since=V313),
)

# The headers each version needs for the structs above (internal ones need Py_BUILD_CORE).
INCLUDES: dict[Version, tuple[str, ...]] = {
    V38: ("internal/pycore_pystate.h", "frameobject.h", "code.h"),
    V39: ("internal/pycore_interp.h", "internal/pycore_runtime.h", "frameobject.h", "code.h"),
    V310: ("internal/pycore_interp.h", "internal/pycore_runtime.h", "frameobject.h", "code.h"),
    V311: ("internal/pycore_interp.h", "internal/pycore_runtime.h", "internal/pycore_frame.h",
           "internal/pycore_code.h", "internal/pycore_dict.h", "internal/pycore_object.h"),
    V312: ("internal/pycore_interp.h", "internal/pycore_runtime.h", "internal/pycore_frame.h",
           "internal/pycore_code.h", "internal/pycore_dict.h", "internal/pycore_object.h"),
    V313: ("internal/pycore_interp.h", "internal/pycore_runtime.h", "internal/pycore_frame.h",
           "internal/pycore_code.h", "internal/pycore_dict.h", "internal/pycore_object.h"),
}

# 3.8-3.10 declare the dict's key table in Objects/dict-common.h, which is not installed:
# its two declarations, transcribed from that header of 3.8, 3.9 and 3.10 (the same in all
# three), for offsetof. 3.11 moved them into internal/pycore_dict.h.
_DICT_COMMON_38 = """
typedef struct { Py_hash_t me_hash; PyObject *me_key; PyObject *me_value; } PyDictKeyEntry;
typedef Py_ssize_t (*dict_lookup_func)(PyDictObject *mp, PyObject *key, Py_hash_t hash,
                                       PyObject **value_addr);
struct _dictkeysobject {
    Py_ssize_t dk_refcnt;
    Py_ssize_t dk_size;
    dict_lookup_func dk_lookup;
    Py_ssize_t dk_usable;
    Py_ssize_t dk_nentries;
    char dk_indices[];
};
"""
DECLARATIONS: dict[Version, str] = {V38: _DICT_COMMON_38, V39: _DICT_COMMON_38, V310: _DICT_COMMON_38}


def fields() -> list[str]:
    """Every layout field, in the order of first appearance in SPEC."""
    return list(dict.fromkeys(row.field for row in SPEC))


def c_program(version: Version) -> str:
    lines = ["#define Py_BUILD_CORE 1", '#include "Python.h"']
    lines += [f'#include "{header}"' for header in INCLUDES[version]]
    lines += [DECLARATIONS.get(version, "")]
    lines += ["#include <stddef.h>", "#include <stdio.h>", "int main(void) {"]
    for row in SPEC:
        if row.applies(version):
            lines.append(f'    printf("{row.field} %zu\\n", (size_t)({row.expression}));')
    lines += ["    return 0;", "}"]
    return "\n".join(lines) + "\n"


def derive(version: Version, python: Path) -> tuple[str, dict[str, int]]:
    """(exact version, field -> value) for the interpreter `python` of minor `version`."""
    prefix = python.resolve().parents[1]
    minor = f"{version[0]}.{version[1]}"
    include = prefix / "include" / f"python{minor}"
    exact = python.resolve().parents[1].name
    with tempfile.TemporaryDirectory() as scratch:
        source, binary = Path(scratch) / "layout.c", Path(scratch) / "layout"
        source.write_text(c_program(version))
        subprocess.run(["gcc", "-w", f"-I{include}", f"-I{include}/internal", str(source), "-o", str(binary)],
                       check=True, timeout=GCC_TIMEOUT, stdin=subprocess.DEVNULL)
        output = subprocess.run([str(binary)], check=True, capture_output=True, text=True,
                                timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL).stdout
    values: dict[str, int] = {}
    for line in output.splitlines():
        name, value = line.split()
        values[name] = int(value)
    return exact, values


def render(derived: dict[Version, tuple[str, dict[str, int]]]) -> str:
    names = fields()
    exact = ", ".join(patch for patch, _ in derived.values())
    docs = {row.field: row.doc for row in SPEC if row.doc}
    out = [
        '"""Structure offsets and sizes of CPython 3.8 to 3.13, per minor version.',
        "",
        "GENERATED by tests/tools/derive_layouts.py (do not edit): gcc offsetof/sizeof against",
        "the headers of CPython",
        f"{exact}",
        f"on {platform.machine()} (Linux, 64-bit, non-debug, default non-free-threaded builds).",
        "Other patch releases of a minor may differ in the",
        "internal structs: the walkers validate what they read, and on 3.13 the offsets the",
        "interpreter publishes in _Py_DebugOffsets win over these.",
        "",
        "A field the version does not have is -1.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from dataclasses import dataclass",
        "",
        "DERIVED_FROM = {",
        *(f'    "{m}.{n}": "{patch}",' for (m, n), (patch, _) in derived.items()),
        "}",
        f'MACHINE = "{platform.machine()}"',
        "",
        "",
        "@dataclass(frozen=True)",
        "class Layout:",
        '    """Offsets (bytes from the start of the struct) and sizes; -1: not in this version."""',
        "",
        "    version: tuple[int, int]",
    ]
    for name in names:
        if name in docs:
            out.append(f"    # {docs[name]}")
        out.append(f"    {name}: int = -1")
    out += ["", "", "LAYOUTS: dict[tuple[int, int], Layout] = {"]
    for version, (_, values) in derived.items():
        out.append(f"    {version}: Layout(")
        out.append(f"        version={version},")
        for name in names:
            if name in values:
                out.append(f"        {name}={values[name]},")
        out.append("    ),")
    out.append("}")
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if layouts.py is not up to date")
    arguments = parser.parse_args()
    found = discover_interpreters().found
    derived: dict[Version, tuple[str, dict[str, int]]] = {}
    for minor, python in found.items():
        major_number, minor_number = (int(part) for part in minor.split("."))
        derived[(major_number, minor_number)] = derive((major_number, minor_number), python)
    text = render(derived)
    if arguments.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        return 0 if current == text else 1
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT} from {', '.join(patch for patch, _ in derived.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reading a Python `dict`, and an object's instance attributes, out of the target's memory.

CPython 3.8 to 3.13 (offsets from each version's headers, in `layouts.py`):

* The key table (`PyDictKeysObject`) starts with a header, then `dk_indices` (the hash
  table), then the entries. 3.8-3.10 (Objects/dict-common.h) give `dk_size` and the
  width of one index follows from it (1 byte up to 0xff slots, 2 up to 0xffff, 4 up to
  0xffffffff, else 8: `DK_IXSIZE`); 3.11+ (pycore_dict.h) give `dk_log2_size` and
  `dk_log2_index_bytes`, and `dk_kind` says whether the entries are `PyDictKeyEntry`
  (hash, key, value) or `PyDictUnicodeEntry` (key, value: str keys only).
* The entries are in insertion order; `dk_nentries` of them are used, a deleted one has
  a NULL key. Walking them (as `PyDict_Next` does) needs no hashing.
* A split table (`ma_values` not NULL: instance dicts sharing their class's keys) keeps
  the values apart, by entry index: an array of pointers (3.8-3.10), a `PyDictValues`
  (3.11+; 3.13 adds a header with `capacity` and `valid` before the pointers).

Instance attributes (`DictReader.attribute`):

* 3.8-3.10: the dict pointer is at `tp_dictoffset` (from the end of a variable-size
  object when negative, as `_PyObject_GetDictPtr` computes it).
* 3.11 (`Py_TPFLAGS_MANAGED_DICT`): a values pointer and a dict pointer stored before
  the object (`_PyObject_ValuesPointer`, `_PyObject_ManagedDictPointer`); values are
  indexed by the entry index of the name in the type's shared keys (`ht_cached_keys`).
* 3.12: one tagged pointer before the object (`_PyObject_DictOrValuesPointer`): values
  when its low bit is set, else the dict.
* 3.13 (`Py_TPFLAGS_INLINE_VALUES`): the values follow the object (at `tp_basicsize`)
  while their `valid` flag is set; else the dict is behind `PyManagedDictPointer`.

The target runs while it is read: every size is checked before it is used, every loop
is bounded, and a read that fails raises `MemoryReadError` (callers end their walk
there). Nothing here writes to the target.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .layouts import Layout
from .memory import POINTER_SIZE, MemoryReadError, ProcessMemory, i64_at, pointer_at
from .objects import ObjectError, TypeNames, read_str

MAX_TABLE_SLOTS = 1 << 24  # a dict with a bigger hash table is not one we read
ENTRIES_PER_READ = 8192  # entries fetched per pread (bounds the size of one read)
MIN_TABLE_SLOTS = 8  # PyDict_MINSIZE: every key table has at least this many slots
MAX_SPLIT_SLOTS = 1 << 16  # shared keys (split tables) are small: SHARED_KEYS_MAX_SIZE is 30
SHORT_STR = 64  # characters of a str read together with its header
MAX_WINDOW = 4096  # bytes of one object read in one piece at most (see DictReader.window)
COMPACT_ASCII = (1 << 5) | (1 << 6)  # PyASCIIObject.state: the compact and ascii bits (3.8-3.13)

_BYTE_WIDTH_LIMITS = ((0xFF, 1), (0xFFFF, 2), (0xFFFFFFFF, 4))


@dataclass(frozen=True)
class KeyTable:
    """The shape of one `PyDictKeysObject`: where its entries are and how to read them."""

    address: int
    slots: int  # DK_SIZE
    entries_offset: int  # from `address` to the first entry
    used: int  # dk_nentries
    entry_size: int
    key_offset: int
    value_offset: int


@dataclass(frozen=True)
class TypeInfo:
    """What attribute lookup needs from an object's type, read once per type."""

    flags: int
    basicsize: int
    itemsize: int
    dictoffset: int
    cached_keys: int  # ht_cached_keys (0 when not a heap type with shared keys)


def index_width(slots: int) -> int:
    """Bytes of one `dk_indices` slot in CPython 3.8-3.10 (`DK_IXSIZE`)."""
    for limit, width in _BYTE_WIDTH_LIMITS:
        if slots <= limit:
            return width
    return 8


def parse_key_table(layout: Layout, address: int, header: bytes) -> KeyTable:
    """The `KeyTable` of the key object at `address`, from its first `dictkeys_indices` bytes.

    Raises ObjectError when the header is not one of a sane key table."""
    if layout.dictkeys_size >= 0:  # 3.8-3.10
        slots = i64_at(header, layout.dictkeys_size)
        if not MIN_TABLE_SLOTS <= slots <= MAX_TABLE_SLOTS or slots & (slots - 1):
            raise ObjectError(address, f"not a dict key table (dk_size {slots})")
        indices_bytes = slots * index_width(slots)
        general = True
    else:  # 3.11+
        log2_slots = header[layout.dictkeys_log2_size]
        log2_index_bytes = header[layout.dictkeys_log2_index_bytes]
        slots = 1 << log2_slots
        sane_index = log2_slots <= log2_index_bytes <= log2_slots + 3  # 1 to 8 bytes a slot
        if not MIN_TABLE_SLOTS <= slots <= MAX_TABLE_SLOTS or not sane_index:
            raise ObjectError(address, f"not a dict key table (dk_log2_size {log2_slots})")
        indices_bytes = 1 << log2_index_bytes
        general = header[layout.dictkeys_kind] == layout.dictkeys_kind_general
    used = i64_at(header, layout.dictkeys_nentries)
    if not 0 <= used <= slots:
        raise ObjectError(address, f"not a dict key table ({used} entries in {slots} slots)")
    if general:
        size, key, value = layout.dict_entry_size, layout.dict_entry_key, layout.dict_entry_value
    else:
        size, key = layout.dict_unicode_entry_size, layout.dict_unicode_entry_key
        value = layout.dict_unicode_entry_value
    return KeyTable(address, slots, layout.dictkeys_indices + indices_bytes, used, size, key, value)


def entry_pairs(table: KeyTable, data: bytes, first: int = 0) -> list[tuple[int, int, int]]:
    """(entry index, key, value) of each entry in `data` (entries `first`... read in one piece)
    whose key is set; the value is the entry's own (meaningless for a split table)."""
    pairs = []
    for position in range(len(data) // table.entry_size):
        base = position * table.entry_size
        key = pointer_at(data, base + table.key_offset)
        if key:
            pairs.append((first + position, key, pointer_at(data, base + table.value_offset)))
    return pairs


def type_info_from(layout: Layout, data: bytes) -> TypeInfo:
    """The `TypeInfo` of a type object whose first `heaptype_cached_keys + 8` bytes are `data`
    (`cached_keys` is only meaningful for heap types: callers check the flags first)."""
    flags = struct.unpack_from("<Q", data, layout.type_flags)[0]
    return TypeInfo(
        flags=flags,
        basicsize=i64_at(data, layout.type_basicsize),
        itemsize=i64_at(data, layout.type_itemsize),
        dictoffset=i64_at(data, layout.type_dictoffset),
        cached_keys=pointer_at(data, layout.heaptype_cached_keys),
    )


def var_object_size(basicsize: int, itemsize: int, items: int) -> int:
    """`_PyObject_VAR_SIZE`: basicsize + items * itemsize, rounded up to a pointer."""
    size = basicsize + abs(items) * itemsize
    return (size + POINTER_SIZE - 1) & ~(POINTER_SIZE - 1)


class Window:
    """Bytes of the target read in one piece, around one object; a field outside them is
    read on its own. Attribute lookup reads its fields through a window sized from the
    last object's type, so an object like the last one costs one read, not five."""

    def __init__(self, memory: ProcessMemory, start: int = 0, data: bytes = b"") -> None:
        self.memory = memory
        self.start = start
        self.data = data

    def _inside(self, address: int, size: int) -> bool:
        return self.start <= address and address + size <= self.start + len(self.data)

    def pointer(self, address: int) -> int:
        if self._inside(address, POINTER_SIZE):
            return pointer_at(self.data, address - self.start)
        return self.memory.pointer(address)

    def i64(self, address: int) -> int:
        if self._inside(address, 8):
            return i64_at(self.data, address - self.start)
        return self.memory.i64(address)

    def byte(self, address: int) -> int:
        if self._inside(address, 1):
            return self.data[address - self.start]
        return self.memory.read(address, 1)[0]


class DictReader:
    """Dicts and instance attributes of one target, with the caches one snapshot can share.

    Thousands of `threading.Thread` objects share one type and one shared-keys table:
    the type, and where `_name` is in those keys, are read once; and each object's type,
    dict pointer and inline values are read in one piece sized from the object before it
    (`window`), so the name of one more thread costs one to three reads (3.13 to 3.8)."""

    HEAP_TYPE_FLAG = 1 << 9  # Py_TPFLAGS_HEAPTYPE, the same from 3.8 to 3.13 (object.h)

    def __init__(self, memory: ProcessMemory, layout: Layout, type_names: TypeNames | None = None,
                 *, speculative: bool = True) -> None:
        self.memory = memory
        self.layout = layout
        self.type_names = type_names or TypeNames(memory, layout)
        self.speculative = speculative  # read an object's fields in one piece, sized by the last type
        self._types: dict[int, TypeInfo] = {}
        self._shared_index: dict[tuple[int, str], int | None] = {}
        self._last: tuple[TypeInfo, int | None] | None = None  # the last object's type, `name`'s index

    # ------------------------------------------------------------------ key tables

    def key_table(self, address: int) -> KeyTable:
        header = self.memory.read(address, self.layout.dictkeys_indices)
        return parse_key_table(self.layout, address, header)

    def entries(self, table: KeyTable) -> list[tuple[int, int, int]]:
        """(index, key, value) of the used entries of `table`, a few large reads."""
        pairs: list[tuple[int, int, int]] = []
        start = table.address + table.entries_offset
        for first in range(0, table.used, ENTRIES_PER_READ):
            count = min(ENTRIES_PER_READ, table.used - first)
            data = self.memory.read(start + first * table.entry_size, count * table.entry_size)
            pairs += entry_pairs(table, data, first)
        return pairs

    def split_values_start(self, values: int) -> int:
        """Where the value pointers of a split table's `ma_values` begin."""
        return values + max(self.layout.dictvalues_values, 0)

    # ------------------------------------------------------------------ dicts

    def items(self, address: int) -> list[tuple[int, int]]:
        """(key address, value address) of every item of the dict at `address`."""
        layout = self.layout
        header = self.memory.read(address, layout.dict_values + POINTER_SIZE)
        keys, values = pointer_at(header, layout.dict_keys), pointer_at(header, layout.dict_values)
        table = self.key_table(keys)
        pairs = self.entries(table)
        if not values:
            return [(key, value) for _, key, value in pairs if value]
        if table.used > MAX_SPLIT_SLOTS:
            raise ObjectError(address, "a split table this large is not one")
        count = table.used
        if self.layout.dictvalues_capacity >= 0:  # 3.13: the values say how many they hold
            count = min(count, self.memory.read(values + self.layout.dictvalues_capacity, 1)[0])
        pointers = self.memory.pointers(self.split_values_start(values), count) if count else ()
        return [(key, pointers[index]) for index, key, _ in pairs if index < count and pointers[index]]

    def str_items(self, address: int) -> dict[str, int]:
        """The items of a dict whose keys are `str` (other keys are left out): name -> value.
        A key that cannot be read (freed while the target runs) is left out too."""
        found: dict[str, int] = {}
        for key, value in self.items(address):
            try:
                name = self.str_key(key)
            except MemoryReadError:
                continue
            if name is not None:
                found[name] = value
        return found

    def int_items(self, address: int) -> dict[int, int]:
        """The items of a dict whose keys are `int` (other keys, and keys that cannot be read,
        are left out): key -> value."""
        found: dict[int, int] = {}
        for key, value in self.items(address):
            try:
                data = self.memory.read(key, self.layout.long_digits + 2 * 4)
                if self.type_names.of_type(pointer_at(data, self.layout.object_type)) == "int":
                    found[decode_int(self.layout, key, data)] = value
            except MemoryReadError:
                continue
        return found

    def get(self, address: int, name: str) -> int | None:
        """The value of key `name` (a str) in the dict at `address`, or None."""
        layout = self.layout
        header = self.memory.read(address, layout.dict_values + POINTER_SIZE)
        keys, values = pointer_at(header, layout.dict_keys), pointer_at(header, layout.dict_values)
        if values:
            index = self.shared_index(keys, name)
            return None if index is None else self.split_value(values, index)
        for _, key, value in self.entries(self.key_table(keys)):
            if value and self.str_equals(key, name):
                return value
        return None

    def split_value(self, values: int, index: int, window: Window | None = None) -> int | None:
        """Value pointer number `index` of a split table's values (None when unset)."""
        window = window or Window(self.memory)
        capacity = self.layout.dictvalues_capacity
        if capacity >= 0 and index >= window.byte(values + capacity):  # 3.13: not that many values
            return None
        value = window.pointer(self.split_values_start(values) + index * POINTER_SIZE)
        return value or None

    def shared_index(self, keys: int, name: str) -> int | None:
        """The entry index of `name` in the shared key table at `keys` (cached per table)."""
        cached = (keys, name)
        if cached not in self._shared_index:
            table = self.key_table(keys)
            if table.used > MAX_SPLIT_SLOTS:
                raise ObjectError(keys, "a shared key table this large is not one")
            self._shared_index[cached] = next(
                (index for index, key, _ in self.entries(table) if self.str_equals(key, name)), None)
        return self._shared_index[cached]

    # ------------------------------------------------------------------ strings

    def str_key(self, address: int) -> str | None:
        """The text of a str key, or None if the key is not a str."""
        if self.type_names.of_object(address) != "str":
            return None
        return read_str(self.memory, self.layout, address)

    def str_equals(self, address: int, name: str) -> bool:
        """Whether the object at `address` is the compact ASCII str `name`: one read.

        Identifiers (attribute and module names) are ASCII; a non-ASCII `name` is compared
        through `str_key`."""
        layout = self.layout
        if not name.isascii():
            return self.str_key(address) == name
        encoded = name.encode("ascii")
        try:
            data = self.memory.read(address, layout.unicode_ascii_size + len(encoded))
        except MemoryReadError:  # a shorter key at the very end of a mapping: not `name`
            return self.str_key(address) == name
        if i64_at(data, layout.unicode_length) != len(encoded):
            return False
        state = struct.unpack_from("<I", data, layout.unicode_state)[0]
        if state & COMPACT_ASCII != COMPACT_ASCII:
            return False
        return data[layout.unicode_ascii_size:] == encoded and self.type_names.of_object(address) == "str"

    # ------------------------------------------------------------------ attributes

    def type_info(self, type_address: int) -> TypeInfo:
        info = self._types.get(type_address)
        if info is None:
            data = self.memory.read(type_address, self.layout.heaptype_cached_keys + POINTER_SIZE)
            info = type_info_from(self.layout, data)
            if not info.flags & self.HEAP_TYPE_FLAG:
                info = TypeInfo(info.flags, info.basicsize, info.itemsize, info.dictoffset, 0)
            if not 0 < info.basicsize < 1 << 20:
                raise ObjectError(type_address, "not a type object")
            self._types[type_address] = info
        return info

    def dict_of(self, address: int) -> int:
        """The address of the `__dict__` of the object at `address` (0: none, or not a dict yet)."""
        type_address = self.memory.pointer(address + self.layout.object_type)
        return self.instance_dict(address, self.type_info(type_address), Window(self.memory))

    def instance_dict(self, address: int, info: TypeInfo, window: Window) -> int:
        """The address of the instance dict of the object at `address` (0: none yet)."""
        layout = self.layout
        if self._managed(info):
            stored = window.pointer(address - layout.managed_dict_before)
            if layout.managed_values_tag >= 0 and stored & 1:  # 3.12: tagged values, not a dict
                return 0
            return stored
        if info.dictoffset == 0:
            return 0
        offset = info.dictoffset
        if offset < 0:  # from the end of a variable-size object
            items = window.i64(address + layout.var_size)
            offset += var_object_size(info.basicsize, info.itemsize, items)
        return window.pointer(address + offset)

    def _managed(self, info: TypeInfo) -> bool:
        return self.layout.flag_managed_dict >= 0 and bool(info.flags & self.layout.flag_managed_dict)

    def _inline(self, info: TypeInfo) -> bool:
        return self.layout.flag_inline_values >= 0 and bool(info.flags & self.layout.flag_inline_values)

    def managed_values(self, address: int, info: TypeInfo, window: Window) -> int:
        """The address of the object's own `PyDictValues` (0 when its attributes are in a dict)."""
        layout = self.layout
        if not self._managed(info) or not info.cached_keys:
            return 0
        if layout.flag_inline_values >= 0:  # 3.13
            if not self._inline(info):
                return 0
            values = address + info.basicsize
            return values if window.byte(values + layout.dictvalues_valid) else 0
        if layout.managed_values_tag >= 0:  # 3.12
            stored = window.pointer(address - layout.managed_dict_before)
            return stored + layout.managed_values_tag if stored & 1 else 0
        return window.pointer(address - layout.managed_values_before)  # 3.11

    def window(self, address: int) -> Window:
        """The bytes of the object at `address` that an object of the last type looked up
        keeps its type, dict pointer and inline values in: one read (none can fail the
        lookup: a field outside, or a read that fails, is read on its own)."""
        if not self.speculative or self._last is None:
            return Window(self.memory)
        info, index = self._last
        layout = self.layout
        before = 0
        if self._managed(info):
            before = max(layout.managed_values_before, layout.managed_dict_before, 0)
        after = layout.object_type + POINTER_SIZE
        if self._inline(info) and index is not None:
            after = info.basicsize + self.split_values_start(0) + (index + 1) * POINTER_SIZE
        elif info.dictoffset > 0:
            after = max(after, info.dictoffset + POINTER_SIZE)
        if after > MAX_WINDOW:  # a big object: its few fields one by one
            return Window(self.memory)
        try:
            return Window(self.memory, address - before, self.memory.read(address - before, before + after))
        except MemoryReadError:
            return Window(self.memory)

    def attribute(self, address: int, name: str) -> int | None:
        """The value of the instance attribute `name` of the object at `address` (its
        `__dict__` entry), or None when it has none. Class attributes and slots are not
        looked at: this is `obj.__dict__.get(name)`."""
        window = self.window(address)
        info = self.type_info(window.pointer(address + self.layout.object_type))
        shared = self._managed(info) and info.cached_keys
        index = self.shared_index(info.cached_keys, name) if shared else None
        self._last = (info, index)
        values = self.managed_values(address, info, window)
        if values:
            return None if index is None else self.split_value(values, index, window)
        dictionary = self.instance_dict(address, info, window)
        return self.get(dictionary, name) if dictionary else None

    # ------------------------------------------------------------------ names

    def str_at(self, address: int) -> str | None:
        """The text of the str at `address`, or None if it is not a str. One read for a
        short ASCII str (a thread name): its header and characters together."""
        layout = self.layout
        try:
            data = self.memory.read(address, layout.unicode_ascii_size + SHORT_STR)
        except MemoryReadError:
            data = b""
        if not data:
            return self.str_key(address)
        if self.type_names.of_type(pointer_at(data, layout.object_type)) != "str":
            return None
        length = i64_at(data, layout.unicode_length)
        state = struct.unpack_from("<I", data, layout.unicode_state)[0]
        if state & COMPACT_ASCII == COMPACT_ASCII and 0 <= length <= SHORT_STR:
            text = data[layout.unicode_ascii_size:layout.unicode_ascii_size + length]
            return text.decode("ascii", "replace")
        return read_str(self.memory, layout, address)


def decode_int(layout: Layout, address: int, data: bytes) -> int:
    """The value of an int of at most two 30-bit digits (thread idents are < 2**60), from
    its first `long_digits + 8` bytes."""
    if layout.long_tag >= 0:  # 3.12+: lv_tag = digits << 3 | sign (0 positive, 1 zero, 2 negative)
        tag = struct.unpack_from("<Q", data, layout.long_tag)[0]
        digits, negative = tag >> 3, tag & 3 == 2
    else:  # ob_size: the digit count, negative for a negative int
        size = i64_at(data, layout.var_size)
        digits, negative = abs(size), size < 0
    if digits > 2:
        raise ObjectError(address, "int too large for a thread ident")
    value = 0
    for index, digit in enumerate(struct.unpack_from(f"<{digits}I", data, layout.long_digits)):
        value |= (digit & 0x3FFFFFFF) << (30 * index)
    return -value if negative else value


__all__ = [
    "DictReader",
    "KeyTable",
    "MemoryReadError",
    "TypeInfo",
    "decode_int",
    "entry_pairs",
    "index_width",
    "parse_key_table",
    "var_object_size",
]

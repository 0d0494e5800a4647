"""A small, generic codec for the thrift compact protocol (the encoding of Parquet footers).

A struct decodes to an ordered list of fields (id, type code, value) without needing its IDL,
so fields this codec has never heard of survive a decode/encode untouched; encoding writes the
canonical form the thrift C++ library (used by Arrow and DuckDB) writes, which makes decode
then encode return the original bytes.

Besides full decoding, the codec can *scan* a struct: list its fields with the byte span of each
encoded value, skipping nested values without building them. A caller that changes a few fields
of a large struct can then copy every other field's bytes as they are (`encode_fields`).

Hot paths use plain int type codes (the `_T_*` constants below, equal to `CType`'s members) and
local variables; a truncated input surfaces as an IndexError inside them, turned into a
ThriftError at each entry point.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple, TypeAlias

# Deeper nesting than any Parquet footer has; stops a crafted footer from exhausting the stack.
MAX_DEPTH = 64


class ThriftError(ValueError):
    """Bytes that are not a compact-protocol struct, or a value that does not fit its type."""


class CType(IntEnum):
    """Compact-protocol type codes. In a field header 1 means true and 2 false (the value lives
    in the header); everywhere else 1 names the bool type and a bool is one byte, 1 or 2."""

    BOOL = 1
    BOOL_FALSE = 2
    I8 = 3
    I16 = 4
    I32 = 5
    I64 = 6
    DOUBLE = 7
    BINARY = 8
    LIST = 9
    SET = 10
    MAP = 11
    STRUCT = 12


# CType's values as plain ints: comparing or building an IntEnum costs far more than an int.
_T_BOOL = 1
_T_BOOL_FALSE = 2
_T_I8 = 3
_T_I16 = 4
_T_I32 = 5
_T_I64 = 6
_T_DOUBLE = 7
_T_BINARY = 8
_T_LIST = 9
_T_SET = 10
_T_MAP = 11
_T_STRUCT = 12

_INT_BITS = {_T_I8: 8, _T_I16: 16, _T_I32: 32, _T_I64: 64}
_DOUBLE = struct.Struct("<d")


@dataclass(frozen=True, slots=True)
class Field:
    id: int
    type: int  # a CType; CType.BOOL for both bool values
    value: Value


@dataclass
class ThriftList:
    """A list or a set (the enclosing type code says which)."""

    element_type: int
    items: list[Value]


@dataclass
class ThriftMap:
    key_type: int  # 0 when the map is empty: the encoding carries no types then
    value_type: int
    items: list[tuple[Value, Value]]


@dataclass
class Struct:
    fields: list[Field] = field(default_factory=list)

    def find(self, field_id: int) -> Field | None:
        return next((f for f in self.fields if f.id == field_id), None)

    def set(self, field_id: int, field_type: int, value: Value) -> None:
        """Replace the field in place, or insert it where ascending ids put it."""
        new = Field(field_id, field_type, value)
        for i, f in enumerate(self.fields):
            if f.id == field_id:
                self.fields[i] = new
                return
            if f.id > field_id:
                self.fields.insert(i, new)
                return
        self.fields.append(new)

    def drop(self, field_id: int) -> None:
        self.fields = [f for f in self.fields if f.id != field_id]

    def copy(self) -> Struct:
        """A struct whose field list can change without changing this one."""
        return Struct(list(self.fields))

    def get_int(self, field_id: int) -> int | None:
        value = self._get(field_id)
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise ThriftError(f"field {field_id} is not an integer")

    def get_bytes(self, field_id: int) -> bytes | None:
        value = self._get(field_id)
        if value is None or isinstance(value, bytes):
            return value
        raise ThriftError(f"field {field_id} is not binary")

    def get_struct(self, field_id: int) -> Struct | None:
        value = self._get(field_id)
        if value is None or isinstance(value, Struct):
            return value
        raise ThriftError(f"field {field_id} is not a struct")

    def get_structs(self, field_id: int) -> list[Struct] | None:
        """A list<struct> field's items."""
        value = self._get(field_id)
        if value is None:
            return None
        if isinstance(value, ThriftList) and all(isinstance(v, Struct) for v in value.items):
            return [v for v in value.items if isinstance(v, Struct)]
        raise ThriftError(f"field {field_id} is not a list of structs")

    def _get(self, field_id: int) -> Value | None:
        found = self.find(field_id)
        return None if found is None else found.value


Value: TypeAlias = bool | int | float | bytes | Struct | ThriftList | ThriftMap

# A scanned field: (id, type code as in its header, start, end of its encoded value). A bool
# field's value lives in its header: its type code is 1 (true) or 2 (false) and its span empty.
FieldSpan: TypeAlias = tuple[int, int, int, int]
# A field to encode from its value's bytes: (id, type code as in FieldSpan, encoded value).
EncodedField: TypeAlias = tuple[int, int, bytes]


def struct_list(items: list[Struct]) -> ThriftList:
    return ThriftList(_T_STRUCT, list(items))


# Decoding.


def decode_struct(data: bytes) -> Struct:
    """Decode bytes that hold exactly one struct."""
    value, end = decode_struct_prefix(data)
    if end != len(data):
        raise ThriftError(f"{len(data) - end} bytes follow the struct")
    return value


def decode_struct_prefix(data: bytes) -> tuple[Struct, int]:
    """Decode the struct at the start of data; also return where it ends."""
    try:
        return _read_struct(data, 0, 0)
    except IndexError:
        raise ThriftError("truncated data") from None


def decode_value(data: bytes, value_type: int) -> Value:
    """Decode bytes that hold exactly one value of value_type (a FieldSpan's type code: a bool
    field's empty span decodes to its header's value)."""
    if value_type in (_T_BOOL, _T_BOOL_FALSE) and not data:
        return value_type == _T_BOOL
    try:
        value, end = _read_value(data, 0, value_type, 0)
    except IndexError:
        raise ThriftError("truncated data") from None
    if end != len(data):
        raise ThriftError(f"{len(data) - end} bytes follow the value")
    return value


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    b = data[pos]
    if b < 0x80:
        return b, pos + 1
    result = b & 0x7F
    shift = 7
    pos += 1
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ThriftError("varint longer than 10 bytes")


def _take(data: bytes, pos: int, n: int) -> tuple[bytes, int]:
    end = pos + n
    if end > len(data):
        raise ThriftError("truncated data")
    return data[pos:end], end


def _read_struct(data: bytes, pos: int, depth: int) -> tuple[Struct, int]:
    if depth > MAX_DEPTH:
        raise ThriftError(f"nested deeper than {MAX_DEPTH} levels")
    fields: list[Field] = []
    append = fields.append
    last_id = 0
    while True:
        header = data[pos]
        pos += 1
        if not header:
            return Struct(fields), pos
        field_type = header & 0x0F
        delta = header >> 4
        # Ids are usually sent as a small delta from the previous one, else in full.
        if delta:
            field_id = last_id + delta
        else:
            n, pos = _read_varint(data, pos)
            field_id = (n >> 1) ^ -(n & 1)
        if field_type in (_T_BOOL, _T_BOOL_FALSE):
            append(Field(field_id, _T_BOOL, field_type == _T_BOOL))
        else:
            value, pos = _read_value(data, pos, field_type, depth)
            append(Field(field_id, field_type, value))
        last_id = field_id


def _read_value(data: bytes, pos: int, value_type: int, depth: int) -> tuple[Value, int]:
    if _T_I16 <= value_type <= _T_I64:
        b = data[pos]
        if b < 0x80:
            n, pos = b, pos + 1
        else:
            n, pos = _read_varint(data, pos)
        return (n >> 1) ^ -(n & 1), pos
    if value_type == _T_BINARY:
        n, pos = _read_varint(data, pos)
        return _take(data, pos, n)
    if value_type == _T_STRUCT:
        return _read_struct(data, pos, depth + 1)
    if value_type in (_T_LIST, _T_SET):
        return _read_list(data, pos, depth + 1)
    if value_type in (_T_BOOL, _T_BOOL_FALSE):
        return data[pos] == _T_BOOL, pos + 1
    if value_type == _T_I8:
        raw, pos = _take(data, pos, 1)
        return int.from_bytes(raw, "little", signed=True), pos
    if value_type == _T_DOUBLE:
        raw, pos = _take(data, pos, 8)
        number: float = _DOUBLE.unpack(raw)[0]
        return number, pos
    if value_type == _T_MAP:
        return _read_map(data, pos, depth + 1)
    raise ThriftError(f"unknown type code {value_type}")


def _read_list(data: bytes, pos: int, depth: int) -> tuple[ThriftList, int]:
    element_type, size, pos = _list_header(data, pos, depth)
    items: list[Value] = []
    append = items.append
    for _ in range(size):
        item, pos = _read_value(data, pos, element_type, depth)
        append(item)
    return ThriftList(element_type, items), pos


def _read_map(data: bytes, pos: int, depth: int) -> tuple[ThriftMap, int]:
    if depth > MAX_DEPTH:
        raise ThriftError(f"nested deeper than {MAX_DEPTH} levels")
    size, pos = _read_varint(data, pos)
    if size == 0:
        return ThriftMap(0, 0, []), pos
    _check_size(data, pos, size)
    types = data[pos]
    pos += 1
    key_type, value_type = types >> 4, types & 0x0F
    items: list[tuple[Value, Value]] = []
    for _ in range(size):
        key, pos = _read_value(data, pos, key_type, depth)
        item, pos = _read_value(data, pos, value_type, depth)
        items.append((key, item))
    return ThriftMap(key_type, value_type, items), pos


def _list_header(data: bytes, pos: int, depth: int) -> tuple[int, int, int]:
    """A list's (element type, size, position of its first element)."""
    if depth > MAX_DEPTH:
        raise ThriftError(f"nested deeper than {MAX_DEPTH} levels")
    header = data[pos]
    pos += 1
    size = header >> 4
    if size == 15:
        size, pos = _read_varint(data, pos)
    _check_size(data, pos, size)
    return header & 0x0F, size, pos


def _check_size(data: bytes, pos: int, size: int) -> None:
    # Every element takes at least one byte: a larger count is corrupt, not just big.
    if size > len(data) - pos:
        raise ThriftError(f"container of {size} elements in {len(data)} bytes")


# Scanning: spans instead of values.


class ScannedStruct(NamedTuple):
    """A struct located by `scan_struct`: its fields, where it starts and ends, and the scanned
    elements of the list<struct> fields the scan was asked to expand."""

    fields: list[FieldSpan]
    start: int
    end: int
    items: dict[int, list[ScannedStruct]]


# Which list<struct> fields to scan element by element, and how to scan those elements.
Expand: TypeAlias = Mapping[int, "Expand"]


def scan_struct(data: bytes, pos: int = 0, expand: Expand | None = None) -> ScannedStruct:
    """The fields of the struct at pos, each with its encoded value's span. Nested values are
    walked (and checked as decoding would) but not built, except that the elements of each
    list<struct> field named in `expand` are scanned too (in the same pass), with
    expand[field id] naming the fields to expand in them."""
    try:
        scanned = _scan_struct(data, pos, 0, expand or {})
    except IndexError:
        raise ThriftError("truncated data") from None
    if scanned.end > len(data):
        raise ThriftError("truncated data")
    return scanned


def list_header(data: bytes, pos: int) -> tuple[int, int, int]:
    """The list (or set) at pos: its element type, its size and where its first element is."""
    try:
        return _list_header(data, pos, 0)
    except IndexError:
        raise ThriftError("truncated data") from None


def scan_list(data: bytes, pos: int) -> tuple[int, list[tuple[int, int]], int]:
    """The list (or set) at pos: its element type, each element's span, and where it ends."""
    try:
        element_type, size, pos = _list_header(data, pos, 0)
        spans: list[tuple[int, int]] = []
        for _ in range(size):
            end = _skip(data, pos, element_type, 1)
            spans.append((pos, end))
            pos = end
    except IndexError:
        raise ThriftError("truncated data") from None
    if pos > len(data):
        raise ThriftError("truncated data")
    return element_type, spans, pos


def _scan_struct(data: bytes, pos: int, depth: int, expand: Expand) -> ScannedStruct:
    if depth > MAX_DEPTH:
        raise ThriftError(f"nested deeper than {MAX_DEPTH} levels")
    struct_start = pos
    fields: list[FieldSpan] = []
    append = fields.append
    items: dict[int, list[ScannedStruct]] = {}
    last_id = 0
    while True:
        header = data[pos]
        pos += 1
        if not header:
            return ScannedStruct(fields, struct_start, pos, items)
        field_type = header & 0x0F
        delta = header >> 4
        if delta:
            field_id = last_id + delta
        else:
            n, pos = _read_varint(data, pos)
            field_id = (n >> 1) ^ -(n & 1)
        start = pos
        # Small integers inline; anything else through _skip.
        if _T_I16 <= field_type <= _T_I64 and data[pos] < 0x80:
            pos += 1
        elif field_type in (_T_BOOL, _T_BOOL_FALSE):
            pass
        elif field_id in expand and field_type in (_T_LIST, _T_SET) and field_id not in items:
            element_type, size, pos = _list_header(data, pos, depth + 1)
            if size and element_type != _T_STRUCT:
                raise ThriftError(f"field {field_id} is not a list of structs")
            inner = expand[field_id]
            elements: list[ScannedStruct] = []
            for _ in range(size):
                element = _scan_struct(data, pos, depth + 2, inner)
                elements.append(element)
                pos = element.end
            items[field_id] = elements
        else:
            pos = _skip(data, pos, field_type, depth)
        append((field_id, field_type, start, pos))
        last_id = field_id


def _skip_varint(data: bytes, pos: int) -> int:
    start = pos
    while data[pos] & 0x80:
        pos += 1
    pos += 1
    if pos - start > 10:
        raise ThriftError("varint longer than 10 bytes")
    return pos


def _skip(data: bytes, pos: int, value_type: int, depth: int) -> int:
    """Where the value of value_type at pos ends (it may lie past the data: callers check).

    One loop over the bytes with an explicit stack, no recursion and no objects: the current
    container is `element` (0 inside a struct, else a list's element type) with `left` elements
    to go; the value itself is the single element of an outermost pseudo-list. Lists of
    integers or binaries (a Parquet footer's encodings and paths) are skipped in a tight loop
    of their own."""
    if not value_type:
        raise ThriftError("unknown type code 0")
    element, left = value_type, 1
    stack: list[int] = []
    push, pop = stack.append, stack.pop
    while True:
        if element:  # in a list (or the outermost value)
            if not left:
                if not stack:
                    return pos
                left = pop()
                element = pop()
                depth -= 1
                continue
            left -= 1
            value_type = element
        else:  # in a struct: a field header, or the stop byte
            header = data[pos]
            pos += 1
            if not header:
                left = pop()
                element = pop()
                depth -= 1
                continue
            value_type = header & 0x0F
            if not header & 0xF0:  # the id follows in full
                pos = _skip_varint(data, pos)
            if value_type in (_T_BOOL, _T_BOOL_FALSE):
                continue  # the value was the header
        if _T_I16 <= value_type <= _T_I64:
            if data[pos] < 0x80:
                pos += 1
            else:
                pos = _skip_varint(data, pos)
        elif value_type == _T_BINARY:
            n = data[pos]
            if n < 0x80:
                pos += 1 + n
            else:
                n, pos = _read_varint(data, pos)
                pos += n
        elif value_type == _T_STRUCT:
            depth += 1
            if depth > MAX_DEPTH:
                raise ThriftError(f"nested deeper than {MAX_DEPTH} levels")
            push(element)
            push(left)
            element = 0
        elif value_type in (_T_LIST, _T_SET):
            header = data[pos]
            pos += 1
            size = header >> 4
            if size == 15:
                size, pos = _read_varint(data, pos)
            if size > len(data) - pos:
                raise ThriftError(f"container of {size} elements in {len(data)} bytes")
            if not size:
                continue
            element_type = header & 0x0F
            if _T_I16 <= element_type <= _T_I64:
                for _ in range(size):
                    if data[pos] < 0x80:
                        pos += 1
                    else:
                        pos = _skip_varint(data, pos)
            elif element_type == _T_BINARY:
                for _ in range(size):
                    n = data[pos]
                    if n < 0x80:
                        pos += 1 + n
                    else:
                        n, pos = _read_varint(data, pos)
                        pos += n
            elif element_type:
                depth += 1
                if depth > MAX_DEPTH:
                    raise ThriftError(f"nested deeper than {MAX_DEPTH} levels")
                push(element)
                push(left)
                element, left = element_type, size
            else:
                raise ThriftError("unknown type code 0")
        elif 0 < value_type <= _T_I8:  # a bool list element, or an i8
            pos += 1
        elif value_type == _T_DOUBLE:
            pos += 8
        elif value_type == _T_MAP:
            _, pos = _read_map(data, pos, depth + 1)  # no Parquet footer has one: decode it
        else:
            raise ThriftError(f"unknown type code {value_type}")


# Encoding.


def encode_struct(value: Struct) -> bytes:
    out = bytearray()
    _write_struct(out, value, 0)
    return bytes(out)


def encode_value(value_type: int, value: Value) -> bytes:
    """One value's encoding (for an EncodedField)."""
    out = bytearray()
    _write_value(out, value_type, value, 0)
    return bytes(out)


def encode_list(element_type: int, encoded_items: list[bytes]) -> bytes:
    """A list of already encoded elements (for an EncodedField of type LIST)."""
    out = bytearray()
    _write_list_header(out, element_type, len(encoded_items))
    out += b"".join(encoded_items)
    return bytes(out)


def encode_fields(fields: Iterable[EncodedField]) -> bytes:
    """A struct of already encoded field values, in the order given."""
    out = bytearray()
    last_id = 0
    for field_id, field_type, encoded in fields:
        _write_field_header(out, last_id, field_id, field_type)
        out += encoded
        last_id = field_id
    out.append(0)
    return bytes(out)


def _write_varint(out: bytearray, n: int) -> None:
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _write_field_header(out: bytearray, last_id: int, field_id: int, code: int) -> None:
    delta = field_id - last_id
    if 0 < delta <= 15:
        out.append(delta << 4 | code)
    else:
        out.append(code)
        _write_varint(out, (field_id << 1) ^ (field_id >> 63))


def _write_list_header(out: bytearray, element_type: int, size: int) -> None:
    if size < 15:
        out.append(size << 4 | element_type)
    else:
        out.append(0xF0 | element_type)
        _write_varint(out, size)


def _write_struct(out: bytearray, value: Struct, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ThriftError(f"nested deeper than {MAX_DEPTH} levels")
    last_id = 0
    for f in value.fields:
        field_id, field_type, field_value = f.id, f.type, f.value
        if field_type == _T_BOOL:
            if not isinstance(field_value, bool):
                raise ThriftError(f"field {field_id}: {field_value!r} is not a bool")
            _write_field_header(out, last_id, field_id, _T_BOOL if field_value else _T_BOOL_FALSE)
        else:
            _write_field_header(out, last_id, field_id, field_type)
            _write_value(out, field_type, field_value, depth)
        last_id = field_id
    out.append(0)


def _write_value(out: bytearray, value_type: int, value: Value, depth: int) -> None:
    if _T_I8 <= value_type <= _T_I64 and isinstance(value, int) and not isinstance(value, bool):
        bits = _INT_BITS[value_type]
        if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
            raise ThriftError(f"{value} does not fit in {bits} bits")
        if value_type == _T_I8:
            out += value.to_bytes(1, "little", signed=True)
        else:
            n = (value << 1) ^ (value >> 63)
            if n < 0x80:
                out.append(n)
            else:
                _write_varint(out, n)
    elif value_type == _T_BINARY and isinstance(value, bytes):
        _write_varint(out, len(value))
        out += value
    elif value_type == _T_STRUCT and isinstance(value, Struct):
        _write_struct(out, value, depth + 1)
    elif value_type in (_T_LIST, _T_SET) and isinstance(value, ThriftList):
        if depth + 1 > MAX_DEPTH:
            raise ThriftError(f"nested deeper than {MAX_DEPTH} levels")
        element_type = value.element_type
        _write_list_header(out, element_type, len(value.items))
        for item in value.items:
            _write_value(out, element_type, item, depth + 1)
    elif value_type in (_T_BOOL, _T_BOOL_FALSE) and isinstance(value, bool):
        out.append(_T_BOOL if value else _T_BOOL_FALSE)
    elif value_type == _T_DOUBLE and isinstance(value, float):
        out += _DOUBLE.pack(value)
    elif value_type == _T_MAP and isinstance(value, ThriftMap):
        if depth + 1 > MAX_DEPTH:
            raise ThriftError(f"nested deeper than {MAX_DEPTH} levels")
        _write_varint(out, len(value.items))
        if value.items:
            out.append(value.key_type << 4 | value.value_type)
        for key, item in value.items:
            _write_value(out, value.key_type, key, depth + 1)
            _write_value(out, value.value_type, item, depth + 1)
    else:
        raise ThriftError(f"{value!r} cannot be written as type code {value_type}")

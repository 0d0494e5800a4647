"""A small, generic codec for the thrift compact protocol (the encoding of Parquet footers).

A struct decodes to an ordered list of fields (id, type code, value) without needing its IDL,
so fields this codec has never heard of survive a decode/encode untouched; encoding writes the
canonical form the thrift C++ library (used by Arrow and DuckDB) writes, which makes decode
then encode return the original bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TypeAlias

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


_INT_BITS = {CType.I16: 16, CType.I32: 32, CType.I64: 64}


@dataclass(frozen=True)
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


def struct_list(items: list[Struct]) -> ThriftList:
    return ThriftList(CType.STRUCT, list(items))


def decode_struct(data: bytes) -> Struct:
    """Decode bytes that hold exactly one struct."""
    value, end = decode_struct_prefix(data)
    if end != len(data):
        raise ThriftError(f"{len(data) - end} bytes follow the struct")
    return value


def decode_struct_prefix(data: bytes) -> tuple[Struct, int]:
    """Decode the struct at the start of data; also return where it ends."""
    reader = _Reader(data)
    value = reader.read_struct(0)
    return value, reader.pos


def encode_struct(value: Struct) -> bytes:
    writer = _Writer()
    writer.write_struct(value, 0)
    return bytes(writer.out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise ThriftError("truncated data")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ThriftError("truncated data")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def varint(self) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise ThriftError("varint longer than 10 bytes")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def read_struct(self, depth: int) -> Struct:
        _check_depth(depth)
        fields: list[Field] = []
        last_id = 0
        while header := self.byte():
            field_type, delta = header & 0x0F, header >> 4
            # Ids are usually sent as a small delta from the previous one, else in full.
            field_id = last_id + delta if delta else self.zigzag()
            if field_type in (CType.BOOL, CType.BOOL_FALSE):
                fields.append(Field(field_id, CType.BOOL, field_type == CType.BOOL))
            else:
                fields.append(Field(field_id, field_type, self.read_value(field_type, depth)))
            last_id = field_id
        return Struct(fields)

    def read_value(self, value_type: int, depth: int) -> Value:
        match value_type:
            case CType.BOOL | CType.BOOL_FALSE:
                return self.byte() == CType.BOOL
            case CType.I8:
                return int.from_bytes(self.take(1), "little", signed=True)
            case CType.I16 | CType.I32 | CType.I64:
                return self.zigzag()
            case CType.DOUBLE:
                number: float = struct.unpack("<d", self.take(8))[0]
                return number
            case CType.BINARY:
                return self.take(self.varint())
            case CType.LIST | CType.SET:
                return self.read_list(depth + 1)
            case CType.MAP:
                return self.read_map(depth + 1)
            case CType.STRUCT:
                return self.read_struct(depth + 1)
        raise ThriftError(f"unknown type code {value_type}")

    def read_list(self, depth: int) -> ThriftList:
        _check_depth(depth)
        header = self.byte()
        size, element_type = header >> 4, header & 0x0F
        if size == 15:
            size = self.varint()
        self._check_size(size)
        return ThriftList(element_type, [self.read_value(element_type, depth) for _ in range(size)])

    def read_map(self, depth: int) -> ThriftMap:
        _check_depth(depth)
        size = self.varint()
        if size == 0:
            return ThriftMap(0, 0, [])
        self._check_size(size)
        types = self.byte()
        key_type, value_type = types >> 4, types & 0x0F
        items = [
            (self.read_value(key_type, depth), self.read_value(value_type, depth))
            for _ in range(size)
        ]
        return ThriftMap(key_type, value_type, items)

    def _check_size(self, size: int) -> None:
        # Every element takes at least one byte: a larger count is corrupt, not just big.
        if size > len(self.data) - self.pos:
            raise ThriftError(f"container of {size} elements in {len(self.data)} bytes")


class _Writer:
    def __init__(self) -> None:
        self.out = bytearray()

    def varint(self, n: int) -> None:
        while n > 0x7F:
            self.out.append((n & 0x7F) | 0x80)
            n >>= 7
        self.out.append(n)

    def zigzag(self, n: int) -> None:
        self.varint((n << 1) ^ (n >> 63))

    def write_struct(self, value: Struct, depth: int) -> None:
        _check_depth(depth)
        last_id = 0
        for f in value.fields:
            is_bool = f.type == CType.BOOL
            if is_bool and not isinstance(f.value, bool):
                raise ThriftError(f"field {f.id}: {f.value!r} is not a bool")
            code = (CType.BOOL if f.value else CType.BOOL_FALSE) if is_bool else f.type
            delta = f.id - last_id
            if 0 < delta <= 15:
                self.out.append(delta << 4 | code)
            else:
                self.out.append(code)
                self.zigzag(f.id)
            if not is_bool:
                self.write_value(f.type, f.value, depth)
            last_id = f.id
        self.out.append(0)

    def write_value(self, value_type: int, value: Value, depth: int) -> None:
        match value_type, value:
            case CType.BOOL | CType.BOOL_FALSE, bool():
                self.out.append(CType.BOOL if value else CType.BOOL_FALSE)
            case CType.I8 | CType.I16 | CType.I32 | CType.I64, int() if not isinstance(value, bool):
                bits = _INT_BITS.get(CType(value_type), 8)
                if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
                    raise ThriftError(f"{value} does not fit in {bits} bits")
                if value_type == CType.I8:
                    self.out += value.to_bytes(1, "little", signed=True)
                else:
                    self.zigzag(value)
            case CType.DOUBLE, float():
                self.out += struct.pack("<d", value)
            case CType.BINARY, bytes():
                self.varint(len(value))
                self.out += value
            case CType.LIST | CType.SET, ThriftList():
                self.write_list(value, depth + 1)
            case CType.MAP, ThriftMap():
                self.write_map(value, depth + 1)
            case CType.STRUCT, Struct():
                self.write_struct(value, depth + 1)
            case _:
                raise ThriftError(f"{value!r} cannot be written as type code {value_type}")

    def write_list(self, value: ThriftList, depth: int) -> None:
        _check_depth(depth)
        size = len(value.items)
        if size < 15:
            self.out.append(size << 4 | value.element_type)
        else:
            self.out.append(0xF0 | value.element_type)
            self.varint(size)
        for item in value.items:
            self.write_value(value.element_type, item, depth)

    def write_map(self, value: ThriftMap, depth: int) -> None:
        _check_depth(depth)
        self.varint(len(value.items))
        if value.items:
            self.out.append(value.key_type << 4 | value.value_type)
        for key, item in value.items:
            self.write_value(value.key_type, key, depth)
            self.write_value(value.value_type, item, depth)


def _check_depth(depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ThriftError(f"nested deeper than {MAX_DEPTH} levels")

"""Arrow columns of fields of many decoded structs, along attribute paths.

The fast path (fastpath.py) reads some 60 fields of every record and its userIdentity: per
event that was ~5 us of Python, the largest cost of a parse process after the C libraries.
`gather` reads them in one call: `_columns.c`, compiled when the package is installed on a
machine with a C compiler (setup.py, an optional extension), copies the values straight into
Arrow buffers; elsewhere `_python_gather` gives the same columns with transposed tuples and
`pa.array` (tests/parse/test_gather.py holds the two equal).

A path is a tuple of field names followed from each object; None anywhere on the way gives a
null. Kinds, one letter per path:
- `s`: a str field -> string column;
- `S`: the same, an empty string as NULL (required fields: no NULL means none is empty);
- `b`: a bool field -> boolean column;
- `r`: JSON text (msgspec.Raw or bytes) -> string column, the text `null` as NULL (not checked
  as UTF-8 here: the caller validates where the document is not ASCII);
- `o`: any value -> the list of values, for the caller to convert.
A value of another kind raises TypeError (ArrowTypeError in the Python twin); the fast path
then leaves the document to the record-by-record path, which says what is wrong.

`token_candidates` is the fast path's other per-event pass in C: which JSON texts may hold a
sessionToken, for records.redact_session_tokens to redact.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Sequence
from itertools import accumulate
from types import ModuleType
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
from msgspec.structs import astuple

try:
    from pipeline.parse import _columns as _compiled_module

    compiled: ModuleType | None = _compiled_module
except ImportError:  # built without a C compiler: the Python twin does the same work
    compiled = None

_NULL_JSON = pa.scalar(b"null", pa.binary())
_TOKEN = b"sessiontoken"  # in the lowered text: the key in any letter case
_ESCAPE = b"\\u"
_NULL_TEXT = msgspec.Raw(b"null")


def gather(objs: list[Any], paths: Sequence[tuple[str, ...]], kinds: str) -> list[Any]:
    """One column per path of `objs` (see the module's docstring)."""
    if len(paths) != len(kinds):
        raise ValueError("one kind per path")
    if compiled is None:
        return _python_gather(objs, paths, kinds)
    built = compiled.gather(objs, tuple(paths), kinds)
    return [_as_array(len(objs), kind, parts) for kind, parts in zip(kinds, built, strict=True)]


def token_candidates(values: list[Any]) -> list[int]:
    """The indices of `values` (bytes-like JSON texts, or None) that may hold a sessionToken
    key: the key in any letter case, or a backslash-u escape (a key may be spelt with one).
    That also covers a key inside JSON text held by a string value, at any depth: its letters
    stand in the text whatever escapes its quotes, or it is spelt with a backslash-u escape.
    redact_session_tokens then finds and redacts the keys themselves."""
    if compiled is not None:
        found: list[int] = compiled.token_candidates(values)
        return found
    return [i for i, v in enumerate(values) if v is not None and _may_hold_token(bytes(v))]


def _may_hold_token(text: bytes) -> bool:
    return _TOKEN in text.lower() or _ESCAPE in text


def _as_array(n: int, kind: str, parts: Any) -> Any:
    """An Arrow array over the buffers _columns.c built (no copy)."""
    if kind == "o":
        return list(parts)
    validity = None if parts[0] is None else pa.py_buffer(parts[0])
    if kind == "b":
        return pa.Array.from_buffers(pa.bool_(), n, [validity, pa.py_buffer(parts[1])])
    offsets, data = pa.py_buffer(parts[1]), pa.py_buffer(parts[2])
    return pa.Array.from_buffers(pa.string(), n, [validity, offsets, data])


def _python_gather(objs: list[Any], paths: Sequence[tuple[str, ...]], kinds: str) -> list[Any]:
    # No closure here: the parse processes run with the garbage collector off, and a recursive
    # inner function is a reference cycle that would keep every column alive.
    levels: dict[tuple[str, ...], Sequence[Any]] = {(): objs}
    wanted = Counter(path[:-1] for path in paths if path)
    out: list[Any] = []
    for path, kind in zip(paths, kinds, strict=True):
        column = _level(levels, wanted, path)
        if kind == "o":
            out.append(list(column))
        elif kind == "s":
            out.append(pa.array(column, pa.string()))
        elif kind == "S":
            out.append(pa.array([v or None for v in column], pa.string()))
        elif kind == "b":
            out.append(pa.array(column, pa.bool_()))
        elif kind == "r":
            out.append(_json_texts(column))
        else:
            raise ValueError(f"unknown kind {kind}")
    return out


def _level(
    levels: dict[tuple[str, ...], Sequence[Any]],
    wanted: Counter[tuple[str, ...]],
    path: tuple[str, ...],
) -> Sequence[Any]:
    """The values at `path` of every object, computing (and keeping in `levels`) the levels
    above it first."""
    found = levels.get(path)
    if found is not None:
        return found
    parents = _level(levels, wanted, path[:-1])
    first = next((p for p in parents if p is not None), None)
    if first is None:
        found = [None] * len(parents)
    elif wanted[path[:-1]] == 1:  # one field of this level: read it alone
        name = path[-1]
        found = [None if p is None else getattr(p, name) for p in parents]
    else:
        # Every field of the level at once, by transposing its structs' tuples: an absent
        # parent stands as a struct of defaults (all None) so that each field lines up.
        empty = type(first)()
        rows = [empty if p is None else p for p in parents]
        fields = type(first).__struct_fields__
        for name, column in zip(fields, zip(*map(astuple, rows), strict=True), strict=True):
            levels[(*path[:-1], name)] = column
        found = levels[path]
    levels[path] = found
    return found


def _json_texts(raws: Sequence[Any]) -> Any:
    """A string column of raw JSON texts, JSON null as NULL, built from one joined buffer with
    no copy: the texts become the data, the nulls only a validity bitmap."""
    try:
        lengths = list(map(len, raws))
        texts = raws
    except TypeError:  # None where a parent on the path was absent
        texts = [_NULL_TEXT if r is None else r for r in raws]
        lengths = list(map(len, texts))
    if texts and texts[0] == _NULL_TEXT and texts.count(texts[0]) == len(texts):
        # A part no record of the document has (addendum, serviceEventDetails, ... in most
        # trails): counting the shared default costs far less than joining and measuring.
        return pa.nulls(len(texts), pa.string())
    offsets = pa.py_buffer(array("i", accumulate(lengths, initial=0)))  # int32, as Arrow's
    data = pa.py_buffer(b"".join(texts))
    binary = pa.Array.from_buffers(pa.binary(), len(texts), [None, offsets, data])
    valid = pc.invert(pc.equal(binary, _NULL_JSON)).buffers()[1]
    return pa.Array.from_buffers(pa.string(), len(texts), [valid, offsets, data])

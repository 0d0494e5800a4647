"""The compiled column builder (_columns.c) and its Python twin give the same columns, and the
compiled one refuses what it cannot read safely."""

from __future__ import annotations

import json
import random
import shutil
import sysconfig
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pipeline.parse import gather as gather_module
from pipeline.parse.gather import gather

COMPILED = gather_module.compiled
needs_compiled = pytest.mark.skipif(COMPILED is None, reason="_columns.c is not built here")


class Deep(msgspec.Struct):
    d: str | None = None


class Inner(msgspec.Struct):
    c: str | None = None
    deep: Deep | None = None


class Outer(msgspec.Struct):
    a: str | None = None
    b: bool | None = None
    raw: msgspec.Raw = msgspec.Raw(b"null")
    inner: Inner | None = None
    anything: Any = None


PATHS = [("a",), ("b",), ("raw",), ("inner", "c"), ("inner", "deep", "d"), ("anything",), ()]
PATHS += [("a",), ("inner", "c")]
KINDS = "sbrsso" + "o" + "SS"  # the same text fields with empty strings as NULL
TEXTS = ["", "a", "é", "中文", "😀", "null", '"q"', "\\", "\x00", "x" * 300]


def _objects(seed: int, n: int) -> list[Any]:
    rng = random.Random(seed)

    def text() -> str | None:
        return rng.choice([None, *TEXTS])

    out: list[Any] = []
    for _ in range(n):
        if rng.random() < 0.05:
            out.append(None)
            continue
        deep = rng.choice([None, Deep(text())])
        inner = rng.choice([None, Inner(text(), deep)])
        raw = rng.choice([b"null", b"{}", b'{"k": [1, 2.5, null]}', '"é"'.encode()])
        out.append(Outer(text(), rng.choice([None, True, False]), msgspec.Raw(raw), inner, text()))
    return out


def _both(objs: list[Any], paths: list[tuple[str, ...]], kinds: str) -> tuple[Any, Any]:
    compiled = gather(objs, paths, kinds)
    python = gather_module._python_gather(objs, paths, kinds)
    return compiled, python


@needs_compiled
@pytest.mark.parametrize(("seed", "n"), [(1, 0), (2, 1), (3, 7), (4, 8), (5, 9), (6, 1000)])
def test_compiled_and_python_columns_are_equal(seed: int, n: int) -> None:
    objs = _objects(seed, n)
    compiled, python = _both(objs, PATHS, KINDS)
    for path, kind, left, right in zip(PATHS, KINDS, compiled, python, strict=True):
        if kind == "o":
            assert left == right, path
        else:
            assert left.type == right.type, path
            assert left.to_pylist() == right.to_pylist(), path
            left.validate(full=True)
    if n == 1000:  # the values, as read from the objects one by one
        assert compiled[3].to_pylist() == [o.inner.c if o and o.inner else None for o in objs]
        assert compiled[2].null_count == sum(
            1 for o in objs if o is None or bytes(o.raw) == b"null"
        )
        assert compiled[7].to_pylist() == [(o.a or None) if o else None for o in objs]


def test_python_twin_reads_nested_paths() -> None:
    objs = [Outer("x", True, msgspec.Raw(b"[1]"), Inner("c", Deep("d"))), None, Outer()]
    columns = gather_module._python_gather(objs, PATHS[:5], "sbrss")
    assert [c.to_pylist() for c in columns] == [
        ["x", None, None],
        [True, None, None],
        ["[1]", None, None],
        ["c", None, None],
        ["d", None, None],
    ]


@needs_compiled
@pytest.mark.parametrize(
    ("objs", "path", "kind"),
    [
        ([Outer(a="x"), Outer(b=True)], ("b",), "s"),  # a bool where text is expected
        ([Outer(a="x")], ("a",), "b"),  # text where a bool is expected
        ([Outer(anything=5)], ("anything",), "s"),
        ([Outer(anything=b"x")], ("anything",), "b"),
        ([Outer(raw=msgspec.Raw(b"1")), Outer(anything=5)], ("anything",), "r"),  # no buffer
        ([Outer(inner=Inner()), Outer(inner=Deep())], ("inner", "c"), "s"),  # another type
        ([Outer()], ("missing",), "s"),
        ([{"a": "x"}], ("a",), "s"),  # a dict has no slots
        ([Outer(a="\ud800")], ("a",), "s"),  # not valid Unicode: UnicodeEncodeError
    ],
)
def test_compiled_refuses_what_it_cannot_read(
    objs: list[Any], path: tuple[str, ...], kind: str
) -> None:
    with pytest.raises((TypeError, UnicodeEncodeError)):
        gather(objs, [path], kind)


def test_kinds_and_paths_are_checked() -> None:
    with pytest.raises(ValueError, match="one kind per path"):
        gather([Outer()], [("a",), ("b",)], "s")
    with pytest.raises(ValueError, match="unknown kind"):
        gather([Outer()], [("a",)], "x")


def test_the_compiled_builder_is_built_where_a_compiler_is() -> None:
    """The benchmarks and CI run the compiled builder: an install on a machine with a C
    compiler and Python's headers builds it (setup.py)."""
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if shutil.which("cc") is None or not headers.exists():
        pytest.skip("no C compiler or no Python headers here: the Python twin is used")
    assert COMPILED is not None
    assert Path(COMPILED.__file__ or "").suffix == ".so"


# Texts around the marks token_candidates looks for: the key in other letter cases, cut short
# at the end, a backslash-u escape, near misses.
TOKEN_TEXTS: list[bytes | None] = [
    b'{"credentials":{"sessionToken":"x"}}',
    b'{"SESSIONTOKEN":1}',
    b"sEsSiOnToKeN",
    b"sessiontoke",  # one letter short
    b"xsessiontokenx",
    b'{"session\\u0054oken":"x"}',
    b"\\u",
    b"\\",
    b"u\\",
    b"\\\\u0041",  # an escaped backslash, then "u": a candidate as for `in`
    b"session token",
    b"",
    None,
    b"s",
    b"\xc3\xa9sessiontoken",
    b"\xd3essiontoken",  # 0xD3 | 0x20 is not "s"
    b"sessiontokeN",
    b'{"a":"b"}',
]


def _twin_candidates(values: list[Any]) -> list[int]:
    return [i for i, v in enumerate(values) if v is not None and gather_module._may_hold_token(v)]


def test_token_candidates_of_the_python_twin() -> None:
    assert _twin_candidates(TOKEN_TEXTS) == [0, 1, 2, 4, 5, 6, 9, 14, 16]


@needs_compiled
def test_compiled_token_candidates_equal_the_twin() -> None:
    assert COMPILED is not None
    raws = [None if t is None else msgspec.Raw(t) for t in TOKEN_TEXTS]
    assert COMPILED.token_candidates(raws) == _twin_candidates(TOKEN_TEXTS)
    assert COMPILED.token_candidates(list(TOKEN_TEXTS)) == _twin_candidates(TOKEN_TEXTS)
    # Random texts over the key's letters in both cases, backslashes and "u".
    rng = random.Random(7)
    alphabet = b'sSeEiIoOnNtTkKu\\" x'
    texts: list[bytes | None] = []
    for _ in range(3000):
        texts.append(bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 40))))
        if rng.random() < 0.3:  # a key in random case somewhere
            key = bytes(c ^ 0x20 if rng.random() < 0.5 else c for c in b"sessiontoken")
            cut = rng.randrange(8, 13)
            texts[-1] = texts[-1] + key[:cut] + b"x" * rng.randrange(0, 2)
    found = COMPILED.token_candidates(texts)
    assert found == _twin_candidates(texts)
    assert 300 < len(found) < 3000


@needs_compiled
def test_compiled_token_candidates_refuse_what_is_not_text() -> None:
    assert COMPILED is not None
    with pytest.raises(TypeError):
        COMPILED.token_candidates([b"x", 5])
    with pytest.raises(TypeError):
        COMPILED.token_candidates((b"x",))  # type: ignore[arg-type]


def test_token_candidates_find_keys_in_json_text_held_by_strings() -> None:
    """The pre-filter needs no change for tokens inside stringified JSON (which
    redact_session_tokens now redacts): the key's letters stand in the text at any depth of
    escaping, or the key is spelt with a backslash-u escape, which is a candidate too."""
    inner = '{"credentials":{"sessionToken":"x"}}'
    texts: list[bytes | None] = [
        json.dumps(inner).encode(),  # "{\"credentials\":{\"sessionToken\":...}}"
        json.dumps({"body": inner}).encode(),
        json.dumps(json.dumps({"w": inner})).encode(),  # two levels
        json.dumps(inner.replace("sessionToken", "session\\u0054oken")).encode(),
        json.dumps(inner).replace('\\"', "\\u0022").encode(),
        json.dumps(inner.replace("sessionToken", "\\u0053ESSION\\u0054OKEN")).encode(),
        json.dumps({"body": "no key here"}).encode(),
    ]
    assert _twin_candidates(texts) == [0, 1, 2, 3, 4, 5]
    if COMPILED is not None:
        assert COMPILED.token_candidates(texts) == [0, 1, 2, 3, 4, 5]

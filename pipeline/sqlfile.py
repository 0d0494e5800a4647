"""SQL files with a header: the one format for every statement the project runs.

    -- name: staged_duplicates
    -- description: one paragraph (may continue on following "--   " lines)
    -- params: files VARCHAR[] (required); since TIMESTAMPTZ = NULL
    -- grain: one row per ...
    -- used_by: pipeline/warehouse/commit.py

The file stem must equal `name`. Values are bound as DuckDB prepared parameters ($name), never
formatted into the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import QueryError
from pipeline.resources import queries_dir

HEADER_KEYS = ("name", "description", "params", "grain", "used_by")
_HEADER_LINE = re.compile(r"^--\s*(\w+):\s*(.*)$")
_CONTINUATION = re.compile(r"^--\s{2,}(.*)$")
_PARAM_USE = re.compile(r"(?<![\w$:])\$([a-z_][a-z0-9_]*)", re.IGNORECASE)
_PARAM_DECL = re.compile(
    r"^\s*(?P<name>[a-z_][a-z0-9_]*)\s+(?P<type>[A-Z][A-Z0-9_\[\]]*)"
    r"\s*(?:=\s*(?P<default>.+?))?\s*(?:\((?P<note>[^)]*)\))?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: str | None  # SQL-literal text as written in the header, None when required
    required: bool


@dataclass(frozen=True)
class SqlFile:
    path: Path
    name: str
    description: str
    params: tuple[Param, ...]
    grain: str
    used_by: str
    sql: str  # the body, header removed
    header_lines: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    def used_params(self) -> set[str]:
        return set(_PARAM_USE.findall(strip_comments_and_strings(self.sql)))

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


_STRING_OR_COMMENT = re.compile(r"'(?:[^']|'')*'|--[^\n]*")


def strip_comments_and_strings(sql: str) -> str:
    """Blank out string literals and comments in one left-to-right pass, so a quote inside a
    comment or "--" inside a string cannot hide a parameter."""
    return _STRING_OR_COMMENT.sub(lambda m: "''" if m.group(0).startswith("'") else "", sql)


def parse_params(text: str, path: Path) -> tuple[Param, ...]:
    text = text.strip()
    if text in ("", "-") or text.lower().startswith("none"):
        return ()  # "none", optionally followed by a note such as "(reads temp tables)"
    params = []
    for chunk in text.split(";"):
        if not chunk.strip():
            continue
        match = _PARAM_DECL.match(chunk)
        if not match:
            raise QueryError(
                f"{path}: bad params entry {chunk.strip()!r}",
                hint="write 'name TYPE = default' or 'name TYPE (required)', separated by ';'",
                file=str(path),
            )
        default = match["default"]
        params.append(
            Param(match["name"], match["type"].upper(), default, required=default is None)
        )
    return tuple(params)


def parse_sql_file(path: Path) -> SqlFile:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    header: dict[str, str] = {}
    last: str | None = None
    n = 0
    for n, line in enumerate(lines):  # noqa: B007 - n is the header length after the loop
        if not line.startswith("--"):
            break
        match = _HEADER_LINE.match(line)
        if match and match[1] in HEADER_KEYS:
            last = match[1]
            header[last] = match[2].strip()
        elif (cont := _CONTINUATION.match(line)) and last:
            header[last] = f"{header[last]} {cont[1].strip()}".strip()
        else:
            last = None
    else:
        n = len(lines)
    missing = [k for k in HEADER_KEYS if k not in header]
    if missing:
        raise QueryError(
            f"{path}:1: header lacks {', '.join(missing)}",
            hint="every .sql file starts with -- name/description/params/grain/used_by lines",
            file=str(path),
        )
    if header["name"] != path.stem:
        raise QueryError(
            f"{path}:1: name {header['name']!r} differs from the file name {path.stem!r}",
            file=str(path),
        )
    return SqlFile(
        path=path,
        name=header["name"],
        description=header["description"],
        params=parse_params(header["params"], path),
        grain=header["grain"],
        used_by=header["used_by"],
        sql="\n".join(lines[n:]).strip() + "\n",
        header_lines=n,
    )


def load_internal(relative: str) -> SqlFile:
    """A statement the pipeline itself runs, e.g. load_internal("warehouse/staged_duplicates")."""
    return parse_sql_file(queries_dir() / f"{relative}.sql")

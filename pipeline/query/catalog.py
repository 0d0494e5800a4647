"""Finding and validating named queries.

Built-in queries are the top-level `*.sql` files of the shipped queries folder (its subfolders
views/, attribute/, warehouse/, ... hold the pipeline's own statements). User folders
(`[query] queries_dirs`, then `--queries-dir`) come after it; a later file with the same name
replaces an earlier one, with a notice, so an analyst can adapt a built-in query without forking.

A query file is validated before it is shown or run, and every problem names the file and line
(`queries/foo.sql:3: ...`): a header that lies about its parameters would otherwise surface as
a DuckDB binder error far from its cause, or, worse, a parameter silently never applied.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import duckdb

from pipeline.config import Settings, environment_variable
from pipeline.errors import QueryError, UsageError
from pipeline.query.execute import sql_error
from pipeline.query.params import KNOWN_TYPES, Bounds, parse_default, parse_note
from pipeline.query.scope import SCOPE_PARAMS, accepted_flags
from pipeline.resources import queries_dir
from pipeline.sqlfile import HEADER_KEYS, Param, parse_sql_file, strip_comments_and_strings

BUILT_IN = "built-in"
USER = "user"
_HEADER_LINE = re.compile(r"^--\s*(\w+):\s*(.*)$")
_CONTINUATION = re.compile(r"^--\s{2,}(.*)$")  # as pipeline/sqlfile.py reads a header
# A params entry's name and note, the part in parentheses after the type and default.
_PARAM_NOTE = re.compile(
    r"^\s*(?P<name>[a-z_][a-z0-9_]*)\s+[A-Z][A-Z0-9_\[\]]*\s*(?:=\s*.+?)?"
    r"\s*(?:\((?P<note>[^)]*)\))?\s*$",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
# The views over IAM snapshots (pipeline/iam/schema.py, queries/views/21_iam_role_tags.sql), and
# those whose rows a snapshot decides: role_agent_observations and role_agent_intervals (the
# roles' tags over time) and the verdicts (events_classified, events_verdicts: who is an agent
# role's, rules 3, 6, 7). A query naming one depends on the snapshot that applies to its period:
# a later one applies backwards (queries/attribute/10_role_agent_timeline.sql,
# role_agent_intervals).
_IAM_VIEW = re.compile(
    r"\b(?:iam_(?:snapshots|roles|users|groups|policies|role_tags)"
    r"|role_agent_observations|role_agent_intervals|events_classified|events_verdicts)\b",
    re.IGNORECASE,
)


def display_path(path: Path) -> str:
    """The path as an analyst would type it: relative to the working folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class QueryInfo:
    """A validated named query."""

    name: str
    path: Path
    origin: str  # BUILT_IN or USER
    description: str
    grain: str
    used_by: str
    params: tuple[Param, ...]
    sql: str  # the body, header removed
    text: str  # the whole file, as `query show` prints it
    body_line: int  # file line (1-based) of the body's first line
    header_lines: dict[str, int] = field(default_factory=dict)  # key -> file line
    replaces: tuple[Path, ...] = ()  # files of the same name it hides
    bounds: dict[str, Bounds] = field(default_factory=dict)  # parameter -> its declared range

    @property
    def display(self) -> str:
        return display_path(self.path)

    @property
    def summary(self) -> str:
        """The description's first sentence: the one line of `query list`."""
        return _SENTENCE_END.split(self.description, maxsplit=1)[0]

    @property
    def executable(self) -> str:
        """The body, preceded by as many empty lines as the header takes, so that the LINE n
        of a DuckDB error is line n of the file."""
        return "\n" * (self.body_line - 1) + self.sql

    @property
    def scope_flags(self) -> list[str]:
        return accepted_flags({p.name for p in self.params})

    @property
    def query_params(self) -> tuple[Param, ...]:
        """The parameters set with --param (the others are set by the scope flags)."""
        return tuple(p for p in self.params if p.name not in SCOPE_PARAMS)

    @property
    def reads_iam_snapshots(self) -> bool:
        """Whether the SQL (outside comments and strings) names an IAM snapshot view or one
        whose rows the snapshots decide (role_agent_observations, role_agent_intervals,
        events_classified), so that the snapshot chosen for its period matters (`query run`
        says when it is a later one)."""
        return _IAM_VIEW.search(strip_comments_and_strings(self.sql)) is not None

    def where(self, key: str = "params") -> str:
        """`file:line` of a header key, for error messages."""
        return f"{self.display}:{self.header_lines.get(key, 1)}"

    def notice(self) -> str | None:
        if not self.replaces:
            return None
        hidden = ", ".join(display_path(p) for p in self.replaces)
        return f"query {self.name!r}: using {self.display} (user) instead of {hidden}"


# ------------------------------------------------------------------------------- discovery
@dataclass(frozen=True)
class Found:
    path: Path
    origin: str
    replaces: tuple[Path, ...] = ()


def _folder(raw: str | Path, origin: str) -> Path:
    folder = Path(raw).expanduser()
    if folder.is_dir():
        return folder.resolve()
    raise UsageError(
        f"queries folder {str(raw)!r} does not exist (from {origin})",
        hint="create it or fix the path",
    )


def _user_dirs(settings: Settings, extra_dirs: Sequence[str | Path]) -> list[Path]:
    """Configured folders, then --queries-dir ones. A relative folder from agenttrail.toml
    comes resolved from the file's folder (config.py); from the environment or a flag it is
    relative to the working folder."""
    variable = environment_variable("query", "queries_dirs")
    if variable in settings.environment:  # it replaces the file's list
        origin = f"environment variable {variable}"
    elif settings.config_file:
        origin = f"[query] queries_dirs in {settings.config_file}"
    else:
        origin = "[query] queries_dirs"
    folders = [_folder(d, origin) for d in settings.query.queries_dirs]
    return folders + [_folder(d, "--queries-dir") for d in extra_dirs]


def discover(settings: Settings, extra_dirs: Sequence[str | Path] = ()) -> dict[str, Found]:
    """Every query name -> the file that wins (by file stem; headers are not read here, so one
    broken file does not stop the others from running)."""
    found: dict[str, Found] = {}
    folders = [(queries_dir(), BUILT_IN)] + [(d, USER) for d in _user_dirs(settings, extra_dirs)]
    seen: set[Path] = set()
    for folder, origin in folders:
        if folder in seen:
            continue
        seen.add(folder)
        for path in sorted(folder.glob("*.sql")):
            previous = found.get(path.stem)
            replaces = (*previous.replaces, previous.path) if previous else ()
            found[path.stem] = Found(path, origin, replaces)
    return found


# ------------------------------------------------------------------------------ validation
def _header_lines(lines: list[str]) -> dict[str, int]:
    where: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        if not line.startswith("--"):
            break
        match = _HEADER_LINE.match(line)
        if match and match[1] in HEADER_KEYS and match[1] not in where:
            where[match[1]] = number
    return where


def _first_use(lines: list[str], start: int, name: str) -> int:
    """File line of the first use of $name in the body (comments and strings skipped)."""
    pattern = re.compile(rf"(?<![\w$:])\${re.escape(name)}\b")
    for number in range(start, len(lines) + 1):
        code = re.sub(r"'(?:[^']|'')*'", "''", lines[number - 1]).split("--", 1)[0]
        if pattern.search(code):
            return number
    return start


@cache
def _parser() -> duckdb.DuckDBPyConnection:
    """An empty in-memory database, only for parsing (extract_statements needs no catalog)."""
    return duckdb.connect()


@dataclass(frozen=True)
class _Where:
    """Makes the `file:line: message` errors of one file."""

    path: Path
    lines: dict[str, int]  # header key -> file line

    def error(self, key_or_line: str | int, message: str, hint: str | None = None) -> QueryError:
        line = key_or_line if isinstance(key_or_line, int) else self.lines.get(key_or_line, 1)
        return QueryError(
            f"{display_path(self.path)}:{line}: {message}",
            hint=hint,
            file=str(self.path),
            line=line,
        )


def load_query(path: Path, origin: str = USER, replaces: tuple[Path, ...] = ()) -> QueryInfo:
    """Read and validate one query file; QueryError names the file and line of any problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise QueryError(f"{display_path(path)}: cannot read: {exc}", file=str(path)) from None
    lines = text.splitlines()
    where = _Where(path, _header_lines(lines))
    missing = [k for k in HEADER_KEYS if k not in where.lines]
    if missing:
        raise where.error(
            1,
            f"header lacks {', '.join(missing)}",
            "a query starts with '-- name:', '-- description:', '-- params:', '-- grain:' and "
            "'-- used_by:' lines; see docs/queries.md",
        )
    name_match = _HEADER_LINE.match(lines[where.lines["name"] - 1])
    header_name = name_match[2].strip() if name_match else ""
    if header_name != path.stem:
        raise where.error("name", f"name {header_name!r} differs from the file name {path.stem!r}")
    try:
        parsed = parse_sql_file(path)
    except QueryError as exc:  # only a malformed params entry is left to fail here
        raise where.error("params", exc.message.split(": ", 1)[-1], exc.hint) from None
    for key in ("description", "grain", "used_by"):
        if not getattr(parsed, key).strip():
            raise where.error(key, f"{key} is empty")
    _check_params(parsed.params, where)
    bounds = _bounds(lines, parsed.params, where)

    body_line = next(
        (n for n in range(parsed.header_lines + 1, len(lines) + 1) if lines[n - 1].strip()),
        len(lines) + 1,
    )
    query = QueryInfo(
        name=parsed.name,
        path=path,
        origin=origin,
        description=parsed.description,
        grain=parsed.grain,
        used_by=parsed.used_by,
        params=parsed.params,
        sql=parsed.sql,
        text=text,
        body_line=body_line,
        header_lines=where.lines,
        replaces=replaces,
        bounds=bounds,
    )
    _check_statement(query, lines, where)
    return query


def _params_text(lines: list[str], where: _Where) -> str:
    """The params header's value, its continuation lines included."""
    number = where.lines["params"]
    match = _HEADER_LINE.match(lines[number - 1])
    text = match[2].strip() if match else ""
    for line in lines[number:]:
        key = _HEADER_LINE.match(line)
        more = _CONTINUATION.match(line)
        if (key and key[1] in HEADER_KEYS) or not more:
            break
        text = f"{text} {more[1].strip()}"
    return text


def _bounds(lines: list[str], params: tuple[Param, ...], where: _Where) -> dict[str, Bounds]:
    """The range each parameter declares in its note (`n INTEGER = 5 (min 1)`); a default
    outside it is the file's error."""
    types = {p.name: p.type for p in params}
    defaults = {p.name: p.default for p in params}
    bounds: dict[str, Bounds] = {}
    for chunk in _params_text(lines, where).split(";"):
        match = _PARAM_NOTE.match(chunk)
        if match is None or match["note"] is None or match["name"] not in types:
            continue
        name = match["name"]
        try:
            declared = parse_note(match["note"], types[name])
        except ValueError as exc:
            raise where.error("params", f"parameter {name!r}: {exc}") from None
        default = defaults[name]
        if default is not None and not declared.allows(parse_default(default, types[name])):
            raise where.error(
                "params", f"parameter {name!r}: default {default} is outside {declared}"
            )
        if declared != Bounds():
            bounds[name] = declared
    return bounds


def _check_params(params: tuple[Param, ...], where: _Where) -> None:
    names = [p.name for p in params]
    for param in params:
        if param.type not in KNOWN_TYPES:
            raise where.error(
                "params",
                f"parameter {param.name!r} has unknown type {param.type}",
                f"use one of {', '.join(KNOWN_TYPES)}",
            )
        if names.count(param.name) > 1:
            raise where.error("params", f"parameter {param.name!r} is declared twice")
        wanted = SCOPE_PARAMS.get(param.name)
        if wanted is not None and param.type != wanted:
            raise where.error(
                "params", f"parameter {param.name!r} is set by --{param.name} and must be {wanted}"
            )
        if param.default is not None:
            try:
                parse_default(param.default, param.type)
            except ValueError as exc:
                raise where.error(
                    "params", f"parameter {param.name!r}: bad default {param.default!r}: {exc}"
                ) from None


def _check_statement(query: QueryInfo, lines: list[str], where: _Where) -> None:
    """One SELECT statement (a named query never writes) using exactly the declared parameters.

    The parameters used are DuckDB's own reading of the statement (`named_parameters`), the
    set it will demand at binding time, so comments, strings and quoting can never fool it."""
    try:
        statements = _parser().extract_statements(query.executable)
    except duckdb.Error as exc:
        raise sql_error(query, exc) from None
    if len(statements) != 1:
        raise where.error(query.body_line, f"expected one SQL statement, found {len(statements)}")
    kind = str(statements[0].type).rsplit(".", 1)[-1]
    if kind != "SELECT":
        raise where.error(query.body_line, f"a named query is one SELECT statement, not {kind}")
    used = set(statements[0].named_parameters)
    declared = {p.name for p in query.params}
    for undeclared in sorted(used - declared):
        raise where.error(
            _first_use(lines, query.body_line, undeclared),
            f"${undeclared} is used but not declared in the params line "
            f"(line {where.lines['params']})",
        )
    for unused in sorted(declared - used):
        raise where.error(
            "params", f"parameter {unused!r} is declared but the SQL never uses ${unused}"
        )

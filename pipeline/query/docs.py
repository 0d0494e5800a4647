"""docs/queries.md, generated from the built-in queries' headers.

    python -m pipeline.query.docs           # rewrite docs/queries.md
    python -m pipeline.query.docs --check   # exit 1 when it is stale (the test does the same)

The headers are the single source: an analyst reading the docs and `agenttrail query show` sees
the same words, and a query cannot be added, renamed or re-parameterised without the docs
following (tests/query/test_docs.py fails until this is run).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.query.catalog import BUILT_IN, QueryInfo, load_query
from pipeline.query.params import KNOWN_TYPES, expected
from pipeline.resources import queries_dir

REGENERATE = "python -m pipeline.query.docs"

_INTRO = (
    f"""\
# Named queries

<!-- Generated from the headers of queries/*.sql by `{REGENERATE}`; do not edit by hand. -->

Ready, documented questions about agent activity, run with

```
agenttrail query list                     # name and one line each
agenttrail query show NAME                # header and SQL
agenttrail query run NAME [--param k=v]... [--quarter 2026Q3 | --since D --until D]
                          [--account A] [--principal P] [--format F] [--out FILE]
```

Every query reads the warehouse views (`events`, `events_classified`, `sessions`, ...), locally
or in S3 (`--warehouse s3://bucket/prefix [--endpoint-url URL] [--profile P]`), with times in
UTC whatever the machine's time zone. Results come as `table` (the default; rows too wide for the
terminal fold into one block per row), `csv`, `json`, `ndjson`, `markdown` or `parquet` (with
`--out`), written as `agenttrail sql` writes them (README, "Commands"): among others, NaN and
infinities in `json` and `ndjson` as the strings `"NaN"`, `"Infinity"` and `"-Infinity"`,
intervals as ISO 8601 durations, decimals with every digit, booleans as `true` and `false`, in
`csv` a NULL as an empty field and an empty text as `""`, a MAP with text keys as a JSON
object. `--out FILE` must name a file in a folder that exists, outside any warehouse, that can
be written: anything else is refused (exit 2) before the query runs.

## Period and scope

A query opts into the scope flags by declaring the reserved parameters in its header; a flag the
query does not declare is refused with the list of those it accepts.

| flag | parameter | bound value |
| --- | --- | --- |
| `--since D` | `$since TIMESTAMPTZ` | D at 00:00 UTC (included) |
| `--until D` | `$until TIMESTAMPTZ` | the day after D at 00:00 UTC (excluded): `--until 2026-09-30` gives `2026-10-01T00:00Z`; `--until 9999-12-31`, the last day there is, gives `9999-12-31T23:59:59.999999Z`, the last instant there is (an open end) |
| `--quarter 2026Q3` | `$since`, `$until` | the quarter's first day and the first day after it (`9999Q4` ends as `--until 9999-12-31` does; a quarter beginning before the year 1 is refused) |
| `--account A` | `$account VARCHAR` | a 12-digit account id |
| `--principal P` | `$principal VARCHAR` | an identity: the queries over events match it against each event's `principal` (role ARN, user ARN, web-identity subject or AWS service, as `principals` shows them), its session ARN (`principal_arn`), `agent_name` or `human_id`; `session_chains` against the chain's roles and callers, as its description says |

Quarters are calendar quarters unless `[query] fiscal_year_start_month` is set. With a fiscal
year starting in month m > 1, fiscal year Y is named after the calendar year in which it ends
and begins on the first of month m of year Y-1: with m = 10, `--quarter 2027Q1` (or `FY2027Q1`)
is 2026-10-01 to 2026-12-31. Queries compare `event_time >= $since AND event_time < $until`.

## Parameters

`--param name=value` sets the other declared parameters; every value is bound as a DuckDB
prepared parameter, never written into the SQL text. A parameter not given takes the header's
default; one declared `(required)` must be given. A numeric parameter may declare the values it
allows (`(min 1)`, `(max 100)`, `(min 0, max 1)`, both ends included): a value outside them is
refused (exit 2) naming the parameter and its range, before the query runs. Types and how to
write them:

| type | value on the command line |
| --- | --- |
"""
    + "".join(f"| `{t}` | {expected(t)} |\n" for t in KNOWN_TYPES)
    + """
## Your own queries

Put `NAME.sql` files in a folder and pass `--queries-dir DIR` (repeatable) or list it in
`agenttrail.toml` (`[query] queries_dirs = ["./my-queries"]`, a relative folder being read from
the file's folder; from `--queries-dir` or `AGENTTRAIL_QUERY_QUERIES_DIRS`, from the working
directory). A file with the name of a built-in
query replaces it, with a notice on stderr. Each file starts with this header (the file stem is
the name; `params` is `none` or `name TYPE = default` / `name TYPE (required)` separated by `;`,
a numeric one optionally followed by its range, `name INTEGER = 10 (min 1)` or
`name DOUBLE (required, min 0, max 1)`; any other text in the parentheses is a description,
`name INTEGER = 5 (rows to show)`, but `min` or `max` and one word is a range, and a bad one
(`min x`) an error; any header line may continue on lines starting with `--`
and two spaces):

```sql
-- name: my_query
-- description: What question it answers, and what its columns mean.
-- params: since TIMESTAMPTZ = NULL; until TIMESTAMPTZ = NULL; min_calls INTEGER = 10 (min 1)
-- grain: one row per ...
-- used_by: who relies on it
SELECT ...
```

The header is checked before a query runs: every key present, the name equal to the file name,
known types, valid defaults and ranges (a default inside its range), and the declared parameters
exactly those the SQL uses. A named
query is one SELECT statement. A file that fails these checks hides nothing else: `query run`
of another query works, and `query list` lists every valid query, gives each invalid file's
problem (`file:line: ...`) in a notice on stderr and exits 1 naming the invalid files. A user
query that cannot run (a table or column DuckDB does not know) exits 1 too, naming its file and
line.

## The queries

"""
)


def built_in_queries() -> list[QueryInfo]:
    """The shipped queries (user folders are not documented here)."""
    return [load_query(path, BUILT_IN) for path in sorted(queries_dir().glob("*.sql"))]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _section(query: QueryInfo) -> str:
    flags = ", ".join(f"`{f}`" for f in query.scope_flags) or "none"
    lines = [f"### {query.name}", "", query.description, ""]
    lines.append(f"- **One row per:** {query.grain.removeprefix('one row per ')}")
    lines.append(f"- **Scope flags:** {flags}")
    own = query.query_params
    if own:
        lines.append("- **Parameters:**")
        lines.append("")
        lines.append("  | name | type | default | allowed |")
        lines.append("  | --- | --- | --- | --- |")
        for param in own:
            default = "(required)" if param.required else f"`{param.default}`"
            allowed = str(query.bounds.get(param.name, "any"))
            lines.append(f"  | `{param.name}` | `{param.type}` | {_cell(default)} | {allowed} |")
        lines.append("")
    lines.append(f"- **Used by:** {query.used_by}")
    lines.append(f"- **File:** [`queries/{query.path.name}`](../queries/{query.path.name})")
    example = f"agenttrail query run {query.name}"
    if "--quarter" in query.scope_flags:
        example += " --quarter 2026Q3"
    for param in own:
        if param.required:
            example += f" --param {param.name}=..."
    lines += ["", "```", example, "```", ""]
    return "\n".join(lines)


def render_docs(queries: Sequence[QueryInfo] | None = None) -> str:
    """The whole of docs/queries.md."""
    queries = built_in_queries() if queries is None else queries
    index = ["| query | question | scope flags |", "| --- | --- | --- |"]
    for query in queries:
        flags = " ".join(f"`{f}`" for f in query.scope_flags) or "none"
        index.append(f"| [{query.name}](#{query.name}) | {_cell(query.summary)} | {flags} |")
    sections = "\n".join(_section(q) for q in queries)
    return _INTRO + "\n".join(index) + "\n\n" + sections


def docs_path() -> Path:
    """docs/queries.md of the checkout the queries come from."""
    return queries_dir().parent / "docs" / "queries.md"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate docs/queries.md from the query headers.")
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is stale")
    parser.add_argument("--out", type=Path, default=None, help="default: docs/queries.md")
    args = parser.parse_args(argv)
    target = args.out or docs_path()
    text = render_docs()
    if args.check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != text:
            print(f"{target} is stale: run {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target} ({len(built_in_queries())} queries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

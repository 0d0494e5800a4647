"""From command-line flags to the values bound to a query's parameters.

Every declared parameter gets a value: the scope flags set the reserved ones ($since, $until,
$account, $principal), `--param k=v` the others, and the header's default fills the rest. A flag
or --param the query does not declare is an error, never silently ignored: an analyst who asked
for one account must not get all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.errors import UsageError
from pipeline.query.catalog import QueryInfo
from pipeline.query.params import convert, expected, parse_default
from pipeline.query.scope import SCOPE_PARAMS, Scope, flag_for, scope_values


def _describe(query: QueryInfo) -> str:
    own = [f"{p.name} {p.type}" for p in query.query_params]
    return f"its parameters: {', '.join(own)}" if own else "it takes no --param"


def bind(
    query: QueryInfo,
    scope: Scope,
    params: Mapping[str, str],
    *,
    fiscal_year_start_month: int = 1,
) -> dict[str, Any]:
    """The value of every declared parameter (UsageError naming the query file otherwise)."""
    where = query.where("params")
    accepted = query.scope_flags
    refused = [flag for flag in scope.flags() if flag not in accepted]
    if refused:
        raise UsageError(
            f"{where}: query {query.name!r} does not take {', '.join(refused)}",
            hint=f"it accepts {', '.join(accepted)}" if accepted else "it takes no scope flags",
        )
    values = scope_values(scope, fiscal_year_start_month)
    declared = {p.name: p for p in query.params}
    for key, text in params.items():
        if key in SCOPE_PARAMS:
            raise UsageError(
                f"--param {key}=...: {key} is a scope parameter", hint=f"use {flag_for(key)}"
            )
        param = declared.get(key)
        if param is None:
            raise UsageError(
                f"{where}: query {query.name!r} has no parameter {key!r}", hint=_describe(query)
            )
        try:
            values[key] = convert(text, param.type)
        except ValueError as exc:
            raise UsageError(
                f"{where}: --param {key}={text!r}: {exc} ({key} is {param.type})"
            ) from None
        bounds = query.bounds.get(key)
        if bounds is not None and not bounds.allows(values[key]):
            raise UsageError(
                f"{where}: --param {key}={text!r} is out of range: {key} must be {bounds}"
            )

    bound: dict[str, Any] = {}
    missing = []
    for param in query.params:
        if param.name in values:
            bound[param.name] = values[param.name]
        elif param.default is not None:
            bound[param.name] = parse_default(param.default, param.type)
        else:
            missing.append(
                flag_for(param.name)
                if param.name in SCOPE_PARAMS
                else f"--param {param.name}=<{expected(param.type)}>"
            )
    if missing:
        raise UsageError(f"{where}: query {query.name!r} needs {', '.join(missing)}")
    return bound

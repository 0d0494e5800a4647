"""The named queries of queries/*.sql against the sample warehouse, with exact expectations.

Each query's SQL file is run as it is (header comments included) through DuckDB with bound
parameters, the way an analyst's client would run it. Expected rows come from oracle.py: the
generator's labels, the raw CloudTrail files read with gzip + json, and the IAM snapshot files,
never from the package or the query. Every query is run over all data and over 2026Q3.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from .conftest import Warehouse
from .oracle import (
    SERVICE_ROLE_PATH,
    SSO_PATH,
    Event,
    Truth,
    days,
    in_period,
    joined,
    tag_text,
)

QUERIES = Path(__file__).resolve().parents[2] / "queries"
NAMED = (
    "access_denied",
    "activity_by_actor",
    "agent_actions",
    "agent_bypass",
    "agent_tag_changes",
    "console_vs_cli_vs_mcp",
    "coverage",
    "destructive_agent_calls",
    "human_roles_via_mcp",
    "mcp_tool_calls",
    "new_services",
    "principals",
    "regions_by_actor",
    "session_chains",
    "top_talkers",
    "unjoined_sessions",
    "untagged_agent_roles",
)
SCOPE_PARAMS = {
    "since": "TIMESTAMPTZ",
    "until": "TIMESTAMPTZ",
    "account": "VARCHAR",
    "principal": "VARCHAR",
}
DEV, PROD = "111111111111", "222222222222"
Q3 = {"since": datetime(2026, 7, 1, tzinfo=UTC), "until": datetime(2026, 10, 1, tzinfo=UTC)}
# The web-identity subject (principalId) of the sample's GitHub Actions deployments.
GITHUB_SUBJECT = (
    "arn:aws:iam::222222222222:oidc-provider/token.actions.githubusercontent.com:"
    "sts.amazonaws.com:repo:example-org/webapp:ref:refs/heads/main"
)
PERIODS = [pytest.param({}, id="all"), pytest.param(Q3, id="2026Q3")]
Rows = list[dict[str, Any]]


# --- reading and running a query file ----------------------------------------------------


@dataclass(frozen=True)
class Header:
    fields: dict[str, str]
    keys_in_order: list[str]
    params: dict[str, tuple[str, str]]  # name -> (TYPE, default as written)
    body: str

    @property
    def used(self) -> set[str]:
        code = re.sub(r"'(?:[^']|'')*'|--[^\n]*", " ", self.body)  # strings and comments
        return set(re.findall(r"(?<![\w$])\$([a-z_][a-z0-9_]*)", code))


def read_header(path: Path) -> Header:
    lines = path.read_text(encoding="utf-8").splitlines()
    fields: dict[str, str] = {}
    order: list[str] = []
    n = 0
    for n, line in enumerate(lines):  # after the loop, n is where the body starts
        if not line.startswith("--"):
            break
        key = re.match(r"^-- (name|description|params|grain|used_by): (.+)$", line)
        more = re.match(r"^--\s{2,}(\S.*)$", line)
        if key:
            order.append(key[1])
            fields[key[1]] = key[2].strip()
        elif more and order:
            fields[order[-1]] += " " + more[1].strip()
        else:
            raise AssertionError(f"{path.name}:{n + 1}: not a header line: {line!r}")
    params = {}
    for chunk in fields.get("params", "").split(";"):
        # A numeric parameter may end with its range: `n INTEGER = 10 (min 1)`.
        match = re.fullmatch(r"\s*([a-z_]+) ([A-Z]+) = (\S+)(?: \([^)]*\))?\s*", chunk)
        assert match, f"{path.name}: bad params entry {chunk!r}"
        params[match[1]] = (match[2], match[3])
    return Header(fields, order, params, "\n".join(lines[n:]))


def default(type_name: str, text: str) -> Any:
    if text == "NULL":
        return None
    if type_name == "INTEGER":
        return int(text)
    raise AssertionError(f"unexpected default {text!r}")


def run(warehouse: Warehouse, name: str, time_zone: str | None = None, **overrides: Any) -> Rows:
    """Run queries/NAME.sql unchanged, binding every declared parameter (defaults unless
    overridden); a parameter the query does not declare is a test error."""
    path = QUERIES / f"{name}.sql"
    header = read_header(path)
    unknown = set(overrides) - set(header.params)
    assert not unknown, f"{name} does not declare {unknown}"
    params = {k: default(*spec) for k, spec in header.params.items()}
    params.update(overrides)
    with duckdb.connect(str(warehouse.database), read_only=True) as con:
        if time_zone:
            con.execute("SET TimeZone = $tz", {"tz": time_zone})
        cursor = con.execute(path.read_text(encoding="utf-8"), params)
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def run_period(warehouse: Warehouse, name: str, period: dict[str, Any], **params: Any) -> Rows:
    """`run` for a period; for 2026Q3 with default parameters, also through the engine
    (`agenttrail query run NAME --quarter 2026Q3`), which must bind the same values."""
    rows = run(warehouse, name, **period, **params)
    engine = query_engine()
    if engine is not None and period == Q3 and not params:
        library, config = engine
        settings = config.load_settings(
            environ={}, overrides={"warehouse": str(warehouse.root)}, cwd=warehouse.root
        )
        result = library.run_query(settings, name, scope=library.Scope(quarter="2026Q3"))
        assert result.table.to_pylist() == rows, f"{name}: the engine and the SQL file differ"
    return rows


@functools.cache
def query_engine() -> tuple[Any, Any] | None:
    """pipeline.query.library and pipeline.config, once the engine exists."""
    try:
        return (
            importlib.import_module("pipeline.query.library"),
            importlib.import_module("pipeline.config"),
        )
    except ImportError:
        return None


def pop_pct(rows: Rows, column: str) -> list[float]:
    return [row.pop(column) for row in rows]


def assert_pct(got: list[float], expected: list[float]) -> None:
    assert got == pytest.approx(expected, abs=0.0051)


def grouped(events: Iterable[Event], key: Callable[[Event], Any]) -> dict[Any, list[Event]]:
    groups: dict[Any, list[Event]] = defaultdict(list)
    for e in events:
        groups[key(e)].append(e)
    return groups


def earliest(events: list[Event]) -> datetime:
    return min(e.time for e in events)


def latest(events: list[Event]) -> datetime:
    return max(e.time for e in events)


def failed(events: list[Event]) -> int:
    return sum(e.error_code is not None for e in events)


def writes(events: list[Event]) -> int:
    return sum(e.write for e in events)


# --- headers -----------------------------------------------------------------------------


def test_every_named_query_has_a_valid_header() -> None:
    files = sorted(p.stem for p in QUERIES.glob("*.sql"))
    assert set(NAMED) <= set(files)
    for name in NAMED:
        path = QUERIES / f"{name}.sql"
        header = read_header(path)
        assert header.keys_in_order == ["name", "description", "params", "grain", "used_by"]
        assert header.fields["name"] == name
        assert len(header.fields["description"]) > 200, f"{name}: describe the question and columns"
        assert header.used == set(header.params), f"{name}: declared and used params differ"
        for param, type_name in SCOPE_PARAMS.items():
            if param in header.params:
                assert header.params[param] == (type_name, "NULL"), f"{name}: {param}"
        assert {"since", "until"} <= set(header.params), f"{name}: every query takes a period"
        body = header.body.strip()
        # A quote in a comment would make comment-unaware SQL scanners misread the code.
        assert not re.search(r"--[^\n']*'", re.sub(r"'(?:[^']|'')*'", "''", body)), name
        assert body.startswith("WITH "), f"{name}: import CTEs first"
        assert re.search(r"^final AS \($", body, re.M), f"{name}: a final CTE"
        assert re.search(r"\nSELECT \* FROM final\nORDER BY\s[^;]+;$", body), f"{name}: ending"
        assert not re.search(r"\{\w*\}|%s|%\(\w+\)s", re.sub(r"'[^']*'", "''", body)), name
        assert not re.search(r"read_(parquet|csv|json)|'[^']*\.(parquet|csv|json)'", body), name


def test_headers_parse_with_the_project_parser() -> None:
    sqlfile = pytest.importorskip("pipeline.sqlfile")
    for name in NAMED:
        parsed = sqlfile.parse_sql_file(QUERIES / f"{name}.sql")
        assert parsed.name == name
        assert {p.name for p in parsed.params} == parsed.used_params()


# --- activity_by_actor -------------------------------------------------------------------


def expected_activity(events: Iterable[Event]) -> Rows:
    groups = grouped(events, lambda e: (e.day, e.kind, e.path))
    return [
        {
            "day": day,
            "actor_kind": kind,
            "access_path": path,
            "calls": len(es),
            "failed_calls": failed(es),
            "principals": len({e.principal for e in es}),
        }
        for (day, kind, path), es in sorted(groups.items())
    ]


@pytest.mark.usefixtures("require_iam")
@pytest.mark.parametrize("period", PERIODS)
def test_activity_by_actor(warehouse: Warehouse, truth: Truth, period: dict[str, Any]) -> None:
    rows = run_period(warehouse, "activity_by_actor", period)
    assert rows == expected_activity(truth.scoped(**period))
    if not period:
        assert sum(r["calls"] for r in rows) == truth.scenario["events"]["distinct"] == 5469
        per_label: dict[str, int] = defaultdict(int)
        for r in rows:
            per_label[f"{r['actor_kind']}/{r['access_path']}"] += r["calls"]
        assert per_label == truth.scenario["events"]["per_label"]


@pytest.mark.usefixtures("require_iam")
@pytest.mark.parametrize(
    "scope",
    [
        {"principal": "cost-explorer-mcp", "account": PROD},
        {"principal": "bob@example.com", **Q3},
        {"principal": "arn:aws:iam::111111111111:user/carol", "account": PROD},
        # Identities without an ARN, as the principals column names them.
        {"principal": "ec2.amazonaws.com"},
        {"principal": GITHUB_SUBJECT},
    ],
    ids=["agent-name-in-prod", "person-in-Q3", "user-arn-in-prod", "aws-service", "web-identity"],
)
def test_activity_by_actor_scope(warehouse: Warehouse, truth: Truth, scope: dict[str, Any]) -> None:
    rows = run(warehouse, "activity_by_actor", **scope)
    assert rows == expected_activity(truth.scoped(**scope))
    assert rows  # every scope above selects something


@pytest.mark.parametrize("name", ["coverage", "activity_by_actor"])
def test_days_are_utc_whatever_the_session_time_zone(warehouse: Warehouse, name: str) -> None:
    """Days and period bounds are UTC: a client in another time zone gets the same answer."""
    assert run(warehouse, name, time_zone="Pacific/Auckland", **Q3) == run(warehouse, name, **Q3)


def test_parameter_values_are_data(warehouse: Warehouse) -> None:
    hostile = "'; drop view events; --"
    assert run(warehouse, "activity_by_actor", principal=hostile, account=hostile) == []
    with duckdb.connect(str(warehouse.database), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM events").fetchone() == (5469,)


# --- agent_actions -----------------------------------------------------------------------


def expected_agent_actions(events: Iterable[Event], min_calls: int = 1) -> Rows:
    agent_events = [e for e in events if e.kind == "agent"]
    totals = {a: len(es) for a, es in grouped(agent_events, lambda e: e.agent_name).items()}
    rows = [
        {
            "agent_name": agent,
            "service": source.split(".")[0],
            "event_source": source,
            "event_name": name,
            "calls": len(es),
            "failed_calls": failed(es),
            "write_calls": writes(es),
            "access_paths": joined(e.path for e in es),
            "principals": len({e.principal for e in es}),
            "first_seen": earliest(es),
            "last_seen": latest(es),
            "agent_calls": totals[agent],
        }
        for (agent, source, name), es in grouped(
            agent_events, lambda e: (e.agent_name, e.source, e.name)
        ).items()
        if len(es) >= min_calls
    ]
    return sorted(
        rows, key=lambda r: (r["agent_name"], -r["calls"], r["event_source"], r["event_name"])
    )


@pytest.mark.usefixtures("require_iam")
@pytest.mark.parametrize("period", PERIODS)
def test_agent_actions(warehouse: Warehouse, truth: Truth, period: dict[str, Any]) -> None:
    rows = run_period(warehouse, "agent_actions", period)
    assert rows == expected_agent_actions(truth.scoped(**period))
    per_agent = {r["agent_name"]: r["agent_calls"] for r in rows}
    expected = defaultdict(int)
    for e in truth.scoped(**period):
        if e.agent_name:
            expected[e.agent_name] += 1
    assert per_agent == expected
    if not period:
        assert per_agent == truth.scenario["events"]["per_agent_name"]


@pytest.mark.usefixtures("require_iam")
def test_agent_actions_min_calls(warehouse: Warehouse, truth: Truth) -> None:
    rows = run(warehouse, "agent_actions", min_calls=20, **Q3)
    assert rows == expected_agent_actions(truth.scoped(**Q3), min_calls=20)
    assert rows
    assert all(r["calls"] >= 20 for r in rows)


# --- mcp_tool_calls ----------------------------------------------------------------------


def expected_mcp_tool_calls(truth: Truth, events: Iterable[Event]) -> Rows:
    downstream = grouped(
        (e for e in truth.events if e.event_type != "AwsMcpEvent" and e.request_id),
        lambda e: e.request_id,
    )
    calls: list[dict[str, Any]] = []
    for e in events:
        if e.event_type != "AwsMcpEvent":
            continue
        params = e.request.get("params") or {}
        details = e.record.get("mcpEventDetails") or e.additional.get("mcpEventDetails") or {}
        common = {
            "tool_event_id": e.event_id,
            "time": e.time,
            "tool": params.get("name") or e.request.get("method"),
            "session": details.get("sessionId"),
            "person": e.human_id,
            "principal": e.principal,
            "client": e.user_agent,
        }
        requests = e.additional.get("downstreamRequests") or []
        for request in requests:
            found = downstream.get(request["requestId"], [])
            calls.append(
                {
                    **common,
                    "api": request["apiName"],
                    "request": request["requestId"],
                    "found": int(bool(found)),
                    "failed": int(any(d.error_code for d in found)),
                }
            )
        if not requests:
            calls.append({**common, "api": None, "request": None, "found": 0, "failed": 0})

    def rows(level: str, key: Callable[[dict[str, Any]], tuple[Any, ...]]) -> Rows:
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
        for call in calls:
            groups[key(call)].append(call)
        return [
            {
                "level": level,
                "mcp_session_id": session,
                "tool_name": tool,
                "downstream_api": api,
                "tool_calls": len({c["tool_event_id"] for c in cs}),
                "downstream_requests": sum(c["request"] is not None for c in cs),
                "downstream_found": sum(c["found"] for c in cs),
                "downstream_failed": sum(c["failed"] for c in cs),
                "people": joined(c["person"] for c in cs),
                "principals": joined(c["principal"] for c in cs),
                "mcp_clients": joined(c["client"] for c in cs),
                "first_call": min(c["time"] for c in cs),
                "last_call": max(c["time"] for c in cs),
            }
            for (session, tool, api), cs in groups.items()
        ]

    def nulls_first(value: str | None) -> tuple[bool, str]:
        return (value is not None, value or "")

    result = rows("tool", lambda c: (None, c["tool"], c["api"])) + rows(
        "session", lambda c: (c["session"], c["tool"], c["api"])
    )
    return sorted(
        result,
        key=lambda r: (
            r["level"] != "tool",
            nulls_first(r["mcp_session_id"]),
            nulls_first(r["tool_name"]),
            nulls_first(r["downstream_api"]),
        ),
    )


@pytest.mark.parametrize("period", PERIODS)
def test_mcp_tool_calls(warehouse: Warehouse, truth: Truth, period: dict[str, Any]) -> None:
    rows = run_period(warehouse, "mcp_tool_calls", period)
    assert rows == expected_mcp_tool_calls(truth, truth.scoped(**period))
    tools = [r for r in rows if r["level"] == "tool"]
    assert (
        sum(r["tool_calls"] for r in tools)
        == truth.scenario["events"]["per_event_type"]["AwsMcpEvent"]
    )
    # Every downstream request of the sample was logged: none is missing.
    assert all(r["downstream_found"] == r["downstream_requests"] for r in rows)
    assert {r["tool_name"] for r in tools} == {
        "aws___call_aws",
        "aws___read_documentation",
        "aws___search_documentation",
        "aws___suggest_aws_commands",
    }
    # 15 MCP sessions (dan's 14 and his agent's session that minted credentials); one, in the
    # documented shape, before the trail logged the MCP server's data events: its tool calls
    # left no record.
    assert len({r["mcp_session_id"] for r in rows if r["level"] == "session"}) == 14


def test_mcp_tool_calls_scope(warehouse: Warehouse, truth: Truth) -> None:
    assert run(warehouse, "mcp_tool_calls", account=PROD) == []
    until_august = {
        "since": datetime(2026, 7, 1, tzinfo=UTC),
        "until": datetime(2026, 8, 1, tzinfo=UTC),
    }
    rows = run(warehouse, "mcp_tool_calls", principal="dan@example.com", **until_august)
    assert rows == expected_mcp_tool_calls(truth, truth.scoped(**until_august))
    assert rows


# --- agent_bypass ------------------------------------------------------------------------


@pytest.mark.usefixtures("require_iam")
@pytest.mark.parametrize("period", PERIODS)
def test_agent_bypass(warehouse: Warehouse, truth: Truth, period: dict[str, Any]) -> None:
    rows = run_period(warehouse, "agent_bypass", period)
    bypass = [e for e in truth.scoped(**period) if (e.kind, e.path) == ("agent", "direct")]
    expected = []
    for (agent, principal), es in grouped(bypass, lambda e: (e.agent_name, e.principal)).items():
        expected.append(
            {
                "agent_name": agent,
                "principal": principal,
                "accounts": joined(e.account for e in es),
                "calls": len(es),
                "failed_calls": failed(es),
                "write_calls": writes(es),
                "sessions": len({e.access_key for e in es if e.access_key}),
                "actions": len({(e.source, e.name) for e in es}),
                "clients": joined(e.client for e in es),
                "first_seen": earliest(es),
                "last_seen": latest(es),
                "sample_event_ids": ",".join(e.event_id for e in es[:3]),  # events are time-sorted
            }
        )
    expected.sort(key=lambda r: (-r["calls"], r["agent_name"], r["principal"]))
    evidence = {
        (r["agent_name"], r["principal"].rsplit("/", 1)[1]): (
            r.pop("classified_by"),
            r.pop("evidence"),
        )
        for r in rows
    }
    assert rows == expected
    names = {r["agent_name"] for r in rows}
    assert names == (
        {"AgentHarnessRole", "AgentMcpRole", "ReportAgentRole", "DataPipelineAgentRole"}
        # dan's agent in its shell with the AppDeployRole key the managed MCP server minted
        | {"aws-mcp.amazonaws.com"}
        # grace's agent in its shell with the AppDeployRole key her awslabs server minted
        | {"aws-api-mcp-server"}
    )
    # The harness tags its sessions; the others are agent roles by their IAM tag.
    harness = evidence[("AgentHarnessRole", "AgentHarnessRole")]
    assert harness[0] == "agent_session.direct"
    assert "Usage=Agent" in harness[1]
    # Its hop into the untagged AppDeployRole drops the tag, not the agent.
    deploy = evidence.get(("AgentHarnessRole", "AppDeployRole"))
    if deploy is not None:
        assert deploy[0] == "agent_chain.direct"
        assert "AgentHarnessRole" in deploy[1]
    # dan's agent used the key the managed MCP server's AssumeRole issued, from its own shell.
    minted = evidence[("aws-mcp.amazonaws.com", "AppDeployRole")]
    assert minted[0] == "agent_chain.direct"
    assert "invokedBy=aws-mcp.amazonaws.com" in minted[1]
    # grace's agent used the key her awslabs aws-api-mcp-server's AssumeRole issued: only that
    # AssumeRole's user agent names the server.
    awslabs = evidence[("aws-api-mcp-server", "AppDeployRole")]
    assert awslabs[0] == "agent_chain.direct"
    assert "userAgent names awslabs MCP server aws-api-mcp-server" in awslabs[1]
    for name in names - {"AgentHarnessRole", "aws-mcp.amazonaws.com", "aws-api-mcp-server"}:
        classified_by, text = evidence[(name, name)]
        assert classified_by == "agent_role.direct"
        assert name in text
    # DataPipelineAgentRole became an agent role by alice's TagRole on 2026-08-04.
    pipeline = next(r for r in rows if r["agent_name"] == "DataPipelineAgentRole")
    assert pipeline["first_seen"] > datetime(2026, 8, 4, 14, 10, tzinfo=UTC)
    assert "TagRole" in evidence[("DataPipelineAgentRole", "DataPipelineAgentRole")][1]
    if not period:
        assert {(r["agent_name"], r["principal"].rsplit("/", 1)[1]): r["calls"] for r in rows} == {
            ("AgentMcpRole", "AgentMcpRole"): 72,
            ("AgentHarnessRole", "AgentHarnessRole"): 102,
            ("AgentHarnessRole", "AppDeployRole"): 15,
            ("ReportAgentRole", "ReportAgentRole"): 50,
            ("DataPipelineAgentRole", "DataPipelineAgentRole"): 85,
            ("aws-mcp.amazonaws.com", "AppDeployRole"): 7,
            ("aws-api-mcp-server", "AppDeployRole"): 4,
        }


# --- human_roles_via_mcp -----------------------------------------------------------------


def identity_kind(e: Event) -> str | None:
    if (
        e.identity_type == "IdentityCenterUser"
        or (e.identity.get("onBehalfOf") or {}).get("userId")
        or SSO_PATH in (e.issuer.get("arn") or "")
    ):
        return "identity_center"
    return {
        "IAMUser": "iam_user",
        "Root": "root",
        "SAMLUser": "federated",
        "FederatedUser": "federated",
    }.get(e.identity_type or "")


def on_agent_role(truth: Truth, e: Event) -> bool:
    """A role session on a role that is an agent role at the call: the dedicated agent role."""
    if e.identity_type != "AssumedRole":
        return False
    seen = truth.agent_role_at(e.issuer["accountId"], e.issuer["userName"], e.time)
    return bool(seen and seen.is_agent)


@pytest.mark.parametrize("period", PERIODS)
def test_human_roles_via_mcp(warehouse: Warehouse, truth: Truth, period: dict[str, Any]) -> None:
    rows = run_period(warehouse, "human_roles_via_mcp", period)
    people = [
        e
        for e in truth.scoped(**period)
        if e.path in ("mcp_managed", "mcp_self_managed")
        and identity_kind(e)
        and not (warehouse.iam_imported and on_agent_role(truth, e))
    ]
    groups = grouped(
        people, lambda e: (e.human_id, e.principal, e.path, e.agent_name, identity_kind(e))
    )
    expected = [
        {
            "human_id": person,
            "principal": principal,
            "access_path": path,
            "mcp_server": server,
            "identity_kind": kind,
            "accounts": joined(e.account for e in es),
            "calls": len(es),
            "failed_calls": failed(es),
            "write_calls": writes(es),
            "sessions": len({e.sign_in_session or e.access_key for e in es} - {None}),
            "mcp_clients": joined(e.user_agent for e in es if e.event_type == "AwsMcpEvent"),
            "first_seen": earliest(es),
            "last_seen": latest(es),
        }
        for (person, principal, path, server, kind), es in groups.items()
    ]
    expected.sort(key=lambda r: (r["human_id"], r["principal"], r["access_path"], r["mcp_server"]))
    assert rows == expected
    by_server = defaultdict(int)
    for r in rows:
        by_server[(r["human_id"], r["mcp_server"])] += r["calls"]
    if not period:
        # dan through the AWS-managed server, frank and grace through awslabs servers on their
        # SSO roles (grace's AssumeRole included: her agent's shell calls, on AppDeployRole, are
        # on no person's role).
        assert dict(by_server) == {
            ("dan@example.com", "aws-mcp.amazonaws.com"): 223,
            ("frank@example.com", "cloudwatch-mcp-server"): 155,
            ("frank@example.com", "aws-documentation-mcp-server"): 13,
            ("grace@example.com", "aws-api-mcp-server"): 5,
        }
        dan = next(r for r in rows if r["human_id"] == "dan@example.com")
        assert dan["sessions"] == 15  # one per MCP OAuth sign-in session
    # The cost-explorer server's role is an agent role with agent session tags: not a person's.
    assert all("AgentMcpRole" not in r["principal"] for r in rows)


# --- agent_tag_changes ------------------------------------------------------------------


@pytest.mark.usefixtures("require_iam")
@pytest.mark.parametrize("period", PERIODS)
def test_agent_tag_changes(warehouse: Warehouse, truth: Truth, period: dict[str, Any]) -> None:
    rows = run_period(warehouse, "agent_tag_changes", period)
    # The sample's calls that made a role an agent role (it has none that take it away): carol
    # creates the report agent's role tagged, alice tags the pipeline's role in the console.
    made = [
        e
        for e in truth.scoped(**period)
        if e.source == "iam.amazonaws.com"
        and e.name in ("CreateRole", "TagRole")
        and any(t["key"] == "Usage" and t["value"] == "Agent" for t in e.request.get("tags") or [])
    ]
    expected = [
        {
            "role_account_id": e.account,
            "role_name": e.request["roleName"],
            "change": "tagged",
            "changed_at": e.time,
            "event": f"{e.name} {e.event_id}",
            "actor_kind": e.kind,
            "access_path": e.path,
            "agent_name": e.agent_name,
            "human_id": e.human_id,
            "principal": e.principal,
            "by_the_role_itself": False,
        }
        for e in sorted(made, key=lambda e: e.time)
    ]
    shown = ("was", "was_observed_by", "classified_by", "finding")
    assert [{k: v for k, v in r.items() if k not in shown} for r in rows] == expected
    assert len(expected) == 2  # both in 2026Q3
    # Before: the first IAM snapshot of each account (taken at the start of the sample) lists
    # DataPipelineAgentRole untagged and does not list ReportAgentRole, created later.
    with duckdb.connect(str(warehouse.database), read_only=True) as con:
        snapshots = dict(
            con.execute(
                "SELECT account_id, arg_min(snapshot_id, taken_at) FROM iam_snapshots GROUP BY ALL"
            ).fetchall()
        )
    befores = {
        "ReportAgentRole": ("absent", f"snapshot {snapshots['111111111111']} (role absent)"),
        "DataPipelineAgentRole": ("untagged", f"snapshot {snapshots['222222222222']}"),
    }
    assert {r["role_name"]: (r["was"], r["was_observed_by"]) for r in rows} == {
        r["role_name"]: befores[r["role_name"]] for r in rows
    }
    assert {r["role_name"]: r["classified_by"] for r in rows} == {
        r["role_name"]: {"carol": "human.iam_user", "alice@example.com": "human.console"}[r["human_id"]]
        for r in rows
    }
    if not period:
        assert rows[0]["finding"] == (
            f"Role ReportAgentRole in account 111111111111 became an agent role at "
            f"{rows[0]['changed_at']:%Y-%m-%dT%H:%M:%SZ} ({rows[0]['event']}), by a human (carol) "
            f"(access path direct); snapshot {snapshots['111111111111']} (role absent) did not "
            "list it."
        )


# --- untagged_agent_roles ----------------------------------------------------------------


@pytest.mark.usefixtures("require_iam")
@pytest.mark.parametrize("period", PERIODS)
def test_untagged_agent_roles(warehouse: Warehouse, truth: Truth, period: dict[str, Any]) -> None:
    rows = run_period(warehouse, "untagged_agent_roles", period)
    gaps: dict[tuple[str, str, str, str], list[tuple[Event, Any]]] = defaultdict(list)
    for e in truth.scoped(**period):
        if e.path not in ("mcp_managed", "mcp_self_managed") or e.identity_type != "AssumedRole":
            continue
        account, role = e.issuer["accountId"], e.issuer["userName"]
        seen = truth.agent_role_at(account, role, e.time)
        state = "unknown" if seen is None else ("tagged" if seen.is_agent else "untagged")
        if state != "tagged":
            gaps[(account, e.identity_arn, role, state)].append((e, seen))
    expected = []
    for (account, principal, role, state), items in gaps.items():
        es = [e for e, _ in items]
        expected.append(
            {
                "role_account_id": account,
                "principal": principal,
                "role_name": role,
                "tag_state": state,
                "access_paths": joined(e.path for e in es),
                "mcp_servers": joined(e.agent_name for e in es),
                "people": joined(e.human_id for e in es),
                "calls": len(es),
                "sessions": len({e.sign_in_session or e.access_key for e in es} - {None}),
                "first_seen": earliest(es),
                "last_seen": latest(es),
                "tagged_since": None,  # neither SSO role nor EksReadOnlyRole is ever tagged
            }
        )
        got = next(r for r in rows if r["principal"] == principal and r["tag_state"] == state)
        named = (got["observed_by"] or "").split(",")  # every observation that decided a call
        for seen in {seen for _, seen in items}:
            assert (got["observed_by"] is None) if seen is None else any(map(seen.matches, named))
    expected.sort(key=lambda r: (-r["calls"], r["role_account_id"], r["principal"], r["tag_state"]))
    for r in rows:
        r.pop("observed_by")
    assert rows == expected
    # The gap: people's SSO roles used through MCP, and the shared EksReadOnlyRole the k8s-mcp
    # server hops into in prod. Tagged agent roles never show.
    assert {(r["role_account_id"], r["role_name"]) for r in rows} == {
        (DEV, "AWSReservedSSO_DeveloperAccess_fedcba9876543210"),
        (PROD, "AWSReservedSSO_DeveloperAccess_fedcba9876543210"),
        (PROD, "EksReadOnlyRole"),
    }
    if not period:
        # dev's developer role: dan (managed MCP), frank (awslabs, less his 39 calls in prod) and
        # grace's aws-api-mcp-server (5, its AssumeRole included).
        assert [r["calls"] for r in rows] == [223 + 155 - 39 + 13 + 5, 39, 30]


# --- destructive_agent_calls -------------------------------------------------------------

# An independent reading of the header's list: logging, key, permission, terminate, delete.
LOGGING = {
    "StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors", "PutInsightSelectors",
    "DeleteFlowLogs", "DeleteLogGroup", "DeleteLogStream", "PutRetentionPolicy",
    "StopConfigurationRecorder", "DeleteConfigurationRecorder", "DeleteDetector",
}  # fmt: skip
KEYS = {"ScheduleKeyDeletion", "DisableKey", "DisableKeyRotation", "PutKeyPolicy", "CreateGrant"}
PERMISSION = re.compile(
    r"^(Put|Attach|Detach|Delete)\w*Policy$|^(Create|Update)\w*(PolicyVersion|AssumeRolePolicy)$"
    r"|^(AddPermission|RemovePermission|AuthorizeSecurityGroup|RevokeSecurityGroup)"
    r"|^(PutBucketAcl|PutObjectAcl|CreateAccessKey|AddUserToGroup|SetDefaultPolicyVersion)$"
)


def destructive_category(name: str) -> str | None:
    if name in LOGGING:
        return "logging"
    if name in KEYS:
        return "key"
    if PERMISSION.search(name):
        return "permission"
    if name.startswith("Terminate"):
        return "terminate"
    if name.startswith("Delete"):
        return "delete"
    return None


@pytest.mark.usefixtures("require_iam")
@pytest.mark.parametrize("period", PERIODS)
def test_destructive_agent_calls(
    warehouse: Warehouse, truth: Truth, period: dict[str, Any]
) -> None:
    rows = run_period(warehouse, "destructive_agent_calls", period)
    events = list(truth.scoped(**period))
    expected = [
        {
            "event_time": e.time,
            "event_id": e.event_id,
            "category": destructive_category(e.name),
            "agent_name": e.agent_name,
            "principal": e.principal,
            "account": e.account,
            "aws_region": e.region,
            "event_name": e.name,
            "error_code": e.error_code,
        }
        for e in events
        if e.kind == "agent" and destructive_category(e.name)
    ]
    columns = list(expected[0]) if expected else []
    assert [{c: r[c] for c in columns} for r in rows] == expected
    # The sample's agents destroy through the bypass (AgentMcpRole's TerminateInstances, some
    # denied) and through CloudFormation, which opened a security group with the harness's
    # deployment session; people's deletes and terminations must not show.
    assert {(r["agent_name"], r["event_name"], r["access_path"]) for r in rows} <= {
        ("AgentMcpRole", "TerminateInstances", "direct"),
        ("AgentHarnessRole", "AuthorizeSecurityGroupIngress", "service"),
        # dan's agent, from its shell with the key it minted through the managed MCP server
        ("aws-mcp.amazonaws.com", "AuthorizeSecurityGroupIngress", "direct"),
    }
    humans = [e for e in events if e.kind == "human" and destructive_category(e.name)]
    assert humans, "the sample has destructive calls by people in every period"
    if not period:
        assert len(rows) == 6
        assert sum(r["error_code"] is not None for r in rows) == 3
        assert sum(r["access_path"] == "service" for r in rows) == 1


def test_destructive_categories_on_synthetic_rows() -> None:
    """The pattern list and its priorities, on hand-written rows (no sample needed)."""
    cases = [
        ("cloudtrail.amazonaws.com", "DeleteTrail", "agent", "logging"),
        ("cloudtrail.amazonaws.com", "StopLogging", "agent", "logging"),
        ("logs.amazonaws.com", "PutRetentionPolicy", "agent", "logging"),
        ("kms.amazonaws.com", "ScheduleKeyDeletion", "agent", "key"),
        ("kms.amazonaws.com", "PutKeyPolicy", "agent", "key"),
        ("iam.amazonaws.com", "AttachRolePolicy", "agent", "permission"),
        ("iam.amazonaws.com", "DeleteRolePolicy", "agent", "permission"),
        ("s3.amazonaws.com", "PutBucketPolicy", "agent", "permission"),
        ("lambda.amazonaws.com", "AddPermission20150331v2", "agent", "permission"),
        ("ec2.amazonaws.com", "TerminateInstances", "agent", "terminate"),
        ("lambda.amazonaws.com", "DeleteFunction20150331", "agent", "delete"),
        ("s3.amazonaws.com", "DeleteBucket", "agent", "delete"),
        ("ec2.amazonaws.com", "StopInstances", "agent", None),
        ("ec2.amazonaws.com", "DescribeInstances", "agent", None),
        ("autoscaling.amazonaws.com", "PutScalingPolicy", "agent", None),
        ("cloudtrail.amazonaws.com", "DeleteTrail", "human", None),
    ]
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE events_classified (event_time TIMESTAMPTZ, event_id VARCHAR,"
        " agent_name VARCHAR, access_path VARCHAR, iam_principal_arn VARCHAR,"
        " principal_arn VARCHAR, human_id VARCHAR, recipient_account_id VARCHAR,"
        " aws_region VARCHAR, event_source VARCHAR, event_name VARCHAR, error_code VARCHAR,"
        " classified_by VARCHAR, request_parameters VARCHAR, actor_kind VARCHAR,"
        " principal VARCHAR)"
    )
    start = datetime(2026, 7, 1, tzinfo=UTC)
    for n, (source, name, kind, _) in enumerate(cases):
        con.execute(
            "INSERT INTO events_classified VALUES ($t, $id, 'a', 'direct', 'arn', 'arn', NULL,"
            " $acct, 'us-east-1', $source, $name, NULL, 'rule', '{}', $kind, 'arn')",
            {"t": start + timedelta(minutes=n), "id": f"e{n:02d}", "acct": DEV, "source": source,
             "name": name, "kind": kind},
        )  # fmt: skip
    sql = (QUERIES / "destructive_agent_calls.sql").read_text(encoding="utf-8")
    none = {"since": None, "until": None, "account": None, "principal": None}
    got = con.execute(sql, none).fetchall()
    assert [(row[1], row[2]) for row in got] == [
        (f"e{n:02d}", category) for n, (*_, category) in enumerate(cases) if category
    ]


# --- access_denied -----------------------------------------------------------------------


def burst_periods(
    times: list[datetime], minutes: int, least: int
) -> tuple[list[int], list[tuple[datetime, datetime]]]:
    """The header's bursts, read as periods of time: each denial's window is the closed interval
    [t - minutes, t] and counts every denial in it (ties included); a burst is a connected piece
    of the union of the windows that hold `least` or more. Returns the window counts and the
    bursts as (start of the first window, time of the last hot denial), oldest first."""
    window = timedelta(minutes=minutes)
    counts = [sum(t - window <= other <= t for other in times) for t in times]
    hot = sorted((t - window, t) for t, n in zip(times, counts, strict=True) if n >= least)
    merged: list[tuple[datetime, datetime]] = []
    for low, high in hot:
        if merged and low <= merged[-1][1]:  # closed intervals: touching ones are one piece
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return counts, merged


def expected_access_denied(events: Iterable[Event], minutes: int, least: int) -> Rows:
    denials = [e for e in events if e.denied]
    rows = []
    for (kind, actor), es in grouped(denials, lambda e: (e.kind, e.actor)).items():
        es.sort(key=lambda e: (e.time, e.event_id))
        counts, periods = burst_periods([e.time for e in es], minutes, least)
        # A burst starts at its first hot denial, the end of its first window.
        starts = [low + timedelta(minutes=minutes) for low, _ in periods]
        rows.append(
            {
                "actor_kind": kind,
                "actor": actor,
                "principals": joined(e.principal for e in es),
                "denied_calls": len(es),
                "denied_actions": len({(e.source, e.name) for e in es}),
                "error_codes": joined(e.error_code for e in es),
                "first_denied": es[0].time,
                "last_denied": es[-1].time,
                "max_in_window": max(counts),
                "bursts": len(starts),
                "first_burst_at": starts[0] if starts else None,
            }
        )
    return sorted(
        rows, key=lambda r: (-r["bursts"], -r["denied_calls"], r["actor_kind"], r["actor"])
    )


@pytest.mark.usefixtures("require_iam")
@pytest.mark.parametrize(
    ("period", "burst"),
    [
        pytest.param({}, {}, id="all-defaults"),
        pytest.param(Q3, {}, id="2026Q3-defaults"),
        pytest.param({}, {"burst_minutes": 1440, "burst_min": 3}, id="all-3-a-day"),
        pytest.param(Q3, {"burst_minutes": 5, "burst_min": 2}, id="2026Q3-2-in-5min"),
    ],
)
def test_access_denied(
    warehouse: Warehouse, truth: Truth, period: dict[str, Any], burst: dict[str, int]
) -> None:
    rows = run_period(warehouse, "access_denied", period, **burst)
    minutes, least = burst.get("burst_minutes", 10), burst.get("burst_min", 5)
    assert rows == expected_access_denied(truth.scoped(**period), minutes, least)
    records = [e for e in truth.scoped(**period) if e.error_code]
    denied = [
        e for e in records if re.search(r"AccessDenied|UnauthorizedOperation", e.error_code or "")
    ]
    assert sum(r["denied_calls"] for r in rows) == len(denied)
    if not period:
        assert len(denied) == 117
        if not burst:
            assert all(r["bursts"] == 0 for r in rows)  # no actor is denied 5 times in 10 minutes
        if burst.get("burst_minutes") == 1440:
            assert sum(r["bursts"] for r in rows) > 0


def query_defaults(name: str) -> dict[str, Any]:
    """Every declared parameter of queries/NAME.sql bound to its header default."""
    return {k: default(*spec) for k, spec in read_header(QUERIES / f"{name}.sql").params.items()}


def test_access_denied_bursts_on_synthetic_rows() -> None:
    """Bursts with denials logged in the same second (CloudTrail times are whole seconds), with
    default burst_minutes (10) and burst_min (5); no sample needed."""
    day1, day2 = datetime(2026, 7, 1, 10, tzinfo=UTC), datetime(2026, 7, 2, 9, tzinfo=UTC)
    noon = datetime(2026, 7, 3, 12, tzinfo=UTC)
    one_pm = datetime(2026, 7, 4, 13, tzinfo=UTC)
    denials = {
        # 5 one minute apart (hot only at the 5th), a day later 5 in one second: two bursts.
        "mallory": [day1 + timedelta(minutes=n) for n in range(5)] + [day2] * 5,
        # 5 at once, 5 more exactly 10 minutes later (windows touch: the same burst), 5 more
        # 10 minutes and 1 second after those (a new burst).
        "eve": [noon] * 5
        + [noon + timedelta(minutes=10)] * 5
        + [noon + timedelta(minutes=20, seconds=1)] * 5,
        # Hot at 13:00 and 13:09, not hot at 13:15 (2 in its window), hot again at 13:19, 10
        # minutes after 13:09: a denial that is not hot does not split a burst.
        "trent": [one_pm] * 5
        + [one_pm + timedelta(minutes=9), one_pm + timedelta(minutes=15)]
        + [one_pm + timedelta(minutes=19)] * 4,
        # 4 in one second: never 5 in a window.
        "oscar": [day2] * 4,
    }
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE events_classified (event_id VARCHAR, event_time TIMESTAMPTZ,"
        " actor_kind VARCHAR, agent_name VARCHAR, human_id VARCHAR, principal VARCHAR,"
        " principal_arn VARCHAR, recipient_account_id VARCHAR, event_source VARCHAR,"
        " event_name VARCHAR, error_code VARCHAR)"
    )
    for person, times in denials.items():
        for n, when in enumerate(times):
            con.execute(
                "INSERT INTO events_classified VALUES ($id, $t, 'human', NULL, $person, $arn,"
                " $arn, $acct, 's3.amazonaws.com', 'GetObject', 'AccessDenied')",
                {"id": f"{person}-{n:02d}", "t": when, "person": person,
                 "arn": f"arn:aws:iam::{DEV}:user/{person}", "acct": DEV},
            )  # fmt: skip
    # A successful call and an error that is not a denial are not denials.
    con.execute(
        "INSERT INTO events_classified VALUES ('ok', $t, 'human', NULL, 'oscar', 'arn', 'arn',"
        " $acct, 's3.amazonaws.com', 'GetObject', NULL), ('throttled', $t, 'human', NULL,"
        " 'oscar', 'arn', 'arn', $acct, 's3.amazonaws.com', 'GetObject', 'ThrottlingException')",
        {"t": day2, "acct": DEV},
    )
    sql = (QUERIES / "access_denied.sql").read_text(encoding="utf-8")
    params = query_defaults("access_denied")
    assert (params["burst_minutes"], params["burst_min"]) == (10, 5)
    cursor = con.execute(sql, params)
    columns = [d[0] for d in cursor.description]
    got = {r[1]: dict(zip(columns, r, strict=True)) for r in cursor.fetchall()}
    assert [
        (a, got[a]["denied_calls"], got[a]["max_in_window"], got[a]["bursts"],
         got[a]["first_burst_at"], got[a]["first_denied"], got[a]["last_denied"])
        for a in got
    ] == [
        ("eve", 15, 10, 2, noon, noon, noon + timedelta(minutes=20, seconds=1)),
        ("mallory", 10, 5, 2, day1 + timedelta(minutes=4), day1, day2),
        ("trent", 11, 6, 1, one_pm, one_pm, one_pm + timedelta(minutes=19)),
        ("oscar", 4, 4, 0, None, day2, day2),
    ]  # fmt: skip
    assert all(
        (r["actor_kind"], r["principals"], r["denied_actions"], r["error_codes"])
        == ("human", f"arn:aws:iam::{DEV}:user/{a}", 1, "AccessDenied")
        for a, r in got.items()
    )
    # The oracle of test_access_denied reads the header the same way.
    for person, times in denials.items():
        counts, periods = burst_periods(sorted(times), 10, 5)
        assert (max(counts), len(periods)) == (got[person]["max_in_window"], got[person]["bursts"])


# --- session_chains ----------------------------------------------------------------------


@pytest.mark.usefixtures("require_iam")
@pytest.mark.parametrize("period", PERIODS)
def test_session_chains(warehouse: Warehouse, truth: Truth, period: dict[str, Any]) -> None:
    rows = run_period(warehouse, "session_chains", period)
    since, until = period.get("since"), period.get("until")
    sessions = truth.sessions
    by_key = grouped(
        (e for e in truth.scoped(since, until) if e.access_key in sessions), lambda e: e.access_key
    )
    patterns = grouped(
        (s for s in sessions.values() if in_period(s.issued_at, since, until)),
        lambda s: (
            sessions[s.root_key].caller_type,
            sessions[s.root_key].caller,
            sessions[s.root_key].role_arn,
            s.depth,
            s.role_arn,
            s.issued_by_call,
            s.chain_source_identity,
            tag_text(s.effective_tags),
        ),
    )
    expected = []
    for key, ss in patterns.items():
        root_caller_type, root_caller, root_role_arn, depth, role_arn, call, source, tags = key
        es = [e for s in ss for e in by_key.get(s.issued_key, [])]
        expected.append(
            {
                "root_caller_type": root_caller_type,
                "root_caller": root_caller,
                "root_role_arn": root_role_arn,
                "chain_depth": depth,
                "role_arn": role_arn,
                "role_account_id": max(s.role_account for s in ss),
                "issued_by_call": call,
                "source_identity": source,
                "effective_tags": tags,
                "transitive_tag_keys": joined(k for s in ss for k in s.transitive),
                "sessions": len(ss),
                "first_issued_at": min(s.issued_at for s in ss),
                "last_issued_at": max(s.issued_at for s in ss),
                "first_issued_key": min((s.issued_at, s.issued_key) for s in ss)[1],
                "last_issued_key": max((s.issued_at, s.issued_key) for s in ss)[1],
                "calls": len(es),
                "failed_calls": failed(es),
                "first_call": earliest(es) if es else None,
                "last_call": latest(es) if es else None,
                "actor_kinds": joined(e.kind for e in es),
                "agent_names": joined(e.agent_name for e in es),
            }
        )
    expected.sort(
        key=lambda r: (
            r["first_issued_at"],
            r["root_caller"] is None,
            r["root_caller"] or "",
            r["chain_depth"],
            r["role_arn"],
            r["first_issued_key"],
        )
    )
    assert rows == expected
    if not period:
        assert sum(r["sessions"] for r in rows) == 453
        # cost-explorer: ECS task role (root) -> tagged AgentMcpRole -> prod AgentReadOnlyRole,
        # whose tags arrive only as incomingTransitiveTags and whose source identity is erin's.
        deepest = [r for r in rows if r["chain_depth"] == 2]
        mcp = [r for r in deepest if r["root_caller"] == "ecs-tasks.amazonaws.com"]
        assert sum(r["sessions"] for r in mcp) == 24
        for r in mcp:
            assert r["role_arn"] == "arn:aws:iam::222222222222:role/agents/AgentReadOnlyRole"
            assert r["effective_tags"] == "MCPServer=cost-explorer-mcp,Usage=Agent"
            assert r["source_identity"] == "erin@example.com"
        # The harness: EC2 instance role (root) -> AgentHarnessRole tagged Usage=Agent, not
        # transitively -> AppDeployRole, which carries no tag.
        harness = [r for r in deepest if r["root_caller"] == "ec2.amazonaws.com"]
        assert sum(r["sessions"] for r in harness) == 5
        for r in harness:
            assert r["role_arn"] == "arn:aws:iam::111111111111:role/AppDeployRole"
            assert r["effective_tags"] is None
            assert r["agent_names"] == "AgentHarnessRole"
        assert sum(r["sessions"] for r in deepest) == 24 + 5


def test_session_chains_scope(warehouse: Warehouse, truth: Truth) -> None:
    rows = run(warehouse, "session_chains", account=PROD, principal="erin@example.com", **Q3)
    assert rows
    assert {r["role_arn"] for r in rows} == {
        "arn:aws:iam::222222222222:role/agents/AgentReadOnlyRole"
    }
    expected = {
        s.issued_key
        for s in truth.sessions.values()
        if s.role_account == PROD
        and s.chain_source_identity == "erin@example.com"
        and in_period(s.issued_at, Q3["since"], Q3["until"])
    }
    assert sum(r["sessions"] for r in rows) == len(expected)
    assert {r["first_issued_key"] for r in rows} <= expected


# --- new_services ------------------------------------------------------------------------


@pytest.mark.usefixtures("require_iam")
@pytest.mark.parametrize("period", PERIODS)
def test_new_services(warehouse: Warehouse, truth: Truth, period: dict[str, Any]) -> None:
    rows = run_period(warehouse, "new_services", period)
    since, until = period.get("since"), period.get("until")
    history = [e for e in truth.events if until is None or e.time < until]
    first_use: dict[tuple[str, str], Event] = {}
    first_seen: dict[str, datetime] = {}
    for e in history:  # time-sorted: the first one wins
        first_use.setdefault((e.principal, e.source), e)
        first_seen.setdefault(e.principal, e.time)
    in_scope = grouped(
        (e for e in history if since is None or e.time >= since), lambda e: (e.principal, e.source)
    )
    expected = [
        {
            "principal": principal,
            "event_source": source,
            "first_used_at": first.time,
            "first_event_id": first.event_id,
            "first_event_name": first.name,
            "first_actor_kind": first.kind,
            "first_agent_name": first.agent_name,
            "calls": len(in_scope[(principal, source)]),
            "actions": len({e.name for e in in_scope[(principal, source)]}),
            "actor_kinds": joined(e.kind for e in in_scope[(principal, source)]),
            "new_principal": since is None or first_seen[principal] >= since,
        }
        for (principal, source), first in first_use.items()
        if since is None or first.time >= since
    ]
    expected.sort(key=lambda r: (r["first_used_at"], r["principal"], r["event_source"]))
    assert rows == expected
    if period:
        # Q3 news: dan's managed MCP (both record shapes, the OAuth grant, Cost Explorer),
        # ReportAgentRole, created in July, alice in AgentReadOnlyRole (her SwitchRole, a
        # console ListRoles), and what Q3 first saw by chance: the bypass updating Lambda code,
        # CloudFormation creating a log stream with GitHub Actions' credentials.
        assert {(r["principal"].rsplit("/", 1)[-1], r["event_source"]) for r in rows} == {
            ("AWSReservedSSO_DeveloperAccess_fedcba9876543210", "signin.amazonaws.com"),
            ("AWSReservedSSO_DeveloperAccess_fedcba9876543210", "aws-mcp.amazonaws.com"),
            ("AWSReservedSSO_DeveloperAccess_fedcba9876543210", "aws-mcp.us-east-1.api.aws"),
            ("AWSReservedSSO_DeveloperAccess_fedcba9876543210", "ce.amazonaws.com"),
            ("ReportAgentRole", "ce.amazonaws.com"),
            ("ReportAgentRole", "monitoring.amazonaws.com"),
            ("AgentReadOnlyRole", "signin.amazonaws.com"),
            ("AgentReadOnlyRole", "iam.amazonaws.com"),
            ("AgentMcpRole", "lambda.amazonaws.com"),
            ("GitHubDeployRole", "logs.amazonaws.com"),
            # dan's agent's GetCallerIdentity with the AppDeployRole key it minted through MCP
            ("AppDeployRole", "sts.amazonaws.com"),
        }


# --- principals --------------------------------------------------------------------------


@pytest.mark.usefixtures("require_iam")
@pytest.mark.parametrize("period", PERIODS)
def test_principals(warehouse: Warehouse, truth: Truth, period: dict[str, Any]) -> None:
    rows = run_period(warehouse, "principals", period)
    expected = []
    observed_by = {}
    for principal, es in grouped(truth.scoped(**period), lambda e: e.principal).items():
        kinds: dict[str, int] = defaultdict(int)
        for e in es:
            kinds[e.kind] += 1
        role_events = [e for e in es if e.issuer.get("userName")]
        seen = None
        if role_events:
            issuer = role_events[0].issuer
            seen = truth.agent_role_at(issuer["accountId"], issuer["userName"], latest(es))
        observed_by[principal] = seen
        session_tags = {
            (k, v)
            for e in es
            if e.access_key in truth.sessions
            for k, v in truth.sessions[e.access_key].effective_tags.items()
        }
        expected.append(
            {
                "principal": principal,
                "principal_types": joined(e.identity_type for e in es),
                "accounts": joined(e.account for e in es),
                "primary_kind": min(kinds, key=lambda k: (-kinds[k], k)),
                "actor_kinds": joined(kinds),
                "calls": len(es),
                **{
                    f"{k}_calls": kinds.get(k, 0)
                    for k in ("agent", "human", "workload", "service", "unknown")
                },
                "agent_names": joined(e.agent_name for e in es),
                "people": joined(e.human_id for e in es),
                "first_seen": earliest(es),
                "last_seen": latest(es),
                "in_iam_snapshot": principal in truth.iam_tags,
                "iam_tags": tag_text(truth.iam_tags.get(principal, {})),
                "agent_role": seen.is_agent if seen else None,
                "session_tags": joined(f"{k}={v}" for k, v in session_tags),
            }
        )
    expected.sort(key=lambda r: r["principal"])
    for r in rows:
        seen = observed_by[r["principal"]]
        got = r.pop("agent_role_observed_by")
        assert (got is None) if seen is None else seen.matches(got), r["principal"]
    assert rows == expected
    by_principal = {r["principal"]: r for r in rows}
    harness = by_principal["arn:aws:iam::111111111111:role/agents/AgentHarnessRole"]
    assert (harness["iam_tags"], harness["agent_role"], harness["session_tags"]) == (
        "Usage=Agent",
        True,
        "Usage=Agent",
    )
    report = by_principal["arn:aws:iam::111111111111:role/ReportAgentRole"]
    assert (report["in_iam_snapshot"], report["agent_role"]) == (False, True)  # CreateRole in Q3
    developer = by_principal[
        "arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_DeveloperAccess_fedcba9876543210"
    ]
    assert developer["actor_kinds"] == "agent,human"


# --- top_talkers, regions_by_actor, console_vs_cli_vs_mcp --------------------------------


@pytest.mark.usefixtures("require_iam")
@pytest.mark.parametrize(
    ("period", "limit"),
    [
        pytest.param({}, None, id="all"),
        pytest.param(Q3, None, id="2026Q3"),
        pytest.param({}, 3, id="all-top-3"),
    ],
)
def test_top_talkers(
    warehouse: Warehouse, truth: Truth, period: dict[str, Any], limit: int | None
) -> None:
    rows = run_period(warehouse, "top_talkers", period, **({"limit_rows": limit} if limit else {}))
    events = list(truth.scoped(**period))
    actors = grouped(events, lambda e: (e.kind, e.actor))
    ranked = sorted(actors.items(), key=lambda item: (-len(item[1]), item[0]))[: limit or 20]
    expected = [
        {
            "rank": n,
            "actor_kind": kind,
            "actor": actor,
            "calls": len(es),
            "failed_calls": failed(es),
            "principals": len({e.principal for e in es}),
            "actions": len({(e.source, e.name) for e in es}),
            "regions": len({e.region for e in es}),
            "accounts": len({e.account for e in es}),
            "first_seen": earliest(es),
            "last_seen": latest(es),
        }
        for n, ((kind, actor), es) in enumerate(ranked, start=1)
    ]
    assert_pct(pop_pct(rows, "share_pct"), [100 * r["calls"] / len(events) for r in expected])
    assert rows == expected
    if not period:
        assert (rows[0]["actor_kind"], rows[0]["actor"], rows[0]["calls"]) == (
            "human",
            "alice@example.com",
            861,  # her console events, the 18 in AgentReadOnlyRole included (its session name)
        )


@pytest.mark.usefixtures("require_iam")
@pytest.mark.parametrize("period", PERIODS)
def test_regions_by_actor(warehouse: Warehouse, truth: Truth, period: dict[str, Any]) -> None:
    rows = run_period(warehouse, "regions_by_actor", period)
    events = list(truth.scoped(**period))
    totals = {a: len(es) for a, es in grouped(events, lambda e: (e.kind, e.actor)).items()}
    groups = grouped(events, lambda e: (e.kind, e.actor, e.region))
    expected = [
        {
            "actor_kind": kind,
            "actor": actor,
            "aws_region": region,
            "calls": len(es),
            "failed_calls": failed(es),
            "principals": len({e.principal for e in es}),
            "accounts": joined(e.account for e in es),
            "first_seen": earliest(es),
            "last_seen": latest(es),
        }
        for (kind, actor, region), es in sorted(groups.items())
    ]
    assert_pct(
        pop_pct(rows, "share_of_actor_pct"),
        [100 * r["calls"] / totals[(r["actor_kind"], r["actor"])] for r in expected],
    )
    assert rows == expected
    assert sum(r["calls"] for r in rows) == len(events)


@pytest.mark.usefixtures("require_iam")
@pytest.mark.parametrize("period", PERIODS)
def test_console_vs_cli_vs_mcp(warehouse: Warehouse, truth: Truth, period: dict[str, Any]) -> None:
    rows = run_period(warehouse, "console_vs_cli_vs_mcp", period)
    events = list(truth.scoped(**period))
    expected = []
    for client, es in grouped(events, lambda e: e.client).items():
        kinds = defaultdict(int)
        for e in es:
            kinds[e.kind] += 1
        expected.append(
            {
                "client": client,
                "calls": len(es),
                **{
                    f"{k}_calls": kinds[k]
                    for k in ("agent", "human", "workload", "service", "unknown")
                },
                "principals": len({e.principal for e in es}),
                "first_seen": earliest(es),
                "last_seen": latest(es),
            }
        )
    expected.sort(key=lambda r: (-r["calls"], r["client"]))
    assert_pct(pop_pct(rows, "share_pct"), [100 * r["calls"] / len(events) for r in expected])
    assert rows == expected
    assert sum(r["calls"] for r in rows) == len(events)
    mcp = next(r for r in rows if r["client"] == "mcp")
    assert mcp["calls"] == mcp["agent_calls"]  # only agents use MCP clients in the sample


# --- unjoined_sessions -------------------------------------------------------------------


@pytest.mark.parametrize("period", PERIODS)
def test_unjoined_sessions(warehouse: Warehouse, truth: Truth, period: dict[str, Any]) -> None:
    rows = run_period(warehouse, "unjoined_sessions", period)
    data_start = truth.events[0].time
    unjoined = [
        e
        for e in truth.scoped(**period)
        # A call without an accessKeyId joins no issuing event either (README, rule 4).
        if e.identity_type == "AssumedRole"
        and (not e.access_key or e.access_key not in truth.sessions)
    ]

    def reason(e: Event) -> str:
        issuer = e.issuer["arn"]
        if SSO_PATH in issuer:
            return "identity_center"
        if SERVICE_ROLE_PATH in issuer:
            return "service_linked_role"
        if (
            e.record.get("sessionCredentialFromConsole") == "true"
            or e.record.get("eventType") == "AwsConsoleSignIn"
        ):
            return "console"
        if e.session_created_at is not None and e.session_created_at < data_start:
            return "issued_before_data"
        return "no_issuing_event"

    expected = []
    for (why, role), es in grouped(unjoined, lambda e: (reason(e), e.issuer["arn"])).items():
        sessions = grouped(es, lambda e: (e.arn, e.session_created_at))
        agents = [e for e in es if e.kind == "agent"]
        expected.append(
            {
                "reason": why,
                "role_arn": role,
                "sessions": len(sessions),
                "agent_sessions": sum(
                    any(e.kind == "agent" for e in ses) for ses in sessions.values()
                ),
                "sample_access_key": min((e.time, e.arn, e.access_key) for e in es)[2],
                "calls": len(es),
                "agent_calls": len(agents),
                "console_calls": sum(
                    e.record.get("sessionCredentialFromConsole") == "true" for e in es
                ),
                "actor_kinds": joined(e.kind for e in es),
                "agent_names": joined(e.agent_name for e in es),
                "people": joined(e.human_id for e in es),
                "accounts": joined(e.account for e in es),
                "first_call": earliest(es),
                "last_call": latest(es),
                "first_session": min((e.time, e.arn) for e in es)[1],
                "last_session": max((e.time, e.arn) for e in es)[1],
                "first_agent_session": min((e.time, e.arn) for e in agents)[1] if agents else None,
            }
        )
    expected.sort(
        key=lambda r: (not r["agent_sessions"], r["first_call"], r["role_arn"], r["reason"])
    )
    assert rows == expected
    if not period:
        # Agent sessions without an issuing event: dan's managed-MCP sessions (15), frank's
        # awslabs sessions (27) and grace's (1), all on Identity Center roles whose keys come
        # from the portal, and 8 sessions (principal and creationDate) of dan's keyless MCP
        # OAuth grant refreshes that no call with a key shares.
        assert sum(r["agent_sessions"] for r in rows) == 43 + 8
        # alice's console requests after her SwitchRole into AgentReadOnlyRole: the console
        # issues those keys without an STS event in the trail, an expected gap. No key is
        # unexpectedly unjoined.
        assert {r["reason"] for r in rows} == {"identity_center", "service_linked_role", "console"}
        switched = [r for r in rows if r["reason"] == "console"]
        assert [r["role_arn"].rsplit("/", 1)[1] for r in switched] == ["AgentReadOnlyRole"]
        assert switched[0]["agent_sessions"] == 0
        # Every assumed-role call, with a key or without one (which joins nothing either):
        # alice's console calls on her SSO role (843, sign-ins without a key) and in
        # AgentReadOnlyRole (18, 2 SwitchRole events without a key), dan's managed MCP (223,
        # OAuth grants without a key), frank (168), grace's aws-api-mcp-server (5, its
        # AssumeRole included), the people's CLI calls on DeveloperAccess and what
        # CloudFormation did with bob's (712, 2 `aws login` grants without a key) and Config's
        # service-linked role (520).
        assert sum(r["calls"] for r in rows) == 843 + 18 + 223 + 168 + 5 + 712 + 520


# --- coverage ----------------------------------------------------------------------------


def gap_runs(missing: list[date]) -> list[int]:
    runs: list[int] = []
    for n, day in enumerate(missing):
        if n and missing[n - 1] == day - timedelta(days=1):
            runs[-1] += 1
        else:
            runs.append(1)
    return runs


@pytest.mark.parametrize(
    "period",
    [
        *PERIODS,
        pytest.param(
            {
                "since": datetime(2026, 9, 29, tzinfo=UTC),
                "until": datetime(2026, 10, 3, tzinfo=UTC),
                "account": PROD,
            },
            id="prod-past-the-end",
        ),
    ],
)
def test_coverage(warehouse: Warehouse, truth: Truth, period: dict[str, Any]) -> None:
    rows = run_period(warehouse, "coverage", period)
    since, until, account = period.get("since"), period.get("until"), period.get("account")
    events = list(truth.scoped(since, until, account))
    # The header: the warehouse's first day without since; no day after today or the
    # warehouse's last day, whichever is later (an open end without until); never before the
    # day before the start (an empty span).
    today = datetime.now(UTC).date()
    latest_end = max(today, *(e.day for e in truth.events))
    start = since.date() if since else min(e.day for e in truth.events)
    end = min((until - timedelta(microseconds=1)).date(), latest_end) if until else latest_end
    end = max(end, start - timedelta(days=1))
    span = days(start, end)
    streams = sorted({(e.account, e.region) for e in truth.events if account in (None, e.account)})
    per_stream = grouped(events, lambda e: (e.account, e.region))
    expected = []
    for acct, region in streams:
        es = per_stream.get((acct, region), [])
        present = {e.day for e in es}
        missing = [d for d in span if d not in present]
        expected.append(
            {
                "recipient_account_id": acct,
                "aws_region": region,
                "span_start": start,
                "span_end": end,
                "span_days": len(span),
                "days_with_events": len(present),
                "gap_days": len(missing),
                "gap_runs": len(gap_runs(missing)),
                "longest_gap_days": max(gap_runs(missing), default=0),
                "missing_days": missing,
                "first_day": min(present, default=None),
                "last_day": max(present, default=None),
                "events": len(es),
            }
        )
    objects = [r.pop("source_objects") for r in rows]
    assert rows == expected
    # Source files: exact unless a duplicated event's kept copy is the only record of a file.
    for got, r in zip(objects, expected, strict=True):
        es = per_stream.get((r["recipient_account_id"], r["aws_region"]), [])
        single = {
            next(iter(truth.copies[e.event_id])) for e in es if len(truth.copies[e.event_id]) == 1
        }
        either = {f for e in es for f in truth.copies[e.event_id]}
        assert len(single) <= got <= len(either)
    if not period:
        assert len(rows) == 4
        # All data is an open end: the sample's 183 days, then every day to today missing.
        last = date(2026, 9, 30)
        assert all(r["span_days"] == 183 + max(0, (today - last).days) for r in rows)
        assert all(r["last_day"] <= last for r in rows)
        days_per_stream = {
            (r["recipient_account_id"], r["aws_region"]): r["days_with_events"] for r in rows
        }
        assert days_per_stream == {
            (DEV, "us-east-1"): 145,
            (DEV, "eu-west-1"): 106,
            (PROD, "eu-west-1"): 126,
            (PROD, "us-east-1"): 106,
        }


def test_coverage_without_region_on_synthetic_rows() -> None:
    """Events without awsRegion (or recipientAccountId), which ingest accepts, form a stream of
    their own with that column NULL: counted once, their days present there and nowhere else."""
    acct = "333333333333"
    rows = [
        (acct, "us-east-1", datetime(2026, 7, 1, 8, tzinfo=UTC), "s3://b/a.json.gz"),
        (acct, "us-east-1", datetime(2026, 7, 1, 9, tzinfo=UTC), "s3://b/a.json.gz"),
        (acct, "us-east-1", datetime(2026, 7, 3, 9, tzinfo=UTC), "s3://b/b.json.gz"),
        (acct, None, datetime(2026, 7, 2, 9, tzinfo=UTC), "s3://b/c.json.gz"),
        (acct, None, datetime(2026, 7, 4, 23, 59, 59, tzinfo=UTC), "s3://b/c.json.gz"),
        (acct, "eu-west-1", datetime(2026, 6, 15, 9, tzinfo=UTC), "s3://b/d.json.gz"),  # before
        (None, "us-east-1", datetime(2026, 7, 4, 9, tzinfo=UTC), "s3://b/e.json.gz"),
    ]
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE events (recipient_account_id VARCHAR, aws_region VARCHAR,"
        " event_time TIMESTAMPTZ, event_date DATE, source_uri VARCHAR)"
    )
    for account, region, when, uri in rows:
        con.execute(
            "INSERT INTO events VALUES ($acct, $region, $t, $day, $uri)",
            {"acct": account, "region": region, "t": when, "day": when.date(), "uri": uri},
        )
    sql = (QUERIES / "coverage.sql").read_text(encoding="utf-8")

    def coverage(**params: Any) -> Rows:
        cursor = con.execute(sql, {**query_defaults("coverage"), **params})
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, r, strict=True)) for r in cursor.fetchall()]

    got = coverage(since=datetime(2026, 7, 1, tzinfo=UTC), until=datetime(2026, 7, 5, tzinfo=UTC))
    start, end = date(2026, 7, 1), date(2026, 7, 4)
    d = {n: date(2026, 7, n) for n in range(1, 5)}
    columns = (
        "recipient_account_id", "aws_region", "span_start", "span_end", "span_days",
        "days_with_events", "gap_days", "gap_runs", "longest_gap_days", "missing_days",
        "first_day", "last_day", "events", "source_objects",
    )  # fmt: skip
    assert got == [
        dict(zip(columns, values, strict=True))
        for values in [
            (acct, "eu-west-1", start, end, 4, 0, 4, 1, 4, [d[1], d[2], d[3], d[4]],
             None, None, 0, 0),
            (acct, "us-east-1", start, end, 4, 2, 2, 2, 1, [d[2], d[4]], d[1], d[3], 3, 2),
            (acct, None, start, end, 4, 2, 2, 2, 1, [d[1], d[3]], d[2], d[4], 2, 1),
            (None, "us-east-1", start, end, 4, 1, 3, 1, 3, [d[1], d[2], d[3]], d[4], d[4], 1, 1),
        ]
    ]  # fmt: skip
    # Over all the data every event is counted exactly once, in the span from 2026-06-15 (the
    # first day in the warehouse) to today (an open end).
    everything = coverage()
    assert [(r["recipient_account_id"], r["aws_region"], r["events"]) for r in everything] == [
        (acct, "eu-west-1", 1),
        (acct, "us-east-1", 3),
        (acct, None, 2),
        (None, "us-east-1", 1),
    ]
    today = datetime.now(UTC).date()
    assert all(r["span_days"] == (today - date(2026, 6, 15)).days + 1 for r in everything)
    assert all(r["gap_days"] == len(r["missing_days"]) for r in everything)
    # With account set, the account's region-less stream stays; the account-less one goes.
    assert [r["aws_region"] for r in coverage(account=acct)] == ["eu-west-1", "us-east-1", None]
    # A since before CloudTrail began starts the span on its launch day, not in the year 1.
    ancient = coverage(since=datetime(1, 1, 1, tzinfo=UTC), until=datetime(2026, 7, 5, tzinfo=UTC))
    launch = date(2013, 11, 13)
    assert {(r["span_start"], r["span_end"], r["span_days"]) for r in ancient} == {
        (launch, end, (end - launch).days + 1)
    }
    assert ancient[1]["gap_days"] == (end - launch).days + 1 - 2

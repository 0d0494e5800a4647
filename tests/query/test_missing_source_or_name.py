"""Events without eventSource or eventName (ingest accepts them: SIEM exports drop fields) count
in the named queries: a distinct eventSource/eventName pair with a NULL in it is a pair of its
own, and an event without eventSource is a service of its own in new_services.

`count(DISTINCT event_source || ' ' || event_name)` skipped them (the text is NULL when either
is), and new_services joined on `event_source =`, which never matches NULL.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.ingest import run_ingest
from pipeline.query.library import Scope, run_query

from .conftest import make_settings

ACCOUNT = "111111111111"
AGENT_ROLE = "bot-agent-role"  # an agent role through [attribution] agent_role_patterns
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = f"arn:aws:iam::{ACCOUNT}:user/bob"
AGENT = f"arn:aws:iam::{ACCOUNT}:role/{AGENT_ROLE}"
SETTINGS = {"attribution.agent_role_patterns": ("%-agent-role",)}
MISSING = object()  # a field left out of the record


def _user(name: str) -> dict[str, Any]:
    return {
        "type": "IAMUser",
        "principalId": f"AIDA{name.upper()}",
        "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
        "accountId": ACCOUNT,
        "accessKeyId": f"AKIA{name.upper()}",
        "userName": name,
    }


def _agent_session() -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "principalId": "AROABOT:run-1",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{AGENT_ROLE}/run-1",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIABOTRUN1",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROABOT",
                "arn": AGENT,
                "accountId": ACCOUNT,
                "userName": AGENT_ROLE,
            },
            "attributes": {"creationDate": "2026-08-05T09:00:00Z", "mfaAuthenticated": "false"},
        },
    }


def _record(
    n: int, when: str, identity: dict[str, Any], source: object, name: object, **fields: Any
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "eventID": f"missing-{n:02d}",
        "eventTime": when,
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0 Python/3.11",
        "requestID": f"REQ{n:02d}",
        "readOnly": True,
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT,
        "userIdentity": identity,
        **fields,
    }
    return {k: v for k, v in record.items() if v is not MISSING}


S3, EC2 = "s3.amazonaws.com", "ec2.amazonaws.com"
DENIED = {"errorCode": "AccessDenied", "errorMessage": "not authorized"}
RECORDS = [
    # alice: pairs (s3, ListBuckets), (-, ListBuckets), (s3, -), (-, -), (-, DeleteUser); the
    # last three denied are (-, ListBuckets), (s3, ListBuckets), (-, DeleteUser).
    _record(1, "2026-08-05T10:00:00Z", _user("alice"), S3, "ListBuckets"),
    _record(2, "2026-08-05T10:00:01Z", _user("alice"), MISSING, "ListBuckets"),
    _record(3, "2026-08-05T10:00:02Z", _user("alice"), S3, MISSING),
    _record(4, "2026-08-05T10:00:03Z", _user("alice"), MISSING, MISSING),
    _record(5, "2026-08-05T10:00:04Z", _user("alice"), MISSING, "ListBuckets", **DENIED),
    _record(6, "2026-08-05T10:00:05Z", _user("alice"), S3, "ListBuckets", **DENIED),
    _record(7, "2026-08-05T10:00:06Z", _user("alice"), MISSING, "DeleteUser", **DENIED),
    # The next day: alice again without eventSource (not new), bob's first call without it.
    _record(8, "2026-08-06T10:00:00Z", _user("alice"), MISSING, "GetUser"),
    _record(9, "2026-08-06T11:00:00Z", _user("bob"), MISSING, "ListUsers"),
    _record(10, "2026-08-06T11:00:01Z", _user("bob"), MISSING, MISSING),
    # The agent role's own calls, no MCP mark: the bypass, with pairs (ec2, DescribeInstances),
    # (-, DescribeInstances), (ec2, -).
    _record(11, "2026-08-05T12:00:00Z", _agent_session(), EC2, "DescribeInstances"),
    _record(12, "2026-08-05T12:00:01Z", _agent_session(), MISSING, "DescribeInstances"),
    _record(13, "2026-08-05T12:00:02Z", _agent_session(), EC2, MISSING),
    _record(14, "2026-08-05T12:00:03Z", _agent_session(), EC2, "DescribeInstances"),
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("missing-source")
    logs = base / "logs"
    logs.mkdir()
    (logs / "export.json").write_text(json.dumps({"Records": RECORDS}))
    root = base / "warehouse"
    run_ingest([str(logs)], make_settings(root, **SETTINGS))
    return root


def run(warehouse: Path, name: str, **kwargs: Any) -> list[dict[str, Any]]:
    return run_query(make_settings(warehouse, **SETTINGS), name, **kwargs).table.to_pylist()


def test_the_events_are_in_the_warehouse_with_null_source_or_name(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse / "agenttrail.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT event_id, event_source, event_name FROM events"
            " WHERE event_source IS NULL OR event_name IS NULL ORDER BY event_id"
        ).fetchall()
    assert rows == [
        ("missing-02", None, "ListBuckets"),
        ("missing-03", S3, None),
        ("missing-04", None, None),
        ("missing-05", None, "ListBuckets"),
        ("missing-07", None, "DeleteUser"),
        ("missing-08", None, "GetUser"),
        ("missing-09", None, "ListUsers"),
        ("missing-10", None, None),
        ("missing-12", None, "DescribeInstances"),
        ("missing-13", EC2, None),
    ]


def test_top_talkers_counts_every_pair(warehouse: Path) -> None:
    rows = run(warehouse, "top_talkers")
    got = {r["actor"]: (r["actor_kind"], r["calls"], r["actions"]) for r in rows}
    assert got == {
        # alice: the five pairs of 2026-08-05 and (-, GetUser).
        "alice": ("human", 8, 6),
        "bob": ("human", 2, 2),
        AGENT_ROLE: ("agent", 4, 3),
    }
    rows = run(warehouse, "top_talkers", scope=Scope(until=date(2026, 8, 5)))
    assert [(r["actor"], r["calls"], r["actions"]) for r in rows] == [
        ("alice", 7, 5),
        (AGENT_ROLE, 4, 3),
    ]


def test_access_denied_counts_every_denied_pair(warehouse: Path) -> None:
    [row] = run(warehouse, "access_denied")
    assert (row["actor"], row["denied_calls"], row["denied_actions"], row["error_codes"]) == (
        "alice",
        3,
        3,
        "AccessDenied",
    )


def test_agent_bypass_counts_every_pair(warehouse: Path) -> None:
    [row] = run(warehouse, "agent_bypass")
    assert (row["agent_name"], row["principal"], row["calls"], row["actions"]) == (
        AGENT_ROLE,
        AGENT,
        4,
        3,
    )


def test_new_services_lists_a_first_use_without_event_source(warehouse: Path) -> None:
    def first_uses(**scope: Any) -> list[tuple[Any, ...]]:
        rows = run(warehouse, "new_services", scope=Scope(**scope))
        return [
            (r["principal"], r["event_source"], r["first_event_id"], r["first_event_name"],
             r["calls"], r["actions"], r["new_principal"])
            for r in rows
        ]  # fmt: skip

    # All data: every first use, the service without eventSource (NULL) one of them; its
    # actions count a missing eventName as one: alice's ListBuckets, DeleteUser, GetUser and -.
    assert first_uses() == [
        (ALICE, S3, "missing-01", "ListBuckets", 3, 2, True),
        (ALICE, None, "missing-02", "ListBuckets", 5, 4, True),
        (AGENT, EC2, "missing-11", "DescribeInstances", 3, 2, True),
        (AGENT, None, "missing-12", "DescribeInstances", 1, 1, True),
        (BOB, None, "missing-09", "ListUsers", 2, 2, True),
    ]
    # From 2026-08-06: bob's first use is new; alice used the NULL service the day before.
    assert first_uses(since=date(2026, 8, 6)) == [
        (BOB, None, "missing-09", "ListUsers", 2, 2, True),
    ]

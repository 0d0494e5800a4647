"""The named queries that read a call's role take it where the rules take it: a record of an
AssumedRole session without a sessionIssuer (no sessionContext, or one without it) names its
role in userIdentity.arn (arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION), so a report
says of that role what the verdicts of its calls took it for.

The warehouse holds the case agent_role_without_session_context (tests/cases/attribute/, whose
verdicts tests/attribute/test_rules.py pins): NoContextAgentRole, tagged Usage=Agent by its
CreateRole, NoContextPlainRole, created untagged, and NoContextHarnessRole, of which no IAM data
speaks; every call of theirs lacks a sessionIssuer, so its principal is its session ARN.
"""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.config import Settings
from pipeline.query.library import Scope, run_query
from tests.attribute.helpers import CASES, ingest

ACCOUNT = "181818181818"
PERIOD = Scope(quarter="2026Q4")


def session(role: str, name: str) -> str:
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{name}"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("no-session-issuer") / "warehouse"
    return ingest([CASES / "agent_role_without_session_context.json"], root)


def query(settings: Settings, name: str) -> list[dict[str, Any]]:
    return run_query(settings, name, scope=PERIOD).table.to_pylist()


def test_principals_give_a_role_session_the_agent_tag_of_the_role_its_arn_names(
    settings: Settings,
) -> None:
    found = {
        r["principal"]: (r["agent_role"], r["agent_role_observed_by"])
        for r in query(settings, "principals")
        if ":assumed-role/" in r["principal"]
    }
    tagged = (True, "CreateRole noctx-create")
    untagged = (False, "CreateRole noctx-create-plain")
    assert found == {
        session("NoContextAgentRole", "noctx-agent"): tagged,
        session("NoContextAgentRole", "noctx-early"): tagged,
        session("NoContextAgentRole", "noctx-attrs"): tagged,
        session("NoContextAgentRole", "noctx-stack"): tagged,
        # A person in the console (human.console_agent_role): the role is still an agent role.
        session("NoContextAgentRole", "nora@example.com"): tagged,
        session("NoContextAgentRole", "sam@corp.example"): tagged,
        session("NoContextPlainRole", "nora"): untagged,
        session("NoContextPlainRole", "plain"): untagged,
        session("NoContextPlainRole", "mcp-plain"): untagged,
        session("NoContextPlainRole", "sam@corp.example"): untagged,
        # No IAM data names the role (its session tags made the call an agent's).
        session("NoContextHarnessRole", "harness"): (None, None),
    }


def test_untagged_agent_roles_reads_the_role_its_arn_names(settings: Settings) -> None:
    """The untagged role's MCP calls are a gap, its role and tag state known; the agent role's
    MCP call (a person's SAML session through the managed server) is tagged, no gap."""
    found = [
        (r["role_account_id"], r["principal"], r["role_name"], r["tag_state"], r["observed_by"],
         r["access_paths"], r["calls"])
        for r in query(settings, "untagged_agent_roles")
    ]  # fmt: skip
    plain = (ACCOUNT, "NoContextPlainRole", "untagged", "CreateRole noctx-create-plain")
    assert sorted(found, key=lambda r: str(r[1])) == [
        (plain[0], session("NoContextPlainRole", "mcp-plain"), *plain[1:], "mcp_self_managed", 1),
        (plain[0], session("NoContextPlainRole", "sam@corp.example"), *plain[1:], "mcp_managed", 1),
    ]


def test_human_roles_via_mcp_leaves_out_the_agent_role_its_arn_names(settings: Settings) -> None:
    """sam's SAML sessions of both roles hand their keys to the managed MCP server: the agent
    role's is the dedicated agent role the guidance asks for, left out; the plain role's is a
    person's own credentials."""
    found = [
        (r["human_id"], r["principal"], r["access_path"], r["identity_kind"], r["calls"])
        for r in query(settings, "human_roles_via_mcp")
    ]
    assert found == [
        (
            "sam@corp.example",
            session("NoContextPlainRole", "sam@corp.example"),
            "mcp_managed",
            "federated",
            1,
        )
    ]

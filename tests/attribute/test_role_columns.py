"""events_classified's role_account_id and role_name: a role session's role as the rules read
it, so that what a named query says of a role is what the verdicts of its calls took it for.

The record's sessionIssuer where it has one; else the role of the session its key joins (the
issuing event names the role the credentials were issued for), else the role its
userIdentity.arn names; NULL for every other identity, a FederatedUser too, whose sessionIssuer
is the IAM user that called GetFederationToken. The cases are those of tests/cases/attribute/
whose verdicts tests/attribute/test_rules.py pins.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.attribute.helpers import CASES, ingest, rows

ROLES = (
    "SELECT event_id, role_account_id, role_name, classified_by FROM events_classified"
    " WHERE principal_type = 'AssumedRole' ORDER BY event_id"
)


def roles(case: str, warehouse: Path) -> list[tuple[str, str | None, str | None, str]]:
    ingest([CASES / f"{case}.json"], warehouse)
    return [
        (r["event_id"], r["role_account_id"], r["role_name"], r["classified_by"])
        for r in rows(warehouse, ROLES)
    ]


def test_the_session_issuer_names_the_role(tmp_path: Path) -> None:
    source = ("111111111111", "TransSourceRole")
    assert roles("transitive_tags_second_account", tmp_path / "w") == [
        ("trans-assume-2-caller-copy", *source, "agent_session.mcp"),
        ("trans-assume-2-role-copy", *source, "agent_session.mcp"),
        ("trans-assume-4-caller-copy", *source, "agent_session.mcp_by_name"),
        ("trans-assume-4-role-copy", *source, "agent_session.mcp_by_name"),
        ("trans-assume-5", "222222222222", "TransTargetRole", "agent_session.mcp"),
        ("trans-call-1", *source, "agent_session.mcp"),
        ("trans-call-2", "222222222222", "TransTargetRole", "agent_session.mcp"),
        ("trans-call-5", "222222222222", "TransAuditRole", "agent_session.mcp"),
    ]


def test_without_a_session_issuer_the_arn_names_the_role(tmp_path: Path) -> None:
    """No sessionContext, or one without its sessionIssuer: the role userIdentity.arn names,
    joined or not, and the rules' verdict agrees (the agent role's calls are the agent's)."""
    agent = ("181818181818", "NoContextAgentRole")
    plain = ("181818181818", "NoContextPlainRole")
    assert roles("agent_role_without_session_context", tmp_path / "w") == [
        ("noctx-call-invoked", *agent, "agent.service_invoked"),
        ("noctx-call-joined", *agent, "agent_role.direct"),
        ("noctx-call-no-issuer", *agent, "agent_role.direct"),
        ("noctx-call-unjoined", *agent, "agent_role.direct"),
        ("noctx-console-call", *agent, "human.console_agent_role"),
        ("noctx-control", *plain, "human.other_role"),
        ("noctx-control-joined", *plain, "human.other_role"),
        ("noctx-harness-early", "181818181818", "NoContextHarnessRole",
         "agent_session.direct_by_name"),
        ("noctx-mcp-untagged", *plain, "awslabs_user_agent"),
        ("noctx-saml-mcp-call", *agent, "mcp_managed.invoked_by"),
        ("noctx-saml-plain-mcp-call", *plain, "mcp_managed.invoked_by"),
    ]  # fmt: skip


def test_the_session_the_key_joins_names_the_role_before_the_arn(tmp_path: Path) -> None:
    """mm-call-arn-agent's ARN names MismatchAgentRole, but its key was issued for
    MismatchPlainRole (and mm-call-arn-plain's the other way round): the issuing event
    decides, as it decides the verdict; mm-mcp-no-arn has no ARN at all."""
    plain = ("202020202020", "MismatchPlainRole")
    assert roles("role_without_session_issuer_other_session_role", tmp_path / "w") == [
        ("mm-call-arn-agent", *plain, "human.other_role"),
        ("mm-call-arn-plain", "202020202020", "MismatchAgentRole", "agent_role.direct"),
        ("mm-mcp-arn-agent", *plain, "mcp_managed.invoked_by"),
        ("mm-mcp-no-arn", *plain, "mcp_managed.invoked_by"),
        ("mm-saml-mcp", *plain, "mcp_managed.invoked_by"),
    ]


def test_each_call_of_a_session_arn_reads_its_own_role(tmp_path: Path) -> None:
    """One session ARN, a call per key: the joined key's session role, the unjoined key's ARN
    role; a sessionIssuer without its ARN names the role by its name (the record has no ARN)."""
    agent = ("292929292929", "LastCallAgentRole")
    plain = ("292929292929", "LastCallPlainRole")
    assert roles("role_session_arn_joined_and_unjoined", tmp_path / "w") == [
        ("lc-issuer-without-arn", *plain, "human.other_role"),
        ("lc-s1-joined", *agent, "agent_role.direct"),
        ("lc-s1-unjoined", *plain, "human.other_role"),
        ("lc-s2-joined", *agent, "agent_role.direct"),
        ("lc-s2-unjoined", *plain, "human.other_role"),
    ]


@pytest.mark.parametrize(
    "case", ["workload_role_pattern_federation_broker", "role_without_session_issuer_other_session_role"]
)
def test_other_identities_have_no_role(case: str, tmp_path: Path) -> None:
    """An IAM user, a SAML user, a federated user (whose sessionIssuer is the IAM user that
    minted it): no role."""
    ingest([CASES / f"{case}.json"], tmp_path / "w")
    found = rows(
        tmp_path / "w",
        "SELECT DISTINCT principal_type, role_account_id, role_name FROM events_classified"
        " WHERE principal_type <> 'AssumedRole' ORDER BY principal_type",
    )
    assert [tuple(r.values()) for r in found] == {
        "workload_role_pattern_federation_broker": [
            ("FederatedUser", None, None),
            ("IAMUser", None, None),
        ],
        "role_without_session_issuer_other_session_role": [
            ("IAMUser", None, None),
            ("SAMLUser", None, None),
        ],
    }[case]


def test_an_empty_arn_names_no_principal(tmp_path: Path) -> None:
    """lc-issuer-without-arn: a role session whose userIdentity.arn is empty and whose
    sessionIssuer names the role but shows no ARN. Its principal is its type and account (as
    for any record that names no identity), not '' shared with every such record; its role is
    the sessionIssuer's name."""
    ingest([CASES / "role_session_arn_joined_and_unjoined.json"], tmp_path / "w")
    found = rows(
        tmp_path / "w",
        "SELECT principal, role_account_id, role_name FROM events_classified"
        " WHERE event_id = 'lc-issuer-without-arn'",
    )
    assert found == [
        {
            "principal": "AssumedRole:292929292929",
            "role_account_id": "292929292929",
            "role_name": "LastCallPlainRole",
        }
    ]

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

from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.config import Settings
from pipeline.query.library import Scope, run_query
from tests.attribute.helpers import CASES, REPO, import_iam, ingest

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


# The cases role_without_session_issuer_other_session_role (account 202020202020: keys that join
# a session of another role than their records' userIdentity.arn names, and a record with no
# userIdentity.arn) and identity_center_role_without_session_issuer (account 212121212121: an
# Identity Center role's session, known by its AWSReservedSSO_ role name). The rules read the
# role of the session the key joins first (tests/attribute/test_rules.py pins their verdicts).
OTHER = "202020202020"
SSO_ACCOUNT = "212121212121"
SSO_ROLE = "AWSReservedSSO_ReadOnlyAccess_1a2b3c4d5e6f7a8b"
IVY = f"arn:aws:sts::{SSO_ACCOUNT}:assumed-role/{SSO_ROLE}/ivy@example.com"


def other_session(role: str, name: str) -> str:
    return f"arn:aws:sts::{OTHER}:assumed-role/{role}/{name}"


@pytest.fixture(scope="module")
def other_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("other-session-role") / "warehouse"
    return ingest(
        [
            CASES / "role_without_session_issuer_other_session_role.json",
            CASES / "identity_center_role_without_session_issuer.json",
        ],
        root,
    )


def test_principals_give_a_session_arn_the_tag_of_the_role_its_key_joins(
    other_settings: Settings,
) -> None:
    """The verdicts read the role of the session the key joins, not the one the ARN names: the
    session ARN naming the agent role was used with a key of the plain role's session (a
    person's, human.other_role), and the one naming the plain role with the agent role's
    (agent_role.direct)."""
    found = {
        r["principal"]: (r["agent_role"], r["agent_role_observed_by"])
        for r in query(other_settings, "principals")
        if r["principal"].startswith(f"arn:aws:sts::{OTHER}:assumed-role/")
    }
    plain, tagged = (False, "CreateRole mm-create-plain"), (True, "CreateRole mm-create-agent")
    assert found == {
        other_session("MismatchAgentRole", "s1"): plain,
        other_session("MismatchPlainRole", "s2"): tagged,
        other_session("MismatchAgentRole", "nils@corp.example"): plain,
    }


def test_untagged_agent_roles_read_the_role_the_key_joins(other_settings: Settings) -> None:
    """The plain role's sessions used through the managed MCP server are a gap whatever role
    their records' ARN names, and so is the call whose record has no ARN; the Identity Center
    role, of which no IAM data speaks, too."""
    found = sorted(
        (r["role_account_id"], r["principal"], r["role_name"], r["tag_state"], r["observed_by"],
         r["calls"])
        for r in query(other_settings, "untagged_agent_roles")
    )  # fmt: skip
    plain = ("MismatchPlainRole", "untagged", "CreateRole mm-create-plain", 1)
    assert found == [
        # No ARN: counted under its type and account, not under ''.
        (OTHER, f"AssumedRole:{OTHER}", *plain),
        (OTHER, other_session("MismatchAgentRole", "nils@corp.example"), *plain),
        (OTHER, other_session("MismatchAgentRole", "s1"), *plain),
        (SSO_ACCOUNT, IVY, SSO_ROLE, "unknown", None, 1),
    ]


def test_human_roles_via_mcp_read_the_role_the_key_joins_and_identity_center_by_name(
    other_settings: Settings,
) -> None:
    """nils's SAML session of the plain role handed to the managed MCP server is a person's own
    credentials, whatever role the record's ARN names; so is ivy's Identity Center role session,
    whose record shows no sessionIssuer (its AWSReservedSSO_ name, as the rules read it)."""
    found = sorted(
        (r["human_id"], r["principal"], r["access_path"], r["identity_kind"], r["calls"])
        for r in query(other_settings, "human_roles_via_mcp")
    )
    assert found == [
        ("ivy@example.com", IVY, "mcp_managed", "identity_center", 1),
        (
            "nils@corp.example",
            other_session("MismatchAgentRole", "nils@corp.example"),
            "mcp_managed",
            "federated",
            1,
        ),
    ]


def test_unjoined_sessions_count_records_without_session_issuer_under_their_role(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The unjoined sessions of records without a sessionIssuer are counted under the role
    their userIdentity.arn names (arn:PARTITION:iam::ACCOUNT:role/NAME: the ARN shows no path),
    one row per role, not all under one role_arn NULL; an AWSReservedSSO_ role's are Identity
    Center's, as the rules read them."""
    root = tmp_path_factory.mktemp("unjoined-no-issuer") / "warehouse"
    settings = ingest(
        [
            CASES / "agent_role_without_session_context.json",
            CASES / "identity_center_role_without_session_issuer.json",
        ],
        root,
    )
    found = sorted(
        (r["reason"], r["role_arn"], r["sessions"], r["agent_sessions"], r["calls"])
        for r in query(settings, "unjoined_sessions")
    )
    role = f"arn:aws:iam::{ACCOUNT}:role/"
    assert found == [
        ("console", f"{role}NoContextAgentRole", 1, 0, 1),
        # ivy's calls without a creationDate are one session, the one with it another.
        ("identity_center", f"arn:aws:iam::{SSO_ACCOUNT}:role/{SSO_ROLE}", 2, 1, 4),
        ("no_issuing_event", f"{role}NoContextAgentRole", 3, 3, 3),
        ("no_issuing_event", f"{role}NoContextHarnessRole", 1, 1, 1),
        ("no_issuing_event", f"{role}NoContextPlainRole", 2, 1, 2),
    ]
    # --principal takes the role ARN the row names.
    scoped = run_query(
        settings,
        "unjoined_sessions",
        scope=Scope(quarter="2026Q4", principal=f"{role}NoContextHarnessRole"),
    ).table.to_pylist()
    assert [(r["reason"], r["role_arn"]) for r in scoped] == [
        ("no_issuing_event", f"{role}NoContextHarnessRole")
    ]


# The case role_session_arn_joined_and_unjoined (account 292929292929): two session ARNs naming
# LastCallPlainRole (created untagged), each used with a key of a session of LastCallAgentRole
# (tagged Usage=Agent by its CreateRole), which the rules read (agent_role.direct), and with a
# key that joins no session, where they read the role the ARN names (human.other_role): s1 with
# the joined key last, s2 with the unjoined key last. And a record whose sessionIssuer names the
# plain role without its ARN, with an empty userIdentity.arn and a key that joins nothing.
LAST = "292929292929"


def last_session(name: str) -> str:
    return f"arn:aws:sts::{LAST}:assumed-role/LastCallPlainRole/{name}"


@pytest.fixture(scope="module")
def last_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("joined-and-unjoined") / "warehouse"
    return ingest([CASES / "role_session_arn_joined_and_unjoined.json"], root)


def test_principals_read_the_role_of_the_latest_call_of_a_session_arn(
    last_settings: Settings,
) -> None:
    """agent_role is the tag of the role the rules read for the call at last_seen: that of the
    session its key joins where it joins one (s1), else the one the ARN names (s2), not the
    larger of the names its calls read."""
    found = {
        r["principal"]: (r["agent_role"], r["agent_role_observed_by"])
        for r in query(last_settings, "principals")
        if r["principal"].startswith(f"arn:aws:sts::{LAST}:assumed-role/")
    }
    assert found == {
        last_session("s1"): (True, "CreateRole lc-create-agent"),
        last_session("s2"): (False, "CreateRole lc-create-plain"),
    }


def test_unjoined_sessions_write_no_role_arn_without_a_partition(last_settings: Settings) -> None:
    """The record whose sessionIssuer has no ARN names its role there, but its userIdentity.arn
    is empty: no partition to write the role ARN with, so role_arn is NULL, as for an absent
    userIdentity.arn (not arn::iam::...)."""
    found = sorted(
        ((r["reason"], r["role_arn"], r["sessions"], r["calls"])
         for r in query(last_settings, "unjoined_sessions")),
        key=lambda r: str(r[1]),
    )  # fmt: skip
    assert found == [
        ("no_issuing_event", None, 1, 1),
        ("no_issuing_event", f"arn:aws:iam::{LAST}:role/LastCallPlainRole", 2, 2),
    ]


@pytest.fixture(scope="module")
def foreign_snapshot_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The case agent_role_without_session_context, with an IAM snapshot of another account
    (111122223333) only."""
    root = tmp_path_factory.mktemp("no-session-issuer-foreign-snapshot") / "warehouse"
    settings = ingest([CASES / "agent_role_without_session_context.json"], root)
    import_iam(
        [REPO / "tests" / "cases" / "iam" / "authorization_details_small.json"],
        settings,
        datetime(2026, 12, 31, tzinfo=UTC),
    )
    return settings


def test_principals_say_nothing_of_a_session_arn_whose_account_no_snapshot_covers(
    foreign_snapshot_settings: Settings,
) -> None:
    """A session ARN (arn:aws:sts::ACCOUNT:assumed-role/...) names its account as a role or
    user ARN does: where no snapshot of that account was imported, in_iam_snapshot is NULL (no
    IAM data could have listed it), not false, whatever snapshots of other accounts hold."""
    found = {
        r["in_iam_snapshot"]
        for r in query(foreign_snapshot_settings, "principals")
        if r["principal"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/")
    }
    assert found == {None}

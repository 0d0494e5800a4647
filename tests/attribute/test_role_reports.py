"""The named queries that report on roles read a role's agent tag on the classification's
timeline (role_agent_intervals, the table the rules join), and only for roles:

- at any time, each says of a role what the verdicts of its calls then took it for (tagged,
  untagged, re-created, of unknown tags, before its first observation), naming the same
  observation;

- human_roles_via_mcp leaves out a role session on a role that is an agent role at the call,
  whoever opened it (a person through AssumeRoleWithSAML too): that is the dedicated agent role
  AWS's guidance asks for, whose direct calls the classification calls agent_role.direct;
- principals gives agent_role to role principals only, never to an IAM user whose
  GetFederationToken sessions name it as their session issuer, whatever role shares its name;
- untagged_agent_roles.tagged_since is when the gap closed for good within the period: a tagging
  after the row's last call that no later observation before the period's end undoes.

Each test builds a small warehouse of its own (the records and export helpers of
test_iam_timeline).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.query.library import Scope, run_query

from .helpers import import_iam, rows
from .test_iam_timeline import (
    ACCOUNT,
    AGENT,
    HUMAN,
    at,
    build,
    call,
    classified_by,
    export,
    iam_event,
    role,
    sid,
)

MCP_SERVER = "aws-mcp.amazonaws.com"
AWSLABS_UA = "aws-cli/2.15.0 md/awslabs#mcp#aws-api-mcp-server#1.0.0"
USAGE_AGENT = [{"key": "Usage", "value": "Agent"}]


def query(settings: Settings, name: str, scope: Scope) -> list[dict[str, Any]]:
    return run_query(settings, name, scope=scope).table.to_pylist()


# ------------------------------------------------------------------------ human_roles_via_mcp
def saml(event_id: str, role_name: str, person: str, key: str, time: str) -> dict[str, Any]:
    """`person` opens a session of `role_name` through AssumeRoleWithSAML (key `key`)."""
    return {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "SAMLUser",
            "principalId": f"Q2hh:{person}",
            "userName": person,
            "identityProvider": f"arn:aws:iam::{ACCOUNT}:saml-provider/Okta",
        },
        "eventTime": time,
        "eventSource": "sts.amazonaws.com",
        "eventName": "AssumeRoleWithSAML",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.44",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/{role_name}",
            "principalArn": f"arn:aws:iam::{ACCOUNT}:saml-provider/Okta",
            "durationSeconds": 3600,
        },
        "responseElements": {
            "credentials": {
                "accessKeyId": key,
                "sessionToken": "x",
                "expiration": "Jul 30, 2026, 10:00:00 AM",
            },
            "assumedRoleUser": {
                "assumedRoleId": f"AROAEXAMPLE:{person}",
                "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{person}",
            },
            "subject": person,
            "subjectType": "persistent",
        },
        "requestID": f"req-{event_id}",
        "eventID": event_id,
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }


def session_call(
    event_id: str, role_name: str, person: str, key: str, time: str, via_mcp: bool
) -> dict[str, Any]:
    """A call with the SAML session's key: through the AWS-managed MCP server, or direct."""
    record = call(event_id, role_name, time)
    record["userIdentity"]["accessKeyId"] = key
    record["userIdentity"]["arn"] = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{person}"
    if via_mcp:
        record["userIdentity"]["invokedBy"] = MCP_SERVER
        record["sourceIPAddress"] = record["userAgent"] = MCP_SERVER
    return record


def test_a_person_using_an_agent_role_through_mcp_is_no_persons_own_credentials(
    tmp_path: Path,
) -> None:
    """olive opens ClaudeAgent through SAML and hands the key to the managed MCP server. The June
    snapshot tags ClaudeAgent Usage=Agent: the dedicated agent role, whose direct call of the
    same session the classification calls agent_role.direct, so her MCP calls are left out, in
    May too (the snapshot, the role's first observation, applies backwards). After an UntagRole,
    a new session's MCP call is a person's role again (federated); so is PersonRole, which the
    snapshot lists untagged, at any time; and LateAgent before its first observation, a TagRole
    (which says nothing of the time before it), although the September snapshot lists it
    tagged."""
    olive = "olive@corp.example"

    def session(n: int, role_name: str, time: str, *calls: tuple[str, bool]) -> list[Any]:
        key = f"ASIASAMLSESSION{n:05d}"
        opened = saml(f"saml-{n}", role_name, olive, key, time)
        used = [
            session_call(event_id, role_name, olive, key, time.replace(":00:00Z", ":05:00Z"), mcp)
            for event_id, mcp in calls
        ]
        return [opened, *used]

    settings = build(
        tmp_path,
        [
            *session(0, "ClaudeAgent", "2026-05-02T09:00:00Z", ("mcp-0", True)),
            *session(1, "ClaudeAgent", "2026-07-02T09:00:00Z", ("mcp-1", True), ("shell-1", False)),
            iam_event(
                "untag", "UntagRole", "ClaudeAgent", "2026-07-10T00:00:00Z", tagKeys=["Usage"]
            ),
            *session(2, "ClaudeAgent", "2026-07-11T09:00:00Z", ("mcp-2", True)),
            *session(3, "PersonRole", "2026-07-03T09:00:00Z", ("mcp-3", True)),
            *session(4, "LateAgent", "2026-07-15T09:00:00Z", ("mcp-4", True)),
            iam_event("tag-late", "TagRole", "LateAgent", "2026-07-20T00:00:00Z", tags=USAGE_AGENT),
        ],
    )
    june = export(
        tmp_path / "june.json", role("ClaudeAgent", ("Usage", "Agent")), role("PersonRole")
    )
    # LateAgent, created long before, is listed from September only (June's file left it out).
    september = export(
        tmp_path / "september.json", role("PersonRole"), role("LateAgent", ("Usage", "Agent"))
    )
    import_iam([june], settings, at("2026-06-01T00:00:00"))
    import_iam([september], settings, at("2026-09-01T00:00:00"))
    verdicts = classified_by(settings)
    assert verdicts["shell-1"] == AGENT
    assert {verdicts[f"mcp-{n}"] for n in range(5)} == {"mcp_managed.invoked_by"}

    def row(principal_role: str, time: str) -> dict[str, Any]:
        return {
            "human_id": olive,
            "principal": f"arn:aws:iam::{ACCOUNT}:role/{principal_role}",
            "access_path": "mcp_managed",
            "mcp_server": MCP_SERVER,
            "identity_kind": "federated",
            "accounts": ACCOUNT,
            "calls": 1,
            "failed_calls": 0,
            "write_calls": 0,
            "sessions": 1,
            "mcp_clients": None,
            "first_seen": at(time),
            "last_seen": at(time),
        }

    assert query(settings, "human_roles_via_mcp", Scope(quarter="2026Q2")) == []
    assert query(settings, "human_roles_via_mcp", Scope(quarter="2026Q3")) == [
        row("ClaudeAgent", "2026-07-11T09:05:00"),
        row("LateAgent", "2026-07-15T09:05:00"),
        row("PersonRole", "2026-07-03T09:05:00"),
    ]


# --------------------------------------------------------------------------------- principals
def test_an_iam_user_named_as_a_tagged_role_is_no_agent_role(tmp_path: Path) -> None:
    """The IAM user terraform calls GetFederationToken; its federated user bob calls AWS, his
    session issuer the user terraform. The account also has a role terraform, tagged Usage=Agent.
    The user's row takes nothing of the role: agent_role is for role principals."""
    federated = call("fed-1", "unused", "2026-07-02T10:00:00Z")
    federated["userIdentity"] = {
        "type": "FederatedUser",
        "principalId": f"{ACCOUNT}:bob",
        "arn": f"arn:aws:sts::{ACCOUNT}:federated-user/bob",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIAFEDERATED00001",
        "sessionContext": {
            "sessionIssuer": {
                "type": "IAMUser",
                "principalId": "AIDATERRAFORM",
                "arn": f"arn:aws:iam::{ACCOUNT}:user/terraform",
                "accountId": ACCOUNT,
                "userName": "terraform",
            },
            "attributes": {"creationDate": "2026-07-02T09:00:00Z", "mfaAuthenticated": "false"},
        },
    }
    settings = build(tmp_path, [federated, call("role-1", "terraform", "2026-07-01T10:00:00Z")])
    june = export(tmp_path / "june.json", role("terraform", ("Usage", "Agent")))
    import_iam([june], settings, at("2026-06-01T00:00:00"))
    june_id = sid(june, at("2026-06-01T00:00:00"))
    assert classified_by(settings) == {"fed-1": "human.federated", "role-1": AGENT}

    none_else = {"workload_calls": 0, "service_calls": 0, "unknown_calls": 0}
    assert query(settings, "principals", Scope(quarter="2026Q3")) == [
        {
            "principal": f"arn:aws:iam::{ACCOUNT}:role/terraform",
            "principal_types": "AssumedRole",
            "accounts": ACCOUNT,
            "primary_kind": "agent",
            "actor_kinds": "agent",
            "calls": 1,
            "agent_calls": 1,
            "human_calls": 0,
            **none_else,
            "agent_names": "terraform",
            "people": None,
            "first_seen": at("2026-07-01T10:00:00"),
            "last_seen": at("2026-07-01T10:00:00"),
            "in_iam_snapshot": True,
            "iam_tags": "Usage=Agent",
            "agent_role": True,
            "agent_role_observed_by": f"snapshot {june_id}",
            "session_tags": None,
        },
        {
            "principal": f"arn:aws:iam::{ACCOUNT}:user/terraform",
            "principal_types": "FederatedUser",
            "accounts": ACCOUNT,
            "primary_kind": "human",
            "actor_kinds": "human",
            "calls": 1,
            "agent_calls": 0,
            "human_calls": 1,
            **none_else,
            "agent_names": None,
            "people": "bob",
            "first_seen": at("2026-07-02T10:00:00"),
            "last_seen": at("2026-07-02T10:00:00"),
            # The export lists no user: it says nothing of users.
            "in_iam_snapshot": None,
            "iam_tags": None,
            "agent_role": None,
            "agent_role_observed_by": None,
            "session_tags": None,
        },
    ]


# ----------------------------------------------------------------------- untagged_agent_roles
def mcp_call(event_id: str, role_name: str, time: str) -> dict[str, Any]:
    """A call of a session of `role_name` through the awslabs AWS API MCP server."""
    record = call(event_id, role_name, time)
    record["userAgent"] = AWSLABS_UA
    return record


def test_tagged_since_is_when_the_gap_closed_for_good(tmp_path: Path) -> None:
    """Three roles the June snapshot lists, used through an awslabs MCP server while untagged:
    - Reopened: tagged in June, untagged on July 1 (an MCP call then), tagged on July 10,
      untagged again by the September snapshot, an MCP call on September 15: its gap never
      closed (tagged_since used to name July 10, the first tagging after first_seen);
    - Closed: untagged, an MCP call on July 5, tagged on August 1 for good: closed then;
    - Brief: untagged, an MCP call on July 5, tagged on July 10, untagged on August 1: tagged at
      the end of a period that ends before August 1, not at the end of the quarter."""
    settings = build(
        tmp_path,
        [
            iam_event(
                "untag-r", "UntagRole", "Reopened", "2026-07-01T00:00:00Z", tagKeys=["Usage"]
            ),
            mcp_call("m-r-1", "Reopened", "2026-07-01T00:00:00Z"),
            iam_event("tag-r", "TagRole", "Reopened", "2026-07-10T00:00:00Z", tags=USAGE_AGENT),
            mcp_call("m-r-2", "Reopened", "2026-07-20T00:00:00Z"),  # tagged: no gap
            mcp_call("m-r-3", "Reopened", "2026-09-15T00:00:00Z"),
            mcp_call("m-c-1", "Closed", "2026-07-05T00:00:00Z"),
            iam_event("tag-c", "TagRole", "Closed", "2026-08-01T00:00:00Z", tags=USAGE_AGENT),
            mcp_call("m-b-1", "Brief", "2026-07-05T00:00:00Z"),
            iam_event("tag-b", "TagRole", "Brief", "2026-07-10T00:00:00Z", tags=USAGE_AGENT),
            iam_event("untag-b", "UntagRole", "Brief", "2026-08-01T00:00:00Z", tagKeys=["usage"]),
        ],
    )
    june = export(
        tmp_path / "june.json",
        role("Reopened", ("Usage", "Agent")),
        role("Closed"),
        role("Brief"),
    )
    september = export(
        tmp_path / "september.json",
        role("Reopened"),
        role("Closed", ("Usage", "Agent")),
        role("Brief"),
    )
    import_iam([june], settings, at("2026-06-01T00:00:00"))
    import_iam([september], settings, at("2026-09-01T00:00:00"))
    september_id = sid(september, at("2026-09-01T00:00:00"))
    june_id = sid(june, at("2026-06-01T00:00:00"))

    def gap(name: str, observed_by: str, calls: int, first: str, last: str) -> dict[str, Any]:
        return {
            "role_account_id": ACCOUNT,
            "principal": f"arn:aws:iam::{ACCOUNT}:role/{name}",
            "role_name": name,
            "tag_state": "untagged",
            "observed_by": observed_by,
            "access_paths": "mcp_self_managed",
            "mcp_servers": "aws-api-mcp-server",
            "people": None,
            "calls": calls,
            "sessions": calls,
            "first_seen": at(first),
            "last_seen": at(last),
        }

    reopened = gap(
        "Reopened",
        f"UntagRole untag-r,snapshot {september_id}",
        2,
        "2026-07-01T00:00:00",
        "2026-09-15T00:00:00",
    )
    brief = gap("Brief", f"snapshot {june_id}", 1, "2026-07-05T00:00:00", "2026-07-05T00:00:00")
    closed = gap("Closed", f"snapshot {june_id}", 1, "2026-07-05T00:00:00", "2026-07-05T00:00:00")
    assert query(settings, "untagged_agent_roles", Scope(quarter="2026Q3")) == [
        {**reopened, "tagged_since": None},
        {**brief, "tagged_since": None},
        {**closed, "tagged_since": at("2026-08-01T00:00:00")},
    ]
    # A period ending July 20: Brief is tagged at its end, Closed not yet; Reopened's July 1
    # call is the row's last, and the July 10 tagging holds to the end.
    assert query(
        settings, "untagged_agent_roles", Scope(since=date(2026, 7, 1), until=date(2026, 7, 20))
    ) == [
        {**brief, "tagged_since": at("2026-07-10T00:00:00")},
        {**closed, "tagged_since": None},
        {
            **gap(
                "Reopened",
                "UntagRole untag-r",
                1,
                "2026-07-01T00:00:00",
                "2026-07-01T00:00:00",
            ),
            "tagged_since": at("2026-07-10T00:00:00"),
        },
    ]


def test_a_role_of_unknown_tags_is_unknown_in_the_reports(tmp_path: Path) -> None:
    """June lists R untagged; August lists R tagged, created June 10 (re-created), and a TagRole
    on June 20 lies between: from June 10 to June 20 its tags are unknown. An MCP call on June
    15 is then an 'unknown' gap (not 'untagged'), and principals' agent_role is NULL (not
    false); the classification takes it for no agent role either way."""
    settings = build(
        tmp_path,
        [
            mcp_call("m-unknown", "R", "2026-06-15T10:00:00Z"),
            iam_event("tag-r", "TagRole", "R", "2026-06-20T09:00:00Z", tags=USAGE_AGENT),
        ],
    )
    june = export(tmp_path / "june.json", role("R"))
    august = export(
        tmp_path / "august.json", role("R", ("Usage", "Agent"), created="2026-06-10T00:00:00+00:00")
    )
    import_iam([june], settings, at("2026-06-01T00:00:00"))
    import_iam([august], settings, at("2026-08-01T00:00:00"))
    august_id = sid(august, at("2026-08-01T00:00:00"))
    unknown = (
        f"snapshot {august_id} (role created 2026-06-10T00:00:00Z; its tags unknown until its"
        " next event)"
    )
    assert classified_by(settings)["m-unknown"] == "awslabs_user_agent"
    (gap,) = query(settings, "untagged_agent_roles", Scope(quarter="2026Q2"))
    assert (gap["role_name"], gap["tag_state"], gap["observed_by"], gap["tagged_since"]) == (
        "R",
        "unknown",
        unknown,
        at("2026-06-20T09:00:00"),
    )
    (row,) = [
        r
        for r in query(settings, "principals", Scope(quarter="2026Q2"))
        if r["principal"] == f"arn:aws:iam::{ACCOUNT}:role/R"
    ]
    assert (row["agent_role"], row["agent_role_observed_by"]) == (None, unknown)


# ------------------------------------------------ the reports read the classification's intervals
PERSON = "olive@corp.example"
# (role, time of the probe's calls, the role's agent tag then as the classification reads it,
# the observation that decides): every way the timeline knows a role's tag, each change probed
# (at the very second of an event too).
# - Flip: the June snapshot tags it (before June too: the role's first observation is a
#   snapshot); untagged on July 1, tagged again on July 10; absent from the August snapshot
#   (deleted); created again untagged on August 15, tagged on September 1; the October snapshot
#   agrees.
# - Late: its first observation is a TagRole on July 20 (the October snapshot lists it created
#   long before: June's and August's files left it out, they say nothing of it): nothing is
#   known before, so no agent role for the classification, unknown (NULL) for the reports.
# - Reborn: listed untagged in June, listed tagged in October with a CreateDate of June 10, and
#   a TagRole on June 20 between: its tags are unknown from June 10 to June 20.
PROBES = [
    ("Flip", "2026-05-10T09:00:00Z", True, "june"),
    ("Flip", "2026-06-15T09:00:00Z", True, "june"),
    ("Flip", "2026-07-01T00:00:00Z", False, "UntagRole untag-flip"),
    ("Flip", "2026-07-05T09:00:00Z", False, "UntagRole untag-flip"),
    ("Flip", "2026-07-10T00:00:00Z", True, "TagRole tag-flip"),
    ("Flip", "2026-08-05T09:00:00Z", False, "august (role absent)"),
    ("Flip", "2026-08-20T09:00:00Z", False, "CreateRole create-flip"),
    ("Flip", "2026-09-15T09:00:00Z", True, "TagRole retag-flip"),
    ("Flip", "2026-10-05T09:00:00Z", True, "october"),
    ("Late", "2026-07-15T09:00:00Z", None, None),
    ("Late", "2026-07-25T09:00:00Z", True, "TagRole tag-late"),
    ("Reborn", "2026-06-05T09:00:00Z", False, "june"),
    ("Reborn", "2026-06-15T09:00:00Z", None, "october (role created, tags unknown)"),
    ("Reborn", "2026-06-25T09:00:00Z", True, "TagRole tag-reborn"),
]


def probe(n: int, role_name: str, time: str) -> list[dict[str, Any]]:
    """What each report sees of `role_name` at `time`: a direct call, whose verdict is the
    classification's reading of the role (agent_role.direct on an agent role, human.other_role
    otherwise); a call through the awslabs MCP server (untagged_agent_roles); and a call of a
    person's SAML session through the managed MCP server (human_roles_via_mcp), the session
    opened a minute before."""
    key = f"ASIASAMLPROBE{n:05d}"
    opened = (at(time.removesuffix("Z")) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        call(f"d-{n}", role_name, time),
        mcp_call(f"m-{n}", role_name, time),
        saml(f"saml-{n}", role_name, PERSON, key, opened),
        session_call(f"h-{n}", role_name, PERSON, key, time, via_mcp=True),
    ]


def reports_at(settings: Settings, role_name: str, day: date) -> dict[str, Any]:
    """The three reports over one day (a probe's calls are the role's only ones that day),
    reduced to what each says of the role: principals' agent_role and its observation,
    untagged_agent_roles' tag state and observation ('tagged' where it lists no gap), and
    whether human_roles_via_mcp lists the person's MCP call on the role."""
    scope = Scope(since=day, until=day)
    arn = f"arn:aws:iam::{ACCOUNT}:role/{role_name}"
    (principal,) = [r for r in query(settings, "principals", scope) if r["principal"] == arn]
    gaps = [r for r in query(settings, "untagged_agent_roles", scope) if r["principal"] == arn]
    people = [r for r in query(settings, "human_roles_via_mcp", scope) if r["principal"] == arn]
    assert len(gaps) <= 1
    assert len(people) <= 1
    return {
        "agent_role": principal["agent_role"],
        "agent_role_observed_by": principal["agent_role_observed_by"],
        "tag_state": gaps[0]["tag_state"] if gaps else "tagged",
        "gap_observed_by": gaps[0]["observed_by"] if gaps else None,
        "persons_role": len(people) == 1,
    }


def test_the_reports_take_a_role_for_what_the_classification_took_it_for(
    tmp_path: Path,
) -> None:
    """At every probe (PROBES), principals' agent_role, untagged_agent_roles' tag state and
    human_roles_via_mcp's listing say what the direct call's verdict says, and name the same
    observation: all of them read the row of role_agent_intervals that covers the time, the
    row the rules join. A report ranking observations its own way would part from the verdicts
    at one of these probes."""
    settings = build(
        tmp_path,
        [
            *(r for n, (name, time, _, _) in enumerate(PROBES) for r in probe(n, name, time)),
            iam_event("untag-flip", "UntagRole", "Flip", "2026-07-01T00:00:00Z", tagKeys=["Usage"]),
            iam_event("tag-flip", "TagRole", "Flip", "2026-07-10T00:00:00Z", tags=USAGE_AGENT),
            iam_event("create-flip", "CreateRole", "Flip", "2026-08-15T00:00:00Z"),
            iam_event("retag-flip", "TagRole", "Flip", "2026-09-01T00:00:00Z", tags=USAGE_AGENT),
            iam_event("tag-late", "TagRole", "Late", "2026-07-20T00:00:00Z", tags=USAGE_AGENT),
            iam_event("tag-reborn", "TagRole", "Reborn", "2026-06-20T00:00:00Z", tags=USAGE_AGENT),
        ],
    )
    june = export(tmp_path / "june.json", role("Flip", ("Usage", "Agent")), role("Reborn"))
    # A snapshot that lists no role says nothing of roles: August lists another one.
    august = export(tmp_path / "august.json", role("Other"))
    october = export(
        tmp_path / "october.json",
        role("Flip", ("Usage", "Agent"), created="2026-08-15T00:00:00+00:00"),
        role("Late", ("Usage", "Agent")),
        role("Reborn", ("Usage", "Agent"), created="2026-06-10T00:00:00+00:00"),
    )
    taken = {
        "june": (june, at("2026-06-01T00:00:00")),
        "august": (august, at("2026-08-01T00:00:00")),
        "october": (october, at("2026-10-01T00:00:00")),
    }
    for path, taken_at in taken.values():
        import_iam([path], settings, taken_at)
    ids = {name: sid(path, taken_at) for name, (path, taken_at) in taken.items()}
    observations = {
        "june": f"snapshot {ids['june']}",
        "august (role absent)": f"snapshot {ids['august']} (role absent)",
        "october": f"snapshot {ids['october']}",
        "october (role created, tags unknown)": f"snapshot {ids['october']} (role created"
        " 2026-06-10T00:00:00Z; its tags unknown until its next event)",
    }
    verdicts = classified_by(settings)
    found = []
    expected = []
    for n, (name, time, is_agent, decided_by) in enumerate(PROBES):
        observed_by = observations.get(decided_by, decided_by) if decided_by else None
        found.append((name, time, verdicts[f"d-{n}"], reports_at(settings, name, at(time[:10]))))
        expected.append(
            (
                name,
                time,
                AGENT if is_agent else HUMAN,
                {
                    "agent_role": is_agent,
                    "agent_role_observed_by": observed_by,
                    "tag_state": {True: "tagged", False: "untagged", None: "unknown"}[is_agent],
                    "gap_observed_by": None if is_agent else observed_by,
                    "persons_role": not is_agent,
                },
            )
        )
    assert found == expected
    # The published intervals the verdicts and the reports read, for Flip: one row per
    # observation to the next, and one before the first, a snapshot.
    assert rows(
        Path(settings.warehouse),
        "SELECT valid_from::VARCHAR AS valid_from, valid_to::VARCHAR AS valid_to, is_agent,"
        " observed_by FROM role_agent_intervals WHERE account_id = $account"
        " AND role_name = 'Flip' ORDER BY role_agent_intervals.valid_from",
        {"account": ACCOUNT},
    ) == [
        {"valid_from": f, "valid_to": t, "is_agent": a, "observed_by": observations.get(o, o)}
        for f, t, a, o in [
            ("-infinity", "2026-06-01 00:00:00+00", True, "june"),
            ("2026-06-01 00:00:00+00", "2026-07-01 00:00:00+00", True, "june"),
            ("2026-07-01 00:00:00+00", "2026-07-10 00:00:00+00", False, "UntagRole untag-flip"),
            ("2026-07-10 00:00:00+00", "2026-08-01 00:00:00+00", True, "TagRole tag-flip"),
            ("2026-08-01 00:00:00+00", "2026-08-15 00:00:00+00", False, "august (role absent)"),
            ("2026-08-15 00:00:00+00", "2026-09-01 00:00:00+00", False, "CreateRole create-flip"),
            ("2026-09-01 00:00:00+00", "2026-10-01 00:00:00+00", True, "TagRole retag-flip"),
            ("2026-10-01 00:00:00+00", "infinity", True, "october"),
        ]
    ]

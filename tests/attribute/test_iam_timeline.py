"""How IAM snapshots and tag events decide agent roles over time (role_agent_observations, rule
agent_role.direct, and the principals query): only complete snapshots count, a snapshot of an
account that does not list a role says it is absent (after what older ones said of it, and
before a newer one lists it), tag events before a role's first snapshot leave the time before
them unknown, one observation per role and instant (the tagging event's), a snapshot taken in
the second of an event it contradicts holds before the event, and two snapshots of one
account at one time resolve to the larger snapshot id everywhere.

Each test builds a small warehouse of its own from records written here: an assumed-role call
of a role is classified `agent_role.direct` exactly when the role is an agent role then, and
`human.other_role` otherwise.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.attribute.classify import attribute_warehouse
from pipeline.config import Settings
from pipeline.errors import UsageError
from pipeline.iam import store
from pipeline.iam.choice import choose_snapshots
from pipeline.iam.load import snapshot_id_of
from pipeline.query.library import Scope, run_query
from pipeline.warehouse.connect import connect
from pipeline.warehouse.files import write_parquet_atomic
from pipeline.warehouse.layout import Layout

from .helpers import import_iam, ingest, rows, verdicts

ACCOUNT = "111111111111"
AGENT = "agent_role.direct"
HUMAN = "human.other_role"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def call(event_id: str, role: str, time: str) -> dict[str, Any]:
    """A ListBuckets call by a session of `role` (its key joins no issuing event)."""
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:sess",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/sess",
            "accountId": ACCOUNT,
            "accessKeyId": f"ASIA{event_id.upper().replace('-', '')[:16]:X<16}",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAEXAMPLE",
                    "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}",
                    "accountId": ACCOUNT,
                    "userName": role,
                },
                "attributes": {"creationDate": time, "mfaAuthenticated": "false"},
            },
        },
        "eventTime": time,
        "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.5",
        "userAgent": "aws-cli/2.15.0 Python/3.11",
        "requestParameters": None,
        "responseElements": None,
        "requestID": f"req-{event_id}",
        "eventID": event_id,
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }


def iam_event(event_id: str, name: str, role: str, time: str, **params: Any) -> dict[str, Any]:
    """CreateRole, TagRole or UntagRole of `role` by the IAM user admin."""
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLEADMIN",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/admin",
            "accountId": ACCOUNT,
            "accessKeyId": "AKIAEXAMPLEADMIN",
            "userName": "admin",
        },
        "eventTime": time,
        "eventSource": "iam.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.9",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"roleName": role, **params},
        "responseElements": None,
        "requestID": f"req-{event_id}",
        "eventID": event_id,
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }


def role(
    name: str, *tags: tuple[str, str], created: str = "2024-01-01T00:00:00+00:00"
) -> dict[str, Any]:
    return {
        "Path": "/",
        "RoleName": name,
        "RoleId": f"AROA{name.upper():X<12}",
        "Arn": f"arn:aws:iam::{ACCOUNT}:role/{name}",
        "CreateDate": created,
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []},
        "RolePolicyList": [],
        "AttachedManagedPolicies": [],
        "Tags": [{"Key": k, "Value": v} for k, v in tags],
    }


def export(path: Path, *roles: dict[str, Any]) -> Path:
    document = {"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": list(roles)}
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


def build(tmp_path: Path, records: list[dict[str, Any]]) -> Settings:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "ct.json").write_text(json.dumps({"Records": records}), encoding="utf-8")
    return ingest([logs], tmp_path / "warehouse")


def classified_by(settings: Settings) -> dict[str, str]:
    return {e: r["classified_by"] for e, r in verdicts(Path(settings.warehouse)).items()}


def observations(settings: Settings) -> list[tuple[Any, ...]]:
    found = rows(
        Path(settings.warehouse),
        "SELECT role_name, observed_at, observed_by, is_agent, tag_text"
        " FROM role_agent_observations ORDER BY role_name, observed_at",
    )
    return [tuple(r.values()) for r in found]


def principal_row(settings: Settings, role_name: str, quarter: str) -> dict[str, Any]:
    result = run_query(settings, "principals", scope=Scope(quarter=quarter))
    arn = f"arn:aws:iam::{ACCOUNT}:role/{role_name}"
    (found,) = [r for r in result.table.to_pylist() if r["principal"] == arn]
    keys = ("in_iam_snapshot", "iam_tags", "agent_role", "agent_role_observed_by")
    return {k: found[k] for k in keys}


def sid(path: Path, taken_at: datetime) -> str:
    return snapshot_id_of(path.read_bytes(), taken_at)


# ------------------------------------------------------------------ complete snapshots only
def test_a_snapshot_whose_import_was_killed_does_not_make_agent_roles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The import dies before it lists the snapshot (SIGKILL, OOM, power loss: here an exception
    at that write); its roles/ file, which tags Builder, must count for nothing."""
    settings = build(tmp_path, [call("c-1", "Builder", "2026-07-01T10:00:00Z")])
    mistaken = export(tmp_path / "mistaken.json", role("Builder", ("Usage", "Agent")))
    layout = Layout.at(settings.warehouse)

    def dies_at_the_listing(table: Any, path: Path) -> None:
        if path.parent == layout.iam_snapshots:
            raise KeyboardInterrupt  # what is on disk is what a SIGKILL here leaves
        write_parquet_atomic(table, path)

    monkeypatch.setattr(store, "write_parquet_atomic", dies_at_the_listing)
    with pytest.raises(KeyboardInterrupt):
        store.import_snapshots([mistaken], layout, at("2026-06-01T00:00:00"), settings)
    monkeypatch.undo()
    assert (layout.iam_roles / f"{sid(mistaken, at('2026-06-01T00:00:00'))}.parquet").exists()

    attribute_warehouse(settings)
    assert classified_by(settings) == {"c-1": HUMAN}
    assert observations(settings) == []
    assert rows(Path(settings.warehouse), "SELECT count(*) AS n FROM iam_roles") == [{"n": 0}]


# ----------------------------------------------------------------- a newer snapshot ends it
def test_a_role_a_newer_snapshot_does_not_list_is_no_agent_role_after_it(tmp_path: Path) -> None:
    """Worker is tagged in June, gone from the August snapshot; a role of that name calls in
    September (re-created, its CreateRole outside the logs): not an agent role. Re-created
    with the tag in October (its CreateRole logged): an agent role again from then."""
    settings = build(
        tmp_path,
        [
            call("c-july", "Worker", "2026-07-01T10:00:00Z"),
            call("c-sept", "Worker", "2026-09-01T10:00:00Z"),
            iam_event(
                "create-oct",
                "CreateRole",
                "Worker",
                "2026-10-01T09:00:00Z",
                tags=[{"key": "Usage", "value": "Agent"}],
            ),
            call("c-oct", "Worker", "2026-10-02T10:00:00Z"),
        ],
    )
    june = export(tmp_path / "june.json", role("Worker", ("Usage", "Agent")), role("Other"))
    august = export(tmp_path / "august.json", role("Other"))
    import_iam([june], settings, at("2026-06-01T00:00:00"))
    import_iam([august], settings, at("2026-08-01T00:00:00"))
    june_id, august_id = (
        sid(june, at("2026-06-01T00:00:00")),
        sid(august, at("2026-08-01T00:00:00")),
    )

    assert classified_by(settings) == {
        "c-july": AGENT,
        "c-sept": HUMAN,
        "create-oct": "human.iam_user",
        "c-oct": AGENT,
    }
    assert observations(settings) == [
        ("Other", at("2026-06-01T00:00:00"), f"snapshot {june_id}", False, None),
        ("Other", at("2026-08-01T00:00:00"), f"snapshot {august_id}", False, None),
        ("Worker", at("2026-06-01T00:00:00"), f"snapshot {june_id}", True, "Usage=Agent"),
        ("Worker", at("2026-08-01T00:00:00"), f"snapshot {august_id} (role absent)", False, None),
        ("Worker", at("2026-10-01T09:00:00"), "CreateRole create-oct", True, "Usage=Agent"),
    ]
    assert principal_row(settings, "Worker", "2026Q3") == {
        "in_iam_snapshot": False,
        "iam_tags": None,
        "agent_role": False,
        "agent_role_observed_by": f"snapshot {august_id} (role absent)",
    }


def test_a_tag_event_before_a_snapshot_that_does_not_list_the_role_ends_there(
    tmp_path: Path,
) -> None:
    settings = build(
        tmp_path,
        [
            iam_event(
                "tag-may",
                "TagRole",
                "Temp",
                "2026-05-01T00:00:00Z",
                tags=[{"key": "Usage", "value": "Agent"}],
            ),
            call("c-may", "Temp", "2026-05-02T00:00:00Z"),
            call("c-july", "Temp", "2026-07-01T00:00:00Z"),
        ],
    )
    june = export(tmp_path / "june.json", role("Other"))
    import_iam([june], settings, at("2026-06-01T00:00:00"))
    assert classified_by(settings) == {"tag-may": "human.iam_user", "c-may": AGENT, "c-july": HUMAN}


# ------------------------------------------------------------ an older snapshot starts it
def import_june_without_and_august_with_r(tmp_path: Path, settings: Settings) -> tuple[str, str]:
    """June's snapshot lists only Other; August's lists Other and R tagged, created on July 5.
    Their snapshot ids."""
    june = export(tmp_path / "june.json", role("Other"))
    august = export(
        tmp_path / "august.json",
        role("Other"),
        role("R", ("Usage", "Agent"), created="2026-07-05T00:00:00+00:00"),
    )
    import_iam([june], settings, at("2026-06-01T00:00:00"))
    import_iam([august], settings, at("2026-08-01T00:00:00"))
    return sid(june, at("2026-06-01T00:00:00")), sid(august, at("2026-08-01T00:00:00"))


def test_a_role_an_older_snapshot_does_not_list_is_no_agent_role_before_a_newer_one_lists_it(
    tmp_path: Path,
) -> None:
    """June's snapshot lists only Other; August's lists R tagged, created on July 5. The oldest
    snapshot applies backwards only where it is the role's first observation: here June's,
    which shows no R, for May (June is the newest snapshot at or before it); from its
    CreateDate R is the role August shows, an agent role. Whether an older snapshot listing R
    was imported or not, R is absent in June."""
    settings = build(
        tmp_path,
        [
            call("c-may", "R", "2026-05-10T10:00:00Z"),
            call("c-jul", "R", "2026-07-10T10:00:00Z"),
            call("c-aug", "R", "2026-08-10T10:00:00Z"),
        ],
    )
    june_id, august_id = import_june_without_and_august_with_r(tmp_path, settings)

    assert classified_by(settings) == {"c-may": HUMAN, "c-jul": AGENT, "c-aug": AGENT}
    assert observations(settings) == [
        ("Other", at("2026-06-01T00:00:00"), f"snapshot {june_id}", False, None),
        ("Other", at("2026-08-01T00:00:00"), f"snapshot {august_id}", False, None),
        ("R", at("2026-06-01T00:00:00"), f"snapshot {june_id} (role absent)", False, None),
        (
            "R",
            at("2026-07-05T00:00:00"),
            f"snapshot {august_id} (role created 2026-07-05T00:00:00Z)",
            True,
            "Usage=Agent",
        ),
        ("R", at("2026-08-01T00:00:00"), f"snapshot {august_id}", True, "Usage=Agent"),
    ]
    assert principal_row(settings, "R", "2026Q2") == {
        "in_iam_snapshot": False,
        "iam_tags": None,
        "agent_role": False,
        "agent_role_observed_by": f"snapshot {june_id} (role absent)",
    }


def test_a_snapshot_that_lists_no_role_at_all_says_nothing_of_any(tmp_path: Path) -> None:
    """April's snapshot lists R tagged; June's is a users-only export (`--filter User`, whose
    RoleDetailList is empty). Every AWS account has roles, so June's says nothing of R: the July
    call is still an agent role's, by April's listing."""
    settings = build(tmp_path, [call("c-jul", "R", "2026-07-10T10:00:00Z")])
    april = export(tmp_path / "april.json", role("R", ("Usage", "Agent")))
    june = users_only(tmp_path / "june.json")
    import_iam([april], settings, at("2026-04-01T00:00:00"))
    import_iam([june], settings, at("2026-06-01T00:00:00"))
    april_id = sid(april, at("2026-04-01T00:00:00"))

    assert classified_by(settings) == {"c-jul": AGENT}
    assert observations(settings) == [
        ("R", at("2026-04-01T00:00:00"), f"snapshot {april_id}", True, "Usage=Agent"),
    ]


def users_only(path: Path) -> Path:
    """An export of the account's users alone: its RoleDetailList is empty."""
    user = {
        "Path": "/",
        "UserName": "carol",
        "UserId": "AIDACAROLXXXXXXXXXXXX",
        "Arn": f"arn:aws:iam::{ACCOUNT}:user/carol",
        "CreateDate": "2024-01-01T00:00:00+00:00",
    }
    document = {"UserDetailList": [user], "GroupDetailList": [], "RoleDetailList": []}
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_a_snapshot_that_leaves_out_a_role_a_later_one_shows_existed_then_says_nothing(
    tmp_path: Path,
) -> None:
    """June's file lists Other but not R (a hand-trimmed file); August's lists R tagged, created
    in 2024: R existed in June, so June's absence of it is the file's gap, not the role's.
    August, the oldest snapshot after May, applies as R's first observation. (A file listing
    no role at all says nothing of any: the test above.)"""
    settings = build(tmp_path, [call("c-may", "R", "2026-05-10T10:00:00Z")])
    june = export(tmp_path / "june.json", role("Other"))
    august = export(tmp_path / "august.json", role("R", ("Usage", "Agent")))
    import_iam([june], settings, at("2026-06-01T00:00:00"))
    import_iam([august], settings, at("2026-08-01T00:00:00"))
    august_id = sid(august, at("2026-08-01T00:00:00"))

    assert classified_by(settings) == {"c-may": AGENT}
    assert [o for o in observations(settings) if o[0] == "R"] == [
        ("R", at("2026-08-01T00:00:00"), f"snapshot {august_id}", True, "Usage=Agent"),
    ]


def test_a_role_created_between_snapshots_with_its_events_in_the_logs_follows_them(
    tmp_path: Path,
) -> None:
    """Where the logs show the role's CreateRole (untagged) and a TagRole later, they tell its
    time between the snapshots: the later listing's state does not reach back to its
    CreateDate."""
    settings = build(
        tmp_path,
        [
            iam_event("create", "CreateRole", "R", "2026-07-05T00:00:00Z"),
            call("c-jul", "R", "2026-07-10T10:00:00Z"),
            iam_event(
                "tag", "TagRole", "R", "2026-07-20T00:00:00Z", tags=[{"key": "Usage", "value": "Agent"}]
            ),
            call("c-late-jul", "R", "2026-07-25T10:00:00Z"),
        ],
    )
    june_id, august_id = import_june_without_and_august_with_r(tmp_path, settings)

    assert classified_by(settings) == {
        "create": "human.iam_user",
        "c-jul": HUMAN,
        "tag": "human.iam_user",
        "c-late-jul": AGENT,
    }
    assert [o[2] for o in observations(settings) if o[0] == "R"] == [
        f"snapshot {june_id} (role absent)",
        "CreateRole create",
        "TagRole tag",
        f"snapshot {august_id}",
    ]


def untag_then_retag() -> list[dict[str, Any]]:
    """R calls in May; UntagRole of Usage on July 1, TagRole Usage=Agent on July 2; R calls in
    August."""
    return [
        call("c-may", "R", "2026-05-10T10:00:00Z"),
        iam_event("untag", "UntagRole", "R", "2026-07-01T00:00:00Z", tagKeys=["Usage"]),
        iam_event(
            "retag",
            "TagRole",
            "R",
            "2026-07-02T00:00:00Z",
            tags=[{"key": "Usage", "value": "Agent"}],
        ),
        call("c-aug", "R", "2026-08-10T10:00:00Z"),
    ]


def test_tag_events_before_the_first_snapshot_say_nothing_of_the_time_before_them(
    tmp_path: Path,
) -> None:
    """R's only snapshot (August) shows it tagged; UntagRole on July 1 and TagRole on July 2 come
    first. Each sets the key whatever it was: UntagRole succeeds whether or not the role
    carried the key, and names no value; TagRole overwrites. August shows what the TagRole
    set, not May: the May call is no agent role's (nothing is known then), the August call is.
    A CreateRole first says more: the role did not exist before it."""
    settings = build(
        tmp_path,
        [
            *untag_then_retag(),
            call("c-may-new", "New", "2026-05-10T10:00:00Z"),
            iam_event(
                "create-new",
                "CreateRole",
                "New",
                "2026-07-01T00:00:00Z",
                tags=[{"key": "Usage", "value": "Agent"}],
            ),
            call("c-aug-new", "New", "2026-08-10T10:00:00Z"),
        ],
    )
    august = export(
        tmp_path / "august.json", role("R", ("Usage", "Agent")), role("New", ("Usage", "Agent"))
    )
    import_iam([august], settings, at("2026-08-01T00:00:00"))
    august_id = sid(august, at("2026-08-01T00:00:00"))

    got = classified_by(settings)
    assert {e: got[e] for e in ("c-may", "c-aug", "c-may-new", "c-aug-new")} == {
        "c-may": HUMAN,
        "c-aug": AGENT,
        "c-may-new": HUMAN,
        "c-aug-new": AGENT,
    }
    assert observations(settings) == [
        ("New", at("2026-07-01T00:00:00"), "CreateRole create-new", True, "Usage=Agent"),
        ("New", at("2026-08-01T00:00:00"), f"snapshot {august_id}", True, "Usage=Agent"),
        ("R", at("2026-07-01T00:00:00"), "UntagRole untag", False, None),
        ("R", at("2026-07-02T00:00:00"), "TagRole retag", True, "Usage=Agent"),
        ("R", at("2026-08-01T00:00:00"), f"snapshot {august_id}", True, "Usage=Agent"),
    ]


def test_principals_take_the_classifications_timeline_before_a_first_tag_event(
    tmp_path: Path,
) -> None:
    """The case above, as `principals` shows it. Its agent_role chose the role's earliest
    snapshot where no observation lay at or before last_seen: August's, tagged, so Q2 said
    agent_role true for the role whose May call the classification takes for no agent role's.
    Now it is the classification's timeline: before the role's first observation, a tag event,
    nothing is known (NULL, as for a role no IAM data names). The snapshot that applies to Q2
    (the oldest after it) still lists the role with its tags: in_iam_snapshot and iam_tags say
    what it shows."""
    settings = build(
        tmp_path,
        [
            *untag_then_retag(),
        ],
    )
    august = export(tmp_path / "august.json", role("R", ("Usage", "Agent")))
    import_iam([august], settings, at("2026-08-01T00:00:00"))
    august_id = sid(august, at("2026-08-01T00:00:00"))
    assert classified_by(settings)["c-may"] == HUMAN

    result = run_query(settings, "principals", scope=Scope(quarter="2026Q2"))
    assert result.table.to_pylist() == [
        {
            "principal": f"arn:aws:iam::{ACCOUNT}:role/R",
            "principal_types": "AssumedRole",
            "accounts": ACCOUNT,
            "primary_kind": "human",
            "actor_kinds": "human",
            "calls": 1,
            "agent_calls": 0,
            "human_calls": 1,
            "workload_calls": 0,
            "service_calls": 0,
            "unknown_calls": 0,
            "agent_names": None,
            "people": None,
            "first_seen": at("2026-05-10T10:00:00"),
            "last_seen": at("2026-05-10T10:00:00"),
            "in_iam_snapshot": True,
            "iam_tags": "Usage=Agent",
            "agent_role": None,
            "agent_role_observed_by": None,
            "session_tags": None,
        }
    ]
    # After the events, the snapshot holds: an agent role, as for the August call.
    assert classified_by(settings)["c-aug"] == AGENT
    assert principal_row(settings, "R", "2026Q3") == {
        "in_iam_snapshot": True,
        "iam_tags": "Usage=Agent",
        "agent_role": True,
        "agent_role_observed_by": f"snapshot {august_id}",
    }


# -------------------------------------------------------------------- one instant, one state
def test_untag_and_tag_of_the_key_in_one_second_leave_the_role_tagged(tmp_path: Path) -> None:
    """Infrastructure as code re-writing the key's letter case: UntagRole `usage`, TagRole
    `Usage` in the same second (either order in the file)."""
    settings = build(
        tmp_path,
        [
            iam_event(
                "tag-1",
                "TagRole",
                "R",
                "2026-07-01T00:00:00Z",
                tags=[{"key": "usage", "value": "AGENT"}],
            ),
            call("c-2", "R", "2026-07-02T00:00:00Z"),
            iam_event("untag-3", "UntagRole", "R", "2026-07-03T00:00:00Z", tagKeys=["USAGE"]),
            call("c-4", "R", "2026-07-04T00:00:00Z"),
            iam_event("untag-7", "UntagRole", "R", "2026-07-07T00:00:00Z", tagKeys=["usage"]),
            iam_event(
                "tag-7",
                "TagRole",
                "R",
                "2026-07-07T00:00:00Z",
                tags=[{"key": "Usage", "value": "Agent"}],
            ),
            call("c-8", "R", "2026-07-08T00:00:00Z"),
        ],
    )
    got = classified_by(settings)
    assert {e: got[e] for e in ("c-2", "c-4", "c-8")} == {"c-2": AGENT, "c-4": HUMAN, "c-8": AGENT}
    assert observations(settings) == [
        ("R", at("2026-07-01T00:00:00"), "TagRole tag-1", True, "usage=AGENT"),
        ("R", at("2026-07-03T00:00:00"), "UntagRole untag-3", False, None),
        ("R", at("2026-07-07T00:00:00"), "TagRole tag-7", True, "Usage=Agent"),
    ]
    assert principal_row(settings, "R", "2026Q3")["agent_role_observed_by"] == "TagRole tag-7"


SECOND = "2026-07-01T00:00:00"
BEFORE_SECOND = at(SECOND) - timedelta(microseconds=1)


@pytest.mark.parametrize(
    "taken_at", [at(SECOND), at(SECOND) + timedelta(milliseconds=400)], ids=["at", "within"]
)
@pytest.mark.parametrize(
    ("event", "snapshot_tags", "before", "after"),
    [
        (
            iam_event("untag", "UntagRole", "R", f"{SECOND}Z", tagKeys=["Usage"]),
            (("Usage", "Agent"),),
            AGENT,
            HUMAN,
        ),
        (
            iam_event(
                "tag", "TagRole", "R", f"{SECOND}Z", tags=[{"key": "Usage", "value": "Agent"}]
            ),
            (),
            HUMAN,
            AGENT,
        ),
    ],
    ids=["untag", "tag"],
)
def test_a_snapshot_in_the_second_of_an_event_it_contradicts_was_taken_before_it(
    tmp_path: Path,
    taken_at: datetime,
    event: dict[str, Any],
    snapshot_tags: tuple[tuple[str, str], ...],
    before: str,
    after: str,
) -> None:
    """CloudTrail times are whole seconds: an event logged at 00:00:00 happened within that
    second. A snapshot taken within it (at its start, or 0.4 s in) that shows the role as the
    event did not leave it was taken before the event: it tells the state before (and, as the
    role's first observation, applies backwards); the event's state holds after."""
    settings = build(
        tmp_path,
        [
            call("c-before", "R", "2026-06-30T10:00:00Z"),
            event,
            call("c-after", "R", "2026-07-02T10:00:00Z"),
        ],
    )
    snapshot = export(tmp_path / "s.json", role("R", *snapshot_tags))
    import_iam([snapshot], settings, taken_at)
    snapshot_id = sid(snapshot, taken_at)

    got = classified_by(settings)
    assert {e: got[e] for e in ("c-before", "c-after")} == {"c-before": before, "c-after": after}
    tagged = bool(snapshot_tags)
    assert observations(settings) == [
        ("R", BEFORE_SECOND, f"snapshot {snapshot_id}", tagged, "Usage=Agent" if tagged else None),
        (
            "R",
            at(SECOND),
            f"{event['eventName']} {event['eventID']}",
            not tagged,
            None if tagged else "Usage=Agent",
        ),
    ]
    assert principal_row(settings, "R", "2026Q3")["agent_role"] is (after == AGENT)


def test_a_snapshot_in_the_second_of_an_event_it_agrees_with_adds_nothing(tmp_path: Path) -> None:
    """Taken in the second of a TagRole and showing the tag, the snapshot may have been taken
    after it: it says nothing of the time before, which the TagRole does not either."""
    settings = build(
        tmp_path,
        [
            call("c-before", "R", "2026-06-30T10:00:00Z"),
            iam_event(
                "tag", "TagRole", "R", f"{SECOND}Z", tags=[{"key": "Usage", "value": "Agent"}]
            ),
            call("c-after", "R", "2026-07-02T10:00:00Z"),
        ],
    )
    snapshot = export(tmp_path / "s.json", role("R", ("Usage", "Agent")))
    import_iam([snapshot], settings, at(SECOND))

    got = classified_by(settings)
    assert {e: got[e] for e in ("c-before", "c-after")} == {"c-before": HUMAN, "c-after": AGENT}
    assert observations(settings) == [("R", at(SECOND), "TagRole tag", True, "Usage=Agent")]


# ------------------------------------------------------------- two snapshots at one instant
def test_two_differing_snapshots_at_one_time_resolve_to_the_larger_id_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Imports refuse them now (tests/iam/test_store.py); a warehouse may hold such a pair from
    before. The timeline (before and after taken_at), principals and choice.py take the same."""
    settings = build(
        tmp_path,
        [call("c-may", "AgentX", "2026-05-01T10:00:00Z"), call("c-july", "AgentX", "2026-07-01T10:00:00Z")],
    )  # fmt: skip
    tagged = export(tmp_path / "a.json", role("AgentX", ("Usage", "Agent")))
    untagged = export(tmp_path / "b.json", role("AgentX"))
    june = at("2026-06-01T00:00:00")
    with pytest.raises(UsageError, match="but they differ"):
        import_iam([tagged, untagged], settings, june)
    monkeypatch.setattr(store, "_refuse_differing_among", lambda *args: None)
    import_iam([tagged, untagged], settings, june)

    ids = {sid(tagged, june): True, sid(untagged, june): False}
    winner = max(ids)
    verdict = AGENT if ids[winner] else HUMAN
    assert classified_by(settings) == {"c-may": verdict, "c-july": verdict}
    assert observations(settings) == [
        ("AgentX", june, f"snapshot {winner}", ids[winner], "Usage=Agent" if ids[winner] else None)
    ]
    assert principal_row(settings, "AgentX", "2026Q3") == {
        "in_iam_snapshot": True,
        "iam_tags": "Usage=Agent" if ids[winner] else None,
        "agent_role": ids[winner],
        "agent_role_observed_by": f"snapshot {winner}",
    }
    with connect(Layout.at(settings.warehouse), read_only=True) as con:
        assert [c.snapshot_id for c in choose_snapshots(con, at("2026-10-01T00:00:00"))] == [winner]
        assert [c.snapshot_id for c in choose_snapshots(con, at("2026-01-01T00:00:00"))] == [winner]


# ------------------------------------------------------------------- role names' letter case
def test_a_tag_event_naming_the_role_in_another_case_tags_that_role(tmp_path: Path) -> None:
    """IAM role names are unique whatever their case; a TagRole typed `buildagent` tags the
    role BuildAgent that the snapshot lists and the calls name, and the snapshot, which lists
    BuildAgent, is no absence of it. UntagRole in yet another case ends it."""
    settings = build(
        tmp_path,
        [
            call("c-before", "BuildAgent", "2026-07-01T10:00:00Z"),
            iam_event(
                "tag-lower",
                "TagRole",
                "buildagent",
                "2026-07-02T09:00:00Z",
                tags=[{"key": "Usage", "value": "Agent"}],
            ),
            call("c-tagged", "BuildAgent", "2026-07-03T10:00:00Z"),
            iam_event(
                "untag-upper", "UntagRole", "BUILDAGENT", "2026-07-04T09:00:00Z", tagKeys=["Usage"]
            ),
            call("c-untagged", "BuildAgent", "2026-07-05T10:00:00Z"),
        ],
    )
    june = export(tmp_path / "june.json", role("BuildAgent"), role("Other"))
    import_iam([june], settings, at("2026-06-01T00:00:00"))
    june_id = sid(june, at("2026-06-01T00:00:00"))

    assert classified_by(settings) == {
        "c-before": HUMAN,
        "tag-lower": "human.iam_user",
        "c-tagged": AGENT,
        "untag-upper": "human.iam_user",
        "c-untagged": HUMAN,
    }
    assert observations(settings) == [
        ("BuildAgent", at("2026-06-01T00:00:00"), f"snapshot {june_id}", False, None),
        ("BuildAgent", at("2026-07-02T09:00:00"), "TagRole tag-lower", True, "Usage=Agent"),
        ("BuildAgent", at("2026-07-04T09:00:00"), "UntagRole untag-upper", False, None),
        ("Other", at("2026-06-01T00:00:00"), f"snapshot {june_id}", False, None),
    ]


def test_without_a_snapshot_the_calls_spell_the_role(tmp_path: Path) -> None:
    """No snapshot and no CreateRole: the calls' sessionIssuer gives the role's spelling."""
    settings = build(
        tmp_path,
        [
            iam_event(
                "tag-lower",
                "TagRole",
                "deployagent",
                "2026-07-02T09:00:00Z",
                tags=[{"key": "Usage", "value": "Agent"}],
            ),
            call("c-tagged", "DeployAgent", "2026-07-03T10:00:00Z"),
        ],
    )
    assert classified_by(settings) == {"tag-lower": "human.iam_user", "c-tagged": AGENT}
    assert observations(settings) == [
        ("DeployAgent", at("2026-07-02T09:00:00"), "TagRole tag-lower", True, "Usage=Agent"),
    ]


# ------------------------------------------------------------ a role deleted and re-created
def test_a_role_re_created_between_snapshots_is_the_later_listing_from_its_create_date(
    tmp_path: Path,
) -> None:
    """June lists AgentA tagged and OpsB untagged; July lists both again, created June 10 (each
    deleted and re-created between the snapshots, the tag now on the other): from June 10 each
    is what July shows, not what June showed of the earlier role of its name."""
    settings = build(
        tmp_path,
        [
            call("a-june-5", "AgentA", "2026-06-05T10:00:00Z"),
            call("b-june-5", "OpsB", "2026-06-05T10:00:00Z"),
            call("a-june-15", "AgentA", "2026-06-15T10:00:00Z"),
            call("b-june-15", "OpsB", "2026-06-15T10:00:00Z"),
        ],
    )
    created = "2026-06-10T00:00:00+00:00"
    june = export(tmp_path / "june.json", role("AgentA", ("Usage", "Agent")), role("OpsB"))
    july = export(
        tmp_path / "july.json",
        role("AgentA", created=created),
        role("OpsB", ("Usage", "Agent"), created=created),
    )
    import_iam([june], settings, at("2026-06-01T00:00:00"))
    import_iam([july], settings, at("2026-07-01T00:00:00"))
    june_id, july_id = sid(june, at("2026-06-01T00:00:00")), sid(july, at("2026-07-01T00:00:00"))

    assert classified_by(settings) == {
        "a-june-5": AGENT,
        "b-june-5": HUMAN,
        "a-june-15": HUMAN,
        "b-june-15": AGENT,
    }
    re_created = f"snapshot {july_id} (role created 2026-06-10T00:00:00Z)"
    assert observations(settings) == [
        ("AgentA", at("2026-06-01T00:00:00"), f"snapshot {june_id}", True, "Usage=Agent"),
        ("AgentA", at("2026-06-10T00:00:00"), re_created, False, None),
        ("AgentA", at("2026-07-01T00:00:00"), f"snapshot {july_id}", False, None),
        ("OpsB", at("2026-06-01T00:00:00"), f"snapshot {june_id}", False, None),
        ("OpsB", at("2026-06-10T00:00:00"), re_created, True, "Usage=Agent"),
        ("OpsB", at("2026-07-01T00:00:00"), f"snapshot {july_id}", True, "Usage=Agent"),
    ]


def test_a_deleted_role_is_no_agent_role_until_a_later_listing_of_its_re_creation(
    tmp_path: Path,
) -> None:
    """CreateRole makes OpsA an agent role on June 1 and DeleteRole deletes it on June 5 (its
    name typed in lower case); July lists an OpsA created June 10, tagged again, whose CreateRole
    is not in the logs: from June 5 no agent role (a session issued to the name then is no agent's:
    nothing says what the role is), from June 10 what July shows. Without the DeleteRole, the
    first role's tag held until July."""
    agent_tag = [{"key": "Usage", "value": "Agent"}]
    settings = build(
        tmp_path,
        [
            iam_event("create", "CreateRole", "OpsA", "2026-06-01T00:00:00Z", tags=agent_tag),
            call("a-june-3", "OpsA", "2026-06-03T10:00:00Z"),
            iam_event("delete", "DeleteRole", "opsa", "2026-06-05T00:00:00Z"),
            call("a-june-7", "OpsA", "2026-06-07T10:00:00Z"),
            call("a-june-15", "OpsA", "2026-06-15T10:00:00Z"),
        ],
    )
    created = "2026-06-10T00:00:00+00:00"
    july = export(tmp_path / "july.json", role("OpsA", ("Usage", "Agent"), created=created))
    import_iam([july], settings, at("2026-07-01T00:00:00"))
    july_id = sid(july, at("2026-07-01T00:00:00"))

    assert classified_by(settings) == {
        "create": "human.iam_user",
        "a-june-3": AGENT,
        "delete": "human.iam_user",
        "a-june-7": HUMAN,
        "a-june-15": AGENT,
    }
    assert observations(settings) == [
        ("OpsA", at("2026-06-01T00:00:00"), "CreateRole create", True, "Usage=Agent"),
        ("OpsA", at("2026-06-05T00:00:00"), "DeleteRole delete", False, None),
        ("OpsA", at("2026-06-10T00:00:00"),
         f"snapshot {july_id} (role created 2026-06-10T00:00:00Z)", True, "Usage=Agent"),
        ("OpsA", at("2026-07-01T00:00:00"), f"snapshot {july_id}", True, "Usage=Agent"),
    ]  # fmt: skip


def test_a_tag_event_in_the_second_of_a_delete_role_came_before_it(tmp_path: Path) -> None:
    """IAM tags a role only while it exists, so a TagRole or UntagRole that succeeded in the
    second of a DeleteRole (no CreateRole in it) came before it: the role is deleted after that
    second, whatever the order in the file. OpsA, created untagged, is tagged and deleted in one
    second: a session issued to the name on June 7 (the role re-created, its CreateRole not in
    the logs) is no agent's. OpsB, created tagged, is untagged and deleted in one second, and
    July lists an OpsB created June 10, tagged: an agent role from June 10, as after any
    DeleteRole. The tagging event held over the DeleteRole before: OpsA stayed an agent role,
    and OpsB was the UntagRole's until July."""
    agent_tag = [{"key": "Usage", "value": "Agent"}]
    settings = build(
        tmp_path,
        [
            iam_event("create-a", "CreateRole", "OpsA", "2026-06-01T00:00:00Z"),
            iam_event("create-b", "CreateRole", "OpsB", "2026-06-01T00:00:00Z", tags=agent_tag),
            iam_event("delete-a", "DeleteRole", "OpsA", "2026-06-05T00:00:00Z"),
            iam_event("tag-a", "TagRole", "OpsA", "2026-06-05T00:00:00Z", tags=agent_tag),
            iam_event("untag-b", "UntagRole", "OpsB", "2026-06-05T00:00:00Z", tagKeys=["Usage"]),
            iam_event("delete-b", "DeleteRole", "OpsB", "2026-06-05T00:00:00Z"),
            call("a-june-7", "OpsA", "2026-06-07T10:00:00Z"),
            call("b-june-15", "OpsB", "2026-06-15T10:00:00Z"),
        ],
    )
    created = "2026-06-10T00:00:00+00:00"
    july = export(tmp_path / "july.json", role("OpsB", ("Usage", "Agent"), created=created))
    import_iam([july], settings, at("2026-07-01T00:00:00"))
    july_id = sid(july, at("2026-07-01T00:00:00"))

    got = classified_by(settings)
    assert {e: got[e] for e in ("a-june-7", "b-june-15")} == {
        "a-june-7": HUMAN,
        "b-june-15": AGENT,
    }
    assert observations(settings) == [
        ("OpsA", at("2026-06-01T00:00:00"), "CreateRole create-a", False, None),
        ("OpsA", at("2026-06-05T00:00:00"), "DeleteRole delete-a", False, None),
        ("OpsA", at("2026-07-01T00:00:00"), f"snapshot {july_id} (role absent)", False, None),
        ("OpsB", at("2026-06-01T00:00:00"), "CreateRole create-b", True, "Usage=Agent"),
        ("OpsB", at("2026-06-05T00:00:00"), "DeleteRole delete-b", False, None),
        ("OpsB", at("2026-06-10T00:00:00"),
         f"snapshot {july_id} (role created 2026-06-10T00:00:00Z)", True, "Usage=Agent"),
        ("OpsB", at("2026-07-01T00:00:00"), f"snapshot {july_id}", True, "Usage=Agent"),
    ]  # fmt: skip
    changes = run_query(settings, "agent_tag_changes", scope=Scope()).table.to_pylist()
    assert [(r["role_name"], r["change"], r["event"], r["was"]) for r in changes] == [
        ("OpsB", "tagged", "CreateRole create-b", "unknown"),
        ("OpsB", "deleted", "DeleteRole delete-b", "tagged"),
    ]


def test_a_role_created_and_deleted_in_one_second_after_it_was_deleted_stays_deleted(
    tmp_path: Path,
) -> None:
    """A CreateRole and a DeleteRole in one second: where the role existed before that second
    it was deleted and created again (infrastructure as code replacing it, the case file
    agent_role_deleted), but where it did not (OpsA was deleted on June 2) no role of the name
    could be deleted before it was created, so it was created and then deleted: the role does
    not exist after that second, and a session issued to the name on June 7 (its re-creation
    not in the logs) is no agent's. The CreateRole held before, tagged."""
    agent_tag = [{"key": "Usage", "value": "Agent"}]
    settings = build(
        tmp_path,
        [
            iam_event("create-1", "CreateRole", "OpsA", "2026-06-01T00:00:00Z", tags=agent_tag),
            iam_event("delete-1", "DeleteRole", "OpsA", "2026-06-02T00:00:00Z"),
            iam_event("create-2", "CreateRole", "OpsA", "2026-06-05T00:00:00Z", tags=agent_tag),
            iam_event("delete-2", "DeleteRole", "OpsA", "2026-06-05T00:00:00Z"),
            call("a-june-7", "OpsA", "2026-06-07T10:00:00Z"),
        ],
    )
    assert classified_by(settings)["a-june-7"] == HUMAN
    assert observations(settings) == [
        ("OpsA", at("2026-06-01T00:00:00"), "CreateRole create-1", True, "Usage=Agent"),
        ("OpsA", at("2026-06-02T00:00:00"), "DeleteRole delete-1", False, None),
        ("OpsA", at("2026-06-05T00:00:00"), "DeleteRole delete-2", False, None),
    ]


def test_a_listing_after_a_delete_role_of_the_role_it_deleted_is_stale(tmp_path: Path) -> None:
    """The June 6 snapshot still lists OpsA and OpsB, tagged, with CreateDates before their
    DeleteRoles of June 5: the roles those DeleteRoles deleted (a stale export imported with a
    later time, or IAM's eventually consistent listing): no observation of them on June 6, and a
    session issued to either name on June 7 (the role re-created, its CreateRole not in the
    logs) is no agent's. Before, the listing tagged both again from June 6. OpsB is known from
    the May snapshot only, which still applies before the DeleteRole. OpsC, deleted on June 5
    and listed with a CreateDate in that second (replaced: deleted and created again), is the
    listing's from June 6."""
    agent_tag = [{"key": "Usage", "value": "Agent"}]
    settings = build(
        tmp_path,
        [
            iam_event("create-a", "CreateRole", "OpsA", "2026-06-01T00:00:00Z", tags=agent_tag),
            call("b-may-20", "OpsB", "2026-05-20T10:00:00Z"),
            iam_event("delete-a", "DeleteRole", "OpsA", "2026-06-05T00:00:00Z"),
            iam_event("delete-b", "DeleteRole", "opsb", "2026-06-05T00:00:00Z"),
            iam_event("delete-c", "DeleteRole", "OpsC", "2026-06-05T00:00:00Z"),
            call("a-june-7", "OpsA", "2026-06-07T10:00:00Z"),
            call("b-june-7", "OpsB", "2026-06-07T10:00:00Z"),
            call("c-june-7", "OpsC", "2026-06-07T10:00:00Z"),
        ],
    )
    may = export(tmp_path / "may.json", role("OpsB", ("Usage", "Agent")))
    import_iam([may], settings, at("2026-05-01T00:00:00"))
    june = export(
        tmp_path / "june.json",
        role("OpsA", ("Usage", "Agent"), created="2026-06-01T00:00:00+00:00"),
        role("OpsB", ("Usage", "Agent")),
        role("OpsC", ("Usage", "Agent"), created="2026-06-05T00:00:00+00:00"),
    )
    import_iam([june], settings, at("2026-06-06T00:00:00"))
    may_id, june_id = sid(may, at("2026-05-01T00:00:00")), sid(june, at("2026-06-06T00:00:00"))

    got = classified_by(settings)
    assert {e: got[e] for e in ("b-may-20", "a-june-7", "b-june-7", "c-june-7")} == {
        "b-may-20": AGENT,
        "a-june-7": HUMAN,
        "b-june-7": HUMAN,
        "c-june-7": AGENT,
    }
    assert observations(settings) == [
        ("OpsA", at("2026-05-01T00:00:00"), f"snapshot {may_id} (role absent)", False, None),
        ("OpsA", at("2026-06-01T00:00:00"), "CreateRole create-a", True, "Usage=Agent"),
        ("OpsA", at("2026-06-05T00:00:00"), "DeleteRole delete-a", False, None),
        ("OpsB", at("2026-05-01T00:00:00"), f"snapshot {may_id}", True, "Usage=Agent"),
        ("OpsB", at("2026-06-05T00:00:00"), "DeleteRole delete-b", False, None),
        ("OpsC", at("2026-05-01T00:00:00"), f"snapshot {may_id} (role absent)", False, None),
        ("OpsC", at("2026-06-05T00:00:00"), "DeleteRole delete-c", False, None),
        ("OpsC", at("2026-06-06T00:00:00"), f"snapshot {june_id}", True, "Usage=Agent"),
    ]


def test_a_role_re_created_between_snapshots_with_events_after_is_unknown_until_them(
    tmp_path: Path,
) -> None:
    """June lists R tagged; July lists R untagged, created June 10 (re-created before the logs
    show it); an UntagRole on June 20. The June listing is of the earlier role: from June 10
    the role is of unknown tags (not an agent role) until its event, which an UntagRole, which
    can only remove the tag, must not make an agent role's."""
    settings = build(
        tmp_path,
        [
            call("c-june-15", "R", "2026-06-15T10:00:00Z"),
            iam_event("untag", "UntagRole", "R", "2026-06-20T09:00:00Z", tagKeys=["Usage"]),
            call("c-june-25", "R", "2026-06-25T10:00:00Z"),
        ],
    )
    june = export(tmp_path / "june.json", role("R", ("Usage", "Agent")))
    july = export(tmp_path / "july.json", role("R", created="2026-06-10T00:00:00+00:00"))
    import_iam([june], settings, at("2026-06-01T00:00:00"))
    import_iam([july], settings, at("2026-07-01T00:00:00"))
    june_id, july_id = sid(june, at("2026-06-01T00:00:00")), sid(july, at("2026-07-01T00:00:00"))

    assert classified_by(settings) == {
        "c-june-15": HUMAN,
        "untag": "human.iam_user",
        "c-june-25": HUMAN,
    }
    unknown = (
        f"snapshot {july_id} (role created 2026-06-10T00:00:00Z; its tags unknown until its"
        " next event)"
    )
    assert observations(settings) == [
        ("R", at("2026-06-01T00:00:00"), f"snapshot {june_id}", True, "Usage=Agent"),
        ("R", at("2026-06-10T00:00:00"), unknown, None, None),
        ("R", at("2026-06-20T09:00:00"), "UntagRole untag", False, None),
        ("R", at("2026-07-01T00:00:00"), f"snapshot {july_id}", False, None),
    ]


def test_a_tag_event_in_another_case_tags_the_role_of_that_name_at_its_time(
    tmp_path: Path,
) -> None:
    """BuildAgent (June snapshot) is deleted on June 10 and created again as buildAgent on June
    11; a TagRole typed `buildagent` on June 12 tags the new role, not the deleted one, and one
    on June 5 the old one. The spelling is the one a listing or CreateRole shows nearest before
    the event, not one chosen for all time."""
    agent_tag = [{"key": "Usage", "value": "Agent"}]
    settings = build(
        tmp_path,
        [
            iam_event("tag-old", "TagRole", "buildagent", "2026-06-05T09:00:00Z", tags=agent_tag),
            call("c-old", "BuildAgent", "2026-06-06T10:00:00Z"),
            iam_event("delete", "DeleteRole", "BuildAgent", "2026-06-10T00:00:00Z"),
            iam_event("create", "CreateRole", "buildAgent", "2026-06-11T00:00:00Z"),
            iam_event("tag-new", "TagRole", "buildagent", "2026-06-12T00:00:00Z", tags=agent_tag),
            call("c-new", "buildAgent", "2026-06-13T10:00:00Z"),
        ],
    )
    june = export(tmp_path / "june.json", role("BuildAgent"), role("Other"))
    import_iam([june], settings, at("2026-06-01T00:00:00"))
    june_id = sid(june, at("2026-06-01T00:00:00"))

    verdicts_by_id = classified_by(settings)
    assert (verdicts_by_id["c-old"], verdicts_by_id["c-new"]) == (AGENT, AGENT)
    assert observations(settings) == [
        ("BuildAgent", at("2026-06-01T00:00:00"), f"snapshot {june_id}", False, None),
        ("BuildAgent", at("2026-06-05T09:00:00"), "TagRole tag-old", True, "Usage=Agent"),
        ("BuildAgent", at("2026-06-10T00:00:00"), "DeleteRole delete", False, None),
        ("Other", at("2026-06-01T00:00:00"), f"snapshot {june_id}", False, None),
        # The June snapshot does not list the role created on June 11.
        ("buildAgent", at("2026-06-01T00:00:00"), f"snapshot {june_id} (role absent)", False, None),
        ("buildAgent", at("2026-06-11T00:00:00"), "CreateRole create", False, None),
        ("buildAgent", at("2026-06-12T00:00:00"), "TagRole tag-new", True, "Usage=Agent"),
    ]


def test_a_delete_role_in_the_second_of_a_create_role_in_another_case_deletes_the_old_role(
    tmp_path: Path,
) -> None:
    """Infrastructure as code replaces BuildAgent (an agent role) by buildAgent, untagged: it
    deletes the role (typed `buildagent`) and creates the new one in the same second. The
    DeleteRole ends BuildAgent, the role that existed before that second, and agent_tag_changes
    lists that deletion; buildAgent is no agent role. Before, the CreateRole of its second was the
    spelling at or before the DeleteRole: it was taken for buildAgent's, and BuildAgent stayed an
    agent role for good (a session issued to that spelling on June 13 was the agent's)."""
    agent_tag = [{"key": "Usage", "value": "Agent"}]
    settings = build(
        tmp_path,
        [
            iam_event("create-old", "CreateRole", "BuildAgent", "2026-06-01T00:00:00Z",
                      tags=agent_tag),
            iam_event("delete", "DeleteRole", "buildagent", "2026-06-10T00:00:00Z"),
            iam_event("create-new", "CreateRole", "buildAgent", "2026-06-10T00:00:00Z"),
            call("c-old-name", "BuildAgent", "2026-06-13T10:00:00Z"),
            call("c-new", "buildAgent", "2026-06-13T10:00:00Z"),
        ],
    )  # fmt: skip
    verdicts_by_id = classified_by(settings)
    assert (verdicts_by_id["c-old-name"], verdicts_by_id["c-new"]) == (HUMAN, HUMAN)
    assert observations(settings) == [
        ("BuildAgent", at("2026-06-01T00:00:00"), "CreateRole create-old", True, "Usage=Agent"),
        ("BuildAgent", at("2026-06-10T00:00:00"), "DeleteRole delete", False, None),
        ("buildAgent", at("2026-06-10T00:00:00"), "CreateRole create-new", False, None),
    ]
    changes = run_query(settings, "agent_tag_changes", scope=Scope()).table.to_pylist()
    assert [(r["role_name"], r["change"], r["event"], r["was"]) for r in changes] == [
        ("BuildAgent", "tagged", "CreateRole create-old", "unknown"),
        ("BuildAgent", "deleted", "DeleteRole delete", "tagged"),
    ]

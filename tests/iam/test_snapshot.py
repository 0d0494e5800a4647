"""snapshot.py and client.py: a live snapshot against moto's standalone server over HTTP, then
imported; pagination and AWS errors through botocore's Stubber (moto never paginates this call)."""

from __future__ import annotations

import errno
import json
import os
import re
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber
from ingest_fixtures import agenttrail

from pipeline.errors import IamError
from pipeline.iam.client import make_iam_client
from pipeline.iam.snapshot import ALL_TYPES, raw_path, snapshot_to_file, take_snapshot
from pipeline.iam.store import import_snapshots
from pipeline.warehouse.connect import connect
from pipeline.warehouse.layout import Layout
from pipeline.warehouse.lock import writer_lock

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

MOTO_ACCOUNT = "123456789012"  # moto's default account
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def policy(*actions: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}],
        }
    )


@pytest.fixture
def iam_endpoint(moto_server: str) -> str:
    """tests/conftest.py's server (dummy credentials, no real account reachable), emptied."""
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    return moto_server


@pytest.fixture
def iam(iam_endpoint: str) -> IAMClient:
    return make_iam_client(None, iam_endpoint, 2, region="us-east-1")


@pytest.fixture
def stubbed() -> Iterator[tuple[IAMClient, Stubber]]:
    client = boto3.client(
        "iam",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_live_snapshot_is_imported_with_its_role_tags(iam: IAMClient, tmp_path: Path) -> None:
    boundary = iam.create_policy(PolicyName="agent-boundary", PolicyDocument=policy("s3:*"))
    boundary_arn = boundary["Policy"]["Arn"]
    iam.create_role(
        RoleName="ops-agent",
        Path="/agents/",
        AssumeRolePolicyDocument=json.dumps(TRUST),
        PermissionsBoundary=boundary_arn,
        Tags=[{"Key": "Usage", "Value": "Agent"}, {"Key": "Owner", "Value": "platform-team"}],
    )
    iam.create_role(
        RoleName="ci-deploy",
        AssumeRolePolicyDocument=json.dumps(TRUST),
        Tags=[{"Key": "Usage", "Value": "CI"}],
    )
    iam.create_role(RoleName="untagged", AssumeRolePolicyDocument=json.dumps(TRUST))
    access = iam.create_policy(PolicyName="agent-access", PolicyDocument=policy("s3:GetObject"))
    iam.create_policy_version(
        PolicyArn=access["Policy"]["Arn"],
        PolicyDocument=policy("s3:GetObject", "s3:PutObject"),
        SetAsDefault=True,
    )
    iam.attach_role_policy(RoleName="ops-agent", PolicyArn=access["Policy"]["Arn"])
    iam.create_group(GroupName="developers")
    iam.create_user(UserName="bob", Tags=[{"Key": "team", "Value": "data"}])
    iam.add_user_to_group(GroupName="developers", UserName="bob")
    iam.put_user_policy(UserName="bob", PolicyName="read", PolicyDocument=policy("s3:List*"))

    taken = snapshot_to_file(iam, tmp_path / "raw" / "snapshot.json")
    assert (taken.users, taken.groups, taken.roles, taken.policies) == (1, 1, 3, 2)
    layout = Layout.at(tmp_path / "warehouse")
    summary = import_snapshots([taken.path], layout, taken.taken_at)
    sid = summary.snapshots[0].snapshot_id
    assert summary.accounts == (MOTO_ACCOUNT,)

    with connect(layout, read_only=True) as con:
        tags = con.execute(
            "select account_id, role_name, role_arn, tag_key, tag_value, snapshot_id "
            "from iam_role_tags order by role_name, tag_key"
        ).fetchall()
        role = con.execute(
            "select permissions_boundary_arn, attached_policy_arns, path from iam_roles "
            "where role_name = 'ops-agent'"
        ).fetchall()
        policies = con.execute(
            "select policy_name, default_version_id, "
            "json_extract(default_document, '$.Statement[0].Action')::varchar from iam_policies "
            "order by policy_name"
        ).fetchall()
        users = con.execute(
            "select user_name, groups, tags['team'], inline_policies from iam_users"
        ).fetchall()
    agent_arn = f"arn:aws:iam::{MOTO_ACCOUNT}:role/agents/ops-agent"
    ci_arn = f"arn:aws:iam::{MOTO_ACCOUNT}:role/ci-deploy"
    assert tags == [
        (MOTO_ACCOUNT, "ci-deploy", ci_arn, "Usage", "CI", sid),
        (MOTO_ACCOUNT, "ops-agent", agent_arn, "Owner", "platform-team", sid),
        (MOTO_ACCOUNT, "ops-agent", agent_arn, "Usage", "Agent", sid),
    ]
    assert role == [(boundary_arn, [access["Policy"]["Arn"]], "/agents/")]
    assert policies == [
        ("agent-access", "v2", '["s3:GetObject","s3:PutObject"]'),
        ("agent-boundary", "v1", '["s3:*"]'),
    ]
    assert users == [
        (
            "bob",
            ["developers"],
            "data",
            '{"read":{"Statement":[{"Action":["s3:List*"],"Effect":"Allow","Resource":"*"}],'
            '"Version":"2012-10-17"}}',
        )
    ]


def test_snapshot_file_has_the_cli_shape(iam: IAMClient, tmp_path: Path) -> None:
    iam.create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps(TRUST))
    before = datetime.now(UTC)
    taken = snapshot_to_file(iam, tmp_path / "snapshot.json")
    assert before <= taken.taken_at <= datetime.now(UTC)
    text = taken.path.read_text(encoding="utf-8")
    document = json.loads(text)
    assert list(document) == ["UserDetailList", "GroupDetailList", "RoleDetailList", "Policies"]
    role = document["RoleDetailList"][0]
    assert role["AssumeRolePolicyDocument"] == TRUST  # decoded, as the CLI prints it
    assert datetime.fromisoformat(role["CreateDate"]).utcoffset() is not None
    assert text.startswith('{\n    "UserDetailList": [')  # the CLI's 4-space indent
    assert not list(tmp_path.glob(".*.tmp"))


# ------------------------------------------------------------------ never replace a file
def test_a_snapshot_never_replaces_a_file(iam: IAMClient, tmp_path: Path) -> None:
    """A second snapshot to the name of the first (two runs in one second used to share it):
    refused, and the first file, which its imported snapshot names, keeps its bytes."""
    iam.create_role(RoleName="first", AssumeRolePolicyDocument=json.dumps(TRUST))
    target = tmp_path / "raw" / "authorization-details.json"
    first = snapshot_to_file(iam, target).path.read_bytes()
    iam.create_role(RoleName="second", AssumeRolePolicyDocument=json.dumps(TRUST))
    with pytest.raises(IamError) as caught:
        snapshot_to_file(iam, target)
    assert caught.value.message == (
        f"cannot write the IAM snapshot to {target}: a file of that name exists, and a "
        "snapshot never replaces one"
    )
    assert target.read_bytes() == first
    assert sorted(p.name for p in target.parent.iterdir()) == ["authorization-details.json"]


def test_without_hard_links_the_file_is_still_never_replaced(
    iam: IAMClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some file systems (FAT, some network and FUSE ones) have no hard links: os.link fails
    with EPERM there, and the file is copied into a name created only if free."""

    def no_links(source: Any, target: Any) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    iam.create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps(TRUST))
    target = tmp_path / "snapshot.json"
    taken = snapshot_to_file(iam, target)
    assert json.loads(target.read_text(encoding="utf-8"))["RoleDetailList"][0]["RoleName"] == "r"
    first = target.read_bytes()
    with pytest.raises(IamError, match="a file of that name exists"):
        snapshot_to_file(iam, target)
    assert (taken.path, target.read_bytes()) == (target, first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snapshot.json"]


def test_raw_file_names_of_one_second_differ(tmp_path: Path) -> None:
    now = datetime(2026, 6, 30, 12, 0, 0, 999, tzinfo=UTC)
    names = {raw_path(tmp_path, now).name for _ in range(20)}
    assert len(names) == 20
    assert all(
        re.fullmatch(r"authorization-details-20260630T120000Z-[0-9a-f]{8}\.json", n) for n in names
    )


def page(marker: str | None, **lists: list[dict[str, Any]]) -> dict[str, Any]:
    response: dict[str, Any] = dict(lists)
    response["IsTruncated"] = marker is not None
    if marker is not None:
        response["Marker"] = marker
    return response


def role(name: str, created: datetime | str, **extra: Any) -> dict[str, Any]:
    return {
        "Path": "/",
        "RoleName": name,
        "RoleId": f"AROA{name.upper():A<17}",
        "Arn": f"arn:aws:iam::111122223333:role/{name}",
        "CreateDate": created,
        **extra,
    }


def test_pages_are_merged_in_order(stubbed: tuple[IAMClient, Stubber]) -> None:
    client, stubber = stubbed
    created = datetime(2024, 4, 2, 10, 0, 0, tzinfo=UTC)
    user = {
        "Path": "/",
        "UserName": "alice",
        "UserId": "AIDAEXAMPLEALICE0001",
        "Arn": "arn:aws:iam::111122223333:user/alice",
        "CreateDate": created,
        "GroupList": ["developers"],
    }
    group = {
        "Path": "/",
        "GroupName": "developers",
        "GroupId": "AGPAEXAMPLEDEVS00001",
        "Arn": "arn:aws:iam::111122223333:group/developers",
        "CreateDate": created,
    }
    managed = {
        "PolicyName": "agent-s3-access",
        "PolicyId": "ANPAEXAMPLEAGENTS3A1",
        "Arn": "arn:aws:iam::111122223333:policy/agent-s3-access",
        "DefaultVersionId": "v1",
        "PolicyVersionList": [
            {
                "Document": "%7B%22Version%22%3A%222012-10-17%22%7D",  # raw API form
                "VersionId": "v1",
                "IsDefaultVersion": True,
                "CreateDate": created,
            }
        ],
    }
    last_used = {
        "LastUsedDate": datetime(2024, 5, 30, 14, 12, 9, tzinfo=UTC),
        "Region": "eu-west-1",
    }
    responses = [
        page(
            "m1",
            UserDetailList=[user],
            GroupDetailList=[group],
            RoleDetailList=[role("a", created)],
        ),
        page("m2", RoleDetailList=[role("b", created, RoleLastUsed=last_used)]),
        page(None, RoleDetailList=[role("c", created)], Policies=[managed]),
    ]
    for response, marker in zip(responses, [None, "m1", "m2"], strict=True):
        expected: dict[str, Any] = {"Filter": ALL_TYPES}
        if marker:
            expected["Marker"] = marker
        stubber.add_response("get_account_authorization_details", response, expected)

    iso = "2024-04-02T10:00:00+00:00"
    assert take_snapshot(client) == {
        "UserDetailList": [{**user, "CreateDate": iso}],
        "GroupDetailList": [{**group, "CreateDate": iso}],
        "RoleDetailList": [
            role("a", iso),
            role(
                "b",
                iso,
                RoleLastUsed={"LastUsedDate": "2024-05-30T14:12:09+00:00", "Region": "eu-west-1"},
            ),
            role("c", iso),
        ],
        "Policies": [
            {
                **managed,
                "PolicyVersionList": [
                    {
                        "Document": {"Version": "2012-10-17"},  # botocore decodes, like the CLI
                        "VersionId": "v1",
                        "IsDefaultVersion": True,
                        "CreateDate": iso,
                    }
                ],
            }
        ],
    }


def test_access_denied_names_the_permission(stubbed: tuple[IAMClient, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_client_error(
        "get_account_authorization_details",
        service_error_code="AccessDenied",
        service_message="User: arn:aws:iam::111122223333:user/bob is not authorized to perform: "
        "iam:GetAccountAuthorizationDetails on resource: *",
        http_status_code=403,
    )
    with pytest.raises(IamError) as caught:
        take_snapshot(client)
    assert caught.value.one_line() == (
        "access denied: the identity may not call iam:GetAccountAuthorizationDetails "
        "(grant iam:GetAccountAuthorizationDetails (see docs/iam-policy.json) or pass --profile "
        "for one that has it)"
    )


def test_other_aws_errors_keep_code_and_message(stubbed: tuple[IAMClient, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_client_error(
        "get_account_authorization_details",
        service_error_code="ServiceFailure",
        service_message="internal failure",
        http_status_code=400,
    )
    with pytest.raises(
        IamError, match=r"^IAM error ServiceFailure while taking the snapshot: internal failure$"
    ):
        take_snapshot(client)


def test_no_credentials(iam_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    client = make_iam_client(None, iam_endpoint, 1, region="us-east-1")
    with pytest.raises(IamError) as caught:
        take_snapshot(client)
    assert caught.value.message == "no AWS credentials found"


def test_unknown_profile(iam_endpoint: str) -> None:
    with pytest.raises(IamError, match=r"^AWS profile not found: nope$"):
        make_iam_client("nope", iam_endpoint, 1)


# ------------------------------------------------------------- an endpoint that is not IAM
def test_an_endpoint_that_does_not_answer_as_iam_is_one_line(iam_endpoint: str) -> None:
    """moto answers a path it does not serve with an HTML page: botocore's ResponseParserError,
    no BotoCoreError, was an internal error. The path (which may hold a token) is not shown."""
    client = make_iam_client(None, f"{iam_endpoint}/not-iam/s3cr3t", 1, region="us-east-1")
    with pytest.raises(IamError) as caught:
        take_snapshot(client)
    assert caught.value.one_line() == (
        f"{iam_endpoint} did not answer as IAM: its response to GetAccountAuthorizationDetails "
        "is not IAM's XML (check --endpoint-url (it must be an IAM endpoint; without it AWS's "
        "is used) and any proxy settings)"
    )


def test_iam_snapshot_against_an_endpoint_that_is_not_iam_exits_1(
    iam_endpoint: str, tmp_path: Path
) -> None:
    warehouse = tmp_path / "w"
    done = agenttrail(
        "iam", "snapshot", "--endpoint-url", f"{iam_endpoint}/foo", "-w", str(warehouse),
        cwd=tmp_path,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"error: {iam_endpoint} did not answer as IAM: its response to "
        "GetAccountAuthorizationDetails is not IAM's XML (check --endpoint-url (it must be an "
        "IAM endpoint; without it AWS's is used) and any proxy settings)\n"
    )
    assert not list(warehouse.rglob("*.json"))


# ------------------------------------------------------------------ a busy warehouse
def test_iam_snapshot_into_a_busy_warehouse_names_the_file_and_the_import(
    iam: IAMClient, iam_endpoint: str, tmp_path: Path
) -> None:
    """The snapshot is taken and kept in iam/raw/ before the import finds the warehouse busy;
    the hint said only "wait for it to finish", and a re-run took another snapshot. It names
    the file and the command that imports it at the time it was taken."""
    iam.create_role(RoleName="ops-agent", AssumeRolePolicyDocument=json.dumps(TRUST))
    layout = Layout.at(tmp_path / "w")
    before = datetime.now(UTC)
    with writer_lock(layout.lock, "ingest"):
        done = agenttrail(
            "iam", "snapshot", "--endpoint-url", iam_endpoint, "-w", str(layout.root),
            cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    [kept] = layout.iam_raw.glob("*.json")
    assert done.stdout == f"snapshot written to {kept}\n"
    found = re.fullmatch(
        rf"error: warehouse {re.escape(str(layout.root))} is busy: ingest by pid \d+ since \S+ "
        r"\(nothing was imported: wait for it to finish, then run `(?P<command>[^`]+)` "
        r"\(only one ingest or import runs at a time\)\)\n",
        done.stderr,
    )
    assert found, done.stderr
    command = found["command"].split(" ")
    assert command[:4] == ["agenttrail", "iam", "import", str(kept)]
    assert command[4] == "--taken-at"
    taken_at = datetime.fromisoformat(command[5])
    assert before <= taken_at <= datetime.now(UTC)
    assert command[6:] == ["--warehouse", str(layout.root)]
    assert not layout.iam_snapshots.exists() or not list(layout.iam_snapshots.iterdir())
    # The command, run as given once the warehouse is free, imports that file at that time.
    done = agenttrail(*command[1:], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with connect(layout, read_only=True) as con:
        assert con.execute("select source_file, taken_at from iam_snapshots").fetchall() == [
            (str(kept), taken_at)
        ]


def test_a_snapshot_is_taken_at_its_first_request_not_its_last_page(
    stubbed: tuple[IAMClient, Stubber], tmp_path: Path
) -> None:
    """Each page shows its roles as they were when it was requested. Dated when the last page
    arrived, a snapshot whose roles page came before a TagRole, UntagRole or CreateRole made
    while later pages were fetched (minutes in a large, throttled account) would be placed
    after that event and overrule it from then on (a role created as an agent read as absent, an
    untagged one as still tagged); dated at its first request, it can be early only within the
    pagination, and the event, after it, holds."""
    client, stubber = stubbed
    created = datetime(2024, 4, 2, 10, 0, 0, tzinfo=UTC)
    for marker, response in [
        (None, page("m1", UserDetailList=[], RoleDetailList=[role("a", created)])),
        ("m1", page(None, RoleDetailList=[role("b", created)])),
    ]:
        expected: dict[str, Any] = {"Filter": ALL_TYPES}
        if marker:
            expected["Marker"] = marker
        stubber.add_response("get_account_authorization_details", response, expected)
    requested: list[datetime] = []

    def record(**_: Any) -> None:
        if requested:
            time.sleep(0.01)  # the later pages come later
        requested.append(datetime.now(UTC))

    client.meta.events.register("before-parameter-build.iam.GetAccountAuthorizationDetails", record)
    before = datetime.now(UTC)
    taken = snapshot_to_file(client, tmp_path / "snapshot.json")
    assert len(requested) == 2
    assert before <= taken.taken_at <= requested[0] < requested[1]

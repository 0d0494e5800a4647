"""load.py on the named case file: exact rows for every table, and the one-line errors."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest

from pipeline.errors import IamError, UsageError
from pipeline.iam.load import (
    GroupRow,
    PolicyRow,
    RoleRow,
    SnapshotRow,
    UserRow,
    load_snapshot,
    parse_taken_at,
    snapshot_id_of,
)

from .cases import ACCOUNT, CASE, OTHER_ACCOUNT, TAKEN_AT, case_document
from .conftest import WriteCase

SID = snapshot_id_of(CASE.read_bytes(), TAKEN_AT)
SRC = str(CASE)
KEY: dict[str, Any] = {"snapshot_id": SID, "account_id": ACCOUNT, "taken_at": TAKEN_AT}


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_snapshot_id_is_sha256_of_bytes_and_time_in_utc() -> None:
    # Pinned: changing the formula would re-import every snapshot of every warehouse.
    assert snapshot_id_of(b"{}", utc(2024, 6, 1)) == "27c7e19d39701f17"
    same_instant = datetime(2024, 6, 1, 2, tzinfo=timezone(timedelta(hours=2)))
    assert snapshot_id_of(b"{}", same_instant) == "27c7e19d39701f17"
    assert snapshot_id_of(b"{}", utc(2024, 6, 2)) != "27c7e19d39701f17"


def test_naive_taken_at_is_refused() -> None:
    with pytest.raises(UsageError, match="taken_at has no time zone: 2024-06-01T00:00:00"):
        load_snapshot(CASE, datetime(2024, 6, 1))


NOW = utc(2026, 11, 29, 12, 0, 0)


@pytest.mark.parametrize(
    ("text", "taken_at"),
    [
        ("2026-06-30T00:00:00Z", utc(2026, 6, 30)),
        ("2026-06-30T02:00:00+02:00", utc(2026, 6, 30)),
        ("2026-11-29T12:05:00Z", utc(2026, 11, 29, 12, 5)),  # the clocks may differ by 5 min
    ],
)
def test_taken_at_is_iso_8601_with_a_zone_in_utc(text: str, taken_at: datetime) -> None:
    assert parse_taken_at(text, NOW) == taken_at


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        (
            "2026-06-30",
            "--taken-at '2026-06-30' has no time zone",
            "give one, e.g. 2026-06-30T00:00:00Z for UTC",
        ),
        (
            "2026-06-30T12:30:00.5",
            "--taken-at '2026-06-30T12:30:00.5' has no time zone",
            "give one, e.g. 2026-06-30T12:30:00.500000Z for UTC",
        ),
        (
            "2026-06-30Z",
            "--taken-at '2026-06-30Z' is not a time",
            "use ISO 8601, e.g. 2026-06-30T12:00:00Z",
        ),
        (
            "2026-11-29T12:05:01Z",
            "--taken-at 2026-11-29T12:05:01Z is in the future (it is 2026-11-29T12:00:00Z)",
            "give the time the export was taken; without --taken-at it is now",
        ),
        (
            "2026-11-29T13:00:00+00:30",
            "--taken-at 2026-11-29T13:00:00+00:30 is in the future (it is 2026-11-29T12:00:00Z)",
            "give the time the export was taken; without --taken-at it is now",
        ),
    ],
    ids=["date", "no-zone", "date-z", "future", "future-in-a-zone"],
)
def test_a_taken_at_without_zone_or_in_the_future_is_refused(
    text: str, message: str, hint: str
) -> None:
    with pytest.raises(UsageError) as caught:
        parse_taken_at(text, NOW)
    assert (caught.value.message, caught.value.hint) == (message, hint)


def test_the_hint_for_a_time_without_zone_is_a_time_that_is_accepted() -> None:
    with pytest.raises(UsageError) as caught:
        parse_taken_at("2026-06-30", NOW)
    accepted = str(caught.value.hint).removeprefix("give one, e.g. ").removesuffix(" for UTC")
    assert parse_taken_at(accepted, NOW) == utc(2026, 6, 30)


def test_roles_exact() -> None:
    snapshot = load_snapshot(CASE, TAKEN_AT)
    assert snapshot.roles == (
        RoleRow(
            **KEY,
            role_name="ops-agent",
            role_id="AROAEXAMPLEOPSAGENT1",
            arn=f"arn:aws:iam::{ACCOUNT}:role/agents/ops-agent",
            path="/agents/",
            create_date=utc(2024, 4, 2, 10),
            tags={"Owner": "platform-team", "Usage": "Agent"},
            tags_json='{"Owner":"platform-team","Usage":"Agent"}',
            permissions_boundary_arn=f"arn:aws:iam::{ACCOUNT}:policy/agent-boundary",
            trust_policy='{"Statement":[{"Action":["sts:AssumeRole","sts:TagSession"],'
            '"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:role/agent-runner"}}],'
            '"Version":"2012-10-17"}',
            inline_policies='{"deny-iam-writes":{"Statement":[{"Action":["iam:Create*","iam:Put*"],'
            '"Effect":"Deny","Resource":"*"}],"Version":"2012-10-17"}}',
            attached_policy_arns=(f"arn:aws:iam::{ACCOUNT}:policy/agent-s3-access",),
            last_used_at=utc(2024, 5, 30, 14, 12, 9),
            last_used_region="eu-west-1",
            source_file=SRC,
        ),
        RoleRow(
            **KEY,
            role_name="ci-deploy",
            role_id="AROAEXAMPLECIDEPLOY1",
            arn=f"arn:aws:iam::{ACCOUNT}:role/ci-deploy",
            path="/",
            create_date=utc(2023, 11, 14, 16, 45, 30),
            tags={"Usage": "CI"},
            tags_json='{"Usage":"CI"}',
            permissions_boundary_arn=None,
            trust_policy='{"Statement":[{"Action":"sts:AssumeRoleWithWebIdentity","Condition":'
            '{"StringEquals":{"token.actions.githubusercontent.com:aud":"sts.amazonaws.com"},'
            '"StringLike":{"token.actions.githubusercontent.com:sub":"repo:example/app:*"}},'
            '"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/'
            'token.actions.githubusercontent.com"}}],"Version":"2012-10-17"}',
            inline_policies="{}",
            attached_policy_arns=("arn:aws:iam::aws:policy/ReadOnlyAccess",),
            last_used_at=utc(2024, 5, 31, 23, 59, 59),
            last_used_region="us-east-1",
            source_file=SRC,
        ),
        RoleRow(
            **KEY,
            role_name="AWSReservedSSO_AdministratorAccess_0123456789abcdef",
            role_id="AROAEXAMPLESSOADMIN1",
            arn=f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/"
            "AWSReservedSSO_AdministratorAccess_0123456789abcdef",
            path="/aws-reserved/sso.amazonaws.com/",
            create_date=utc(2022, 9, 1, 12),
            tags={},
            tags_json="{}",
            permissions_boundary_arn=None,
            trust_policy='{"Statement":[{"Action":["sts:AssumeRoleWithSAML","sts:TagSession"],'
            '"Condition":{"StringEquals":{"SAML:aud":"https://signin.aws.amazon.com/saml"}},'
            '"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:saml-provider/'
            'AWSSSO_0123456789abcdef_DO_NOT_DELETE"}}],"Version":"2012-10-17"}',
            inline_policies="{}",
            attached_policy_arns=("arn:aws:iam::aws:policy/AdministratorAccess",),
            last_used_at=None,  # RoleLastUsed is {} for a role unused in 400 days
            last_used_region=None,
            source_file=SRC,
        ),
    )


def test_user_and_group_exact() -> None:
    snapshot = load_snapshot(CASE, TAKEN_AT)
    assert snapshot.users == (
        UserRow(
            **KEY,
            user_name="alice",
            user_id="AIDAEXAMPLEALICE0001",
            arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
            path="/",
            create_date=utc(2023, 3, 1, 9, 15),
            tags={"team": "platform"},
            tags_json='{"team":"platform"}',
            permissions_boundary_arn=None,
            # given URL-encoded in the file, stored as the same JSON as any other document
            inline_policies='{"team-reports-read":{"Statement":[{"Action":["s3:GetObject",'
            '"s3:ListBucket"],"Effect":"Allow","Resource":["arn:aws:s3:::team-reports",'
            '"arn:aws:s3:::team-reports/*"]}],"Version":"2012-10-17"}}',
            attached_policy_arns=(),
            groups=("developers",),
            source_file=SRC,
        ),
    )
    assert snapshot.groups == (
        GroupRow(
            **KEY,
            group_name="developers",
            group_id="AGPAEXAMPLEDEVS00001",
            arn=f"arn:aws:iam::{ACCOUNT}:group/developers",
            path="/",
            create_date=utc(2023, 2, 20, 8),
            inline_policies="{}",
            attached_policy_arns=("arn:aws:iam::aws:policy/ReadOnlyAccess",),
            source_file=SRC,
        ),
    )


def test_policies_exact_with_the_default_version_document() -> None:
    policies = load_snapshot(CASE, TAKEN_AT).policies
    assert policies[0] == PolicyRow(
        **KEY,
        policy_name="agent-s3-access",
        policy_id="ANPAEXAMPLEAGENTS3A1",
        arn=f"arn:aws:iam::{ACCOUNT}:policy/agent-s3-access",
        path="/",
        is_aws_managed=False,
        description=None,
        default_version_id="v2",
        # v2 (s3:GetObject + s3:PutObject), not v1 (s3:GetObject only)
        default_document='{"Statement":[{"Action":["s3:GetObject","s3:PutObject"],'
        '"Effect":"Allow","Resource":"arn:aws:s3:::ops-agent-work/*"}],"Version":"2012-10-17"}',
        version_ids=("v2", "v1"),
        attachment_count=1,
        permissions_boundary_usage_count=0,
        is_attachable=True,
        create_date=utc(2024, 4, 2, 10, 5),
        update_date=utc(2024, 5, 10, 7, 30),
        source_file=SRC,
    )
    assert [(p.policy_name, p.is_aws_managed, p.default_version_id) for p in policies] == [
        ("agent-s3-access", False, "v2"),
        ("agent-boundary", False, "v1"),
        ("AdministratorAccess", True, "v1"),
        ("ReadOnlyAccess", True, "v118"),
    ]
    assert policies[1].permissions_boundary_usage_count == 1
    assert policies[2].default_document == (
        '{"Statement":[{"Action":"*","Effect":"Allow","Resource":"*"}],"Version":"2012-10-17"}'
    )


def test_snapshot_row_exact() -> None:
    snapshot = load_snapshot(CASE, TAKEN_AT)
    assert snapshot.info == SnapshotRow(
        **KEY,
        source_file=SRC,
        content_sha256=hashlib.sha256(CASE.read_bytes()).hexdigest(),
        roles=3,
        users=1,
        groups=1,
        policies=4,
    )


def test_url_encoded_and_object_documents_give_the_same_rows(write_case: WriteCase) -> None:
    document = case_document()
    role = document["RoleDetailList"][0]
    for policy in role["RolePolicyList"]:
        policy["PolicyDocument"] = quote(json.dumps(policy["PolicyDocument"]), safe="")
    role["AssumeRolePolicyDocument"] = quote(json.dumps(role["AssumeRolePolicyDocument"]))
    encoded = load_snapshot(write_case("encoded.json", document), TAKEN_AT).roles[0]
    plain = load_snapshot(CASE, TAKEN_AT).roles[0]
    assert encoded.inline_policies == plain.inline_policies
    assert encoded.trust_policy == plain.trust_policy


def test_utf16_export_from_powershell_is_read(write_case: WriteCase) -> None:
    path = write_case("utf16.json")
    path.write_bytes(path.read_text(encoding="utf-8").encode("utf-16"))  # with a BOM
    snapshot = load_snapshot(path, TAKEN_AT)
    assert [r.role_name for r in snapshot.roles] == [
        r.role_name for r in load_snapshot(CASE, TAKEN_AT).roles
    ]


def test_arns_of_two_accounts_are_refused(write_case: WriteCase) -> None:
    document = case_document()
    document["RoleDetailList"][1]["Arn"] = f"arn:aws:iam::{OTHER_ACCOUNT}:role/ci-deploy"
    path = write_case("two-accounts.json", document)
    with pytest.raises(IamError) as caught:
        load_snapshot(path, TAKEN_AT)
    assert caught.value.message == (
        f"{path}: ARNs name 2 accounts (111122223333, 444455556666); a snapshot covers one account"
    )
    assert caught.value.hint == "export each account to its own file and import them together"


def test_trust_policies_naming_other_accounts_do_not_count() -> None:
    # ops-agent trusts a role of 444455556666; the snapshot is still one account's.
    assert load_snapshot(CASE, TAKEN_AT).info.account_id == ACCOUNT


def test_a_file_naming_no_account_is_refused(write_case: WriteCase) -> None:
    document = {
        "UserDetailList": [],
        "RoleDetailList": [],
        "Policies": case_document()["Policies"][2:],  # AWS-managed
    }
    path = write_case("no-account.json", document)
    with pytest.raises(IamError) as caught:
        load_snapshot(path, TAKEN_AT)
    assert caught.value.message == (
        f"{path}: no user, group, role or customer-managed policy ARN names an account, "
        "so the snapshot cannot be attributed to one"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "{path}:1: not JSON (Expecting property name enclosed in double quotes)"),
        (
            '{"Users": []}',
            "{path}: not an authorization-details document "
            "(no UserDetailList, GroupDetailList, RoleDetailList or Policies)",
        ),
        (
            '{"RoleDetailList": {}}',
            "{path}: the document has a RoleDetailList that is not a list of objects",
        ),
        (
            '{"RoleDetailList": [{"RoleId": "AROA1", "Arn": "arn:aws:iam::111122223333:role/x"}]}',
            "{path}: RoleDetailList[0] lacks RoleName",
        ),
        (
            '{"RoleDetailList": [{"RoleName": "x", "RoleId": "AROA1", "Arn": "role/x"}]}',
            "{path}: RoleDetailList[0] has an Arn that is not an IAM ARN: 'role/x'",
        ),
        (
            '{"RoleDetailList": [], "UserDetailList": [{"UserName": "u", "UserId": "AIDA1", '
            '"Arn": "arn:aws:iam::111122223333:user/u", "UserPolicyList": '
            '[{"PolicyName": "p", "PolicyDocument": "%7Bbroken"}]}]}',
            "{path}: UserDetailList[0].UserPolicyList[0] has a PolicyDocument that is neither "
            "JSON nor URL-encoded JSON",
        ),
        (
            '{"RoleDetailList": [{"RoleName": "x", "RoleId": "AROA1", '
            '"Arn": "arn:aws:iam::111122223333:role/x", "CreateDate": "yesterday"}]}',
            "{path}: RoleDetailList[0] has an invalid CreateDate: 'yesterday'",
        ),
    ],
    ids=[
        "not-json",
        "wrong-shape",
        "list-not-list",
        "no-name",
        "bad-arn",
        "bad-document",
        "bad-date",
    ],
)
def test_malformed_files_name_the_file_and_the_fault(
    write_case: WriteCase, text: str, message: str
) -> None:
    path = write_case("bad.json")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(IamError) as caught:
        load_snapshot(path, TAKEN_AT)
    assert caught.value.message == message.format(path=path)
    assert caught.value.hint == (
        "pass the output of `aws iam get-account-authorization-details --output json`"
    )


# ------------------------------------------------------------------ the roles must be listed
@pytest.mark.parametrize("roles", ["absent", "null"])
def test_a_file_without_role_detail_list_is_refused(write_case: WriteCase, roles: str) -> None:
    """Stored, it would say that the account has no role from its taken_at on: every role
    would read as deleted, no longer an agent role."""
    document = case_document()
    if roles == "absent":
        del document["RoleDetailList"]
    else:
        document["RoleDetailList"] = None
    path = write_case("no-roles.json", document)
    with pytest.raises(IamError) as caught:
        load_snapshot(path, TAKEN_AT)
    assert caught.value.message == (
        f"{path}: no RoleDetailList, so the account's roles are unknown (every role would read "
        "as deleted from this snapshot on)"
    )
    assert caught.value.hint == (
        "pass the output of `aws iam get-account-authorization-details --output json`"
    )


def test_an_export_filtered_to_users_lists_no_role_and_is_read(write_case: WriteCase) -> None:
    """`aws iam get-account-authorization-details --filter User` prints every list, the others
    empty."""
    document = case_document()
    document.update(RoleDetailList=[], GroupDetailList=[], Policies=[])
    snapshot = load_snapshot(write_case("users.json", document), TAKEN_AT)
    assert (len(snapshot.roles), len(snapshot.users)) == (0, len(document["UserDetailList"]))


def test_missing_file(write_case: WriteCase) -> None:
    path = write_case("x.json").with_name("absent.json")
    with pytest.raises(IamError, match=f"^IAM snapshot file not found: {path}$"):
        load_snapshot(path, TAKEN_AT)


# ------------------------------------------------------------------- truncated exports
def _case_with(**top: Any) -> dict[str, Any]:
    document = case_document()
    document.update(top)
    return document


TRUNCATED_HINT = (
    "export the whole account without --max-items or --no-paginate: "
    "`aws iam get-account-authorization-details --output json`"
)


@pytest.mark.parametrize(
    ("top", "marks"),
    [
        (
            {"IsTruncated": True, "Marker": "AAEXAMPLEMARKER"},
            "IsTruncated, Marker",
        ),  # --no-paginate
        ({"NextToken": "eyJNYXJrZXIiOiBudWxsfQ=="}, "NextToken"),  # --max-items
        ({"IsTruncated": True}, "IsTruncated"),
    ],
    ids=["no-paginate", "max-items", "is-truncated"],
)
def test_a_truncated_export_is_refused(
    write_case: WriteCase, top: dict[str, Any], marks: str
) -> None:
    path = write_case("page.json", _case_with(**top))
    with pytest.raises(IamError) as caught:
        load_snapshot(path, TAKEN_AT)
    assert caught.value.message == (
        f"{path}: a truncated export ({marks}): more pages follow, so roles, users, groups or "
        "policies are missing"
    )
    assert caught.value.hint == TRUNCATED_HINT


def test_the_last_page_of_a_raw_api_response_is_a_whole_export(write_case: WriteCase) -> None:
    whole = load_snapshot(write_case("whole.json"), TAKEN_AT)
    last = load_snapshot(write_case("last.json", _case_with(IsTruncated=False)), TAKEN_AT)
    assert last.roles == tuple(
        replace(r, snapshot_id=last.snapshot_id, source_file=last.info.source_file)
        for r in whole.roles
    )
    assert (last.info.users, last.info.groups, last.info.policies) == (1, 1, 4)


# ------------------------------------------------------- values no column can hold: one line
def _role_with(**fields: Any) -> dict[str, Any]:
    role = {"RoleName": "x", "RoleId": "AROA1", "Arn": "arn:aws:iam::111122223333:role/x"}
    role.update(fields)
    return {"RoleDetailList": [role]}


DEEP = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            json.dumps(_role_with(CreateDate="0001-01-01T00:00:00+01:00")),
            "{path}: RoleDetailList[0] has a CreateDate outside the years 1 to 9999 in UTC: "
            "'0001-01-01T00:00:00+01:00'",
        ),
        (
            json.dumps(_role_with(RoleLastUsed={"LastUsedDate": "9999-12-31T23:59:59-01:00"})),
            "{path}: RoleDetailList[0].RoleLastUsed has a LastUsedDate outside the years 1 to "
            "9999 in UTC: '9999-12-31T23:59:59-01:00'",
        ),
        (
            json.dumps(
                {
                    "RoleDetailList": [],
                    "Policies": [
                        {"Arn": "arn:aws:iam::111122223333:policy/p", "AttachmentCount": 2**70}
                    ],
                }
            ),
            "{path}: Policies[0] has an AttachmentCount beyond a 64-bit integer (22 digits)",
        ),
        (
            '{"RoleDetailList": [], "Policies": [{"Arn": "arn:aws:iam::111122223333:policy/p", '
            '"PermissionsBoundaryUsageCount": -9223372036854775809}]}',
            "{path}: Policies[0] has a PermissionsBoundaryUsageCount beyond a 64-bit integer "
            "(19 digits)",
        ),
        (
            '{"RoleDetailList": [{"RoleName": "x", "RoleId": "AROA1", '
            '"Arn": "arn:aws:iam::111122223333:role/x", '
            '"Tags": [{"Key": "a\\u0000b", "Value": "\\ud800"}]}]}',
            "{path}: RoleDetailList[0].Tags[0] has a Value with a lone UTF-16 surrogate escape "
            "(\\ud800)",
        ),
        (
            '{"RoleDetailList": [{"RoleName": "x\\udc00", "RoleId": "AROA1", '
            '"Arn": "arn:aws:iam::111122223333:role/x"}]}',
            "{path}: RoleDetailList[0] has a RoleName with a lone UTF-16 surrogate escape "
            "(\\udc00)",
        ),
        (
            '{"RoleDetailList": [], "UserDetailList": [{"UserName": "u", "UserId": "AIDA1", '
            '"Arn": "arn:aws:iam::111122223333:user/u", "UserPolicyList": '
            '[{"PolicyName": "p", "PolicyDocument": {"Sid": "\\udfff"}}]}]}',
            "{path}: UserDetailList[0].UserPolicyList[0] has a PolicyDocument with a lone "
            "UTF-16 surrogate escape (\\udfff)",
        ),
        (
            '{"RoleDetailList": [{"RoleName": "x", "RoleId": "AROA1",\n'
            '"Arn": "arn:aws:iam::111122223333:role/x",\n'
            f'"AssumeRolePolicyDocument": {DEEP}}}]}}',
            "{path}:3: RoleDetailList[0].AssumeRolePolicyDocument is nested more than 100 levels "
            "deep",
        ),
        (
            json.dumps(_role_with(AssumeRolePolicyDocument=DEEP)),
            "{path}: RoleDetailList[0] has an AssumeRolePolicyDocument nested more than 100 "
            "levels deep",
        ),
        (
            '{"Policies": [{"Arn": "arn:aws:iam::111122223333:policy/p",\n'
            f'"AttachmentCount": {"9" * 5000}}}]}}',
            "{path}:2: an integer of thousands of digits, which no IAM field holds",
        ),
    ],
    ids=[
        "create-date-before-year-1-in-utc",
        "last-used-after-year-9999-in-utc",
        "attachment-count-beyond-int64",
        "boundary-count-below-int64",
        "surrogate-in-tag-value",
        "surrogate-in-role-name",
        "surrogate-in-policy-document",
        "deeply-nested-document",
        "deeply-nested-url-encoded-document",
        "integer-of-5000-digits",
    ],
)
def test_values_no_column_can_hold_name_the_file_and_the_element(
    write_case: WriteCase, text: str, message: str
) -> None:
    path = write_case("odd.json")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(IamError) as caught:
        load_snapshot(path, TAKEN_AT)
    assert caught.value.message == message.format(path=path)
    assert caught.value.hint == (
        "pass the output of `aws iam get-account-authorization-details --output json`"
    )


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_taken_at_outside_the_years_1_to_9999_in_utc_is_a_usage_error(moment: str) -> None:
    with pytest.raises(UsageError) as caught:
        load_snapshot(CASE, datetime.fromisoformat(moment))
    assert caught.value.message == f"taken_at {moment} is outside the years 1 to 9999 in UTC"

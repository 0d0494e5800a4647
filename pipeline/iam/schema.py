"""The Parquet schemas of the IAM tables, one place for their column types and meaning.

Every table carries `snapshot_id`, `account_id` and `taken_at` so that rows of several snapshots
of several accounts can share one view, and analysis picks one snapshot per account (choice.py).
Policy documents are stored as compact JSON text with sorted keys: DuckDB's JSON functions read
them, any other engine can too, and the same document always gives the same text whether the
file carried it as an object or URL-encoded.

`connect.define_views` asks `base_views` for the file-backed views, so adding a table here is
enough for it to appear in the warehouse database. A snapshot is complete exactly when the
iam_snapshots table lists it (store.py writes that file last), so the views of the other tables
keep only rows of listed snapshots: the files of an import that failed or was killed half-way
are never read as a snapshot.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pyarrow as pa

from pipeline.warehouse.layout import Layout

_TIME = pa.timestamp("us", tz="UTC")
_TAGS = pa.map_(pa.string(), pa.string())
_NAMES = pa.list_(pa.string())

_KEY = [
    ("snapshot_id", pa.string()),  # sha256 of the file's bytes and taken_at, 16 hex digits
    ("account_id", pa.string()),  # from the ARNs inside the file
    ("taken_at", _TIME),  # when the snapshot was taken (--taken-at), UTC
]

ROLES_SCHEMA = pa.schema(
    [
        *_KEY,
        ("role_name", pa.string()),
        ("role_id", pa.string()),  # AROA...: the id that appears in assumed-role principal ids
        ("arn", pa.string()),
        ("path", pa.string()),  # /aws-reserved/sso.amazonaws.com/ marks Identity Center roles
        ("create_date", _TIME),
        ("tags", _TAGS),  # tags['Usage'] = 'Agent' marks an agent role (rule 4)
        ("tags_json", pa.string()),  # the same tags as a JSON object, for engines without MAP
        ("permissions_boundary_arn", pa.string()),
        ("trust_policy", pa.string()),  # AssumeRolePolicyDocument, JSON
        ("inline_policies", pa.string()),  # JSON object: policy name -> document
        ("attached_policy_arns", _NAMES),
        ("last_used_at", _TIME),  # RoleLastUsed: IAM tracks the trailing 400 days only
        ("last_used_region", pa.string()),
        ("source_file", pa.string()),
    ]
)

USERS_SCHEMA = pa.schema(
    [
        *_KEY,
        ("user_name", pa.string()),
        ("user_id", pa.string()),  # AIDA...
        ("arn", pa.string()),
        ("path", pa.string()),
        ("create_date", _TIME),
        ("tags", _TAGS),
        ("tags_json", pa.string()),
        ("permissions_boundary_arn", pa.string()),
        ("inline_policies", pa.string()),
        ("attached_policy_arns", _NAMES),
        ("groups", _NAMES),  # group names, as GroupList gives them
        ("source_file", pa.string()),
    ]
)

GROUPS_SCHEMA = pa.schema(
    [
        *_KEY,
        ("group_name", pa.string()),
        ("group_id", pa.string()),  # AGPA...
        ("arn", pa.string()),
        ("path", pa.string()),
        ("create_date", _TIME),
        ("inline_policies", pa.string()),
        ("attached_policy_arns", _NAMES),
        ("source_file", pa.string()),
    ]
)

POLICIES_SCHEMA = pa.schema(
    [
        *_KEY,
        ("policy_name", pa.string()),
        ("policy_id", pa.string()),  # ANPA...
        ("arn", pa.string()),
        ("path", pa.string()),
        ("is_aws_managed", pa.bool_()),  # arn:aws:iam::aws:policy/...
        ("description", pa.string()),
        ("default_version_id", pa.string()),
        ("default_document", pa.string()),  # the default version's document, JSON
        ("version_ids", _NAMES),  # every version the file lists, in its order
        ("attachment_count", pa.int64()),
        ("permissions_boundary_usage_count", pa.int64()),
        ("is_attachable", pa.bool_()),
        ("create_date", _TIME),
        ("update_date", _TIME),
        ("source_file", pa.string()),
    ]
)

SNAPSHOTS_SCHEMA = pa.schema(
    [
        *_KEY,
        ("source_file", pa.string()),  # absolute path of the file first imported
        ("content_sha256", pa.string()),  # of the file's bytes: the same export has the same one
        ("roles", pa.int64()),
        ("users", pa.int64()),
        ("groups", pa.int64()),
        ("policies", pa.int64()),
    ]
)


class BaseView(NamedTuple):
    name: str
    folder: Path
    schema: pa.Schema
    # Rows only of the snapshots the `listing` view's folder names (None: every row).
    listing: BaseView | None = None


def base_views(layout: Layout) -> list[BaseView]:
    """The file-backed IAM views, each over one Parquet file per snapshot in its folder; all but
    iam_snapshots keep only the rows of snapshots that iam_snapshots lists."""
    snapshots = BaseView("iam_snapshots", layout.iam_snapshots, SNAPSHOTS_SCHEMA)
    return [
        BaseView("iam_roles", layout.iam_roles, ROLES_SCHEMA, snapshots),
        BaseView("iam_users", layout.iam_users, USERS_SCHEMA, snapshots),
        BaseView("iam_groups", layout.iam_groups, GROUPS_SCHEMA, snapshots),
        BaseView("iam_policies", layout.iam_policies, POLICIES_SCHEMA, snapshots),
        snapshots,
    ]

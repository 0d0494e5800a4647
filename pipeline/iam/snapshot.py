"""Take an IAM snapshot live, in exactly the JSON shape `aws iam get-account-authorization-details`
prints, so that a live snapshot and a file exported by hand go through the same loader.

The CLI paginates and merges the four detail lists, lets botocore decode the URL-encoded policy
documents into objects, and renders timestamps with `datetime.isoformat()`; this module does the
same. The file is kept as taken (in the warehouse's iam/raw/ when the CLI runs it), so the
import can be repeated or audited from the exact bytes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.errors import IamError
from pipeline.iam.client import translate_error
from pipeline.iam.load import DETAIL_LISTS

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iam.literals import EntityTypeType

# Every entity type: the CLI's default (no --filter) returns the same, but naming them makes the
# request explicit in CloudTrail and in stubbed tests.
ALL_TYPES: list[EntityTypeType] = [
    "User",
    "Role",
    "Group",
    "LocalManagedPolicy",
    "AWSManagedPolicy",
]


@dataclass(frozen=True)
class TakenSnapshot:
    """A snapshot written to disk; pass `path` and `taken_at` to `import_snapshots`."""

    path: Path
    taken_at: datetime  # when the last page arrived, UTC
    users: int
    groups: int
    roles: int
    policies: int


def take_snapshot(iam_client: IAMClient) -> dict[str, Any]:
    """Every page of GetAccountAuthorizationDetails merged into the CLI's output shape."""
    merged: dict[str, list[Any]] = {key: [] for key in DETAIL_LISTS}
    paginator = iam_client.get_paginator("get_account_authorization_details")
    try:
        for page in paginator.paginate(Filter=ALL_TYPES):
            merged["UserDetailList"].extend(page.get("UserDetailList", []))
            merged["GroupDetailList"].extend(page.get("GroupDetailList", []))
            merged["RoleDetailList"].extend(page.get("RoleDetailList", []))
            merged["Policies"].extend(page.get("Policies", []))
    except (BotoCoreError, ClientError) as exc:
        raise translate_error(exc) from exc
    return {key: _as_json(value) for key, value in merged.items()}


def snapshot_to_file(iam_client: IAMClient, path: str | Path) -> TakenSnapshot:
    """Take a snapshot and write it to `path` atomically (a reader never sees half a file)."""
    document = take_snapshot(iam_client)
    taken_at = datetime.now(UTC)
    target = Path(path).expanduser().resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as out:
            json.dump(document, out, indent=4, ensure_ascii=False)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise IamError(
            f"cannot write the IAM snapshot to {target}: {exc.strerror}",
            hint="check the folder's permissions and free space",
            file=str(target),
        ) from None
    return TakenSnapshot(
        path=target,
        taken_at=taken_at,
        users=len(document["UserDetailList"]),
        groups=len(document["GroupDetailList"]),
        roles=len(document["RoleDetailList"]),
        policies=len(document["Policies"]),
    )


def _as_json(value: Any) -> Any:
    """Parsed botocore output as plain JSON values: timestamps as the CLI prints them."""
    if isinstance(value, dict):
        return {key: _as_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_as_json(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value

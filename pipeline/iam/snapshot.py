"""Take an IAM snapshot live, in exactly the JSON shape `aws iam get-account-authorization-details`
prints, so that a live snapshot and a file exported by hand go through the same loader.

The CLI paginates and merges the four detail lists, lets botocore decode the URL-encoded policy
documents into objects, and renders timestamps with `datetime.isoformat()`; this module does the
same. The file is kept as taken (in the warehouse's iam/raw/ when the CLI runs it), so the
import can be repeated or audited from the exact bytes: it never replaces a file (an imported
snapshot names its file and that file's SHA-256), and two runs in one second get names of their
own (raw_path), as their partial files do.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from pipeline.errors import IamError, UsageError
from pipeline.iam.client import translate_error
from pipeline.iam.load import DETAIL_LISTS
from pipeline.query.out_path import check_out, in_place, open_descriptor

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
    # When the first page was requested, UTC: each page shows its entities as they were when it
    # was requested, so a later time would place the snapshot after changes made while the
    # later pages were fetched (a role tagged, untagged or created then) and overrule them.
    taken_at: datetime
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
    except (BotoCoreError, ClientError, ResponseParserError) as exc:
        # ResponseParserError: the endpoint answered, but not as IAM (no BotoCoreError).
        raise translate_error(exc, iam_client.meta.endpoint_url) from exc
    return {key: _as_json(value) for key, value in merged.items()}


def raw_path(folder: Path, now: datetime) -> Path:
    """A new file name in `folder` (the warehouse's iam/raw/) for a snapshot taken at `now`:
    the second, then random hex, so that two snapshots taken in one second do not share it."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return folder / f"authorization-details-{stamp}-{secrets.token_hex(4)}.json"


def check_snapshot_out(out: Path, warehouse: str | Path | None) -> None:
    """Refuse, before AWS is called, an `iam snapshot --out` the snapshot cannot be kept at
    (UsageError): inside a warehouse (its database, iam/snapshots/, events/, ... would be
    replaced or read as data), not writable (query/out_path.py's checks, as for `sql --out`),
    not a file (the import reads the snapshot back from it: no /dev/stdout, FIFO or device),
    or a file that exists (an earlier snapshot may name it)."""
    check_out(out, warehouse)
    if open_descriptor(out) is not None or in_place(out):
        raise UsageError(
            f"--out {out} is not a file: the snapshot is imported from the file it is kept in",
            hint="name a new file, e.g. authorization-details.json",
        )
    if os.path.lexists(out):
        raise UsageError(
            f"--out {out} exists: a snapshot never replaces a file (an imported snapshot "
            "names the file it came from)",
            hint="name a new file",
        )


def snapshot_to_file(iam_client: IAMClient, path: str | Path) -> TakenSnapshot:
    """Take a snapshot and write it to `path` atomically (a reader never sees half a file),
    never replacing a file there: IamError if `path` exists by then."""
    taken_at = datetime.now(UTC)  # before the first request: TakenSnapshot.taken_at
    document = take_snapshot(iam_client)
    target = Path(path).expanduser().resolve()
    # A partial file of this run's own beside the target (created only if its name is free, with
    # the permissions the umask gives, as the target's would be).
    tmp = target.with_name(f".agenttrail-{secrets.token_hex(8)}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise _write_error(target, exc) from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=4, ensure_ascii=False)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        _publish(tmp, target)
    except FileExistsError:
        raise IamError(
            f"cannot write the IAM snapshot to {target}: a file of that name exists, and a "
            "snapshot never replaces one",
            hint="name a new file",
            file=str(target),
        ) from None
    except OSError as exc:
        raise _write_error(target, exc) from None
    finally:
        tmp.unlink(missing_ok=True)
    return TakenSnapshot(
        path=target,
        taken_at=taken_at,
        users=len(document["UserDetailList"]),
        groups=len(document["GroupDetailList"]),
        roles=len(document["RoleDetailList"]),
        policies=len(document["Policies"]),
    )


# What os.link raises where a file system has no hard links (FAT, some network and FUSE ones).
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV}


def _publish(tmp: Path, target: Path) -> None:
    """Give the written `tmp` the name `target`, which must be free (FileExistsError): a hard
    link fails on a taken name where a rename would replace the file. Without hard links, the
    bytes are copied into a file created only if the name is free."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        with tmp.open("rb") as source, target.open("xb") as copy:
            shutil.copyfileobj(source, copy)
            copy.flush()
            os.fsync(copy.fileno())


def _write_error(target: Path, exc: OSError) -> IamError:
    return IamError(
        f"cannot write the IAM snapshot to {target}: {exc.strerror or exc}",
        hint="check the folder's permissions and free space",
        file=str(target),
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

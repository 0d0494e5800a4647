"""Read `aws iam get-account-authorization-details` output into typed rows.

The same inventory reaches us in several dialects: the AWS CLI prints policy documents as
objects and dates as ISO text (`+00:00`, or `Z` from older versions); the raw API and some tools
keep documents URL-encoded; Windows PowerShell redirects write UTF-16. All must give identical
rows, so every document is normalised to compact JSON with sorted keys.

The file names no account and no time. The account comes from the ARNs of its users, groups,
roles and customer-managed policies (exactly one must appear; trust policies may name other
accounts and are not consulted); the time is the caller's `taken_at`. The snapshot id hashes the
file's bytes with that time, so importing the same export at the same time twice is a no-op.

Whatever the file holds, reading it either gives rows every table can store or fails with one
IamError naming the file and the element: no RoleDetailList (every role of the account would
read as deleted), a truncated export (one page of a paginated call), a date outside the years 1
to 9999 in UTC, an integer beyond 64 bits, a lone UTF-16 surrogate escape (which Python's `json`
reads but no UTF-8 text can hold), JSON nested too deeply to read.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

from pipeline.errors import IamError, UsageError

DETAIL_LISTS = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")
AWS_MANAGED_ACCOUNT = "aws"  # the account field of arn:aws:iam::aws:policy/... ARNs
_ROOT = "the document"  # where-text of the top-level object in error messages
_EXPORT_HINT = "pass the output of `aws iam get-account-authorization-details --output json`"
# Keys of a page of a paginated call: `--no-paginate` prints IsTruncated and Marker, `--max-items`
# prints NextToken. Such a file lacks the roles, users and policies of the later pages.
_TRUNCATED_HINT = (
    "export the whole account without --max-items or --no-paginate: "
    "`aws iam get-account-authorization-details --output json`"
)
_INT64 = (-(2**63), 2**63 - 1)  # the Parquet columns' range (attachment counts)
_SURROGATE = re.compile("[\ud800-\udfff]")
# How far past this machine's clock a --taken-at may be: the clocks of the machine that
# exported and of this one can differ by that much; beyond, the time is a slip.
TAKEN_AT_SKEW = timedelta(minutes=5)
# Nesting beyond this (IAM documents nest a few levels) is what the message names when the
# decoder runs out of recursion; the file is only scanned for it then.
_NESTING_LIMIT = 100


@dataclass(frozen=True)
class RoleRow:
    snapshot_id: str
    account_id: str
    taken_at: datetime
    role_name: str
    role_id: str
    arn: str
    path: str
    create_date: datetime | None
    tags: dict[str, str]
    tags_json: str
    permissions_boundary_arn: str | None
    trust_policy: str | None
    inline_policies: str
    attached_policy_arns: tuple[str, ...]
    last_used_at: datetime | None
    last_used_region: str | None
    source_file: str


@dataclass(frozen=True)
class UserRow:
    snapshot_id: str
    account_id: str
    taken_at: datetime
    user_name: str
    user_id: str
    arn: str
    path: str
    create_date: datetime | None
    tags: dict[str, str]
    tags_json: str
    permissions_boundary_arn: str | None
    inline_policies: str
    attached_policy_arns: tuple[str, ...]
    groups: tuple[str, ...]
    source_file: str


@dataclass(frozen=True)
class GroupRow:
    snapshot_id: str
    account_id: str
    taken_at: datetime
    group_name: str
    group_id: str
    arn: str
    path: str
    create_date: datetime | None
    inline_policies: str
    attached_policy_arns: tuple[str, ...]
    source_file: str


@dataclass(frozen=True)
class PolicyRow:
    snapshot_id: str
    account_id: str
    taken_at: datetime
    policy_name: str
    policy_id: str | None
    arn: str
    path: str
    is_aws_managed: bool
    description: str | None
    default_version_id: str | None
    default_document: str | None
    version_ids: tuple[str, ...]
    attachment_count: int | None
    permissions_boundary_usage_count: int | None
    is_attachable: bool | None
    create_date: datetime | None
    update_date: datetime | None
    source_file: str


@dataclass(frozen=True)
class SnapshotRow:
    snapshot_id: str
    account_id: str
    taken_at: datetime
    source_file: str
    content_sha256: str
    roles: int
    users: int
    groups: int
    policies: int


@dataclass(frozen=True)
class Snapshot:
    """One file read at one time: its summary row and the rows of each table."""

    info: SnapshotRow
    roles: tuple[RoleRow, ...]
    users: tuple[UserRow, ...]
    groups: tuple[GroupRow, ...]
    policies: tuple[PolicyRow, ...]

    @property
    def snapshot_id(self) -> str:
        return self.info.snapshot_id


def require_utc(moment: datetime, what: str) -> datetime:
    """`moment` in UTC; a naive time is refused because CloudTrail times are UTC and a guess
    of the local zone would shift which snapshot applies to a period."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise UsageError(
            f"{what} has no time zone: {moment.isoformat()}",
            hint="give it with an offset, e.g. 2024-06-01T00:00:00Z",
        )
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise UsageError(
            f"{what} {moment.isoformat()} is outside the years 1 to 9999 in UTC",
            hint="give a time between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z",
        ) from None


def parse_taken_at(text: str, now: datetime) -> datetime:
    """`--taken-at` as a UTC time: ISO 8601 with a zone, in the years 1 to 9999 in UTC, and
    not after `now` by more than TAKEN_AT_SKEW. A snapshot is never taken in the future: such
    a time (a slip of the date or the zone) would make it the snapshot of periods it never
    saw. UsageError naming the value otherwise."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--taken-at {text!r} is not a time", hint="use ISO 8601, e.g. 2026-06-30T12:00:00Z"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise UsageError(
            f"--taken-at {text!r} has no time zone",
            hint=f"give one, e.g. {moment.isoformat()}Z for UTC",
        )
    when = require_utc(moment, "--taken-at")  # UsageError outside the years 1 to 9999 in UTC
    if when > require_utc(now, "now") + TAKEN_AT_SKEW:
        raise UsageError(
            f"--taken-at {text} is in the future (it is {now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ})",
            hint="give the time the export was taken; without --taken-at it is now",
        )
    return when


def snapshot_id_of(content: bytes, taken_at: datetime) -> str:
    """16 hex digits of sha256(file bytes, taken_at): stable across re-imports of one export."""
    digest = hashlib.sha256(content)
    digest.update(b"\x00taken_at=" + require_utc(taken_at, "taken_at").isoformat().encode())
    return digest.hexdigest()[:16]


def load_snapshot(path: str | Path, taken_at: datetime) -> Snapshot:
    """Read one authorization-details file; IamError names the file and what is wrong."""
    file = Path(path).expanduser().resolve()
    try:
        content = file.read_bytes()
    except FileNotFoundError:
        raise IamError(f"IAM snapshot file not found: {file}", file=str(file)) from None
    except OSError as exc:
        raise IamError(f"cannot read IAM snapshot {file}: {exc.strerror}", file=str(file)) from None
    return parse_snapshot(_decode_json(content, str(file)), content, taken_at, str(file))


def parse_snapshot(document: Any, content: bytes, taken_at: datetime, source_file: str) -> Snapshot:
    """Rows of an already decoded document; `content` (its bytes) only feeds the ids."""
    if not isinstance(document, dict) or not any(key in document for key in DETAIL_LISTS):
        raise IamError(
            f"{source_file}: not an authorization-details document "
            "(no UserDetailList, GroupDetailList, RoleDetailList or Policies)",
            hint=_EXPORT_HINT,
            file=source_file,
        )
    _refuse_truncated(document, source_file)
    _require_roles(document, source_file)
    lists = {key: _entities(document, key, source_file) for key in DETAIL_LISTS}
    when = require_utc(taken_at, "taken_at")
    key = _Key(snapshot_id_of(content, when), _account_of(lists, source_file), when, source_file)
    roles = tuple(_row(_role, key, e) for e in lists["RoleDetailList"])
    users = tuple(_row(_user, key, e) for e in lists["UserDetailList"])
    groups = tuple(_row(_group, key, e) for e in lists["GroupDetailList"])
    policies = tuple(_row(_policy, key, e) for e in lists["Policies"])
    info = SnapshotRow(
        snapshot_id=key.snapshot_id,
        account_id=key.account_id,
        taken_at=when,
        source_file=source_file,
        content_sha256=hashlib.sha256(content).hexdigest(),
        roles=len(roles),
        users=len(users),
        groups=len(groups),
        policies=len(policies),
    )
    return Snapshot(info, roles, users, groups, policies)


def _a(word: str) -> str:
    """`word` with its indefinite article: "an AttachmentCount", "a PolicyDocument"."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def _refuse_truncated(document: Mapping[str, Any], source_file: str) -> None:
    """A page of a paginated export is not a snapshot: its account looks smaller than it is."""
    marks = [
        key
        for key, present in (
            ("IsTruncated", document.get("IsTruncated") is True),
            ("Marker", document.get("Marker") not in (None, "")),
            ("NextToken", document.get("NextToken") not in (None, "")),
        )
        if present
    ]
    if marks:
        raise IamError(
            f"{source_file}: a truncated export ({', '.join(marks)}): more pages follow, so "
            "roles, users, groups or policies are missing",
            hint=_TRUNCATED_HINT,
            file=source_file,
        )


def _require_roles(document: Mapping[str, Any], source_file: str) -> None:
    """A snapshot lists every role of its account, so one without RoleDetailList would make
    every role of the account read as deleted from its time on. The AWS CLI prints the key
    whatever its --filter (`"RoleDetailList": []` without Role: that cannot be told from an
    account without roles, and stays valid); a file without it is another tool's output."""
    if document.get("RoleDetailList") is None:
        raise IamError(
            f"{source_file}: no RoleDetailList, so the account's roles are unknown (every role "
            "would read as deleted from this snapshot on)",
            hint=_EXPORT_HINT,
            file=source_file,
        )


Row = TypeVar("Row")


def _row(make: Callable[[_Key, _Entity], Row], key: _Key, entity: _Entity) -> Row:
    """One entity's row; a document too deeply nested to re-serialise fails on the entity."""
    try:
        return make(key, entity)
    except RecursionError:
        raise entity.fail(
            f"has a policy document nested more than {_NESTING_LIMIT} levels deep"
        ) from None


@dataclass(frozen=True)
class _Key:
    """The columns every row of one snapshot shares."""

    snapshot_id: str
    account_id: str
    taken_at: datetime
    source_file: str


@dataclass(frozen=True)
class _Entity:
    """One object of a detail list, with its position for error messages."""

    data: Mapping[str, Any]
    where: str  # e.g. "RoleDetailList[2]"
    source_file: str

    def fail(self, problem: str) -> IamError:
        return IamError(
            f"{self.source_file}: {self.where} {problem}",
            hint=_EXPORT_HINT,
            file=self.source_file,
        )

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str) or not value:
            raise self.fail(f"lacks {key}")
        return self.storable(key, value)

    def optional_text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return value
        if isinstance(value, str):
            return self.storable(key, value)
        raise self.fail(f"has a non-text {key}: {value!r}")

    def storable(self, key: str, text: str) -> str:
        """`text`, which a Parquet string can hold: a lone UTF-16 surrogate escape ("\\udc00"),
        which Python's json reads, cannot be written as UTF-8."""
        found = _SURROGATE.search(text)
        if found:
            escape = f"\\u{ord(found[0]):04x}"
            raise self.fail(f"has {_a(key)} with a lone UTF-16 surrogate escape ({escape})")
        return text

    def optional_int(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return value
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(f"has a non-integer {key}: {value!r}")
        if not _INT64[0] <= value <= _INT64[1]:
            digits = len(str(abs(value)))
            raise self.fail(f"has {_a(key)} beyond a 64-bit integer ({digits} digits)")
        return value

    def optional_bool(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is None or isinstance(value, bool):
            return value
        raise self.fail(f"has a non-boolean {key}: {value!r}")

    def time(self, key: str) -> datetime | None:
        value = self.data.get(key)
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise self.fail(f"has an invalid {key}: {value!r}") from None
        # IAM dates are UTC; a zone-less one (hand-edited files) is read as UTC too.
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise self.fail(
                f"has {_a(key)} outside the years 1 to 9999 in UTC: {value!r}"
            ) from None

    def children(self, key: str) -> list[_Entity]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.fail(f"has {_a(key)} that is not a list of objects")
        return [
            _Entity(item, f"{self._path(key)}[{i}]", self.source_file)
            for i, item in enumerate(value)
        ]

    def child(self, key: str) -> _Entity:
        """A nested object (empty when absent), e.g. PermissionsBoundary or RoleLastUsed."""
        value = self.data.get(key) or {}
        if not isinstance(value, dict):
            raise self.fail(f"has {_a(key)} that is not an object")
        return _Entity(value, self._path(key), self.source_file)

    def _path(self, key: str) -> str:
        return key if self.where == _ROOT else f"{self.where}.{key}"

    def names(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.fail(f"has {_a(key)} that is not a list of names")
        return tuple(self.storable(key, item) for item in value)


def _decode_json(content: bytes, source_file: str) -> Any:
    try:
        if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            text = content.decode("utf-16")  # Windows PowerShell's `>` writes UTF-16
        else:
            text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IamError(
            f"{source_file}: not UTF-8 or UTF-16 text ({exc.reason} at byte {exc.start})",
            hint=_EXPORT_HINT,
            file=source_file,
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise IamError(
            f"{source_file}:{exc.lineno}: not JSON ({exc.msg})",
            hint=_EXPORT_HINT,
            file=source_file,
        ) from None
    except RecursionError:
        raise IamError(
            f"{source_file}:{_too_deep(text)}", hint=_EXPORT_HINT, file=source_file
        ) from None
    except ValueError:  # an integer of more digits than Python converts (4300 by default)
        found = re.search(r"\d{4000,}", text)
        line = f":{text.count(chr(10), 0, found.start()) + 1}" if found else ""
        raise IamError(
            f"{source_file}{line}: an integer of thousands of digits, which no IAM field holds",
            hint=_EXPORT_HINT,
            file=source_file,
        ) from None


_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},:]')


def _too_deep(text: str) -> str:
    """'LINE: PATH nests ...' for the first place `text` nests beyond _NESTING_LIMIT levels,
    the path cut after the element and its field (RoleDetailList[0].AssumeRolePolicyDocument).
    Only called once the decoder gave up, so its cost (a scan of the file) is paid then only."""
    stack: list[list[Any]] = []  # per open container: [kind, key or index]
    last_string: str | None = None
    for token in _JSON_TOKEN.finditer(text):
        mark = token[0]
        if mark in "[{":
            if len(stack) >= _NESTING_LIMIT:
                line = text.count("\n", 0, token.start()) + 1
                path = "".join(
                    f"[{step}]" if kind == "[" else (f".{step}" if i else str(step))
                    for i, (kind, step) in enumerate(stack[:3])
                )
                where = path or "the document"
                return f"{line}: {where} is nested more than {_NESTING_LIMIT} levels deep"
            stack.append([mark, 0 if mark == "[" else "?"])
        elif mark in "]}":
            if stack:
                stack.pop()
        elif mark == ",":
            if stack and stack[-1][0] == "[":
                stack[-1][1] += 1
        elif mark == ":":
            if stack and last_string is not None:
                stack[-1][1] = last_string
        else:
            try:
                last_string = json.loads(mark)
            except ValueError:
                last_string = mark
            continue
        last_string = None
    return f" JSON nested more than {_NESTING_LIMIT} levels deep"


def _entities(document: Mapping[str, Any], key: str, source_file: str) -> list[_Entity]:
    return _Entity(document, _ROOT, source_file).children(key) if key in document else []


def _account_of(lists: Mapping[str, list[_Entity]], source_file: str) -> str:
    """The one account the entities' own ARNs name (AWS-managed policies name `aws`)."""
    accounts: set[str] = set()
    for entities in lists.values():
        for entity in entities:
            account = _arn_account(entity)
            if account != AWS_MANAGED_ACCOUNT:
                accounts.add(account)
    if not accounts:
        raise IamError(
            f"{source_file}: no user, group, role or customer-managed policy ARN names an "
            "account, so the snapshot cannot be attributed to one",
            hint=_EXPORT_HINT,
            file=source_file,
        )
    if len(accounts) > 1:
        raise IamError(
            f"{source_file}: ARNs name {len(accounts)} accounts ({', '.join(sorted(accounts))}); "
            "a snapshot covers one account",
            hint="export each account to its own file and import them together",
            file=source_file,
            accounts=sorted(accounts),
        )
    return accounts.pop()


def _arn_account(entity: _Entity) -> str:
    arn = entity.text("Arn")
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn" or parts[2] != "iam" or not parts[4]:
        raise entity.fail(f"has an Arn that is not an IAM ARN: {arn!r}")
    return parts[4]


def _document(value: Any, entity: _Entity, key: str) -> Any:
    """A policy document as an object: IAM's raw form is URL-encoded JSON text."""
    if not isinstance(value, str):
        return value
    text = value if value.lstrip().startswith("{") else unquote(value)
    try:
        return json.loads(text)
    except RecursionError:
        raise entity.fail(f"has {_a(key)} nested more than {_NESTING_LIMIT} levels deep") from None
    except ValueError:  # JSONDecodeError, and integers of more digits than Python converts
        raise entity.fail(f"has {_a(key)} that is neither JSON nor URL-encoded JSON") from None


def _storable_json(value: Any, entity: _Entity, key: str) -> str | None:
    """A document (None for none) as _json text, which a Parquet string can hold."""
    return None if value is None else entity.storable(key, _json(value))


def _json(value: Any) -> str:
    """Compact, key-sorted JSON: one text per document whatever form the file used."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _tags(entity: _Entity) -> dict[str, str]:
    tags: dict[str, str] = {}
    for tag in entity.children("Tags"):
        tags[tag.text("Key")] = tag.optional_text("Value") or ""
    return dict(sorted(tags.items()))


def _inline_policies(entity: _Entity, key: str) -> str:
    policies = {}
    for p in entity.children(key):
        name = p.text("PolicyName")
        policies[name] = _document(p.data.get("PolicyDocument"), p, "PolicyDocument")
        _storable_json(policies[name], p, "PolicyDocument")
    return _json(policies)


def _attached(entity: _Entity) -> tuple[str, ...]:
    return tuple(p.text("PolicyArn") for p in entity.children("AttachedManagedPolicies"))


def _boundary(entity: _Entity) -> str | None:
    boundary = entity.child("PermissionsBoundary")
    return boundary.text("PermissionsBoundaryArn") if boundary.data else None


def _role(key: _Key, e: _Entity) -> RoleRow:
    tags = _tags(e)
    last_used = e.child("RoleLastUsed")
    trust = e.data.get("AssumeRolePolicyDocument")
    return RoleRow(
        snapshot_id=key.snapshot_id,
        account_id=key.account_id,
        taken_at=key.taken_at,
        role_name=e.text("RoleName"),
        role_id=e.text("RoleId"),
        arn=e.text("Arn"),
        path=e.optional_text("Path") or "/",
        create_date=e.time("CreateDate"),
        tags=tags,
        tags_json=_json(tags),
        permissions_boundary_arn=_boundary(e),
        trust_policy=_storable_json(
            _document(trust, e, "AssumeRolePolicyDocument"), e, "AssumeRolePolicyDocument"
        ),
        inline_policies=_inline_policies(e, "RolePolicyList"),
        attached_policy_arns=_attached(e),
        last_used_at=last_used.time("LastUsedDate"),
        last_used_region=last_used.optional_text("Region"),
        source_file=key.source_file,
    )


def _user(key: _Key, e: _Entity) -> UserRow:
    tags = _tags(e)
    return UserRow(
        snapshot_id=key.snapshot_id,
        account_id=key.account_id,
        taken_at=key.taken_at,
        user_name=e.text("UserName"),
        user_id=e.text("UserId"),
        arn=e.text("Arn"),
        path=e.optional_text("Path") or "/",
        create_date=e.time("CreateDate"),
        tags=tags,
        tags_json=_json(tags),
        permissions_boundary_arn=_boundary(e),
        inline_policies=_inline_policies(e, "UserPolicyList"),
        attached_policy_arns=_attached(e),
        groups=e.names("GroupList"),
        source_file=key.source_file,
    )


def _group(key: _Key, e: _Entity) -> GroupRow:
    return GroupRow(
        snapshot_id=key.snapshot_id,
        account_id=key.account_id,
        taken_at=key.taken_at,
        group_name=e.text("GroupName"),
        group_id=e.text("GroupId"),
        arn=e.text("Arn"),
        path=e.optional_text("Path") or "/",
        create_date=e.time("CreateDate"),
        inline_policies=_inline_policies(e, "GroupPolicyList"),
        attached_policy_arns=_attached(e),
        source_file=key.source_file,
    )


def _policy(key: _Key, e: _Entity) -> PolicyRow:
    arn = e.text("Arn")
    versions = e.children("PolicyVersionList")
    default_id = e.optional_text("DefaultVersionId")
    default = _default_version(versions, default_id)
    return PolicyRow(
        snapshot_id=key.snapshot_id,
        account_id=key.account_id,
        taken_at=key.taken_at,
        # The ARN ends with the name; moto (and so tests of live snapshots) omits both fields.
        policy_name=e.optional_text("PolicyName") or arn.rsplit("/", 1)[-1],
        policy_id=e.optional_text("PolicyId"),
        arn=arn,
        path=e.optional_text("Path") or "/",
        is_aws_managed=_arn_account(e) == AWS_MANAGED_ACCOUNT,
        description=e.optional_text("Description"),
        default_version_id=default_id,
        default_document=(
            None
            if default is None
            else _storable_json(
                _document(default.data.get("Document"), default, "Document"), default, "Document"
            )
        ),
        version_ids=tuple(v.text("VersionId") for v in versions),
        attachment_count=e.optional_int("AttachmentCount"),
        permissions_boundary_usage_count=e.optional_int("PermissionsBoundaryUsageCount"),
        is_attachable=e.optional_bool("IsAttachable"),
        create_date=e.time("CreateDate"),
        update_date=e.time("UpdateDate"),
        source_file=key.source_file,
    )


def _default_version(versions: Iterable[_Entity], default_id: str | None) -> _Entity | None:
    """The version IAM enforces: flagged IsDefaultVersion, else the one DefaultVersionId names."""
    candidates = list(versions)
    flagged = [v for v in candidates if v.data.get("IsDefaultVersion") is True]
    if flagged:
        return flagged[0]
    return next((v for v in candidates if v.data.get("VersionId") == default_id), None)

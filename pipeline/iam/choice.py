"""Which IAM snapshot describes an account for a period.

The rule (issue 3): per account, the newest snapshot taken at or before the period's end, since
it is the latest state known to hold during the period; else the oldest one taken after it, the
closest available, with a warning, because roles tagged or untagged in between are misjudged
(`agenttrail query run` prints it for a query that reads the IAM views: query/library.py).
Ties on `taken_at` (two exports of one account at one time, which an import takes only when they
agree: iam/store.py) go to the larger snapshot id, so the choice never depends on file order;
queries/principals.sql and the attribution's role timeline
(queries/attribute/10_role_agent_timeline.sql) break them the same way. Only complete snapshots
are candidates: `iam_snapshots` lists exactly those.

The rule is applied per kind of identity: roles are described by the snapshots that list any
role, users by those that list any user. A snapshot that lists none of a kind says nothing of it:
`aws iam get-account-authorization-details --filter Role` prints an empty `UserDetailList`,
`--filter User` an empty `RoleDetailList`. Every account has service-linked roles, so an empty
role list is such an export; an account can have no IAM user at all (sign-in through IAM
Identity Center only), so an empty user list may be either, and is read as saying nothing (the
safe reading: users then keep the state an export that lists them shows, where otherwise every
user would read as deleted). principals.sql chooses the same way; the role timeline skips
snapshots without roles as absences.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import NamedTuple

import duckdb

from pipeline.iam.load import require_utc


class SnapshotChoice(NamedTuple):
    account_id: str
    # The snapshot that describes the account's roles; None when no snapshot lists a role.
    snapshot_id: str | None
    # Set when a snapshot taken after the period's end describes its roles or its users.
    warning: str | None
    # The snapshot that describes the account's users; None when no snapshot lists a user.
    users_snapshot_id: str | None = None


class _Snapshot(NamedTuple):
    taken_at: datetime
    snapshot_id: str
    roles: int
    users: int


class _Pick(NamedTuple):
    kind: str  # "roles" or "users"
    taken_at: datetime
    snapshot_id: str
    later: bool  # taken after the period's end: none of the kind at or before it


def choose_snapshots(con: duckdb.DuckDBPyConnection, period_end: datetime) -> list[SnapshotChoice]:
    """One choice per account with any snapshot in `iam_snapshots`, sorted by account."""
    end = require_utc(period_end, "period_end")
    rows = (
        con.table("iam_snapshots")
        .project("account_id, snapshot_id, taken_at, roles, users")
        .fetchall()
    )
    by_account: dict[str, list[_Snapshot]] = defaultdict(list)
    for account_id, snapshot_id, taken_at, roles, users in rows:
        by_account[account_id].append(
            _Snapshot(require_utc(taken_at, "taken_at"), snapshot_id, roles or 0, users or 0)
        )
    return [_choose(account, by_account[account], end) for account in sorted(by_account)]


def _choose(account_id: str, snapshots: list[_Snapshot], end: datetime) -> SnapshotChoice:
    roles = _pick("roles", [s for s in snapshots if s.roles > 0], end)
    users = _pick("users", [s for s in snapshots if s.users > 0], end)
    later = [p for p in (roles, users) if p is not None and p.later]
    return SnapshotChoice(
        account_id,
        roles.snapshot_id if roles else None,
        _warning(account_id, later, end, any(s.taken_at <= end for s in snapshots)),
        users.snapshot_id if users else None,
    )


def _pick(kind: str, candidates: list[_Snapshot], end: datetime) -> _Pick | None:
    """The newest candidate at or before `end` (ties: the larger id), else the oldest after it
    (ties: the larger id); None without candidates."""
    before = [(s.taken_at, s.snapshot_id) for s in candidates if s.taken_at <= end]
    if before:
        taken_at, snapshot_id = max(before)
        return _Pick(kind, taken_at, snapshot_id, later=False)
    if not candidates:
        return None
    taken_at = min(s.taken_at for s in candidates)
    snapshot_id = max(s.snapshot_id for s in candidates if s.taken_at == taken_at)
    return _Pick(kind, taken_at, snapshot_id, later=True)


def _warning(account_id: str, later: list[_Pick], end: datetime, any_before: bool) -> str | None:
    if not later:
        return None
    kinds = [p.kind for p in later]
    # Where some snapshot is at or before the end, it lists none of these kinds: say which.
    what = f" lists its {' or '.join(kinds)}" if any_before else ""
    if len({p.snapshot_id for p in later}) == 1:
        using = f"{later[0].snapshot_id} taken later, at {later[0].taken_at.isoformat()}"
    else:
        using = " and ".join(
            f"{p.snapshot_id} taken later, at {p.taken_at.isoformat()}, for its {p.kind}"
            for p in later
        )
    return (
        f"account {account_id}: no IAM snapshot taken at or before {end.isoformat()}{what}; "
        f"using {using}, so {' and '.join(kinds)} tagged or untagged in between may be "
        "misjudged (import an older snapshot with `agenttrail iam import FILE --taken-at TIME`)"
    )

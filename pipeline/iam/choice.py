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
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import NamedTuple

import duckdb

from pipeline.iam.load import require_utc


class SnapshotChoice(NamedTuple):
    account_id: str
    snapshot_id: str
    warning: str | None  # set when only a snapshot taken after the period's end exists


def choose_snapshots(con: duckdb.DuckDBPyConnection, period_end: datetime) -> list[SnapshotChoice]:
    """One choice per account with any snapshot in `iam_snapshots`, sorted by account."""
    end = require_utc(period_end, "period_end")
    rows = con.table("iam_snapshots").project("account_id, snapshot_id, taken_at").fetchall()
    by_account: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for account_id, snapshot_id, taken_at in rows:
        by_account[account_id].append((require_utc(taken_at, "taken_at"), snapshot_id))
    return [_choose(account, by_account[account], end) for account in sorted(by_account)]


def _choose(
    account_id: str, snapshots: list[tuple[datetime, str]], end: datetime
) -> SnapshotChoice:
    before = [s for s in snapshots if s[0] <= end]
    if before:
        return SnapshotChoice(account_id, max(before)[1], None)
    taken_at = min(t for t, _ in snapshots)
    snapshot_id = max(i for t, i in snapshots if t == taken_at)
    warning = (
        f"account {account_id}: no IAM snapshot taken at or before {end.isoformat()}; "
        f"using {snapshot_id} taken later, at {taken_at.isoformat()}, so roles tagged or "
        "untagged in between may be misjudged (import an older snapshot with "
        "`agenttrail iam import FILE --taken-at TIME`)"
    )
    return SnapshotChoice(account_id, snapshot_id, warning)

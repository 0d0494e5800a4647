"""choice.py: per account, the newest snapshot at or before the period's end, else the oldest
after it with a warning."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.errors import UsageError
from pipeline.iam.choice import SnapshotChoice, choose_snapshots
from pipeline.iam.load import snapshot_id_of
from pipeline.iam.store import import_snapshots
from pipeline.warehouse.connect import connect
from pipeline.warehouse.layout import Layout

from .cases import ACCOUNT, CASE, OTHER_ACCOUNT
from .conftest import WriteCase

JUNE = datetime(2024, 6, 1, tzinfo=UTC)
JULY = datetime(2024, 7, 1, tzinfo=UTC)
AUGUST = datetime(2024, 8, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def other_account_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("files") / "other.json"
    path.write_text(
        CASE.read_text(encoding="utf-8").replace(f"::{ACCOUNT}:", f"::{OTHER_ACCOUNT}:"),
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory, other_account_file: Path) -> Layout:
    """ACCOUNT snapshotted in June and July, OTHER_ACCOUNT only in August; built once, since
    choosing only reads."""
    layout = Layout.at(tmp_path_factory.mktemp("warehouse"))
    import_snapshots([CASE], layout, JUNE)
    import_snapshots([CASE], layout, JULY)
    import_snapshots([other_account_file], layout, AUGUST)
    return layout


def choose(layout: Layout, period_end: datetime) -> list[SnapshotChoice]:
    with connect(layout, read_only=True) as con:
        return choose_snapshots(con, period_end)


def a(taken_at: datetime) -> str:
    return snapshot_id_of(CASE.read_bytes(), taken_at)


def b(other_account_file: Path) -> str:
    return snapshot_id_of(other_account_file.read_bytes(), AUGUST)


def later_warning(account: str, period_end: str, snapshot_id: str, taken_at: str) -> str:
    return (
        f"account {account}: no IAM snapshot taken at or before {period_end}; using "
        f"{snapshot_id} taken later, at {taken_at}, so roles tagged or untagged in between may "
        "be misjudged (import an older snapshot with `agenttrail iam import FILE --taken-at TIME`)"
    )


def test_newest_at_or_before_the_end_else_oldest_after(
    warehouse: Layout, other_account_file: Path
) -> None:
    assert choose(warehouse, datetime(2024, 7, 15, tzinfo=UTC)) == [
        (ACCOUNT, a(JULY), None),
        (
            OTHER_ACCOUNT,
            b(other_account_file),
            later_warning(
                OTHER_ACCOUNT,
                "2024-07-15T00:00:00+00:00",
                b(other_account_file),
                "2024-08-01T00:00:00+00:00",
            ),
        ),
    ]


def test_a_snapshot_taken_exactly_at_the_end_applies(warehouse: Layout) -> None:
    assert choose(warehouse, JUNE)[0] == (ACCOUNT, a(JUNE), None)


def test_before_every_snapshot_the_oldest_one_is_used_with_a_warning(warehouse: Layout) -> None:
    end = datetime(2024, 5, 31, 23, 59, 59, tzinfo=UTC)
    assert choose(warehouse, end)[0] == (
        ACCOUNT,
        a(JUNE),
        later_warning(ACCOUNT, "2024-05-31T23:59:59+00:00", a(JUNE), "2024-06-01T00:00:00+00:00"),
    )


def test_after_every_snapshot_the_newest_ones_apply(
    warehouse: Layout, other_account_file: Path
) -> None:
    assert choose(warehouse, datetime(2025, 1, 1, tzinfo=UTC)) == [
        (ACCOUNT, a(JULY), None),
        (OTHER_ACCOUNT, b(other_account_file), None),
    ]


def test_no_snapshot_no_choice(layout: Layout) -> None:
    layout.ensure()
    with connect(layout, read_only=False) as con:
        assert choose_snapshots(con, JUNE) == []


def test_ties_on_taken_at_go_to_the_larger_snapshot_id(
    layout: Layout, write_case: WriteCase
) -> None:
    copy = write_case("copy.json")  # same account, other bytes, same time
    import_snapshots([CASE, copy], layout, JUNE)
    expected = max(a(JUNE), snapshot_id_of(copy.read_bytes(), JUNE))
    assert choose(layout, JULY) == [(ACCOUNT, expected, None)]


def test_naive_period_end_is_refused(warehouse: Layout) -> None:
    with pytest.raises(UsageError, match="period_end has no time zone"):
        choose(warehouse, datetime(2024, 7, 1))

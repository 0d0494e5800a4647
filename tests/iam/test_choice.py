"""choice.py: per account, the newest snapshot at or before the period's end, else the oldest
after it with a warning; for roles among the snapshots that list a role, for users among those
that list a user."""

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

from .cases import ACCOUNT, CASE, OTHER_ACCOUNT, case_document
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
        f"{snapshot_id} taken later, at {taken_at}, so roles and users tagged or untagged in "
        "between may be misjudged (import an older snapshot with `agenttrail iam import FILE --taken-at TIME`)"
    )


def test_newest_at_or_before_the_end_else_oldest_after(
    warehouse: Layout, other_account_file: Path
) -> None:
    assert choose(warehouse, datetime(2024, 7, 15, tzinfo=UTC)) == [
        (ACCOUNT, a(JULY), None, a(JULY)),
        (
            OTHER_ACCOUNT,
            b(other_account_file),
            later_warning(
                OTHER_ACCOUNT,
                "2024-07-15T00:00:00+00:00",
                b(other_account_file),
                "2024-08-01T00:00:00+00:00",
            ),
            b(other_account_file),
        ),
    ]


def test_a_snapshot_taken_exactly_at_the_end_applies(warehouse: Layout) -> None:
    assert choose(warehouse, JUNE)[0] == (ACCOUNT, a(JUNE), None, a(JUNE))


def test_before_every_snapshot_the_oldest_one_is_used_with_a_warning(warehouse: Layout) -> None:
    end = datetime(2024, 5, 31, 23, 59, 59, tzinfo=UTC)
    assert choose(warehouse, end)[0] == (
        ACCOUNT,
        a(JUNE),
        later_warning(ACCOUNT, "2024-05-31T23:59:59+00:00", a(JUNE), "2024-06-01T00:00:00+00:00"),
        a(JUNE),
    )


def test_after_every_snapshot_the_newest_ones_apply(
    warehouse: Layout, other_account_file: Path
) -> None:
    assert choose(warehouse, datetime(2025, 1, 1, tzinfo=UTC)) == [
        (ACCOUNT, a(JULY), None, a(JULY)),
        (OTHER_ACCOUNT, b(other_account_file), None, b(other_account_file)),
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
    assert choose(layout, JULY) == [(ACCOUNT, expected, None, expected)]


def test_naive_period_end_is_refused(warehouse: Layout) -> None:
    with pytest.raises(UsageError, match="period_end has no time zone"):
        choose(warehouse, datetime(2024, 7, 1))


# ------------------------------------------------- a snapshot that lists no role or no user
def only(kind: str) -> dict[str, object]:
    """The case as exported with `--filter Role` or `--filter User`: the AWS CLI still prints
    every list, the others empty."""
    document = case_document()
    keep = {"Role": "RoleDetailList", "User": "UserDetailList"}[kind]
    for key in ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies"):
        if key != keep:
            document[key] = []
    return document


def test_a_snapshot_without_users_says_nothing_of_users(
    layout: Layout, write_case: WriteCase
) -> None:
    """A role-only export taken after a full one describes the roles only: users stay those of
    the full one (they read as deleted before), and no warning is due."""
    roles_only = write_case("roles.json", only("Role"))
    import_snapshots([CASE], layout, JUNE)
    import_snapshots([roles_only], layout, JULY)
    later = snapshot_id_of(roles_only.read_bytes(), JULY)
    assert choose(layout, AUGUST) == [(ACCOUNT, later, None, a(JUNE))]
    # Before the full one, users and roles both come from later snapshots: two of them.
    end = datetime(2024, 5, 1, tzinfo=UTC)
    assert choose(layout, end) == [
        (
            ACCOUNT,
            a(JUNE),
            later_warning(
                ACCOUNT, "2024-05-01T00:00:00+00:00", a(JUNE), "2024-06-01T00:00:00+00:00"
            ),
            a(JUNE),
        )
    ]


def test_a_snapshot_without_roles_says_nothing_of_roles(
    layout: Layout, write_case: WriteCase
) -> None:
    """A users-only export in June and a full one in August: for July, the users come from June
    and the roles from August, with a warning that names the roles only."""
    users_only = write_case("users.json", only("User"))
    import_snapshots([users_only], layout, JUNE)
    import_snapshots([CASE], layout, AUGUST)
    june = snapshot_id_of(users_only.read_bytes(), JUNE)
    assert choose(layout, JULY) == [
        (
            ACCOUNT,
            a(AUGUST),
            f"account {ACCOUNT}: no IAM snapshot taken at or before 2024-07-01T00:00:00+00:00 "
            f"lists its roles; using {a(AUGUST)} taken later, at 2024-08-01T00:00:00+00:00, so "
            "roles tagged or untagged in between may be misjudged (import an older snapshot "
            "with `agenttrail iam import FILE --taken-at TIME`)",
            june,
        )
    ]


def test_users_and_roles_from_two_later_snapshots_are_named_both(
    layout: Layout, write_case: WriteCase
) -> None:
    roles_only = write_case("roles.json", only("Role"))
    users_only = write_case("users.json", only("User"))
    import_snapshots([roles_only], layout, JULY)
    import_snapshots([users_only], layout, AUGUST)
    roles = snapshot_id_of(roles_only.read_bytes(), JULY)
    users = snapshot_id_of(users_only.read_bytes(), AUGUST)
    assert choose(layout, JUNE) == [
        (
            ACCOUNT,
            roles,
            f"account {ACCOUNT}: no IAM snapshot taken at or before 2024-06-01T00:00:00+00:00; "
            f"using {roles} taken later, at 2024-07-01T00:00:00+00:00, for its roles and {users} "
            "taken later, at 2024-08-01T00:00:00+00:00, for its users, so roles and users tagged "
            "or untagged in between may be misjudged (import an older snapshot with "
            "`agenttrail iam import FILE --taken-at TIME`)",
            users,
        )
    ]
    # After both: each kind from its own, no warning.
    assert choose(layout, AUGUST) == [(ACCOUNT, roles, None, users)]


def test_an_account_no_snapshot_lists_users_of_has_no_users_choice(
    layout: Layout, write_case: WriteCase
) -> None:
    """An account without IAM users (Identity Center sign-in only) exports an empty
    UserDetailList too: nothing describes its users, and nothing is warned of them."""
    roles_only = write_case("roles.json", only("Role"))
    import_snapshots([roles_only], layout, JULY)
    roles = snapshot_id_of(roles_only.read_bytes(), JULY)
    assert choose(layout, AUGUST) == [(ACCOUNT, roles, None, None)]

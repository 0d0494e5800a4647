"""store.py: snapshots become Parquet files and views; re-imports change nothing."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.attribute.classify import AttributionSummary
from pipeline.config import AttributionSettings, Settings
from pipeline.errors import IamError, UsageError, WarehouseLockedError
from pipeline.iam import load, schema, store
from pipeline.iam.load import Snapshot, snapshot_id_of
from pipeline.iam.store import ImportedSnapshot, ImportSummary, import_snapshots
from pipeline.warehouse.connect import connect
from pipeline.warehouse.files import write_parquet_atomic
from pipeline.warehouse.layout import Layout
from pipeline.warehouse.lock import writer_lock

from .cases import ACCOUNT, CASE, TAKEN_AT, case_document
from .conftest import WriteCase

SID = snapshot_id_of(CASE.read_bytes(), TAKEN_AT)


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def query(layout: Layout, sql: str, *params: object) -> list[tuple[object, ...]]:
    with connect(layout, read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


@pytest.mark.parametrize(
    ("row_type", "table_schema"),
    [
        (load.RoleRow, schema.ROLES_SCHEMA),
        (load.UserRow, schema.USERS_SCHEMA),
        (load.GroupRow, schema.GROUPS_SCHEMA),
        (load.PolicyRow, schema.POLICIES_SCHEMA),
        (load.SnapshotRow, schema.SNAPSHOTS_SCHEMA),
    ],
)
def test_row_fields_are_the_schema_columns(row_type: type, table_schema: pa.Schema) -> None:
    # from_pylist fills a missing key with NULL silently: the names must match exactly.
    assert [f.name for f in dataclasses.fields(row_type)] == table_schema.names


def test_import_writes_one_file_per_table_and_the_views(layout: Layout) -> None:
    summary = import_snapshots([CASE], layout, TAKEN_AT)
    assert summary == ImportSummary(
        (
            ImportedSnapshot(
                snapshot_id=SID,
                account_id=ACCOUNT,
                taken_at=TAKEN_AT,
                source_file=str(CASE),
                roles=3,
                users=1,
                groups=1,
                policies=4,
                already_present=False,
            ),
        )
    )
    assert (summary.imported, summary.already_present, summary.accounts) == (1, 0, (ACCOUNT,))
    assert files_under(layout.iam) == [
        f"{table}/{SID}.parquet" for table in ("groups", "policies", "roles", "snapshots", "users")
    ]
    assert query(
        layout, "select snapshot_id, account_id, roles, users, groups, policies from iam_snapshots"
    ) == [(SID, ACCOUNT, 3, 1, 1, 4)]
    assert query(
        layout,
        "select role_name, tag_key, tag_value, snapshot_id, taken_at = ? "
        "from iam_role_tags order by role_name, tag_key",
        TAKEN_AT,
    ) == [
        ("ci-deploy", "Usage", "CI", SID, True),
        ("ops-agent", "Owner", "platform-team", SID, True),
        ("ops-agent", "Usage", "Agent", SID, True),
    ]


def test_views_read_back_maps_lists_and_json(layout: Layout) -> None:
    import_snapshots([CASE], layout, TAKEN_AT)
    rows = query(
        layout,
        "select tags['Usage'], attached_policy_arns, json_extract_string(trust_policy, "
        "'$.Statement[0].Principal.AWS'), last_used_region from iam_roles where role_name = 'ops-agent'",
    )
    assert rows == [
        (
            "Agent",
            [f"arn:aws:iam::{ACCOUNT}:policy/agent-s3-access"],
            "arn:aws:iam::444455556666:role/agent-runner",
            "eu-west-1",
        )
    ]
    assert query(layout, "select user_name, groups from iam_users") == [("alice", ["developers"])]
    assert query(
        layout,
        "select policy_name, version_ids from iam_policies where not is_aws_managed order by 1",
    ) == [("agent-boundary", ["v1"]), ("agent-s3-access", ["v2", "v1"])]


def test_reimport_of_the_same_file_at_the_same_time_changes_nothing(layout: Layout) -> None:
    import_snapshots([CASE], layout, TAKEN_AT)
    before = {p: p.stat().st_mtime_ns for p in layout.iam.rglob("*.parquet")}
    again = import_snapshots([CASE, CASE], layout, TAKEN_AT)
    assert [s.already_present for s in again.snapshots] == [True, True]
    assert (again.imported, again.already_present) == (0, 2)
    assert {p: p.stat().st_mtime_ns for p in layout.iam.rglob("*.parquet")} == before
    assert query(layout, "select count(*) from iam_roles") == [(3,)]


def test_the_same_file_twice_in_one_call_is_written_once(layout: Layout) -> None:
    summary = import_snapshots([CASE, CASE], layout, TAKEN_AT)
    assert [s.already_present for s in summary.snapshots] == [False, True]
    assert query(layout, "select count(*) from iam_snapshots") == [(1,)]


def test_every_snapshot_is_kept(layout: Layout) -> None:
    later = TAKEN_AT + timedelta(days=30)
    import_snapshots([CASE], layout, TAKEN_AT)
    import_snapshots([CASE], layout, later)
    assert query(layout, "select count(*), count(distinct snapshot_id) from iam_roles") == [(6, 2)]
    assert query(layout, "select snapshot_id from iam_snapshots order by taken_at") == [
        (SID,),
        (snapshot_id_of(CASE.read_bytes(), later),),
    ]


def test_one_bad_file_imports_nothing(layout: Layout, write_case: WriteCase) -> None:
    bad = write_case("bad.json")
    bad.write_text("[]", encoding="utf-8")
    with pytest.raises(IamError, match="not an authorization-details document"):
        import_snapshots([CASE, bad], layout, TAKEN_AT)
    assert not layout.iam.exists()


def test_no_file_is_a_usage_error(layout: Layout) -> None:
    with pytest.raises(UsageError, match="no IAM snapshot file given"):
        import_snapshots([], layout, TAKEN_AT)


def test_import_waits_for_no_one_when_a_writer_holds_the_lock(layout: Layout) -> None:
    """Refused, and the hint names the files and the command that imports them at their time:
    `iam snapshot` has written its file by then, and re-running it takes a new snapshot."""
    with writer_lock(layout.lock, "ingest"), pytest.raises(WarehouseLockedError) as caught:
        import_snapshots([CASE, CASE], layout, TAKEN_AT)
    assert not layout.iam.exists()
    busy = caught.value.one_line()
    assert busy.startswith(f"warehouse {layout.root} is busy: ingest by pid ")
    assert busy.endswith(
        " (nothing was imported: wait for it to finish, then run `agenttrail iam import "
        f"{CASE} --taken-at 2024-06-01T00:00:00+00:00 --warehouse {layout.root}` (only one "
        "ingest or import runs at a time))"
    )
    assert caught.value.inputs["files"] == [str(CASE)]


def test_views_exist_and_are_empty_before_any_import(layout: Layout) -> None:
    layout.ensure()
    with connect(layout, read_only=False) as con:
        counts = [
            con.execute(f"select count(*) from {view.name}").fetchall()[0][0]
            for view in schema.base_views(layout)
        ]
        columns = [c[0] for c in con.execute("describe iam_role_tags").fetchall()]
    assert counts == [0, 0, 0, 0, 0]
    assert columns == [
        "account_id",
        "role_name",
        "role_arn",
        "tag_key",
        "tag_value",
        "snapshot_id",
        "taken_at",
    ]


def test_with_settings_attribution_is_rebuilt_under_the_lock(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rebuild itself is attribute/'s (tested there); here: called, locked, reported."""
    settings = Settings(warehouse=str(layout.root))
    done = AttributionSummary("gen-1", 0, 0, {}, settings.attribution.rules_version(), 0.0)
    calls: list[tuple[Layout, AttributionSettings, bool]] = []

    def fake_refresh(at: Layout, cfg: AttributionSettings) -> AttributionSummary:
        with pytest.raises(WarehouseLockedError), writer_lock(at.lock, "probe"):
            pass  # the import still holds the writer lock
        calls.append((at, cfg, (at.iam_snapshots / f"{SID}.parquet").exists()))
        return done

    monkeypatch.setattr(store, "refresh_attribution", fake_refresh)
    summary = import_snapshots([CASE], layout, TAKEN_AT, settings)
    again = import_snapshots([CASE], layout, TAKEN_AT, settings)
    assert (summary.attribution, again.attribution) == (done, done)
    # rebuilt on the re-run too, which heals an import killed before its attribution
    assert calls == [(layout, settings.attribution, True)] * 2


# -------------------------------------------------------- complete snapshots, and the others
LATER = TAKEN_AT + timedelta(days=30)
LATER_SID = snapshot_id_of(CASE.read_bytes(), LATER)
ENTITY_VIEWS = ("iam_roles", "iam_users", "iam_groups", "iam_policies")


def die_at_the_listing(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the next import die where a SIGKILL, the OOM killer or a power cut can stop it:
    its entity files written, its iam_snapshots file not."""

    def write(table: pa.Table, path: Path) -> None:
        if path.parent == layout.iam_snapshots:
            raise KeyboardInterrupt
        write_parquet_atomic(table, path)

    monkeypatch.setattr(store, "write_parquet_atomic", write)


def counts(layout: Layout) -> dict[str, list[tuple[object, ...]]]:
    return {
        view: query(layout, f"select snapshot_id, count(*) from {view} group by all order by 1")
        for view in (*ENTITY_VIEWS, "iam_role_tags", "iam_snapshots")
    }


def test_views_read_only_the_snapshots_iam_snapshots_lists(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_snapshots([CASE], layout, TAKEN_AT)
    die_at_the_listing(layout, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        import_snapshots([CASE], layout, LATER)
    monkeypatch.undo()
    assert (layout.iam_roles / f"{LATER_SID}.parquet").exists()
    assert counts(layout) == {
        "iam_roles": [(SID, 3)],
        "iam_users": [(SID, 1)],
        "iam_groups": [(SID, 1)],
        "iam_policies": [(SID, 4)],
        "iam_role_tags": [(SID, 3)],
        "iam_snapshots": [(SID, 1)],
    }


def test_the_next_import_removes_the_files_of_one_that_did_not_finish(
    layout: Layout, monkeypatch: pytest.MonkeyPatch, write_case: WriteCase
) -> None:
    import_snapshots([CASE], layout, TAKEN_AT)
    die_at_the_listing(layout, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        import_snapshots([CASE], layout, LATER)
    monkeypatch.undo()
    staged = layout.iam_roles / f".{LATER_SID}.parquet.tmp"
    staged.write_bytes(b"half a file")  # what a write killed before its rename leaves

    other = write_case("other.json", account="444455556666")
    other_at = TAKEN_AT + timedelta(days=1)
    summary = import_snapshots([other], layout, other_at)
    assert summary.removed_incomplete == (LATER_SID,)
    other_sid = snapshot_id_of(other.read_bytes(), other_at)
    assert files_under(layout.iam) == sorted(
        f"{table}/{sid}.parquet"
        for table in ("groups", "policies", "roles", "snapshots", "users")
        for sid in (SID, other_sid)
    )
    # Running the interrupted import again completes it.
    again = import_snapshots([CASE], layout, LATER)
    assert (again.imported, again.removed_incomplete) == (1, ())
    assert query(layout, "select count(*) from iam_snapshots") == [(3,)]


def test_an_import_that_removes_unfinished_files_rebuilds_the_attribution(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A classification made while the views still read such files (before they kept listed
    snapshots only) may have used them: the import that removes them re-classifies."""
    settings = Settings(warehouse=str(layout.root))
    done = AttributionSummary("gen-1", 0, 0, {}, settings.attribution.rules_version(), 0.0)
    monkeypatch.setattr(store, "refresh_attribution", lambda at, cfg: done)
    monkeypatch.setattr(store, "is_current", lambda at, version: True)
    import_snapshots([CASE], layout, TAKEN_AT, settings)
    (layout.iam_users / "0123456789abcdef.parquet").write_bytes(b"left by a killed import")
    summary = import_snapshots([CASE], layout, TAKEN_AT, settings)
    assert (summary.attribution, summary.current, summary.removed_incomplete) == (
        done,
        False,
        ("0123456789abcdef",),
    )
    assert import_snapshots([CASE], layout, TAKEN_AT, settings).current


def test_a_value_no_column_holds_fails_before_any_file_is_written(
    layout: Layout, monkeypatch: pytest.MonkeyPatch, write_case: WriteCase
) -> None:
    """Every table of every file is converted first (load.py refuses the values it knows of,
    naming the element; this is the net behind it)."""
    bad = write_case("bad.json")
    real_load = store.load_snapshot

    def overflowing(path: str | Path, taken_at: datetime) -> Snapshot:
        snapshot = real_load(path, taken_at)
        if Path(path) != bad:
            return snapshot
        policy = dataclasses.replace(snapshot.policies[-1], attachment_count=2**70)
        return dataclasses.replace(snapshot, policies=(*snapshot.policies[:-1], policy))

    monkeypatch.setattr(store, "load_snapshot", overflowing)
    with pytest.raises(IamError) as caught:
        import_snapshots([CASE, bad], layout, TAKEN_AT)
    assert caught.value.one_line() == (
        f"{bad}: its policies cannot be stored: Python int too large to convert to C long "
        "(pass the output of `aws iam get-account-authorization-details --output json`)"
    )
    assert not layout.iam.exists()


# ------------------------------------------------------------ one account, one time, one state
def differing(write_case: WriteCase) -> Path:
    document = case_document()
    document["RoleDetailList"][0]["Tags"] = []  # ops-agent untagged
    return write_case("untagged.json", document)


def test_differing_snapshots_of_one_account_at_one_time_are_refused_together(
    layout: Layout, write_case: WriteCase
) -> None:
    other = differing(write_case)
    with pytest.raises(UsageError) as caught:
        import_snapshots([CASE, other], layout, TAKEN_AT)
    assert caught.value.one_line() == (
        f"{other} and {CASE} (given in the same import) are both snapshots of account "
        f"{ACCOUNT} taken at 2024-06-01T00:00:00+00:00, but they differ "
        "(import each with --taken-at set to when it was exported)"
    )
    assert not layout.iam.exists()


def test_a_snapshot_differing_from_a_stored_one_of_its_account_and_time_is_refused(
    layout: Layout, write_case: WriteCase
) -> None:
    other = differing(write_case)
    import_snapshots([CASE], layout, TAKEN_AT)
    before = files_under(layout.iam)
    with pytest.raises(UsageError) as caught:
        import_snapshots([other], layout, TAKEN_AT)
    assert caught.value.one_line() == (
        f"{other} and {CASE} (imported before as snapshot {SID}) are both snapshots of account "
        f"{ACCOUNT} taken at 2024-06-01T00:00:00+00:00, but they differ "
        "(import each with --taken-at set to when it was exported)"
    )
    assert files_under(layout.iam) == before
    # At its own time it is imported; the same state in other bytes is taken at the same time.
    assert import_snapshots([other], layout, LATER).imported == 1
    reordered = case_document()
    reordered["RoleDetailList"].reverse()
    same = write_case("same-state.json", reordered)
    assert import_snapshots([same], layout, TAKEN_AT).imported == 1

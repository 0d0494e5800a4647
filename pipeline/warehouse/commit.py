"""Commit a staged batch into events/: drop duplicate eventIDs, then rename files into place.

Crash safety: rows in events/ are never rewritten, and a staged file reaches events/ by one
rename. The manifest is written after the renames, so a kill between the two makes the next run
read those objects again; their eventIDs are then already present, and their rows are dropped.
Either way the event set is the same. Those rows are no duplicates, though: they are the same
records of the same object, committed by a run whose manifest never recorded them, and the run
that records the object counts them as written (CommitResult.recovered), so that its summary and
manifest entry say what the object holds (recovered_rows).

Speed: the exact check (staged_duplicates) reads every eventID in events/, which grows with the
warehouse. A commit first compares 64-bit hashes of its eventIDs with each other and with the
hashes of the warehouse's eventIDs (KnownIds, read once per run); equal eventIDs have equal
hashes, so when no hash repeats there is no duplicate and the exact check is skipped.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.sqlfile import load_internal
from pipeline.warehouse.files import EVENTS_PARQUET, fsync_files, move_into_place, write_parquet
from pipeline.warehouse.layout import EVENTS_GLOB, Layout
from pipeline.warehouse.stage import StagedFile


@dataclass
class KnownIds:
    """The hashes of every eventID in events/, held by one ingest run (the warehouse lock keeps
    other writers out): 8 bytes per event, 80 MB at 10M events."""

    hashes: list[pa.Table] | None = None  # None until read from events/ by the first commit

    def table(self) -> pa.Table:
        hashes = self.hashes or []
        return (
            pa.concat_tables(hashes) if hashes else pa.table({"id_hash": pa.array([], pa.uint64())})
        )


@dataclass
class CommitResult:
    written: int = 0  # rows moved into events/
    duplicates_in_batch: int = 0
    duplicates_in_warehouse: int = 0
    dropped_by_uri: Counter[str] = field(default_factory=Counter)  # duplicates, per object
    # Rows found in events/ already, committed from the same object (the same record of the
    # same content) by a run killed before its manifest recorded them: written, not duplicates.
    recovered: int = 0
    recovered_by_uri: Counter[str] = field(default_factory=Counter)


def _existing_ids(con: duckdb.DuckDBPyConnection, layout: Layout) -> None:
    # Both branches create the view the same way (a relation view): a TEMP view of the same name
    # would shadow the relation view of every later commit of the run, which then saw no
    # existing eventIDs at all.
    if any(layout.events.glob(EVENTS_GLOB)):
        rel = con.read_parquet(str(layout.events / EVENTS_GLOB), hive_partitioning=False)
        rel = rel.select("event_id")
    else:
        rel = con.sql("SELECT NULL::VARCHAR AS event_id WHERE false")
    rel.create_view("existing_event_ids", replace=True)


def _may_repeat(
    con: duckdb.DuckDBPyConnection, staged: list[StagedFile], known: KnownIds
) -> tuple[bool, pa.Table]:
    """Whether any staged eventID hash repeats (in the batch or in events/), and the hashes."""
    if known.hashes is None:
        hashes = load_internal("warehouse/warehouse_id_hashes").sql
        known.hashes = [con.sql(hashes).to_arrow_table()]
    ids = [s.event_ids for s in staged if s.event_ids is not None]
    if len(ids) == len(staged):
        # The eventIDs came back with the files from the parse processes: no file is read.
        event_ids = pa.table({"event_id": pa.chunked_array(ids, pa.string())})
    else:
        rel = con.read_parquet([s.path for s in staged], hive_partitioning=False)
        event_ids = rel.select("event_id").to_arrow_table()
    con.register("staged_event_ids", event_ids)
    staged_hashes = con.sql(load_internal("warehouse/staged_id_hashes").sql).to_arrow_table()
    con.unregister("staged_event_ids")
    con.register("staged_id_hashes", staged_hashes)
    con.register("known_id_hashes", known.table())
    ((repeats,),) = con.sql(load_internal("warehouse/id_hash_repeats").sql).fetchall()
    con.unregister("staged_id_hashes")
    con.unregister("known_id_hashes")
    return repeats > 0, staged_hashes


def commit_batch(
    staged: list[StagedFile],
    layout: Layout,
    con: duckdb.DuckDBPyConnection,
    row_group_rows: int,
    known: KnownIds | None = None,
) -> CommitResult:
    """Move a staged batch into events/ without duplicate eventIDs. `known` carries the
    warehouse's eventID hashes from one commit of a run to the next (read here when empty)."""
    result = CommitResult()
    if not staged:
        return result
    known = known if known is not None else KnownIds()
    files = [s.path for s in staged]
    _existing_ids(con, layout)
    may_repeat, staged_hashes = _may_repeat(con, staged, known)
    drops = []
    if may_repeat:
        query = load_internal("warehouse/staged_duplicates")
        drops = con.execute(query.sql, {"files": files}).fetchall()
    recovered = recovered_rows(con, layout, [(f, r, kept_copy) for f, r, _, kept_copy in drops])
    by_file: dict[str, list[int]] = {}
    for filename, row_number, source_uri, kept_copy in drops:
        by_file.setdefault(filename, []).append(row_number)
        if (filename, row_number) in recovered:
            result.recovered += 1
            result.recovered_by_uri[source_uri] += 1
            continue
        result.dropped_by_uri[source_uri] += 1
        if kept_copy == "batch":
            result.duplicates_in_batch += 1
        else:
            result.duplicates_in_warehouse += 1
    moves: list[StagedFile] = []
    for staged_file in staged:
        rows = staged_file.rows
        if staged_file.path in by_file:
            rows -= _drop_rows(Path(staged_file.path), by_file[staged_file.path], row_group_rows)
        if rows:
            moves.append(staged_file)
        else:
            os.unlink(staged_file.path)
        result.written += rows
    # Staged files are written without fsync (a parse process would wait on the disk); they
    # become durable here, all at once, before any of them enters events/.
    fsync_files([Path(s.path) for s in moves])
    for staged_file in moves:
        move_into_place(Path(staged_file.path), layout.events / staged_file.relative)
    # Every staged hash is now in events/: kept rows' own, dropped rows' equal to a kept one.
    known.hashes = [*(known.hashes or []), staged_hashes]
    return result


_IDENTITY = ("event_id", "source_uri", "source_sha256", "source_record_index")


def recovered_rows(
    con: duckdb.DuckDBPyConnection, layout: Layout, drops: list[tuple[str, int, str]]
) -> set[tuple[str, int]]:
    """Of the staged rows to drop (file, row number, kept_copy as staged_duplicates says), those
    that a killed run committed before its manifest could record them: events/ holds the same
    record (the same eventID, object, content hash and record index), written by a run that has
    no manifest entry for that object, and no manifest entry for the object with that content
    was recorded since that run began (a run that completed it, as this one is about to, claims
    them: read again later, say after a `touch`, they are duplicates once more). Such a row may
    have lost its batch's ranking to a copy from a smaller uri (which that copy in events/ beat
    when it was committed): it is the row kept all the same, and the other copy the duplicate."""
    if all(kept_copy == "batch" for _, _, kept_copy in drops):
        return set()  # events/ holds none of these eventIDs
    rows_by_file: dict[str, list[int]] = {}
    for filename, row_number, _ in drops:
        rows_by_file.setdefault(filename, []).append(row_number)
    staged_rows = {}
    for filename, numbers in rows_by_file.items():
        table = pq.read_table(filename, columns=list(_IDENTITY)).take(numbers)
        for number, row in zip(numbers, table.to_pylist(), strict=True):
            staged_rows[(filename, number)] = row
    # Only eventIDs that events/ holds (some row of theirs is dropped for it) can be recovered.
    held = {staged_rows[(f, r)]["event_id"] for f, r, kept_copy in drops if kept_copy != "batch"}
    if not held:
        return set()
    staged_rows = {key: row for key, row in staged_rows.items() if row["event_id"] in held}
    ids = sorted({row["event_id"] for row in staged_rows.values()})
    con.register("recovery_candidate_ids", pa.table({"event_id": pa.array(ids, pa.string())}))
    try:
        copies = (
            con.read_parquet(str(layout.events / EVENTS_GLOB), hive_partitioning=False)
            .select(*_IDENTITY, "ingest_run_id")
            .join(con.table("recovery_candidate_ids"), "event_id")
            .to_arrow_table()
            .to_pylist()
        )
    finally:
        con.unregister("recovery_candidate_ids")
    copy_of = {c["event_id"]: c for c in copies}
    same = {
        key: copy_of[row["event_id"]]
        for key, row in staged_rows.items()
        if row["event_id"] in copy_of
        and all(copy_of[row["event_id"]][k] == row[k] for k in _IDENTITY)
    }
    if not same:
        return set()
    recorded = _recorded(layout, {c["source_uri"] for c in same.values()})
    return {
        key for key, copy in same.items() if _unrecorded(recorded.get(copy["source_uri"], []), copy)
    }


def _recorded(layout: Layout, uris: set[str]) -> dict[str, list[dict[str, Any]]]:
    """The manifest's entries (every run's) of these objects: run_id, sha256, recorded_at."""
    files = sorted(layout.manifest.glob("*.parquet"))
    found: dict[str, list[dict[str, Any]]] = {}
    if not files:
        return found
    wanted = pa.array(sorted(uris), pa.string())
    for path in files:
        table = pq.read_table(path, columns=["uri", "run_id", "sha256", "recorded_at"])
        for entry in table.filter(pc.is_in(table["uri"], value_set=wanted)).to_pylist():
            found.setdefault(entry["uri"], []).append(entry)
    return found


def _unrecorded(entries: list[dict[str, Any]], copy: dict[str, Any]) -> bool:
    """Whether no manifest entry accounts for a row of events/ (`copy`): none of its run for
    its object, and none of its object's content since its run began. A run id that does not
    start with its time (not ingest's) counts as accounted for."""
    run = copy["ingest_run_id"]
    try:
        began = datetime.strptime(run[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return False
    return not any(
        e["run_id"] == run or (e["sha256"] == copy["source_sha256"] and e["recorded_at"] >= began)
        for e in entries
    )


def _drop_rows(path: Path, row_numbers: list[int], row_group_rows: int) -> int:
    """Rewrite a staged file without the given rows; returns how many were dropped."""
    table = pq.read_table(path)
    keep = pc.invert(pc.is_in(pa.array(range(table.num_rows)), pa.array(row_numbers)))
    kept = table.filter(keep)
    if kept.num_rows:
        tmp = path.with_name(f".{path.name}.tmp")
        write_parquet(kept, tmp, row_group_rows=row_group_rows, options=EVENTS_PARQUET)
        os.replace(tmp, path)
    dropped: int = table.num_rows - kept.num_rows
    return dropped

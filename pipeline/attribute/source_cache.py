"""The source events kept per events file, so that a rebuild extracts only new files'.

05_source_events.sql reads the wide JSON columns of every event to find the few the later
steps need (STS, IAM role tags, MCP records, grants, federated principals): a full second
read of the events beside the per-event pass, 6.6 s of a ~30 s rebuild at 10M events, on its
critical path. Events files are never rewritten (warehouse/commit.py), so what it found in a
file holds for as long as the file does: it is kept here, under a folder named after the SQL
that extracted it, and each rebuild extracts only the files no earlier rebuild did.

    derived/source-cache/KEY/batch-T-ID.source.parquet   source-event rows of a batch's files
    derived/source-cache/KEY/batch-T-ID.values.parquet   their distinct values, per file
    derived/source-cache/KEY/batch-T-ID.json             the batch's file keys (written last)

KEY hashes 05_source_events.sql, CACHE_FORMAT and DuckDB's version, so a changed extraction
starts afresh. A
file's key hashes its path under events/, its size and its modification time. A batch counts
only once its manifest (the .json) is written, after its Parquet files are on disk, and while
both files' footers can be read; a file's rows are read from the newest batch that lists it,
so a rebuild killed at any point (or a power cut) leaves nothing that is read: the next one
removes what no manifest claims. Past MAX_BATCHES the batches are merged into one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.attribute.sql_graph import first_line, out_of_memory
from pipeline.errors import OutOfMemoryError, WarehouseError
from pipeline.warehouse.connect import sql_literal
from pipeline.warehouse.disk import disk_failure, is_disk_failure
from pipeline.warehouse.files import fsync_files

# Bumped when what a kept row means changes outside 05_source_events.sql's text (the columns
# classify.py's attribution_events gives it).
CACHE_FORMAT = 1
# Batches the cache may hold before a rebuild merges them into one: one is written per
# rebuild that finds new files (an hourly ingest: ~24 a day), and each costs the rebuild a
# file to open. Users: every rebuild; 16 small files cost ~10 ms.
MAX_BATCHES = 16
# zstd level of the kept files, as the derived tables' (classify.DERIVED_ZSTD_LEVEL).
ZSTD_LEVEL = 1
# Rows per row group of the kept files: DuckDB reads a file's row groups in parallel, and one
# batch of 1M events' ~89,000 source rows read back in 0.21 s as one row group, 0.15 s in
# groups of 16,384 (8,192: no faster).
ROW_GROUP_ROWS = 16_384
SOURCE_SQL = "05_source_events.sql"


@dataclass
class SourceCache:
    """What the cache holds for one rebuild's pinned files."""

    folder: Path
    keys: list[str]  # per pinned file, by its index in the pinned list
    owner: dict[int, str]  # pinned file index -> batch that holds its rows
    batches: set[str] = field(default_factory=set)  # batches some pinned file is read from

    @property
    def new(self) -> list[int]:
        """The pinned files no batch holds: extracted by this rebuild."""
        return [i for i in range(len(self.keys)) if i not in self.owner]


def cache_key(sql: str) -> str:
    """The extraction: its SQL, what the rows mean (CACHE_FORMAT), and the DuckDB that runs
    the SQL (its JSON functions decide what is extracted)."""
    return hashlib.sha256(f"{CACHE_FORMAT}\n{duckdb.__version__}\n{sql}".encode()).hexdigest()[:16]


def file_key(events: Path, path: Path) -> str:
    """A file's path under events/, its size and its modification time: a file written again
    under its name (a warehouse restored from elsewhere, a file edited in place), even at the
    same size, is not taken for the one kept. (A copy that keeps the times keeps the cache.)"""
    name = path.relative_to(events).as_posix()
    found = path.stat()
    text = f"{name}\n{found.st_size}\n{found.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def open_cache(root: Path, events: Path, files: list[Path], sql: str) -> SourceCache:
    """The cache of `sql` for the pinned `files`: which batch holds each file's rows. Removes
    the caches of other SQL, batches without a manifest (a killed rebuild's), and batches no
    pinned file is read from any more."""
    folder = root / cache_key(sql)
    try:
        if root.is_dir():
            for other in root.iterdir():
                if other != folder:
                    _remove(other)
        folder.mkdir(parents=True, exist_ok=True)
        keys = [file_key(events, f) for f in files]
        index = {key: i for i, key in enumerate(keys)}
        owner: dict[int, str] = {}
        for manifest in sorted(folder.glob("batch-*.json")):
            batch = manifest.name.removesuffix(".json")
            listed = _listed_keys(manifest, folder, batch)
            if listed is None:
                continue
            for key in listed:
                if key in index:
                    owner[index[key]] = batch  # the newest batch that lists a file wins
        # What no pinned file is read from: batches superseded or of files gone, files of a
        # batch whose manifest was never written, a manifest's temporary file.
        batches = set(owner.values())
        for path in folder.iterdir():
            if path.name.split(".", 1)[0] not in batches:
                _remove(path)
    except OSError as exc:
        raise _cache_error(exc, folder) from None
    return SourceCache(folder, keys, owner, batches)


def bind(con: duckdb.DuckDBPyConnection, cache: SourceCache) -> None:
    """The views 05_source_events.sql reads the kept rows from, with each row's file_index in
    this rebuild's pinned list, and the tables of file keys save() writes by."""
    con.execute(
        "CREATE OR REPLACE TABLE attribution_cache_files (file_index UBIGINT, file_key VARCHAR)"
    )
    con.execute(
        "INSERT INTO attribution_cache_files SELECT unnest(range($n::BIGINT)), unnest($keys::VARCHAR[])",
        {"n": len(cache.keys), "keys": cache.keys},
    )
    if not cache.owner:
        con.execute(
            "CREATE OR REPLACE VIEW attribution_cached_source_events AS SELECT"
            " NULL::UBIGINT AS file_index, NULL::BIGINT AS file_row_number WHERE false"
        )
        con.execute(
            "CREATE OR REPLACE VIEW attribution_cached_values AS"
            " SELECT NULL::UBIGINT AS file_index WHERE false"
        )
        return
    con.execute(
        "CREATE OR REPLACE TABLE attribution_cache_owners"
        " (file_index UBIGINT, file_key VARCHAR, batch_file VARCHAR, values_file VARCHAR)"
    )
    owned = sorted(cache.owner.items())
    con.execute(
        "INSERT INTO attribution_cache_owners SELECT unnest($index::UBIGINT[]),"
        " unnest($keys::VARCHAR[]), unnest($sources::VARCHAR[]), unnest($values::VARCHAR[])",
        {
            "index": [i for i, _ in owned],
            "keys": [cache.keys[i] for i, _ in owned],
            "sources": [str(_batch_files(cache.folder, b)[0]) for _, b in owned],
            "values": [str(_batch_files(cache.folder, b)[1]) for _, b in owned],
        },
    )
    for view, kind, column in (
        ("attribution_cached_source_events", "source", "batch_file"),
        ("attribution_cached_values", "values", "values_file"),
    ):
        paths = sorted({str(cache.folder / f"{b}.{kind}.parquet") for b in cache.batches})
        try:
            _bind_view(con, view, column, paths)
        except duckdb.Error as exc:
            raise _cache_error(exc, cache.folder) from None


def _bind_view(con: duckdb.DuckDBPyConnection, view: str, column: str, paths: list[str]) -> None:
    con.execute(
        f"CREATE OR REPLACE VIEW {view} AS"
        " SELECT k.* EXCLUDE (file_key, filename), o.file_index"
        f" FROM read_parquet([{', '.join(sql_literal(p) for p in paths)}],"
        # Not the `key=value` folders of the warehouse's path as columns.
        "  union_by_name = true, filename = true, hive_partitioning = false) AS k"
        f" JOIN attribution_cache_owners AS o ON o.file_key = k.file_key AND o.{column} = k.filename"
    )


def save(cache: SourceCache, cursor: duckdb.DuckDBPyConnection) -> None:
    """Keep what this rebuild extracted (once the attribution SQL has run), and merge the
    batches past MAX_BATCHES."""
    new = cache.new
    try:
        if new:
            batch = _write_batch(cache, cursor, "attribution_extracted_values", new)
            cache.batches.add(batch)
            for i in new:
                cache.owner[i] = batch
        if len(cache.batches) > MAX_BATCHES:
            old = set(cache.batches)
            values = (
                "(SELECT * FROM attribution_extracted_values"
                " UNION ALL BY NAME SELECT * FROM attribution_cached_values)"
            )
            batch = _write_batch(cache, cursor, values, list(range(len(cache.keys))))
            cache.batches = {batch}
            cache.owner = dict.fromkeys(range(len(cache.keys)), batch)
            for stale in sorted(old):
                _remove(cache.folder / f"{stale}.json")
                for path in _batch_files(cache.folder, stale):
                    _remove(path)
    except duckdb.OutOfMemoryException as exc:
        raise OutOfMemoryError(f"keeping the source events: {out_of_memory(exc)}") from None
    except (duckdb.Error, OSError) as exc:
        raise _cache_error(exc, cache.folder) from None


def _write_batch(
    cache: SourceCache, cursor: duckdb.DuckDBPyConnection, values: str, files: list[int]
) -> str:
    """One batch holding the rows of `files` (pinned indexes): source rows from
    attribution_source_events, values from `values`; its manifest last."""
    batch = f"batch-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
    source_path, values_path = _batch_files(cache.folder, batch)
    cursor.execute(
        "CREATE OR REPLACE TEMP TABLE batch_files AS"
        " SELECT * FROM attribution_cache_files WHERE file_index IN (SELECT unnest($files))",
        {"files": files},
    )
    options = (
        f"(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL {ZSTD_LEVEL},"
        f" ROW_GROUP_SIZE {ROW_GROUP_ROWS})"
    )
    cursor.execute(
        "COPY (SELECT k.file_key, s.* EXCLUDE (file_index, event_position)"
        " FROM attribution_source_events AS s JOIN batch_files AS k USING (file_index))"
        f" TO {sql_literal(str(source_path))} {options}"
    )
    cursor.execute(
        f"COPY (SELECT k.file_key, v.* EXCLUDE (file_index) FROM {values} AS v"
        " JOIN batch_files AS k USING (file_index))"
        f" TO {sql_literal(str(values_path))} {options}"
    )
    # On disk before the manifest that makes them count: after a power cut, a manifest must not
    # name files the disk never got.
    fsync_files([source_path, values_path])
    manifest = cache.folder / f"{batch}.json"
    tmp = cache.folder / f".{batch}.json.tmp"
    tmp.write_text(json.dumps({"format": CACHE_FORMAT, "files": [cache.keys[i] for i in files]}))
    fsync_files([tmp])
    os.replace(tmp, manifest)
    return batch


def _batch_files(folder: Path, batch: str) -> tuple[Path, Path]:
    return folder / f"{batch}.source.parquet", folder / f"{batch}.values.parquet"


def _listed_keys(manifest: Path, folder: Path, batch: str) -> list[str] | None:
    """The file keys a manifest lists; None (and the batch removed) where it cannot be read
    or its files are gone or not whole (their footers unreadable: a disk error, or files
    written before this module made them durable)."""
    try:
        listed = json.loads(manifest.read_text())
        keys = listed["files"] if listed.get("format") == CACHE_FORMAT else None
    except (ValueError, KeyError, TypeError, AttributeError):
        keys = None
    if not isinstance(keys, list) or not all(_readable(p) for p in _batch_files(folder, batch)):
        _remove(manifest)
        return None
    return [str(k) for k in keys]


def _readable(path: Path) -> bool:
    """Whether `path` is a Parquet file whose footer reads, of kept rows (a file_key column):
    one small read per file, of at most MAX_BATCHES + 1 batches."""
    try:
        return "file_key" in pq.read_metadata(path).schema.names
    except (OSError, pa.ArrowException):
        return False


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _cache_error(exc: BaseException, folder: Path) -> WarehouseError:
    if is_disk_failure(exc):
        return disk_failure(exc, folder)
    return WarehouseError(
        f"could not keep the attribution's source events in {folder}: {first_line(exc)}",
        hint=cache_hint(folder),
    )


def cache_hint(folder: Path) -> str:
    return f"remove {folder} (the next rebuild extracts them again)"

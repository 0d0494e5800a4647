"""Read a warehouse that lives in S3 (`--warehouse s3://bucket/prefix`), and open any warehouse
for reading.

DuckDB reads the Parquet files directly through an fsspec filesystem (s3fs) registered on the
connection: its own httpfs extension is downloaded on first use, which an offline or locked-down
analyst machine cannot do, while s3fs ships with agenttrail and uses botocore's standard
credential chain (environment, profile, SSO, instance role) like `agenttrail ingest`.

There is no database file in S3 to open: each connection is in-memory and gets the same views as
a local warehouse from `connect.define_views`, which only asks this module what files exist.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.endpoints import check_endpoint_url, without_secrets_in_urls
from pipeline.errors import AgenttrailError, UsageError, WarehouseError
from pipeline.warehouse.connect import connect, define_views, session_defaults
from pipeline.warehouse.layout import Layout

SCHEME = "s3://"
# A Layout that only names folders: paths under it map to keys under the S3 prefix.
_ROOT = Path("/")


@dataclass(frozen=True)
class S3Options:
    """How to reach S3: None everywhere means botocore's defaults (environment, config files)."""

    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None


def is_remote(location: str) -> bool:
    return location.startswith(SCHEME)


def split_uri(uri: str) -> tuple[str, str]:
    """s3://bucket/some/prefix/ -> ("bucket", "some/prefix")."""
    rest = uri[len(SCHEME) :].strip("/")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise UsageError(f"no bucket in {uri!r}", hint="write s3://bucket/prefix")
    return bucket, prefix.strip("/")


def s3_filesystem(options: S3Options) -> Any:
    """An s3fs filesystem of its own (no instance cache), so a listing is never stale across
    connections of a long-lived process."""
    import s3fs

    check_endpoint_url(options.endpoint_url)
    client_kwargs = {"region_name": options.region} if options.region else {}
    return s3fs.S3FileSystem(
        endpoint_url=options.endpoint_url,
        profile=options.profile,
        client_kwargs=client_kwargs,
        skip_instance_cache=True,
    )


class S3Files:
    """`connect.WarehouseFiles` over an S3 prefix. Empty-schema files (for views over folders
    with no files yet) are written to a local temporary folder: a reader never writes to S3."""

    def __init__(self, fs: Any, bucket: str, prefix: str, scratch: Path) -> None:
        self.fs = fs
        self.base = f"{bucket}/{prefix}".rstrip("/")
        self.scratch = scratch
        self.layout = Layout(_ROOT)

    def _key(self, path: Path) -> str:
        return f"{self.base}/{path.relative_to(_ROOT).as_posix()}"

    def location(self, path: Path) -> str:
        return SCHEME + self._key(path)

    def has_files(self, folder: Path, glob: str) -> bool:
        return bool(self.fs.glob(self._key(folder / glob)))

    def read_text(self, path: Path) -> str | None:
        try:
            return str(self.fs.cat_file(self._key(path)).decode())
        except FileNotFoundError:
            return None

    def empty_file(self, name: str, schema: pa.Schema) -> str:
        path = self.scratch / f"{name}.parquet"
        if not path.exists():
            pq.write_table(schema.empty_table(), path)
        return str(path)


def _s3_failure(uri: str, exc: Exception) -> WarehouseError:
    # botocore and aiohttp quote the endpoint whole, with any user:password@ or signed query.
    text = without_secrets_in_urls(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    if isinstance(exc, PermissionError):
        hint = "check the credentials (--profile, AWS_* variables) and s3:ListBucket/GetObject"
    elif isinstance(exc, FileNotFoundError):
        hint = "check the bucket name and prefix"
    else:
        hint = "check --endpoint-url, the network and the credentials"
    return WarehouseError(f"cannot read {uri}: {text}", hint=hint, warehouse=uri)


@contextmanager
def connect_s3(
    uri: str, options: S3Options | None = None, *, memory_limit: str | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory connection with the warehouse views over the Parquet files under `uri`."""
    bucket, prefix = split_uri(uri)
    fs = s3_filesystem(options or S3Options())
    con = duckdb.connect()
    try:
        session_defaults(con)
        with tempfile.TemporaryDirectory(prefix="agenttrail-s3-") as scratch:
            files = S3Files(fs, bucket, prefix, Path(scratch))
            try:
                found = files.has_files(files.layout.events, "*") or files.read_text(
                    files.layout.derived / "CURRENT"
                )
                if not found:
                    raise WarehouseError(
                        f"no warehouse at {uri}",
                        hint="expected events/ (and derived/) under the prefix; upload or "
                        "ingest a warehouse there, or fix the prefix",
                        warehouse=uri,
                    )
                con.register_filesystem(fs)
                # Spill beside the scratch files, not into the analyst's working folder.
                con.execute("SET temp_directory = $t", {"t": scratch})
                if memory_limit:
                    con.execute("SET memory_limit = $m", {"m": memory_limit})
                define_views(con, files)
            except AgenttrailError:
                raise
            except Exception as exc:  # botocore, aiohttp, fsspec and DuckDB errors vary by cause
                raise _s3_failure(uri, exc) from None
            yield con
    finally:
        con.close()


@contextmanager
def connect_reader(
    location: str, *, s3: S3Options | None = None, memory_limit: str | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection for reading the warehouse views, wherever the warehouse lives."""
    if is_remote(location):
        with connect_s3(location, s3, memory_limit=memory_limit) as con:
            yield con
        return
    if s3 is not None and s3 != S3Options():
        raise UsageError(
            "--endpoint-url and --profile apply to an s3:// warehouse only",
            hint=f"the warehouse is the local folder {location!r}",
        )
    with connect(Layout.at(location), read_only=True, memory_limit=memory_limit) as con:
        yield con

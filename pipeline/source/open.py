"""Pick the source for a SOURCE argument: an S3 URI or a local folder or file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import UsageError
from pipeline.source import Source
from pipeline.source.local import LocalSource

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def open_source(
    uri: str, *, s3_client: S3Client | None = None, warehouse: Path | None = None
) -> Source:
    """S3Source for `s3://bucket[/prefix]`, LocalSource for anything else (which leaves out the
    `warehouse` folder where it lies inside the folder read).

    The S3 client is passed in, never built here, so the caller alone decides the profile,
    endpoint and retries (and tests can point it at a local server).
    """
    if uri.lower().startswith("s3://"):
        if s3_client is None:
            raise UsageError(
                f"no S3 client to read {uri}",
                hint="build one with pipeline.source.aws.make_s3_client and pass s3_client=",
                source=uri,
            )
        # boto3 takes ~0.1 s to import: only runs that read S3 pay for it.
        from pipeline.source.s3 import S3Source

        return S3Source(uri, s3_client)
    return LocalSource(uri, leave_out=warehouse)

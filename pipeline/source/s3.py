"""Trail buckets on S3: a pruned walk of CloudTrail's key layout, and downloads.

A trail bucket holds years of files for many accounts and regions, plus other services' logs
that can dwarf it. A flat listing would read all of it, so the walk follows the layout
`[PREFIX/]AWSLogs/[o-ORGID/]ACCOUNT/SERVICE/REGION/YYYY/MM/DD/` with delimited listings
(Delimiter="/") down to the region folders, dropping accounts, regions and services nobody asked
for before listing them; with --since the region folders are read one day folder at a time, so
one quarter of one account costs about a hundred small requests, never years of keys.
A URI outside the layout (the bucket root, a folder above a trail's key prefix) is searched a
few folder levels deep for `AWSLogs/`, and the layout walk starts wherever one is found.
Every listing goes through the client's paginator (1,000 keys per page). A prefix below the URI
that cannot be listed (a policy denying it) is one object that cannot be read, as a local folder
that cannot be listed is; a URI that cannot be listed at all ends the run.
"""

from __future__ import annotations

import calendar
import functools
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ParamSpec

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from pipeline.errors import SourceError, UsageError
from pipeline.source import Fetched, Filters, SourceObject, shifted
from pipeline.source.aws import translate_client_error
from pipeline.source.keys import ACCOUNT_ID, ORG_ID, SERVICE_KINDS, KeyInfo, classify_key
from pipeline.source.local import UNREADABLE_VERSION

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ListObjectsV2OutputTypeDef, ObjectTypeDef

AWSLOGS = "AWSLogs"
# Version of the SourceObjects that stand for a whole skipped prefix (other services' logs).
PREFIX_VERSION = "prefix"
# Spooled downloads are copied in chunks of this size, so memory stays flat for any object size.
CHUNK_BYTES = 1 << 20
# A body read can break after the response started (a dropped connection); botocore's retries
# cover only the request, so the whole GET is retried this many times in all.
READ_ATTEMPTS = 3
_RETRYABLE_READ_ERRORS = (ResponseStreamingError, IncompleteReadError, ReadTimeoutError)
# How deep `_walk_outside` looks for `AWSLogs/` below a URI outside the layout: the folders
# down to this many levels below the URI's own are listed with a delimiter, their `AWSLogs/`
# child walked by the layout; folders below that level are listed flat. It serves `ingest
# s3://bucket` (or a folder above the trail) on a trail with a key prefix of up to this many
# folders (`trail/AWSLogs/`, `a/b/AWSLogs/`): --since/--account/--region then prune its listing,
# where a flat listing read every key of every day, account and region. Two, not more, because
# a delimited listing costs one request per folder where a flat one costs one per 1,000 keys:
# in a tree of other data (exports in year/month/day folders) every level searched multiplies
# the requests by its fan-out. A trail deeper than this is still read (flat, each key filtered);
# naming its prefix (`s3://bucket/a/b/c`) prunes it again.
TRAIL_PREFIX_LEVELS = 2
# Listing errors that concern one prefix, not the run: S3 answers AccessDenied (HTTP 403) when
# a bucket policy, an SCP or a VPC endpoint policy denies s3:ListBucket on some prefixes only
# (an s3:prefix condition on one account's folder); a bare 403 or a 404-ish code (never
# NoSuchBucket) for the same reason from S3-compatible stores. Such a prefix below the URI is
# one object that cannot be read (quarantined), and the walk goes on. Every other failure ends
# the run with translate_client_error's one line, because it would fail every prefix alike and
# thousands of quarantined prefixes would hide one cause: no, expired or rejected credentials,
# an endpoint that cannot be reached (BotoCoreError), throttling and 5xx errors that outlived
# botocore's retries (an outage), the bucket gone (NoSuchBucket), clock skew, unknown codes.
_PER_PREFIX_CODES = frozenset({"AccessDenied", "403", "NoSuchKey", "NotFound", "404"})
_AUTHORISATION_CODES = frozenset({"AccessDenied", "403"})
_YEAR = re.compile(r"^\d{4}$")
_MONTH_OR_DAY = re.compile(r"^\d{2}$")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, prefix) of `s3://bucket[/prefix]`; the prefix is a folder, so it ends with "/"
    unless empty (the bucket root)."""
    if not uri.lower().startswith("s3://"):
        raise UsageError(f"not an S3 URI: {uri}", hint="use s3://bucket[/prefix]", source=uri)
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise UsageError(f"no bucket in {uri}", hint="use s3://bucket[/prefix]", source=uri)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


class _PrefixUnlisted(Exception):
    """A prefix below the URI could not be listed: `obj` stands for it (see _lists_one_prefix)."""

    def __init__(self, obj: SourceObject) -> None:
        super().__init__(obj.uri)
        self.obj = obj


_P = ParamSpec("_P")


def _lists_one_prefix(
    walk: Callable[_P, Iterator[SourceObject]],
) -> Callable[_P, Iterator[SourceObject]]:
    """For a walk that lists one prefix (and walks its children): when that prefix cannot be
    listed (`_pages` raised _PrefixUnlisted), the walk yields the object that stands for it
    and ends, so its caller goes on with the other prefixes. A child's failure was caught by
    the child's own walk already."""

    @functools.wraps(walk)
    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> Iterator[SourceObject]:
        try:
            yield from walk(*args, **kwargs)
        except _PrefixUnlisted as failure:
            yield failure.obj

    return guarded


@dataclass(frozen=True)
class _Position:
    """Where a prefix sits inside the layout, recognised by the shape of its segments."""

    prefix: str  # the whole prefix, ending with "/"
    at_org: bool = False  # the prefix ends at an `o-ORGID/` folder
    account: str | None = None
    service: str | None = None
    region: str | None = None
    region_prefix: str | None = None  # prefix up to and including the region folder
    date_parts: tuple[str, ...] = ()  # YYYY[, MM[, DD]] below the region folder


class S3Source:
    """`s3://bucket[/prefix]`: a trail bucket, a trail prefix, any folder inside the layout, or
    a folder of exports outside it.

    The client is passed in (built by `pipeline.source.aws.make_s3_client`) so tests and the
    CLI decide endpoints and credentials. A prefix is a folder: `s3://b/exports` means
    `exports/`.
    """

    def __init__(self, uri: str, client: S3Client) -> None:
        self.bucket, self.prefix = parse_s3_uri(uri)
        self.uri = f"s3://{self.bucket}/{self.prefix}"
        self._client = client
        # Whether a listing of the current walk succeeded: until one has, a failure is the
        # URI's own (nothing can be listed) and ends the run.
        self._listed = False

    # -- listing -------------------------------------------------------------------------------

    def list(self, filters: Filters) -> Iterator[SourceObject]:
        """Every object under the URI that the filters may want, lazily (one page at a time).

        Pruning by folder is coarse on purpose (dates keep their slack); the records are then
        kept by eventTime downstream. Listing order is the bucket's, which does not matter.
        """
        self._listed = False
        segments = self.prefix.split("/")
        if AWSLOGS not in segments:
            yield from self._walk_outside(self.prefix, filters)
            return
        position = _locate(self.prefix)
        if position is None:
            yield from self._walk_flat(self.prefix, filters)
        else:
            yield from self._walk_from(position, filters)

    def _walk_from(self, pos: _Position, filters: Filters) -> Iterator[SourceObject]:
        """Start the walk at the level the given prefix already points to."""
        if pos.account is not None and not _wanted(pos.account, filters.accounts):
            return
        if pos.region is not None and not _wanted(pos.region, filters.regions):
            return
        if pos.region_prefix is not None:
            yield from self._walk_region(pos.region_prefix, pos.date_parts, filters)
        elif pos.service is not None and pos.service not in SERVICE_KINDS:
            yield self._skipped_prefix(pos.prefix, pos.account)
        elif pos.service is not None:
            yield from self._walk_service(pos.prefix, filters)
        elif pos.account is not None:
            yield from self._walk_account(pos.prefix, pos.account, filters)
        elif pos.at_org:
            yield from self._walk_org(pos.prefix, filters)
        else:
            yield from self._walk_awslogs(pos.prefix, filters)

    @_lists_one_prefix
    def _walk_outside(
        self, prefix: str, filters: Filters, level: int = 0
    ) -> Iterator[SourceObject]:
        """A folder outside the layout (the bucket root, a trail prefix, exports), `level`
        folders below the URI: its `AWSLogs/` child is walked by the layout; every other
        subfolder is searched the same way down to TRAIL_PREFIX_LEVELS, and below that listed
        flat, since it has no layout to prune by."""
        seen: set[str] = set()
        for page in self._pages(prefix, delimited=True):
            yield from self._loose_objects(page, filters, seen)
            for child in _child_prefixes(page):
                if _last_segment(child) == AWSLOGS:
                    yield from self._walk_awslogs(child, filters)
                elif level < TRAIL_PREFIX_LEVELS:
                    yield from self._walk_outside(child, filters, level + 1)
                else:
                    yield from self._walk_flat(child, filters)

    @_lists_one_prefix
    def _walk_awslogs(self, prefix: str, filters: Filters) -> Iterator[SourceObject]:
        """`AWSLogs/`: organization folders (`o-...`) and account folders, possibly both when
        a bucket receives an organization trail and account trails."""
        seen: set[str] = set()
        for page in self._pages(prefix, delimited=True):
            yield from self._loose_objects(page, filters, seen)
            for child in _child_prefixes(page):
                name = _last_segment(child)
                if ORG_ID.match(name):
                    yield from self._walk_org(child, filters)
                elif ACCOUNT_ID.match(name):
                    if _wanted(name, filters.accounts):
                        yield from self._walk_account(child, name, filters)
                else:
                    yield self._skipped_prefix(child, None)

    @_lists_one_prefix
    def _walk_org(self, prefix: str, filters: Filters) -> Iterator[SourceObject]:
        """`AWSLogs/o-ORGID/`: one folder per member account."""
        seen: set[str] = set()
        for page in self._pages(prefix, delimited=True):
            yield from self._loose_objects(page, filters, seen)
            for child in _child_prefixes(page):
                name = _last_segment(child)
                if not ACCOUNT_ID.match(name):
                    yield self._skipped_prefix(child, None)
                elif _wanted(name, filters.accounts):
                    yield from self._walk_account(child, name, filters)

    @_lists_one_prefix
    def _walk_account(
        self, prefix: str, account: str | None, filters: Filters
    ) -> Iterator[SourceObject]:
        """`.../ACCOUNT/`: CloudTrail's services are walked; any other service (VPC flow logs,
        load balancer logs...) is reported once as a skipped prefix and never listed, because
        it can hold far more keys than the trail itself."""
        seen: set[str] = set()
        for page in self._pages(prefix, delimited=True):
            yield from self._loose_objects(page, filters, seen)
            for child in _child_prefixes(page):
                if _last_segment(child) in SERVICE_KINDS:
                    yield from self._walk_service(child, filters)
                else:
                    yield self._skipped_prefix(child, account)

    @_lists_one_prefix
    def _walk_service(self, prefix: str, filters: Filters) -> Iterator[SourceObject]:
        """`.../SERVICE/`: one folder per region."""
        seen: set[str] = set()
        for page in self._pages(prefix, delimited=True):
            yield from self._loose_objects(page, filters, seen)
            for child in _child_prefixes(page):
                if _wanted(_last_segment(child), filters.regions):
                    yield from self._walk_region(child, (), filters)

    def _walk_region(
        self, region_prefix: str, date_parts: tuple[str, ...], filters: Filters
    ) -> Iterator[SourceObject]:
        """A region folder (or a year, month or day inside it): one listing per day folder in
        the date range, or the whole folder when no start date bounds it."""
        days = day_range(filters, date_parts)
        if days is None:
            folder = region_prefix + "".join(f"{part}/" for part in date_parts)
            yield from self._walk_flat(folder, filters)
            return
        for day in days:
            yield from self._walk_flat(f"{region_prefix}{day:%Y/%m/%d}/", filters)

    @_lists_one_prefix
    def _walk_flat(self, prefix: str, filters: Filters) -> Iterator[SourceObject]:
        """Every key under `prefix`, classified one by one (no layout left to prune by)."""
        seen: set[str] = set()
        for page in self._pages(prefix, delimited=False):
            yield from self._loose_objects(page, filters, seen)

    def _pages(self, prefix: str, *, delimited: bool) -> Iterator[ListObjectsV2OutputTypeDef]:
        """ListObjectsV2 pages of one prefix. A failure of a prefix below the URI that concerns
        that prefix alone (_PER_PREFIX_CODES) raises _PrefixUnlisted, which the prefix's walk
        turns into one object; any other failure, and any failure before a listing of this walk
        succeeded (the URI's own), is a one-line SourceError that ends the run."""
        paginator = self._client.get_paginator("list_objects_v2")
        if delimited:
            pages = paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/")
        else:
            pages = paginator.paginate(Bucket=self.bucket, Prefix=prefix)
        try:
            for page in pages:
                self._listed = True
                yield page
        except (ClientError, BotoCoreError) as exc:
            if (
                isinstance(exc, ClientError)
                and self._listed
                and prefix != self.prefix
                and _error_code(exc) in _PER_PREFIX_CODES
            ):
                raise _PrefixUnlisted(self._unlisted(prefix, exc)) from exc
            raise translate_client_error(
                exc, bucket=self.bucket, key=prefix, action="listing"
            ) from exc

    def _loose_objects(
        self, page: ListObjectsV2OutputTypeDef, filters: Filters, seen_other: set[str]
    ) -> Iterator[SourceObject]:
        """The keys of a listing page that the filters want. Keys of other services found by a
        flat listing collapse into one skipped prefix each (tracked in `seen_other`), so the
        caller counts the same thing whether or not the layout could be pruned."""
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.endswith("/"):  # a console "folder" marker, not a file
                continue
            info = classify_key(key)
            if not filters.admits(info.account, info.region, info.day):
                continue
            other = _other_prefix(key) if info.in_layout and info.kind == "other" else None
            if other is None:
                yield self._object(item, info)
            elif other not in seen_other:
                seen_other.add(other)
                yield self._skipped_prefix(other, info.account)

    def _object(self, item: ObjectTypeDef, info: KeyInfo) -> SourceObject:
        return SourceObject(
            uri=f"s3://{self.bucket}/{item['Key']}",
            kind=info.kind,
            size=item.get("Size", 0),
            version=item.get("ETag", "").strip('"'),
            account=info.account,
            region=info.region,
            day=info.day,
        )

    def _skipped_prefix(self, prefix: str, account: str | None) -> SourceObject:
        """A folder reported instead of listed: the caller counts it as a skipped prefix."""
        return SourceObject(
            uri=f"s3://{self.bucket}/{prefix}",
            kind="other",
            size=0,
            version=PREFIX_VERSION,
            account=account,
        )

    def _unlisted(self, prefix: str, exc: ClientError) -> SourceObject:
        """A prefix whose objects cannot be listed, as one object that cannot be read
        (quarantined), built as local.py builds a folder that cannot be listed: it may hold
        event files unless the layout says otherwise, and its account, region and day come from
        its key. Its version is the failed request's id (else the time): S3 gives no sign of
        what changed under a prefix it will not list, so every run that still cannot list it
        quarantines it again (and exits 3) rather than taking it for unchanged; once it can be
        listed, its keys are objects of their own, and read."""
        info = classify_key(prefix)
        kind = info.kind if info.kind in ("digest", "insight", "aggregated") else "events"
        code = _error_code(exc)
        why = code
        if code in _AUTHORISATION_CODES:
            why += "; check that the bucket policy and the identity allow s3:ListBucket on it"
        request = exc.response.get("ResponseMetadata", {}).get("RequestId")
        attempt = f"request:{request}" if request else f"at:{datetime.now(UTC).isoformat()}"
        return SourceObject(
            uri=f"s3://{self.bucket}/{prefix}",
            kind=kind,
            size=0,
            version=f"{UNREADABLE_VERSION}:{attempt}",
            account=info.account,
            region=info.region,
            day=info.day,
            unreadable=f"cannot read: a prefix whose objects cannot be listed ({why})",
        )

    # -- reading -------------------------------------------------------------------------------

    def fetch(self, obj: SourceObject, spool_dir: Path, spool_above: int) -> Fetched:
        """GetObject: small objects come back as bytes, larger ones are streamed to a file in
        `spool_dir` (`spooled`: the caller deletes it once read). The ETag seen when listing is
        sent as If-Match, so the content always matches the version the manifest records."""
        bucket, key = _split_object_uri(obj.uri)
        if obj.version == PREFIX_VERSION:
            raise SourceError(
                f"{obj.uri} is a skipped prefix, not an object",
                hint="only fetch objects whose kind is events or digest",
                source=obj.uri,
            )
        for attempt in range(1, READ_ATTEMPTS + 1):
            try:
                return self._get(bucket, key, obj.version, spool_dir, spool_above)
            except _RETRYABLE_READ_ERRORS as exc:
                if attempt == READ_ATTEMPTS:
                    raise translate_client_error(
                        exc, bucket=bucket, key=key, action="reading"
                    ) from exc
            except (ClientError, BotoCoreError) as exc:
                raise translate_client_error(exc, bucket=bucket, key=key, action="reading") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _get(self, bucket: str, key: str, etag: str, spool_dir: Path, spool_above: int) -> Fetched:
        conditions: dict[str, Any] = {"IfMatch": f'"{etag}"'} if etag else {}
        response = self._client.get_object(Bucket=bucket, Key=key, **conditions)
        body = response["Body"]
        metadata = dict(response.get("Metadata", {}))
        try:
            if response.get("ContentLength", 0) > spool_above:
                return Fetched(path=_spool(body, spool_dir, key), metadata=metadata, spooled=True)
            return Fetched(data=body.read(), metadata=metadata)
        finally:
            body.close()


_SPOOL_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _spool(body: Any, spool_dir: Path, key: str) -> Path:
    """Copy a streaming body to a new file in `spool_dir`, chunk by chunk. The file keeps the
    end of the key's base name as a suffix (for people reading the spool), in ASCII: a name of
    100 CJK characters is 300 bytes, past a file system's 255; a failed copy leaves nothing."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    suffix = "-" + _SPOOL_UNSAFE.sub("_", PurePosixPath(key).name)[-100:]
    fd, name = tempfile.mkstemp(prefix="s3-", suffix=suffix, dir=spool_dir)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in body.iter_chunks(CHUNK_BYTES):
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


# The day CloudTrail delivered its first logs (its launch): no day folder is older.
CLOUDTRAIL_LAUNCH = date(2013, 11, 13)


def day_range(filters: Filters, date_parts: tuple[str, ...] = ()) -> list[date] | None:
    """The day folders to list: `since - slack` .. `until + slack` (until defaults to today, UTC),
    within the year/month/day that `date_parts` names. None when there is no start date: then
    the folder is listed whole, since everything in it up to `until` is wanted anyway.

    A start before CloudTrail's launch is none (`--since 0001-01-01`): listing every day back
    to it would be a request for each of hundreds of thousands of empty days. An end after
    today (`--until 9999-12-31`, an open end) is today, as without `--until`: CloudTrail names
    folders by the day it delivers to them, so later ones hold nothing yet."""
    if filters.since is None:
        return None
    first = shifted(filters.since, -filters.slack_days)
    if first < CLOUDTRAIL_LAUNCH:
        return None
    today = today_utc()
    last = shifted(min(filters.until or today, today), filters.slack_days)
    if date_parts:
        low, high = _bounds(date_parts)
        first, last = max(first, low), min(last, high)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def today_utc() -> date:
    return datetime.now(UTC).date()


def _bounds(date_parts: tuple[str, ...]) -> tuple[date, date]:
    """First and last day of the year, month or day that a date folder prefix names."""
    year = int(date_parts[0])
    if len(date_parts) == 1:
        return date(year, 1, 1), date(year, 12, 31)
    month = int(date_parts[1])
    if len(date_parts) == 2:
        return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
    day = date(year, month, int(date_parts[2]))
    return day, day


def _locate(prefix: str) -> _Position | None:
    """The layout level of a prefix containing `AWSLogs/`, or None when a segment below it does
    not have the shape of its level (then the prefix is listed flat)."""
    segments = prefix.rstrip("/").split("/")
    start = len(segments) - 1 - segments[::-1].index(AWSLOGS)
    rest = segments[start + 1 :]
    at_org = bool(rest) and ORG_ID.match(rest[0]) is not None
    if at_org:
        rest = rest[1:]
    if not rest:
        return _Position(prefix, at_org=at_org)
    account, rest = rest[0], rest[1:]
    if not ACCOUNT_ID.match(account):
        return None
    if not rest:
        return _Position(prefix, account=account)
    service, rest = rest[0], rest[1:]
    if not rest or service not in SERVICE_KINDS:
        return _Position(prefix, account=account, service=service)
    region, date_parts = rest[0], tuple(rest[1:])
    if not _valid_date_parts(date_parts):
        return None
    region_prefix = prefix[: len(prefix) - sum(len(part) + 1 for part in date_parts)]
    return _Position(prefix, False, account, service, region, region_prefix, date_parts)


def _valid_date_parts(parts: tuple[str, ...]) -> bool:
    """YYYY[/MM[/DD]] naming a real year, month or day."""
    if len(parts) > 3:
        return False
    shapes = (_YEAR, _MONTH_OR_DAY, _MONTH_OR_DAY)
    if not all(shape.match(part) for shape, part in zip(shapes, parts, strict=False)):
        return False
    try:
        if parts:
            _bounds(parts)
    except ValueError:
        return False
    return True


def _other_prefix(key: str) -> str | None:
    """The folder to report for a key of another service (`.../ACCOUNT/vpcflowlogs/`, or an
    unknown folder under `AWSLogs/`); None for a loose file with no such folder."""
    parts = key.split("/")
    index = len(parts) - 1 - parts[::-1].index(AWSLOGS) + 1
    if index < len(parts) - 1 and ORG_ID.match(parts[index]):
        index += 1
    if index < len(parts) - 1 and ACCOUNT_ID.match(parts[index]):
        index += 1
    if index >= len(parts) - 1:
        return None
    return "/".join(parts[: index + 1]) + "/"


def _error_code(exc: ClientError) -> str:
    """S3's error code, else the bare HTTP status (a response without a body)."""
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code or str(status)


def _wanted(name: str, allowed: tuple[str, ...]) -> bool:
    return not allowed or name in allowed


def _child_prefixes(page: ListObjectsV2OutputTypeDef) -> list[str]:
    return [entry["Prefix"] for entry in page.get("CommonPrefixes", []) if "Prefix" in entry]


def _last_segment(prefix: str) -> str:
    return prefix.rstrip("/").rsplit("/", 1)[-1]


def _split_object_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of `s3://bucket/key`, keeping the key exactly (no folder slash added)."""
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not uri.lower().startswith("s3://") or not bucket or not key:
        raise UsageError(f"not an S3 object URI: {uri}", hint="use s3://bucket/key", source=uri)
    return bucket, key

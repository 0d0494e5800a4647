"""S3Source against moto's standalone server over HTTP: the layout walk, its pruning (checked by
recording every ListObjectsV2 call), downloads, and the one-line errors."""

from __future__ import annotations

import gzip
import hashlib
import socket
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ResponseStreamingError
from botocore.stub import Stubber

from pipeline.errors import SourceError
from pipeline.source import Fetched, Filters, SourceObject
from pipeline.source import s3 as s3_module
from pipeline.source.aws import make_s3_client, translate_client_error
from pipeline.source.open import open_source
from pipeline.source.s3 import CHUNK_BYTES, S3Source, day_range

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ORG = "o-aa11bb22cc"
A = "111122223333"
B = "444455556666"
REGIONS = ("eu-west-1", "us-east-1")
BUCKET = "trail-bucket"
BODY = gzip.compress(b'{"Records": []}', mtime=0)
ETAG = hashlib.md5(BODY).hexdigest()  # single-part uploads: the ETag is the body's MD5
JULY_1 = date(2026, 7, 1)
SIGNATURE = {"signature": "ab12", "signature-algorithm": "SHA256withRSA"}

Listing = tuple[str, str | None]  # (Prefix, Delimiter) of one ListObjectsV2 call


def trail_key(
    account: str,
    region: str,
    day: date,
    n: int = 0,
    *,
    service: str = "CloudTrail",
    org: str | None = ORG,
    prefix: str = "",
) -> str:
    """A key in CloudTrail's layout (organization trail unless org=None)."""
    org_part = f"{org}/" if org else ""
    folder = f"{prefix}AWSLogs/{org_part}{account}/{service}/{region}/{day:%Y/%m/%d}/"
    return f"{folder}{account}_{service}_{region}_{day:%Y%m%d}T0005Z_{n:016d}.json.gz"


def org(path: str = "") -> str:
    return f"AWSLogs/{ORG}/{path}"


def day_folders(folder: str, first: date, last: date) -> list[Listing]:
    """Flat listings of every day folder from first to last, under a region folder."""
    days = (first + timedelta(days=n) for n in range((last - first).days + 1))
    return [(f"{folder}{day:%Y/%m/%d}/", None) for day in days]


def uri(key: str) -> str:
    return f"s3://{BUCKET}/{key}"


def keys_of(objects: list[SourceObject]) -> list[str]:
    return sorted(obj.uri.removeprefix(f"s3://{BUCKET}/") for obj in objects)


def skipped(prefix: str, account: str | None) -> SourceObject:
    return SourceObject(uri(prefix), "other", 0, "prefix", account=account)


@dataclass
class Trail:
    """A bucket on the server, and the client the source uses, whose ListObjectsV2 calls are
    recorded in `listings`."""

    client: S3Client
    listings: list[Listing]

    def source(self, path: str = "") -> S3Source:
        return S3Source(uri(path), self.client)

    def list(self, filters: Filters | None = None, path: str = "") -> list[SourceObject]:
        return list(self.source(path).list(filters or Filters()))


def record_listings(client: S3Client) -> list[Listing]:
    calls: list[Listing] = []

    def before_list(params: dict[str, Any], **_: Any) -> None:
        calls.append((params["Prefix"], params.get("Delimiter")))

    client.meta.events.register("before-parameter-build.s3.ListObjectsV2", before_list)
    return calls


@pytest.fixture
def trail(
    s3_endpoint: str,
    make_bucket: Callable[[str], S3Client],
    put_objects: Callable[..., None],
) -> Callable[..., Trail]:
    """`trail({key: body}, metadata=None)`: a bucket holding those objects."""

    def build(objects: Mapping[str, bytes], metadata: Mapping[str, str] | None = None) -> Trail:
        put_objects(make_bucket(BUCKET), BUCKET, objects, metadata)
        client = make_s3_client(profile=None, endpoint_url=s3_endpoint, max_attempts=2)
        return Trail(client, record_listings(client))

    return build


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An environment where the credential chain finds nothing (and asks no metadata server)."""
    for name in ("config", "credentials"):
        (tmp_path / name).write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in (
        "ACCESS_KEY_ID",
        "SECRET_ACCESS_KEY",
        "SESSION_TOKEN",
        "SECURITY_TOKEN",
        "PROFILE",
    ):
        monkeypatch.delenv(f"AWS_{name}", raising=False)


@pytest.fixture
def offline_client(monkeypatch: pytest.MonkeyPatch) -> S3Client:
    """A client for Stubber tests: dummy credentials, nothing leaves the process."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return make_s3_client(profile=None, endpoint_url=None, max_attempts=0, region="us-east-1")


# -- the layout walk ---------------------------------------------------------------------------


def test_org_trail_across_accounts_regions_and_pages(trail: Callable[..., Trail]) -> None:
    objects = {trail_key(A, "us-east-1", JULY_1, n): BODY for n in range(1005)}
    for account, region in [(A, "eu-west-1"), (B, "us-east-1"), (B, "eu-west-1")]:
        for day in (JULY_1 - timedelta(days=1), JULY_1):
            objects[trail_key(account, region, day)] = BODY
    for account, region in product((A, B), REGIONS):
        objects[trail_key(account, region, JULY_1, service="CloudTrail-Digest")] = BODY
    bucket = trail(objects)

    found = bucket.list()

    assert keys_of(found) == sorted(objects)
    assert Counter(obj.kind for obj in found) == {"events": 1011, "digest": 4}
    sample = trail_key(A, "us-east-1", JULY_1, 7)
    assert [obj for obj in found if obj.uri == uri(sample)] == [
        SourceObject(uri(sample), "events", len(BODY), ETAG, A, "us-east-1", JULY_1)
    ]
    walk: list[Listing] = [("", "/"), ("AWSLogs/", "/"), (org(), "/")]
    for account in (A, B):
        walk.append((org(f"{account}/"), "/"))
        for service in ("CloudTrail", "CloudTrail-Digest"):
            walk.append((org(f"{account}/{service}/"), "/"))
            walk += [(org(f"{account}/{service}/{region}/"), None) for region in REGIONS]
    walk.append((org(f"{A}/CloudTrail/us-east-1/"), None))  # 1,005 keys: a second page
    assert Counter(bucket.listings) == Counter(walk)


def test_account_and_region_filters_prune_both_layouts(trail: Callable[..., Trail]) -> None:
    org_keys = {(a, r): trail_key(a, r, JULY_1) for a, r in product((A, B), REGIONS)}
    account_keys = {a: trail_key(a, "eu-west-1", JULY_1, org=None) for a in (A, B)}
    bucket = trail(dict.fromkeys([*org_keys.values(), *account_keys.values()], BODY))

    assert keys_of(bucket.list()) == sorted([*org_keys.values(), *account_keys.values()])
    bucket.listings.clear()
    found = bucket.list(Filters(accounts=(A,), regions=("eu-west-1",)))

    assert keys_of(found) == sorted([org_keys[A, "eu-west-1"], account_keys[A]])
    assert bucket.listings == [
        ("", "/"),
        ("AWSLogs/", "/"),
        (f"AWSLogs/{A}/", "/"),
        (f"AWSLogs/{A}/CloudTrail/", "/"),
        (f"AWSLogs/{A}/CloudTrail/eu-west-1/", None),
        (org(), "/"),
        (org(f"{A}/"), "/"),
        (org(f"{A}/CloudTrail/"), "/"),
        (org(f"{A}/CloudTrail/eu-west-1/"), None),
    ]


def test_dates_list_only_the_day_folders_in_range(trail: Callable[..., Trail]) -> None:
    first = date(2026, 3, 25)  # daily files up to 2026-07-05
    daily = {trail_key(A, "us-east-1", first + timedelta(days=n)) for n in range(103)}
    old = {
        trail_key(A, "us-east-1", date(2024, 1, 1)),
        trail_key(A, "us-east-1", date(2025, 6, 30)),
    }
    digests = {
        trail_key(A, "us-east-1", day, service="CloudTrail-Digest")
        for day in (date(2026, 1, 1), date(2026, 4, 15))
    }
    elsewhere = {trail_key(B, "us-east-1", date(2026, 4, 15)), trail_key(A, "eu-west-1", JULY_1)}
    bucket = trail(dict.fromkeys(daily | old | digests | elsewhere, BODY))
    quarter = Filters(date(2026, 4, 1), date(2026, 6, 30), accounts=(A,), regions=("us-east-1",))

    found = bucket.list(quarter)

    slack_first, slack_last = date(2026, 3, 31), date(2026, 7, 1)
    in_range = {trail_key(A, "us-east-1", slack_first + timedelta(days=n)) for n in range(93)}
    april_digest = trail_key(A, "us-east-1", date(2026, 4, 15), service="CloudTrail-Digest")
    assert keys_of(found) == sorted(in_range | {april_digest})
    assert Counter(bucket.listings) == Counter(
        [
            ("", "/"),
            ("AWSLogs/", "/"),
            (org(), "/"),
            (org(f"{A}/"), "/"),
            (org(f"{A}/CloudTrail/"), "/"),
            (org(f"{A}/CloudTrail-Digest/"), "/"),
            *day_folders(org(f"{A}/CloudTrail/us-east-1/"), slack_first, slack_last),
            *day_folders(org(f"{A}/CloudTrail-Digest/us-east-1/"), slack_first, slack_last),
        ]
    )
    assert len(bucket.listings) == 192


def test_until_alone_lists_region_folders_whole_and_filters_keys(
    trail: Callable[..., Trail],
) -> None:
    keys = [trail_key(A, "us-east-1", date(2026, 6, day)) for day in (1, 2, 3, 4)]
    bucket = trail(dict.fromkeys(keys, BODY))

    found = bucket.list(Filters(until=date(2026, 6, 2)), path=org(f"{A}/CloudTrail/"))

    assert keys_of(found) == keys[:3]  # June 3 is the day of slack
    assert bucket.listings == [
        (org(f"{A}/CloudTrail/"), "/"),
        (org(f"{A}/CloudTrail/us-east-1/"), None),
    ]


def test_other_services_are_reported_once_and_never_listed(trail: Callable[..., Trail]) -> None:
    kept = {
        "events": trail_key(A, "us-east-1", JULY_1),
        "insight": trail_key(A, "us-east-1", JULY_1, service="CloudTrail-Insight"),
        "aggregated": trail_key(A, "us-east-1", JULY_1, service="CloudTrail-Aggregated"),
    }
    flow_logs = [trail_key(A, "us-east-1", JULY_1, n, service="vpcflowlogs") for n in range(5)]
    elb = [trail_key(A, "eu-west-1", JULY_1, n, service="elasticloadbalancing") for n in range(2)]
    stray = org("not-an-account/readme.txt")
    bucket = trail(dict.fromkeys([*kept.values(), *flow_logs, *elb, stray], BODY))

    found = bucket.list()

    assert sorted(found, key=lambda obj: obj.uri) == [
        SourceObject(
            uri(kept["aggregated"]), "aggregated", len(BODY), ETAG, A, "us-east-1", JULY_1
        ),
        SourceObject(uri(kept["insight"]), "insight", len(BODY), ETAG, A, "us-east-1", JULY_1),
        SourceObject(uri(kept["events"]), "events", len(BODY), ETAG, A, "us-east-1", JULY_1),
        skipped(org(f"{A}/elasticloadbalancing/"), A),
        skipped(org(f"{A}/vpcflowlogs/"), A),
        skipped(org("not-an-account/"), None),
    ]
    listed = [prefix for prefix, _ in bucket.listings]
    assert [p for p in listed if "vpcflowlogs" in p or "elasticloadbalancing" in p] == []
    assert org("not-an-account/") not in listed


INSIDE_KEYS = [
    trail_key(A, "us-east-1", date(2026, 6, 30)),
    trail_key(A, "us-east-1", date(2026, 7, 1)),
    trail_key(A, "us-east-1", date(2026, 7, 2)),
    trail_key(A, "us-east-1", date(2026, 8, 1)),
    trail_key(B, "us-east-1", date(2026, 7, 1)),
]
JULY_FOLDER = org(f"{A}/CloudTrail/us-east-1/2026/07/")


@pytest.mark.parametrize(
    ("path", "filters", "expected_keys", "expected_listings"),
    [
        pytest.param(
            JULY_FOLDER,
            Filters(),
            INSIDE_KEYS[1:3],
            [(JULY_FOLDER, None)],
            id="month_folder_listed_whole",
        ),
        pytest.param(
            JULY_FOLDER.rstrip("/"),
            Filters(since=date(2026, 6, 30), until=date(2026, 7, 1)),
            INSIDE_KEYS[1:3],
            [(f"{JULY_FOLDER}01/", None), (f"{JULY_FOLDER}02/", None)],
            id="month_folder_days_within_range_and_month",
        ),
        pytest.param(
            org(f"{A}/"),
            Filters(regions=("us-east-1",)),
            INSIDE_KEYS[:4],
            [
                (org(f"{A}/"), "/"),
                (org(f"{A}/CloudTrail/"), "/"),
                (org(f"{A}/CloudTrail/us-east-1/"), None),
            ],
            id="account_folder",
        ),
        pytest.param(
            org(),
            Filters(accounts=(B,)),
            INSIDE_KEYS[4:],
            [
                (org(), "/"),
                (org(f"{B}/"), "/"),
                (org(f"{B}/CloudTrail/"), "/"),
                (org(f"{B}/CloudTrail/us-east-1/"), None),
            ],
            id="org_folder",
        ),
        pytest.param(
            org(f"{B}/CloudTrail/"),
            Filters(accounts=(A,)),
            [],
            [],
            id="unwanted_account_lists_nothing",
        ),
    ],
)
def test_prefix_inside_the_layout_starts_the_walk_there(
    trail: Callable[..., Trail],
    path: str,
    filters: Filters,
    expected_keys: list[str],
    expected_listings: list[Listing],
) -> None:
    bucket = trail(dict.fromkeys(INSIDE_KEYS, BODY))

    assert keys_of(bucket.list(filters, path=path)) == expected_keys
    assert bucket.listings == expected_listings


def test_a_folder_outside_the_layout_is_searched_for_awslogs(trail: Callable[..., Trail]) -> None:
    """`exports/` holds loose exports and, two levels down, a copy of an account trail: its
    subfolders are listed with a delimiter, the copy's `AWSLogs/` walked by the layout (so its
    flow logs are reported as a prefix, never listed), loose keys kept as they are."""
    trail_copy = trail_key(A, "us-east-1", JULY_1, org=None, prefix="exports/old/")
    flow_logs = [
        trail_key(A, "us-east-1", JULY_1, n, org=None, service="vpcflowlogs", prefix="exports/old/")
        for n in range(2)
    ]
    objects = {
        "exports/2026/07/a.json": b'{"Records": []}',
        "exports/b.ndjson": b"{}\n",
        "exports/folder/": b"",
        trail_copy: BODY,
        **dict.fromkeys(flow_logs, BODY),
        "unrelated/c.json": b"{}",
    }
    bucket = trail(objects)

    found = bucket.list(path="exports")

    assert sorted(found, key=lambda obj: obj.uri) == [
        SourceObject(
            uri("exports/2026/07/a.json"), "events", 15, hashlib.md5(b'{"Records": []}').hexdigest()
        ),
        SourceObject(uri("exports/b.ndjson"), "events", 3, hashlib.md5(b"{}\n").hexdigest()),
        SourceObject(uri(trail_copy), "events", len(BODY), ETAG, A, "us-east-1", JULY_1),
        skipped(f"exports/old/AWSLogs/{A}/vpcflowlogs/", A),
    ]
    assert bucket.listings == [
        ("exports/", "/"),
        ("exports/2026/", "/"),
        ("exports/2026/07/", "/"),
        ("exports/folder/", "/"),
        ("exports/old/", "/"),
        ("exports/old/AWSLogs/", "/"),
        (f"exports/old/AWSLogs/{A}/", "/"),
        (f"exports/old/AWSLogs/{A}/CloudTrail/", "/"),
        (f"exports/old/AWSLogs/{A}/CloudTrail/us-east-1/", None),
    ]
    bucket.listings.clear()
    assert keys_of(bucket.list(Filters(accounts=(B,)), path="exports/")) == [
        "exports/2026/07/a.json",
        "exports/b.ndjson",
    ]
    assert (f"exports/old/AWSLogs/{A}/", "/") not in bucket.listings


def period_keys(prefix: str) -> dict[str, str]:
    """A trail under `prefix`: account A in two regions on three days, account B on one."""
    keys = {
        f"A-us-{day:%d}": trail_key(A, "us-east-1", day, prefix=prefix)
        for day in (date(2026, 6, 20), JULY_1, date(2026, 7, 2))
    }
    keys["A-eu"] = trail_key(A, "eu-west-1", JULY_1, prefix=prefix)
    keys["B-us"] = trail_key(B, "us-east-1", JULY_1, prefix=prefix)
    return keys


@pytest.mark.parametrize(
    ("prefix", "search"),
    [
        pytest.param("trail/", [("trail/", "/")], id="one_folder"),
        pytest.param("a/b/", [("a/", "/"), ("a/b/", "/")], id="two_folders"),
    ],
)
def test_the_bucket_root_prunes_a_trail_under_its_key_prefix(
    trail: Callable[..., Trail], prefix: str, search: list[Listing]
) -> None:
    """`s3://bucket` with the trail under a key prefix: the root and the prefix's folders are
    listed with a delimiter down to `AWSLogs/`, then the layout walk prunes by account, region
    and day (before, the prefix folder was listed flat: every key of every day)."""
    keys = period_keys(prefix)
    bucket = trail(dict.fromkeys(keys.values(), BODY))
    filters = Filters(JULY_1, JULY_1, accounts=(A,), regions=("us-east-1",))

    found = bucket.list(filters)

    assert found == [
        SourceObject(uri(keys[name]), "events", len(BODY), ETAG, A, "us-east-1", day)
        for name, day in (("A-us-01", JULY_1), ("A-us-02", date(2026, 7, 2)))
    ]
    trail_root = f"{prefix}{org()}"
    assert bucket.listings == [
        ("", "/"),
        *search,
        (f"{prefix}AWSLogs/", "/"),
        (trail_root, "/"),
        (f"{trail_root}{A}/", "/"),
        (f"{trail_root}{A}/CloudTrail/", "/"),
        *day_folders(f"{trail_root}{A}/CloudTrail/us-east-1/", date(2026, 6, 30), date(2026, 7, 2)),
    ]


def test_the_bucket_root_walks_awslogs_and_searches_a_loose_folder(
    trail: Callable[..., Trail],
) -> None:
    """`AWSLogs/` at the root beside a folder of exports and a loose file: the trail is walked
    by the layout, the exports folder searched level by level, every loose key kept."""
    events = trail_key(A, "us-east-1", JULY_1)
    loose = {"top.json": b"{}", "loose/x.json": b"{}\n", "loose/sub/y.json": b"[]"}
    bucket = trail({events: BODY, **loose})

    found = bucket.list()

    assert found == [
        SourceObject(uri("top.json"), "events", 2, hashlib.md5(b"{}").hexdigest()),
        SourceObject(uri(events), "events", len(BODY), ETAG, A, "us-east-1", JULY_1),
        SourceObject(uri("loose/x.json"), "events", 3, hashlib.md5(b"{}\n").hexdigest()),
        SourceObject(uri("loose/sub/y.json"), "events", 2, hashlib.md5(b"[]").hexdigest()),
    ]
    assert bucket.listings == [
        ("", "/"),
        ("AWSLogs/", "/"),
        (org(), "/"),
        (org(f"{A}/"), "/"),
        (org(f"{A}/CloudTrail/"), "/"),
        (org(f"{A}/CloudTrail/us-east-1/"), None),
        ("loose/", "/"),
        ("loose/sub/", "/"),
    ]


def test_folders_below_the_search_depth_are_listed_flat(trail: Callable[..., Trail]) -> None:
    """The search for `AWSLogs/` stops TRAIL_PREFIX_LEVELS (2) folders below the URI: deeper
    folders are listed flat, one request per 1,000 keys instead of one per folder. A trail
    that deep is still found and filtered key by key, its other services one prefix."""
    assert s3_module.TRAIL_PREFIX_LEVELS == 2
    data = {
        f"data/2026/{month:02d}/{day:02d}/part.json": b"{}"
        for month, day in product((6, 7), (1, 2, 3))
    }
    deep = f"x/y/z/{org()}"
    wanted = trail_key(A, "us-east-1", JULY_1, prefix="x/y/z/")
    other_account = trail_key(B, "us-east-1", JULY_1, prefix="x/y/z/")
    flow_logs = [
        trail_key(A, "us-east-1", JULY_1, n, service="vpcflowlogs", prefix="x/y/z/") for n in (1, 2)
    ]
    bucket = trail(dict.fromkeys([*data, wanted, other_account, *flow_logs], BODY))

    found = bucket.list(Filters(accounts=(A,)))

    assert sorted(found, key=lambda obj: obj.uri) == [
        *(SourceObject(uri(key), "events", len(BODY), ETAG) for key in sorted(data)),
        SourceObject(uri(wanted), "events", len(BODY), ETAG, A, "us-east-1", JULY_1),
        skipped(f"{deep}{A}/vpcflowlogs/", A),
    ]
    assert bucket.listings == [
        ("", "/"),
        ("data/", "/"),
        ("data/2026/", "/"),
        ("data/2026/06/", None),
        ("data/2026/07/", None),
        ("x/", "/"),
        ("x/y/", "/"),
        ("x/y/z/", None),
    ]


# -- downloads ---------------------------------------------------------------------------------


def test_fetch_returns_bytes_and_the_digest_signature(
    trail: Callable[..., Trail], tmp_path: Path
) -> None:
    key = trail_key(A, "us-east-1", JULY_1, service="CloudTrail-Digest")
    bucket = trail({key: BODY}, SIGNATURE)
    [digest] = bucket.list()

    fetched = bucket.source().fetch(digest, tmp_path / "spool", spool_above=1 << 20)

    assert digest.kind == "digest"
    assert fetched == Fetched(data=BODY, metadata=SIGNATURE)
    assert not (tmp_path / "spool").exists()


def test_fetch_spools_objects_above_the_threshold(
    trail: Callable[..., Trail], tmp_path: Path
) -> None:
    body = bytes(range(256)) * 12_288  # 3 MiB
    key = trail_key(A, "us-east-1", JULY_1)
    bucket = trail({key: body})
    [obj] = bucket.list()
    source = bucket.source()

    spooled = source.fetch(obj, tmp_path / "spool", spool_above=1 << 20)
    at_threshold = source.fetch(obj, tmp_path / "spool", spool_above=len(body))

    assert spooled.data is None
    assert spooled.path is not None
    assert spooled.path.parent == tmp_path / "spool"
    assert spooled.path.name.endswith("-" + key.rsplit("/", 1)[1])
    assert spooled.path.read_bytes() == body
    assert at_threshold == Fetched(data=body)


def test_a_spooled_object_of_a_long_non_ascii_name_fits_the_file_system(
    trail: Callable[..., Trail], tmp_path: Path
) -> None:
    """A key of 90 CJK characters is 270 bytes: as the spool file's suffix it was past the file
    system's 255, and the run ended. The suffix keeps the name's end in ASCII."""
    body = b"x" * 2048
    name = "\u65e5\u5fd7" * 45 + ".json"
    bucket = trail({f"exports/{name}": body})
    [obj] = bucket.list()
    spooled = bucket.source().fetch(obj, tmp_path / "spool", spool_above=1024)
    assert spooled.path is not None
    assert spooled.path.name.endswith("-" + "_" * 90 + ".json")
    assert spooled.path.read_bytes() == body


def test_fetch_refuses_an_object_changed_since_listing(
    trail: Callable[..., Trail], tmp_path: Path, make_bucket: Callable[[str], S3Client]
) -> None:
    key = trail_key(A, "us-east-1", JULY_1)
    bucket = trail({key: BODY})
    [obj] = bucket.list()
    bucket.client.put_object(Bucket=BUCKET, Key=key, Body=b"rewritten")

    with pytest.raises(SourceError) as caught:
        bucket.source().fetch(obj, tmp_path, spool_above=1 << 20)

    assert caught.value.one_line() == (
        f"object changed while ingesting: {uri(key)} "
        "(it was overwritten after listing; re-run to ingest the new version)"
    )


def test_fetch_of_a_deleted_object_is_one_line(trail: Callable[..., Trail], tmp_path: Path) -> None:
    bucket = trail({})
    gone = SourceObject(uri("gone.json.gz"), "events", 10, ETAG)

    with pytest.raises(SourceError) as caught:
        bucket.source().fetch(gone, tmp_path, spool_above=1 << 20)

    assert caught.value.one_line() == (
        f"object not found: {uri('gone.json.gz')} "
        "(it was deleted or moved after listing; re-run to list the bucket again)"
    )


def test_fetch_refuses_a_skipped_prefix(offline_client: S3Client, tmp_path: Path) -> None:
    prefix = skipped(org(f"{A}/vpcflowlogs/"), A)
    with pytest.raises(SourceError) as caught:
        S3Source(uri(""), offline_client).fetch(prefix, tmp_path, spool_above=0)
    assert caught.value.one_line() == (
        f"{prefix.uri} is a skipped prefix, not an object "
        "(only fetch objects whose kind is events or digest)"
    )


class FakeBody:
    """A streaming body that can break after its first chunk, like a dropped connection."""

    def __init__(self, data: bytes, *, breaks: bool) -> None:
        self.data, self.breaks = data, breaks
        self.chunk_sizes: list[int] = []

    def read(self) -> bytes:
        raise AssertionError("a spooled body must never be read whole")

    def iter_chunks(self, chunk_size: int) -> Iterator[bytes]:
        self.chunk_sizes.append(chunk_size)
        for start in range(0, len(self.data), chunk_size):
            if self.breaks and start > 0:
                raise ResponseStreamingError(error="connection reset")
            yield self.data[start : start + chunk_size]

    def close(self) -> None:
        pass


class FakeClient:
    """get_object only: hands out the given bodies in turn."""

    def __init__(self, bodies: list[FakeBody]) -> None:
        self.bodies, self.calls = bodies, 0

    def get_object(self, **_: Any) -> dict[str, Any]:
        body = self.bodies[self.calls]
        self.calls += 1
        return {"Body": body, "ContentLength": len(body.data), "Metadata": {}}


def test_fetch_streams_in_chunks_and_retries_a_dropped_body(tmp_path: Path) -> None:
    data = b"x" * (2 * CHUNK_BYTES + 5)
    client = FakeClient([FakeBody(data, breaks=True), FakeBody(data, breaks=False)])
    obj = SourceObject(uri("big.json.gz"), "events", len(data), "etag")

    fetched = S3Source(uri(""), cast("S3Client", client)).fetch(obj, tmp_path, spool_above=0)

    assert client.calls == 2
    assert client.bodies[1].chunk_sizes == [CHUNK_BYTES]
    assert fetched.path is not None
    assert fetched.path.read_bytes() == data
    assert [path.name for path in tmp_path.iterdir()] == [fetched.path.name]  # no partial file


def test_fetch_gives_up_after_three_dropped_bodies(tmp_path: Path) -> None:
    data = b"x" * (2 * CHUNK_BYTES)
    client = FakeClient([FakeBody(data, breaks=True) for _ in range(3)])
    obj = SourceObject(uri("big.json.gz"), "events", len(data), "etag")

    with pytest.raises(SourceError) as caught:
        S3Source(uri(""), cast("S3Client", client)).fetch(obj, tmp_path, spool_above=0)

    assert caught.value.one_line() == (
        f"connection dropped while reading {uri('big.json.gz')} "
        "(a transient network fault; re-run to fetch it again)"
    )
    assert list(tmp_path.iterdir()) == []


# -- errors ------------------------------------------------------------------------------------


def test_missing_bucket_through_the_server(s3_endpoint: str) -> None:
    client = make_s3_client(profile=None, endpoint_url=s3_endpoint, max_attempts=0)
    with pytest.raises(SourceError) as caught:
        list(S3Source("s3://no-such-bucket/AWSLogs/", client).list(Filters()))
    assert caught.value.one_line() == (
        "bucket not found: s3://no-such-bucket/ (check the bucket name, and --endpoint-url if you use one)"
    )


def test_access_denied_listing(offline_client: S3Client) -> None:
    with Stubber(offline_client) as stub:
        stub.add_client_error("list_objects_v2", "AccessDenied", "Access Denied", 403)
        with pytest.raises(SourceError) as caught:
            list(S3Source(f"s3://{BUCKET}/AWSLogs", offline_client).list(Filters()))
    assert caught.value.one_line() == (
        f"access denied listing s3://{BUCKET}/AWSLogs/ (check the bucket policy and that the "
        "identity has s3:ListBucket; see docs/iam-policy.json)"
    )


class ScriptedListings:
    """The ListObjectsV2 answers a Stubber gives, in order, each for the exact parameters that
    the walk must send: a page of folders and keys, or an error."""

    def __init__(self, stub: Stubber) -> None:
        self.stub = stub

    @staticmethod
    def params(prefix: str, delimited: bool, token: str | None) -> dict[str, str]:
        params = {"Bucket": BUCKET, "Prefix": prefix}
        if delimited:
            params["Delimiter"] = "/"
        if token:
            params["ContinuationToken"] = token
        return params

    def page(
        self,
        prefix: str,
        folders: tuple[str, ...] = (),
        keys: tuple[str, ...] = (),
        *,
        delimited: bool = True,
        token: str | None = None,
        next_token: str | None = None,
    ) -> None:
        response: dict[str, Any] = {
            "IsTruncated": next_token is not None,
            "KeyCount": len(folders) + len(keys),
            "CommonPrefixes": [{"Prefix": folder} for folder in folders],
            "Contents": [{"Key": key, "Size": len(BODY), "ETag": f'"{ETAG}"'} for key in keys],
        }
        if next_token:
            response["NextContinuationToken"] = next_token
        self.stub.add_response("list_objects_v2", response, self.params(prefix, delimited, token))

    def error(
        self,
        prefix: str,
        code: str = "AccessDenied",
        status: int = 403,
        message: str = "Access Denied",
        *,
        delimited: bool = True,
        token: str | None = None,
        request_id: str | None = "REQ1",
    ) -> None:
        self.stub.add_client_error(
            "list_objects_v2",
            code,
            message,
            status,
            expected_params=self.params(prefix, delimited, token),
            response_meta={"RequestId": request_id} if request_id else None,
        )


DENIED = (
    "cannot read: a prefix whose objects cannot be listed (AccessDenied; check that the bucket "
    "policy and the identity allow s3:ListBucket on it)"
)


def unlisted(
    prefix: str,
    kind: str = "events",
    request: str = "REQ1",
    reason: str = DENIED,
    **layout: Any,
) -> SourceObject:
    return SourceObject(
        uri(prefix),
        cast("Any", kind),
        0,
        f"unreadable:request:{request}",
        unreadable=reason,
        **layout,
    )


def test_a_prefix_below_the_uri_that_cannot_be_listed_is_one_unreadable_object(
    offline_client: S3Client,
) -> None:
    """AccessDenied on an account, a region and a digest folder (a bucket policy denying
    s3:ListBucket on those prefixes): each is one object that cannot be read, named by its
    prefix, with its account, region and kind from the layout; the walk goes on with the other
    prefixes. moto's server does not enforce bucket policies, hence the Stubber."""
    events = trail_key(B, "eu-west-1", JULY_1)
    with Stubber(offline_client) as stub:
        s3 = ScriptedListings(stub)
        s3.page("AWSLogs/", (org(),))
        s3.page(org(), (org(f"{A}/"), org(f"{B}/")))
        s3.error(org(f"{A}/"), request_id="REQ-A")
        s3.page(org(f"{B}/"), (org(f"{B}/CloudTrail/"), org(f"{B}/CloudTrail-Digest/")))
        s3.page(
            org(f"{B}/CloudTrail/"),
            (org(f"{B}/CloudTrail/eu-west-1/"), org(f"{B}/CloudTrail/us-east-1/")),
        )
        s3.page(org(f"{B}/CloudTrail/eu-west-1/"), keys=(events,), delimited=False)
        s3.error(org(f"{B}/CloudTrail/us-east-1/"), delimited=False, request_id="REQ-R")
        s3.error(org(f"{B}/CloudTrail-Digest/"), request_id="REQ-D")

        found = list(S3Source(f"s3://{BUCKET}/AWSLogs", offline_client).list(Filters()))

        stub.assert_no_pending_responses()
    assert found == [
        unlisted(org(f"{A}/"), request="REQ-A", account=A),
        SourceObject(uri(events), "events", len(BODY), ETAG, B, "eu-west-1", JULY_1),
        unlisted(org(f"{B}/CloudTrail/us-east-1/"), request="REQ-R", account=B, region="us-east-1"),
        unlisted(org(f"{B}/CloudTrail-Digest/"), "digest", request="REQ-D", account=B),
    ]


def test_a_day_folder_that_cannot_be_listed_is_one_unreadable_object(
    offline_client: S3Client,
) -> None:
    """With --since the walk lists day folders only, never the URI itself: once one has been
    listed, a denied day (here a bare 403, no error body) is that day's unreadable object."""
    region = org(f"{A}/CloudTrail/us-east-1/")
    events = trail_key(A, "us-east-1", date(2026, 7, 2))
    with Stubber(offline_client) as stub:
        s3 = ScriptedListings(stub)
        s3.page(f"{region}2026/06/30/", delimited=False)
        s3.error(f"{region}2026/07/01/", "", 403, "", delimited=False, request_id="REQ-7")
        s3.page(f"{region}2026/07/02/", keys=(events,), delimited=False)

        found = list(S3Source(uri(region), offline_client).list(Filters(JULY_1, JULY_1)))

        stub.assert_no_pending_responses()
    assert found == [
        unlisted(
            f"{region}2026/07/01/",
            request="REQ-7",
            reason=(
                "cannot read: a prefix whose objects cannot be listed (403; check that the "
                "bucket policy and the identity allow s3:ListBucket on it)"
            ),
            account=A,
            region="us-east-1",
            day=JULY_1,
        ),
        SourceObject(uri(events), "events", len(BODY), ETAG, A, "us-east-1", date(2026, 7, 2)),
    ]


def test_an_unlisted_prefix_without_a_request_id_is_versioned_by_time(
    offline_client: S3Client,
) -> None:
    """The version of an unreadable prefix differs at every run, so the next run quarantines it
    again while it still cannot be listed: the failed request's id, else the time."""
    before = datetime.now(UTC)
    with Stubber(offline_client) as stub:
        s3 = ScriptedListings(stub)
        s3.page("", ("trail/",))
        s3.error("trail/", "NoSuchKey", 404, "The specified key does not exist.", request_id=None)
        [found] = S3Source(uri(""), offline_client).list(Filters())
    after = datetime.now(UTC)
    assert (found.uri, found.kind, found.size, found.unreadable) == (
        uri("trail/"),
        "events",
        0,
        "cannot read: a prefix whose objects cannot be listed (NoSuchKey)",
    )
    assert found.version.startswith("unreadable:at:")
    assert before <= datetime.fromisoformat(found.version.removeprefix("unreadable:at:")) <= after


@pytest.mark.parametrize(
    "pages",
    [
        pytest.param(1, id="first_page"),
        pytest.param(2, id="second_page"),
    ],
)
def test_a_failure_to_list_the_uri_itself_ends_the_run(
    offline_client: S3Client, pages: int
) -> None:
    """The URI's own listing denied, on its first page or (after one page was listed) on a
    later one: the run ends with one line, as before."""
    with Stubber(offline_client) as stub:
        s3 = ScriptedListings(stub)
        token = None
        if pages == 2:
            s3.page("AWSLogs/", keys=("AWSLogs/loose.json",), next_token="t2")
            token = "t2"
        s3.error("AWSLogs/", token=token)
        with pytest.raises(SourceError) as caught:
            list(S3Source(f"s3://{BUCKET}/AWSLogs", offline_client).list(Filters()))
        stub.assert_no_pending_responses()
    assert caught.value.message == f"access denied listing s3://{BUCKET}/AWSLogs/"


def test_a_first_day_folder_that_cannot_be_listed_ends_the_run(offline_client: S3Client) -> None:
    """With --since the first listing is a day folder below the URI: until one listing of the
    walk succeeds, a denial means nothing can be listed (no permission at all), not one day.
    Each walk starts afresh: a walk that listed before does not make the next one lenient."""
    region = org(f"{A}/CloudTrail/us-east-1/")
    source = S3Source(uri(region), offline_client)
    days = Filters(JULY_1, JULY_1, slack_days=0)
    with Stubber(offline_client) as stub:
        s3 = ScriptedListings(stub)
        s3.page(f"{region}2026/07/01/", delimited=False)
        s3.error(f"{region}2026/07/01/", delimited=False)
        assert list(source.list(days)) == []
        with pytest.raises(SourceError) as caught:
            list(source.list(days))
        stub.assert_no_pending_responses()
    assert caught.value.message == f"access denied listing {uri(region)}2026/07/01/"


@pytest.mark.parametrize(
    ("code", "status", "message", "expected"),
    [
        pytest.param(
            "SlowDown",
            503,
            "Please reduce your request rate.",
            f"S3 kept throttling while listing {uri(f'AWSLogs/{A}/')}",
            id="throttled_after_retries",
        ),
        pytest.param(
            "InternalError",
            500,
            "We encountered an internal error.",
            f"S3 error InternalError while listing {uri(f'AWSLogs/{A}/')}: "
            "We encountered an internal error.",
            id="server_error_after_retries",
        ),
        pytest.param(
            "NoSuchBucket",
            404,
            "The specified bucket does not exist",
            f"bucket not found: s3://{BUCKET}/",
            id="bucket_gone",
        ),
        pytest.param(
            "ExpiredToken",
            400,
            "The provided token has expired.",
            f"AWS credentials expired while listing {uri(f'AWSLogs/{A}/')}",
            id="credentials_expired",
        ),
        pytest.param(
            "InvalidAccessKeyId",
            403,
            "The AWS Access Key Id you provided does not exist in our records.",
            f"AWS credentials rejected (InvalidAccessKeyId) while listing {uri(f'AWSLogs/{A}/')}",
            id="credentials_rejected",
        ),
        pytest.param(
            "RequestTimeTooSkewed",
            403,
            "The difference between the request time and the current time is too large.",
            f"this machine's clock is too far from AWS's while listing {uri(f'AWSLogs/{A}/')}",
            id="clock_skew",
        ),
    ],
)
def test_listing_errors_that_would_fail_every_prefix_end_the_run(
    offline_client: S3Client, code: str, status: int, message: str, expected: str
) -> None:
    """On a prefix below the URI, an error that is not about that prefix (credentials, the
    bucket, throttling or an outage that outlived the retries, clock skew) ends the run with
    one line instead of quarantining every prefix that follows."""
    with Stubber(offline_client) as stub:
        s3 = ScriptedListings(stub)
        s3.page("AWSLogs/", (f"AWSLogs/{A}/", f"AWSLogs/{B}/"))
        s3.error(f"AWSLogs/{A}/", code, status, message)
        with pytest.raises(SourceError) as caught:
            list(S3Source(f"s3://{BUCKET}/AWSLogs", offline_client).list(Filters()))
        stub.assert_no_pending_responses()
    assert caught.value.message == expected


class ListingClient:
    """get_paginator only: pages or an exception per (Prefix, Delimiter), for failures that no
    Stubber can give (a connection refused)."""

    def __init__(self, answers: dict[Listing, list[dict[str, Any]] | Exception]) -> None:
        self.answers = answers
        self.calls: list[Listing] = []

    def get_paginator(self, name: str) -> ListingClient:
        assert name == "list_objects_v2"
        return self

    def paginate(self, **params: Any) -> Iterator[dict[str, Any]]:
        listing = (params["Prefix"], params.get("Delimiter"))
        self.calls.append(listing)
        answer = self.answers[listing]
        if isinstance(answer, Exception):
            raise answer
        yield from answer


def test_a_lost_connection_below_the_uri_ends_the_run() -> None:
    client = ListingClient(
        {
            ("AWSLogs/", "/"): [{"CommonPrefixes": [{"Prefix": f"AWSLogs/{A}/"}]}],
            (f"AWSLogs/{A}/", "/"): EndpointConnectionError(endpoint_url="http://10.0.0.1:9000"),
        }
    )
    source = S3Source(f"s3://{BUCKET}/AWSLogs", cast("S3Client", client))
    with pytest.raises(SourceError) as caught:
        list(source.list(Filters()))
    assert caught.value.message == (
        f"cannot connect to http://10.0.0.1:9000 while listing {uri(f'AWSLogs/{A}/')}"
    )
    assert client.calls == [("AWSLogs/", "/"), (f"AWSLogs/{A}/", "/")]


def test_access_denied_reading(offline_client: S3Client, tmp_path: Path) -> None:
    key = trail_key(A, "us-east-1", JULY_1)
    with Stubber(offline_client) as stub:
        stub.add_client_error("get_object", "AccessDenied", "Access Denied", 403)
        with pytest.raises(SourceError) as caught:
            S3Source(uri(""), offline_client).fetch(
                SourceObject(uri(key), "events", 1, ETAG), tmp_path, spool_above=0
            )
    assert caught.value.one_line() == (
        f"access denied reading {uri(key)} (check the bucket policy, that the identity has "
        "s3:GetObject and, for SSE-KMS trails, kms:Decrypt on the trail's key; see "
        "docs/iam-policy.json)"
    )


@pytest.mark.usefixtures("no_credentials")
def test_missing_credentials(s3_endpoint: str) -> None:
    client = make_s3_client(profile=None, endpoint_url=s3_endpoint, max_attempts=0)
    with pytest.raises(SourceError) as caught:
        list(S3Source(f"s3://{BUCKET}", client).list(Filters()))
    assert caught.value.one_line() == (
        "no AWS credentials found (configure the standard chain (AWS_ACCESS_KEY_ID/"
        "AWS_SECRET_ACCESS_KEY, ~/.aws, SSO, an instance or task role) or pass --profile)"
    )


@pytest.mark.usefixtures("no_credentials")
def test_partial_credentials_name_the_missing_variable_not_the_key(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLESECRETID1")
    with pytest.raises(SourceError) as caught:  # botocore resolves the chain with the client
        make_s3_client(profile=None, endpoint_url=s3_endpoint, max_attempts=0)
    assert (
        caught.value.message == "incomplete AWS credentials: env is missing AWS_SECRET_ACCESS_KEY"
    )
    assert "AKIAEXAMPLESECRETID1" not in caught.value.one_line()


@pytest.mark.usefixtures("no_credentials")
def test_unknown_profile() -> None:
    with pytest.raises(SourceError) as caught:
        make_s3_client(profile="nope", endpoint_url=None, max_attempts=0)
    assert caught.value.one_line() == (
        "AWS profile not found: nope (check --profile or AWS_PROFILE against "
        "`aws configure list-profiles`)"
    )


def test_unreachable_endpoint(offline_client: S3Client) -> None:
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_s3_client(profile=None, endpoint_url=f"http://127.0.0.1:{port}", max_attempts=0)
    with pytest.raises(SourceError) as caught:
        list(S3Source(f"s3://{BUCKET}/AWSLogs/", client).list(Filters()))
    assert caught.value.one_line() == (
        f"cannot connect to http://127.0.0.1:{port} while listing s3://{BUCKET}/AWSLogs/ "
        "(check --endpoint-url or --region, the network and any proxy settings)"
    )


def client_error(
    code: str, status: int, message: str = "", operation: str = "GetObject"
) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)


@pytest.mark.parametrize(
    ("error", "key", "expected"),
    [
        pytest.param(
            client_error("404", 404, operation="HeadObject"),
            "k.json.gz",
            "object not found: s3://bkt/k.json.gz (it was deleted or moved after listing; "
            "re-run to list the bucket again)",
            id="head_404",
        ),
        pytest.param(
            client_error("ExpiredToken", 400, "The provided token has expired."),
            "k.json.gz",
            "AWS credentials expired while reading s3://bkt/k.json.gz (refresh them (for SSO: "
            "aws sso login --profile NAME) and re-run)",
            id="expired",
        ),
        pytest.param(
            client_error(
                "InvalidAccessKeyId", 403, "key AKIAEXAMPLESECRETID1 unknown", "ListObjectsV2"
            ),
            "AWSLogs/",
            "AWS credentials rejected (InvalidAccessKeyId) while listing s3://bkt/AWSLogs/ (the "
            "access key or secret is wrong or for another partition or endpoint; configure the "
            "standard chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws, SSO, an instance "
            "or task role) or pass --profile)",
            id="rejected_key_is_not_echoed",
        ),
        pytest.param(
            client_error("SlowDown", 503, "Please reduce your request rate."),
            "k.json.gz",
            "S3 kept throttling while reading s3://bkt/k.json.gz (retries are exhausted; lower "
            "the download threads or raise retry_max_attempts)",
            id="throttled",
        ),
        pytest.param(
            client_error("InternalError", 500, "We encountered an internal error."),
            "k.json.gz",
            "S3 error InternalError while reading s3://bkt/k.json.gz: We encountered an internal "
            "error. (retry later; if it persists, check the bucket and the identity)",
            id="unknown_code_keeps_aws_message",
        ),
        pytest.param(
            EndpointConnectionError(endpoint_url="http://user:pw@10.0.0.1:9000/bkt?list-type=2"),
            None,
            "cannot connect to http://10.0.0.1:9000 while listing s3://bkt/ (check "
            "--endpoint-url or --region, the network and any proxy settings)",
            id="endpoint_userinfo_dropped",
        ),
    ],
)
def test_translate_client_error(error: Exception, key: str | None, expected: str) -> None:
    translated = translate_client_error(error, bucket="bkt", key=key)
    assert translated.one_line() == expected
    assert "AKIAEXAMPLESECRETID1" not in expected


# -- plumbing ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("offline_client")
def test_client_retries_adaptively_and_names_itself() -> None:
    client = make_s3_client(
        profile=None, endpoint_url=None, max_attempts=9, max_pool_connections=20
    )
    config: Any = client.meta.config  # botocore fills retries in; max_attempts counts retries
    assert config.retries == {"mode": "adaptive", "total_max_attempts": 10}
    assert config.max_pool_connections == 20
    assert config.user_agent_extra == "agenttrail/0.1.0"


def test_open_source_with_a_client(offline_client: S3Client) -> None:
    source = open_source("s3://trail-bucket/security/trails", s3_client=offline_client)
    assert isinstance(source, S3Source)
    assert (source.bucket, source.prefix, source.uri) == (
        "trail-bucket",
        "security/trails/",
        "s3://trail-bucket/security/trails/",
    )


@pytest.mark.parametrize(
    ("filters", "parts", "expected"),
    [
        pytest.param(Filters(until=JULY_1), (), None, id="no_start_date"),
        pytest.param(
            Filters(JULY_1, JULY_1), (), [date(2026, 6, 30), JULY_1, date(2026, 7, 2)], id="slack"
        ),
        pytest.param(Filters(JULY_1, JULY_1, slack_days=0), (), [JULY_1], id="no_slack"),
        pytest.param(Filters(JULY_1, JULY_1), ("2026", "06"), [date(2026, 6, 30)], id="in_month"),
        pytest.param(Filters(JULY_1, JULY_1), ("2025",), [], id="other_year"),
        pytest.param(Filters(JULY_1, date(2026, 6, 1)), (), [], id="until_before_since"),
        # Listed whole, as without --since: not a request for each day since the year 1.
        pytest.param(Filters(date.min, JULY_1), (), None, id="since_the_first_day"),
        pytest.param(Filters(date(2013, 11, 13), JULY_1), (), None, id="since_cloudtrail_began"),
        pytest.param(
            Filters(date(2013, 11, 14), date(2013, 11, 14), slack_days=0),
            (),
            [date(2013, 11, 14)],
            id="since_after_cloudtrail_began",
        ),
    ],
)
def test_day_range(filters: Filters, parts: tuple[str, ...], expected: list[date] | None) -> None:
    assert day_range(filters, parts) == expected


def test_day_range_until_the_last_day_runs_to_today(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--until 9999-12-31` is an open end: its slack raised OverflowError, and without it
    each day to the year 9999 would have been a request."""
    monkeypatch.setattr(s3_module, "today_utc", lambda: date(2026, 7, 3))
    assert day_range(Filters(since=date(2026, 7, 2), until=date.max)) == [
        date(2026, 7, 1),
        date(2026, 7, 2),
        date(2026, 7, 3),
        date(2026, 7, 4),
    ]


def test_day_range_since_alone_runs_to_today(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_module, "today_utc", lambda: date(2026, 7, 3))
    assert day_range(Filters(since=date(2026, 7, 2), slack_days=0)) == [
        date(2026, 7, 2),
        date(2026, 7, 3),
    ]

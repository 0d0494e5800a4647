"""LocalSource: a synced copy of a trail bucket or a folder of exports, walked and pruned."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path

import pytest

from pipeline.errors import SourceError, UsageError
from pipeline.source import Fetched, Filters, SourceObject
from pipeline.source.local import LocalSource
from pipeline.source.open import open_source

ORG = "o-aa11bb22cc"
A = "111122223333"
B = "444455556666"


def trail_file(account: str, region: str, day: str, service: str = "CloudTrail") -> str:
    """Relative path of a file in the organization-trail layout; `day` is YYYY/MM/DD."""
    stamp = day.replace("/", "")
    name = f"{account}_{service}_{region}_{stamp}T0005Z_abcdEFGH12345678.json.gz"
    return f"AWSLogs/{ORG}/{account}/{service}/{region}/{day}/{name}"


FILES = {
    trail_file(A, "us-east-1", "2026/06/30"): b"a1",
    trail_file(A, "us-east-1", "2026/07/01"): b"a2",
    trail_file(A, "eu-west-1", "2026/07/02"): b"a3",
    trail_file(B, "us-east-1", "2026/07/03"): b"b1",
    trail_file(A, "us-east-1", "2026/07/01", "CloudTrail-Digest"): b"d1",
    "exports/siem.ndjson": b"{}\n",
    "exports/.DS_Store": b"hidden",
}


def build(root: Path, files: Mapping[str, bytes]) -> Path:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


def relative_uris(root: Path, objects: list[SourceObject]) -> list[str]:
    return [Path(obj.uri).relative_to(root).as_posix() for obj in objects]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return build(tmp_path / "logs", FILES)


def test_walks_every_file_in_folder_order_and_skips_dotfiles(tree: Path) -> None:
    objects = list(LocalSource(tree).list(Filters()))
    assert relative_uris(tree, objects) == [
        trail_file(A, "eu-west-1", "2026/07/02"),
        trail_file(A, "us-east-1", "2026/06/30"),
        trail_file(A, "us-east-1", "2026/07/01"),
        trail_file(A, "us-east-1", "2026/07/01", "CloudTrail-Digest"),
        trail_file(B, "us-east-1", "2026/07/03"),
        "exports/siem.ndjson",
    ]


def test_object_fields_come_from_the_layout_and_the_file(tree: Path) -> None:
    path = tree / trail_file(A, "us-east-1", "2026/07/01", "CloudTrail-Digest")
    objects = list(LocalSource(path).list(Filters()))
    assert objects == [
        SourceObject(
            uri=str(path),
            kind="digest",
            size=2,
            version=f"mtime_ns:{path.stat().st_mtime_ns}",
            account=A,
            region="us-east-1",
            day=date(2026, 7, 1),
        )
    ]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param(
            Filters(accounts=(B,)),
            [trail_file(B, "us-east-1", "2026/07/03"), "exports/siem.ndjson"],
            id="account",
        ),
        pytest.param(
            Filters(regions=("eu-west-1",)),
            [trail_file(A, "eu-west-1", "2026/07/02"), "exports/siem.ndjson"],
            id="region",
        ),
        pytest.param(
            Filters(since=date(2026, 7, 3), until=date(2026, 7, 3), slack_days=0),
            [trail_file(B, "us-east-1", "2026/07/03"), "exports/siem.ndjson"],
            id="dates_without_slack",
        ),
        pytest.param(
            Filters(since=date(2026, 7, 3), until=date(2026, 7, 3)),
            [
                trail_file(A, "eu-west-1", "2026/07/02"),
                trail_file(B, "us-east-1", "2026/07/03"),
                "exports/siem.ndjson",
            ],
            id="dates_with_one_day_of_slack",
        ),
        pytest.param(
            Filters(until=date(2026, 6, 29)),
            [trail_file(A, "us-east-1", "2026/06/30"), "exports/siem.ndjson"],
            id="until_only",
        ),
    ],
)
def test_filters_prune_layout_files_and_keep_exports(
    tree: Path, filters: Filters, expected: list[str]
) -> None:
    assert relative_uris(tree, list(LocalSource(tree).list(filters))) == expected


def test_fetch_reads_in_place(tree: Path, tmp_path: Path) -> None:
    source = LocalSource(tree)
    obj = next(iter(source.list(Filters())))
    assert source.fetch(obj, tmp_path / "spool", spool_above=0) == Fetched(path=Path(obj.uri))


def test_missing_path_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as caught:
        LocalSource(tmp_path / "nope")
    assert caught.value.one_line() == (
        f"source not found: {tmp_path / 'nope'} "
        "(give an s3://bucket[/prefix] URI, a folder or a file)"
    )


def test_open_source_returns_a_local_source_for_paths(tree: Path) -> None:
    source = open_source(str(tree))
    assert isinstance(source, LocalSource)
    assert source.uri == str(tree)


def test_open_source_needs_a_client_for_s3() -> None:
    with pytest.raises(UsageError) as caught:
        open_source("s3://trail-bucket/AWSLogs/")
    assert caught.value.one_line() == (
        "no S3 client to read s3://trail-bucket/AWSLogs/ "
        "(build one with pipeline.source.aws.make_s3_client and pass s3_client=)"
    )

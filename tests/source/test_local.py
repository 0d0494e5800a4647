"""LocalSource: a synced copy of a trail bucket or a folder of exports, walked and pruned."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from ingest_fixtures import deny_listing, without_root_powers

from pipeline.errors import SourceError, UsageError
from pipeline.source import Fetched, Filters, SourceObject
from pipeline.source.local import LocalSource, local_path, path_uri
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
# Files outside the AWSLogs layout: no filter prunes them (their records are filtered).
EXPORTS = ["exports/.DS_Store", "exports/siem.ndjson"]
# The order of a listing: each folder's files by name, then its folders by name.
WALK_ORDER = [
    trail_file(A, "eu-west-1", "2026/07/02"),
    trail_file(A, "us-east-1", "2026/06/30"),
    trail_file(A, "us-east-1", "2026/07/01"),
    trail_file(A, "us-east-1", "2026/07/01", "CloudTrail-Digest"),
    trail_file(B, "us-east-1", "2026/07/03"),
    *EXPORTS,
]


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


def test_walks_every_file_in_folder_order_dotfiles_too(tree: Path) -> None:
    """A source folder is read whole: a file whose name starts with a dot is listed like any
    other (read, and quarantined when it holds no records), never dropped uncounted."""
    objects = list(LocalSource(tree).list(Filters()))
    assert relative_uris(tree, objects) == WALK_ORDER
    hidden = tree / "exports" / ".DS_Store"
    assert objects[5] == SourceObject(
        uri=str(hidden),
        kind="events",
        size=6,
        version=f"mtime_ns:{hidden.stat().st_mtime_ns}",
    )


def test_a_name_that_is_not_utf8_gets_a_file_uri_of_its_bytes(tmp_path: Path) -> None:
    """Undecodable bytes in a file name (a Latin-1 export) cannot go into the manifest's
    strings as they come from the OS: the uri is a file:// URI of the path's bytes,
    percent-encoded, and fetch reads the file it names."""
    root = tmp_path / "logs"
    root.mkdir()
    latin1 = os.fsencode(root) + b"/caf\xe9 100%.json"
    with open(latin1, "wb") as f:
        f.write(b"latin1")
    (root / "100%.json").write_bytes(b"utf8")
    source = LocalSource(root)
    objects = list(source.list(Filters()))
    assert [o.uri for o in objects] == [
        f"{root}/100%.json",
        f"file://{root}/caf%E9%20100%25.json",
    ]
    assert objects[1] == SourceObject(
        uri=f"file://{root}/caf%E9%20100%25.json",
        kind="events",
        size=6,
        version=f"mtime_ns:{os.stat(latin1).st_mtime_ns}",
    )
    fetched = source.fetch(objects[1], tmp_path / "spool", spool_above=0)
    assert fetched == Fetched(path=Path(os.fsdecode(latin1)))
    assert Path(os.fsdecode(latin1)).read_bytes() == b"latin1"
    assert source.fetch(objects[0], tmp_path / "spool", spool_above=0) == Fetched(
        path=root / "100%.json"
    )


@pytest.mark.parametrize(
    "name",
    [b"a.json", b"caf\xe9.json", b"100%.json", b"%E9.json", b"file:x", b"sp ace\xff\xfe.json"],
)
def test_path_uri_and_local_path_are_inverse(name: bytes) -> None:
    path = os.fsdecode(b"/logs/" + name)
    uri = path_uri(path)
    uri.encode("utf-8")  # always a valid string
    assert local_path(uri) == path
    assert uri == path or uri.startswith("file:///logs/")


def test_a_dangling_symlink_is_listed_as_unreadable(tmp_path: Path) -> None:
    """Listing carries on past a symbolic link to nothing: one object that cannot be read
    (ingest quarantines it), with the link's own time in its version, marked, so that the run
    after its target appears reads it."""
    root = tmp_path / "logs"
    root.mkdir()
    (root / "a.json").write_bytes(b"{}")
    link = root / "old.json.gz"
    link.symlink_to(tmp_path / "nowhere.json.gz")
    objects = list(LocalSource(root).list(Filters()))
    assert objects == [
        SourceObject(
            uri=str(root / "a.json"),
            kind="events",
            size=2,
            version=f"mtime_ns:{(root / 'a.json').stat().st_mtime_ns}",
        ),
        SourceObject(
            uri=str(link),
            kind="events",
            size=0,
            version=f"unreadable:mtime_ns:{link.lstat().st_mtime_ns}",
            unreadable=(
                f"cannot read: symbolic link to {tmp_path / 'nowhere.json.gz'}, which cannot be"
                " opened (No such file or directory)"
            ),
        ),
    ]
    (tmp_path / "nowhere.json.gz").write_bytes(b"x")
    (now,) = [o for o in LocalSource(root).list(Filters()) if o.uri == str(link)]
    assert (now.size, now.unreadable) == (1, None)
    assert now.version == f"mtime_ns:{link.stat().st_mtime_ns}"


def _unreadable_folder(path: Path, **layout: Any) -> SourceObject:
    return SourceObject(
        uri=str(path),
        kind=layout.pop("kind", "events"),
        size=0,
        version=f"unreadable:mtime_ns:{path.lstat().st_mtime_ns}",
        unreadable="cannot read: a folder whose files cannot be listed (Permission denied)",
        **layout,
    )


def test_a_folder_that_cannot_be_listed_is_one_unreadable_object(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """os.walk passed over a folder it could not list (permission denied) without a word: its
    files were neither read nor counted. It is listed in its place, as one object that cannot
    be read (ingest quarantines it), its account, region and day from its path."""
    day = tree / trail_file(A, "us-east-1", "2026/07/01")
    digests = tree / trail_file(A, "us-east-1", "2026/07/01", "CloudTrail-Digest")
    deny_listing(monkeypatch, day.parent, digests.parent.parent, tree / "exports")
    objects = list(LocalSource(tree).list(Filters()))
    assert relative_uris(tree, objects) == [
        trail_file(A, "eu-west-1", "2026/07/02"),
        trail_file(A, "us-east-1", "2026/06/30"),
        str(day.parent.relative_to(tree)),
        str(digests.parent.parent.relative_to(tree)),
        trail_file(B, "us-east-1", "2026/07/03"),
        "exports",
    ]
    layout = {"account": A, "region": "us-east-1"}
    assert objects[2] == _unreadable_folder(day.parent, **layout, day=date(2026, 7, 1))
    assert objects[3] == _unreadable_folder(digests.parent.parent, kind="digest", **layout)
    assert objects[5] == _unreadable_folder(tree / "exports")  # outside the layout
    # Once it can be listed, its files are objects of their own.
    monkeypatch.undo()
    assert relative_uris(tree, list(LocalSource(tree).list(Filters()))) == WALK_ORDER


def test_a_source_folder_that_cannot_be_listed_is_one_unreadable_object(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deny_listing(monkeypatch, tree)
    assert list(LocalSource(tree).list(Filters())) == [_unreadable_folder(tree)]


def test_filters_prune_a_folder_that_cannot_be_listed_by_its_path(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = tree / trail_file(A, "us-east-1", "2026/07/01")
    deny_listing(monkeypatch, day.parent)
    filters = Filters(since=date(2026, 7, 3), until=date(2026, 7, 3), slack_days=0)
    assert relative_uris(tree, list(LocalSource(tree).list(filters))) == [
        trail_file(B, "us-east-1", "2026/07/03"),
        *EXPORTS,
    ]
    found = list(LocalSource(tree).list(Filters(accounts=(A,), regions=("us-east-1",))))
    assert str(day.parent) in [o.uri for o in found]


def test_a_folder_removed_while_listing_is_passed_over(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gone since its parent was listed: no files are left in it to read or to report."""
    gone = tree / "exports"
    scandir = os.scandir

    def removed(path: Any = ".") -> Any:
        if os.fspath(path) == str(gone):
            raise FileNotFoundError(2, "No such file or directory", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", removed)
    assert relative_uris(tree, list(LocalSource(tree).list(Filters()))) == WALK_ORDER[:-2]


# Lists a folder in a fresh interpreter and prints each object's uri and why it is unreadable.
_LIST = """
import sys
from pipeline.source import Filters
from pipeline.source.local import LocalSource
for o in LocalSource(sys.argv[1]).list(Filters()):
    print(o.uri, o.version, o.unreadable, sep="|")
"""


def test_a_folder_without_read_permission_is_one_unreadable_object(tree: Path) -> None:
    """A real chmod, listed without root's powers (without_root_powers), beside the
    monkeypatched twin above."""
    folder = tree / "exports"
    folder.chmod(0o000)
    try:
        done = subprocess.run(
            [*without_root_powers(), sys.executable, "-c", _LIST, str(tree)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    finally:
        folder.chmod(0o755)
    last = _unreadable_folder(folder)
    assert done.stdout.splitlines()[-1] == f"{last.uri}|{last.version}|{last.unreadable}"


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
            [trail_file(B, "us-east-1", "2026/07/03"), *EXPORTS],
            id="account",
        ),
        pytest.param(
            Filters(regions=("eu-west-1",)),
            [trail_file(A, "eu-west-1", "2026/07/02"), *EXPORTS],
            id="region",
        ),
        pytest.param(
            Filters(since=date(2026, 7, 3), until=date(2026, 7, 3), slack_days=0),
            [trail_file(B, "us-east-1", "2026/07/03"), *EXPORTS],
            id="dates_without_slack",
        ),
        pytest.param(
            Filters(since=date(2026, 7, 3), until=date(2026, 7, 3)),
            [
                trail_file(A, "eu-west-1", "2026/07/02"),
                trail_file(B, "us-east-1", "2026/07/03"),
                *EXPORTS,
            ],
            id="dates_with_one_day_of_slack",
        ),
        pytest.param(
            Filters(until=date(2026, 6, 29)),
            [trail_file(A, "us-east-1", "2026/06/30"), *EXPORTS],
            id="until_only",
        ),
        # The slack past the calendar's edges raised OverflowError: an internal error.
        pytest.param(Filters(until=date.max), WALK_ORDER, id="until_the_last_day"),
        pytest.param(Filters(since=date.min), WALK_ORDER, id="since_the_first_day"),
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


def test_links_to_folders_are_followed_and_each_folder_listed_once(tmp_path: Path) -> None:
    """logs/2026 -> /mnt/archive/2026 is read; a link back up (a cycle) or a second path to a
    folder already listed is not walked again."""
    archive = build(tmp_path / "archive", {"2026/a.json": b"{}", "2026/b.json": b"{}"})
    logs = build(tmp_path / "logs", {"z.json": b"{}"})
    (logs / "2026").symlink_to(archive / "2026")
    (logs / "again").symlink_to(archive / "2026")
    (archive / "2026" / "up").symlink_to(logs)
    listed = [o.uri for o in LocalSource(logs).list(Filters())]
    assert listed == [str(logs / "z.json"), str(logs / "2026/a.json"), str(logs / "2026/b.json")]

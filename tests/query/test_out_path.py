"""--out: where a result is written (links followed, FIFOs and devices in place, never inside a
warehouse), what is checked before the statement runs, and a failure to write said in one line
naming the user's path."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ingest_fixtures import without_root_powers

from pipeline.errors import QueryError, UsageError
from pipeline.query.formats import check_format, write_result

from .conftest import ROOT, USER_QUERIES, CliRunner

RESULT = pa.table({"n": [1, 2], "s": ["a", None]})
CSV = "n,s\n1,a\n2,\n"


def write(out: Path, fmt: str = "csv") -> int:
    return write_result(RESULT.to_reader(), fmt, stream=io.StringIO(), out=out)


# ---- links, FIFOs and devices ------------------------------------------------------------------


def test_a_symbolic_link_is_followed_and_kept(tmp_path: Path) -> None:
    """The file it names is replaced (atomically, beside it); the link stays a link."""
    target = tmp_path / "data" / "real.csv"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    assert write(link) == 2
    assert link.is_symlink()
    assert os.readlink(link) == str(target)
    assert target.read_text() == CSV
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "link.csv"]
    assert [p.name for p in target.parent.iterdir()] == ["real.csv"]
    # A link to a file not there yet: the file is made, the link kept.
    target.unlink()
    assert write(link, "parquet") == 2
    assert link.is_symlink()
    assert pq.read_table(target).to_pylist() == RESULT.to_pylist()


def test_a_fifo_is_written_in_place(tmp_path: Path) -> None:
    """Not replaced by a regular file: a reader at the other end gets the result."""
    for fmt in ("csv", "parquet"):
        fifo = tmp_path / f"pipe.{fmt}"
        os.mkfifo(fifo)
        received: list[bytes] = []
        reader = threading.Thread(
            target=lambda f=fifo, r=received: r.append(f.read_bytes()), daemon=True
        )
        reader.start()
        assert write(fifo, fmt) == 2
        reader.join(timeout=30)
        assert fifo.is_fifo()
        if fmt == "csv":
            assert received == [CSV.encode()]
        else:
            assert pq.read_table(pa.BufferReader(received[0])).to_pylist() == RESULT.to_pylist()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.csv", "pipe.parquet"]


def full_device(tmp_path: Path) -> Path:
    """A device where every write fails ENOSPC: /dev/full, or as root a node of it made in
    tmp_path, so that a writer that replaced what it was given (as --out once did) could never
    replace the system's own."""
    if os.geteuid() != 0:
        return Path("/dev/full")
    node = tmp_path / "full"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 7))
        with node.open("w") as probe:
            probe.write("x")
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            pytest.skip(f"no device like /dev/full here: {exc}")
    return node


def test_a_full_disk_is_one_line_about_the_disk(tmp_path: Path) -> None:
    """A character device is written in place, and on this one every write fails ENOSPC."""
    device = full_device(tmp_path)
    with pytest.raises(QueryError) as caught:
        write(device)
    assert caught.value.one_line() == (
        f"cannot write --out {device}: its disk is full (make room, or write the result to "
        "another disk)"
    )
    assert caught.value.exit_code == 1
    assert device.is_char_device()


LIMITED = """
import io, resource, signal, sys
from pathlib import Path
import pyarrow as pa
from pipeline.errors import AgenttrailError
from pipeline.query.formats import write_result
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))
table = pa.table({"n": list(range(200_000))})
try:
    write_result(table.to_reader(), sys.argv[2], stream=io.StringIO(), out=Path(sys.argv[1]))
except AgenttrailError as exc:
    print(type(exc).__name__, int(exc.exit_code), exc.one_line())
"""


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_disk_failure_while_writing_names_the_users_path(tmp_path: Path, fmt: str) -> None:
    """A file-size limit (ulimit -f) fails the write of the hidden partial file with EFBIG, as
    a full disk fails it with ENOSPC: the line names --out, and nothing is left behind."""
    out = tmp_path / f"big.{fmt}"
    done = subprocess.run(
        [sys.executable, "-c", LIMITED, str(out), fmt],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=120,
    )
    assert (done.stdout, done.stderr) == (
        f"QueryError 1 cannot write --out {out}: a file-size limit (ulimit -f) was reached "
        "(raise the limit, or write a smaller result)\n",
        "",
    )
    assert list(tmp_path.iterdir()) == []


# ---- checked before the statement runs ---------------------------------------------------------


def test_a_long_name_is_written_when_the_file_system_takes_it(tmp_path: Path) -> None:
    """255 bytes is the most ext4 and most others take: the hidden partial file, longer by its
    dot and suffix, then takes a short name of its own. One byte more is refused up front."""
    longest = tmp_path / ("r" * 251 + ".csv")
    assert write(longest) == 2
    assert longest.read_text() == CSV
    too_long = tmp_path / ("r" * 252 + ".csv")
    with pytest.raises(UsageError) as caught:
        check_format("csv", too_long)
    assert caught.value.one_line() == (
        f"--out {too_long}: the file name is 256 bytes, longer than the 255 the file system "
        "allows (choose a shorter name)"
    )
    assert [p.name for p in tmp_path.iterdir()] == [longest.name]


def test_a_folder_that_cannot_be_written_is_refused_before_the_statement(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    out = folder / "x.csv"
    code = (
        "from pathlib import Path; import sys\n"
        "from pipeline.errors import UsageError\n"
        "from pipeline.query.formats import check_format\n"
        "try:\n    check_format('csv', Path(sys.argv[1]))\n"
        "except UsageError as exc:\n    print(int(exc.exit_code), exc.one_line())\n"
    )
    done = subprocess.run(
        [*without_root_powers(), sys.executable, "-c", code, str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=60,
    )
    assert (done.stdout, done.stderr) == (
        f"2 --out {out}: no permission to write in the folder {folder} (choose a file in a "
        "folder you can write to, or change its permissions)\n",
        "",
    )


# ---- never inside a warehouse ----------------------------------------------------------------


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_out_inside_the_warehouse_is_refused(
    cli: CliRunner, tiny_warehouse: Path, tmp_path: Path
) -> None:
    """`--out wh/agenttrail.duckdb` replaced the database; a Parquet file under events/ was
    read as events. Refused for sql and query run alike, symbolic links followed."""
    database = tiny_warehouse / "agenttrail.duckdb"
    before = digest(database)
    into_folder = tmp_path / "into"
    into_folder.symlink_to(tiny_warehouse)
    pointing_in = tmp_path / "pointing-in.csv"
    pointing_in.symlink_to(database)
    account = next((tiny_warehouse / "events").iterdir())
    cases = [
        (database, "csv", database),
        (account / "fake.parquet", "parquet", account / "fake.parquet"),
        (into_folder / "x.csv", "csv", into_folder / "x.csv"),
        (pointing_in, "json", pointing_in),
    ]
    for out, fmt, shown in cases:
        expected = (
            f"error: --out {shown} is inside the warehouse {tiny_warehouse}: a result written "
            "there could replace its database or be read as its data (write the result outside "
            "the warehouse folder)\n"
        )
        for command in (
            ["sql", "SELECT 1 AS n"],
            ["query", "run", "calls_per_day", "--queries-dir", str(USER_QUERIES)],
        ):
            done = cli(*command, "-w", str(tiny_warehouse), "-f", fmt, "-o", str(out))
            assert (done.returncode, done.stdout, done.stderr) == (2, "", expected), command
    assert digest(database) == before
    assert not (account / "fake.parquet").exists()
    assert pointing_in.is_symlink()
    # Beside the warehouse is fine.
    beside = tiny_warehouse.parent / "beside.csv"
    done = cli("sql", "SELECT 1 AS n", "-w", str(tiny_warehouse), "-f", "csv", "-o", str(beside))
    assert (done.returncode, beside.read_text()) == (0, "n\n1\n")
    beside.unlink()


# ---- /dev/stdout: the descriptor the shell opened -------------------------------------------


def test_out_dev_stdout_appends_with_a_shell_append_and_feeds_a_pipe(
    tiny_warehouse: Path, tmp_path: Path
) -> None:
    """`--out /dev/stdout >> log.txt` replaced log.txt through a partial file (what was there
    lost); `--out /dev/stdout | cat` failed: /proc/self/fd/1 of a pipe names no file."""
    command = f"{sys.executable} -m pipeline sql 'SELECT 1 AS a' -w {tiny_warehouse} -f csv"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def shell(script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env, check=False
        )

    done = shell(f"echo prev > log.txt; {command} --out /dev/stdout >> log.txt")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert (tmp_path / "log.txt").read_text() == "prev\na\n1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.txt"]  # no partial file left
    # Twice more, through /dev/fd/1 and a link of the user's to /dev/stdout: appended each time.
    (tmp_path / "mine").symlink_to("/dev/stdout")
    done = shell(f"{command} --out /dev/fd/1 >> log.txt && {command} --out mine >> log.txt")
    assert (done.returncode, done.stderr) == (0, "")
    assert (tmp_path / "log.txt").read_text() == "prev\na\n1\na\n1\na\n1\n"
    done = shell(f"{command} --out /dev/stdout | cat")
    assert (done.returncode, done.stdout, done.stderr) == (0, "a\n1\n", "")
    done = shell(f"{command} --out /dev/stderr 2>&1 >/dev/null | cat")
    assert (done.returncode, done.stdout, done.stderr) == (0, "a\n1\n", "")
    # Parquet through a pipe: written as a stream, read whole at the other end.
    done = subprocess.run(
        ["sh", "-c", command.replace("-f csv", "-f parquet") + " --out /dev/stdout | cat"],
        capture_output=True,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, b"")
    assert pq.read_table(io.BytesIO(done.stdout)).to_pylist() == [{"a": 1}]


def test_a_device_is_written_in_place(tmp_path: Path) -> None:
    assert write(Path("/dev/null")) == 2
    link = tmp_path / "null"
    link.symlink_to("/dev/null")
    assert write(link) == 2
    assert link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]


# ---- which warehouse: the one read, or another warehouse's own files ----------------------------


def test_a_folder_holding_agenttrail_duckdb_is_not_a_warehouse_for_its_other_folders(
    cli: CliRunner, tiny_warehouse: Path, tmp_path: Path
) -> None:
    """`--out ~/reports/r.csv` was refused because ~ held a file agenttrail.duckdb (or events/
    and manifest/ folders): only the warehouse read, and the files and folders of another
    warehouse (its database, events/, manifest/, ...), are refused."""
    home = tmp_path / "home"
    (home / "reports").mkdir(parents=True)
    (home / "agenttrail.duckdb").touch()
    other = tmp_path / "other"
    for folder in ("events", "manifest", "reports"):
        (other / folder).mkdir(parents=True)
    for out in (home / "reports" / "r.csv", home / "r.csv", other / "reports" / "r.csv"):
        done = cli("sql", "SELECT 1 AS n", "-w", str(tiny_warehouse), "-f", "csv", "-o", str(out))
        assert (done.returncode, done.stderr, out.read_text()) == (0, "", "n\n1\n"), out
    refused = [
        (home / "agenttrail.duckdb", home),
        (other / "events" / "x.parquet", other),
        (other / "manifest" / "m.parquet", other),
        (tiny_warehouse / "report.csv", tiny_warehouse),  # the warehouse read: all of it
    ]
    for out, root in refused:
        done = cli("sql", "SELECT 1 AS n", "-w", str(tiny_warehouse), "-f", "csv", "-o", str(out))
        assert (done.returncode, done.stdout, done.stderr) == (
            2,
            "",
            f"error: --out {out} is inside the warehouse {root}: a result written there could "
            "replace its database or be read as its data (write the result outside the "
            "warehouse folder)\n",
        ), out
    assert (home / "agenttrail.duckdb").read_bytes() == b""
    # The warehouse read, named by the configuration instead of -w, is refused as well.
    done = cli(
        "sql", "SELECT 1 AS n", "-f", "csv", "-o", str(tiny_warehouse / "r.csv"),
        env={"AGENTTRAIL_WAREHOUSE": str(tiny_warehouse)},
    )  # fmt: skip
    assert (done.returncode, done.stderr.startswith("error: --out ")) == (2, True)
    assert not (tiny_warehouse / "r.csv").exists()

"""Settings precedence: defaults < agenttrail.toml < environment < flags."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from pipeline import config
from pipeline.config import load_settings, physical_memory
from pipeline.errors import ConfigError, UsageError


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agenttrail.toml"
    path.write_text(text)
    return path


def test_defaults_without_file_or_environment(tmp_path: Path) -> None:
    settings = load_settings(environ={}, cwd=tmp_path)
    assert settings.warehouse == "warehouse"
    assert settings.attribution.agent_tag_key == "Usage"
    assert settings.attribution.agent_tag_value == "Agent"
    assert settings.config_file is None


def test_precedence_file_then_environment_then_flags(tmp_path: Path) -> None:
    _toml(
        tmp_path,
        'warehouse = "from-file"\n[ingest]\nworkers = 3\nmax_object_mb = 7\n'
        '[attribution]\nagent_role_patterns = ["%-agent"]\n',
    )
    environ = {"AGENTTRAIL_INGEST_WORKERS": "5", "AGENTTRAIL_WAREHOUSE": "from-env"}
    settings = load_settings(
        environ=environ, cwd=tmp_path, overrides={"ingest.max_object_mb": 9, "warehouse": None}
    )
    assert settings.warehouse == "from-env"
    assert settings.ingest.workers == 5  # environment beats the file
    assert settings.ingest.max_object_mb == 9  # a flag beats both
    assert settings.attribution.agent_role_patterns == ("%-agent",)
    assert settings.config_file == str(tmp_path / "agenttrail.toml")


def test_environment_lists_are_comma_separated(tmp_path: Path) -> None:
    settings = load_settings(
        environ={"AGENTTRAIL_ATTRIBUTION_MCP_SOURCE_IDENTITY_PATTERNS": "mcp-%, bot-%"},
        cwd=tmp_path,
    )
    assert settings.attribution.mcp_source_identity_patterns == ("mcp-%", "bot-%")


def test_rules_version_changes_with_the_rules(tmp_path: Path) -> None:
    base = load_settings(environ={}, cwd=tmp_path).attribution.rules_version()
    other = load_settings(
        environ={}, cwd=tmp_path, overrides={"attribution.agent_tag_value": "AI"}
    ).attribution.rules_version()
    assert base != other
    assert len(base) == 12


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[ingest]\nworkerz = 2\n", "unknown setting 'workerz'"),
        ("[ingest]\nworkers = 'two'\n", "expected an integer, got 'two'"),
        ("colour = 'blue'\n", "unknown key 'colour'"),
        ("[ingest\n", "invalid TOML"),
    ],
)
def test_invalid_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    _toml(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(environ={}, cwd=tmp_path)
    assert message in info.value.message


def test_a_missing_config_file_is_an_error_naming_who_named_it(tmp_path: Path) -> None:
    """AGENTTRAIL_CONFIG, set in a scheduler's environment and forgotten, went unnamed."""
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as flag:
        load_settings(config_file=missing, environ={})
    assert flag.value.one_line() == f"--config: configuration file not found: {missing}"
    with pytest.raises(ConfigError) as variable:
        load_settings(environ={"AGENTTRAIL_CONFIG": str(missing)}, cwd=tmp_path)
    assert variable.value.one_line() == (
        f"environment variable AGENTTRAIL_CONFIG: configuration file not found: {missing}"
    )
    assert (flag.value.exit_code, variable.value.exit_code) == (2, 2)


def test_an_unreadable_config_file_is_a_usage_error(tmp_path: Path) -> None:
    """A folder or a file in another encoding is the user's configuration to fix (exit 2), not
    an internal error."""
    with pytest.raises(ConfigError) as folder:
        load_settings(config_file=tmp_path, environ={})
    assert (folder.value.message, folder.value.exit_code) == (
        f"--config: configuration file is a folder: {tmp_path}",
        2,
    )
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('warehouse = "entrep\xf4t"\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as encoding:
        load_settings(config_file=latin1, environ={})
    assert encoding.value.message == f"{latin1}: not UTF-8 text (byte 19): TOML is UTF-8"


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("file", "{toml}: warehouse is empty"),
        ("environment", "environment variable AGENTTRAIL_WAREHOUSE is empty"),
        ("flag", "--warehouse is empty"),
    ],
)
def test_an_empty_warehouse_is_refused_wherever_it_comes_from(
    tmp_path: Path, where: str, message: str
) -> None:
    """An unset shell variable (-w "$WAREHOUSE") must not make the working folder the
    warehouse."""
    toml = _toml(tmp_path, 'warehouse = ""\n' if where == "file" else "")
    environ = {"AGENTTRAIL_WAREHOUSE": ""} if where == "environment" else {}
    overrides = {"warehouse": ""} if where == "flag" else {}
    with pytest.raises(ConfigError) as info:
        load_settings(environ=environ, cwd=tmp_path, overrides=overrides)
    assert info.value.one_line() == (
        message.format(toml=toml)
        + " (name the warehouse folder, e.g. /data/agenttrail, or an s3:// URI to read)"
    )
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("section", "name", "value", "reason"),
    [
        ("ingest", "workers", 0, "must be 1 or more, got 0"),
        ("ingest", "workers", -3, "must be 1 or more, got -3"),
        ("ingest", "workers", 2.9, "expected an integer, got 2.9"),
        ("ingest", "download_threads", 0, "must be 1 or more, got 0"),
        ("ingest", "max_object_mb", -5, "must be 1 or more, got -5"),
        ("ingest", "stream_threshold_mb", 0, "must be above 0, got 0"),
        ("ingest", "commit_rows", 0, "must be 1 or more, got 0"),
        ("ingest", "row_group_rows", 0, "must be 1 or more, got 0"),
        ("ingest", "retry_max_attempts", 0, "must be 1 or more, got 0"),
        ("ingest", "late_delivery_days", -1, "must be 0 or more, got -1"),
        (
            "ingest",
            "duckdb_memory_limit",
            "lots",
            "expected a memory size such as 700MB or 2GB, got 'lots'",
        ),
        ("ingest", "workers", 1025, "must be 1024 or less, got 1025"),
        ("ingest", "download_threads", 513, "must be 512 or less, got 513"),
        ("ingest", "max_object_mb", 5 * 2**20 + 1, "must be 5242880 or less, got 5242881"),
        ("ingest", "stream_threshold_mb", 1e308, "must be 1048576 or less, got 1e+308"),
        ("ingest", "row_group_rows", 2**24 + 1, "must be 16777216 or less, got 16777217"),
        ("ingest", "retry_max_attempts", 101, "must be 100 or less, got 101"),
        ("ingest", "late_delivery_days", 366, "must be 365 or less, got 366"),
        ("ingest", "stream_threshold_mb", float("inf"), "must be a finite number, got inf"),
        ("ingest", "stream_threshold_mb", float("nan"), "must be a finite number, got nan"),
        ("attribution", "chain_max_depth", -1, "must be 1 or more, got -1"),
        ("attribution", "chain_max_depth", 101, "must be 100 or less, got 101"),
        ("attribution", "chain_max_depth", 2**31, "must be 100 or less, got 2147483648"),
        (
            "attribution",
            "duckdb_memory_limit",
            "0GB",
            "expected a memory size such as 700MB or 2GB, got '0GB'",
        ),
        (
            "attribution",
            "duckdb_memory_limit",
            "101%",
            "must be at most 100% of the memory, got '101%'",
        ),
        (
            "attribution",
            "verdicts_duckdb_memory_limit",
            "99999999TB",
            "must be less than 16 EiB (2^64 bytes), got '99999999TB'",
        ),
        ("attribution", "agent_tag_value", False, "expected a string, got False"),
        ("attribution", "agent_tag_key", 5, "expected a string, got 5"),
        ("ingest", "duckdb_memory_limit", 512, "expected a string, got 512"),
        (
            "attribution",
            "verdicts_duckdb_memory_limit",
            "-1GB",
            "expected a memory size such as 700MB or 2GB, got '-1GB'",
        ),
        ("query", "fiscal_year_start_month", 13, "must be a month, 1 to 12, got 13"),
        (
            "query",
            "duckdb_memory_limit",
            "lots",
            "expected a memory size such as 700MB or 2GB, got 'lots'",
        ),
        ("query", "duckdb_memory_limit", "150%", "must be at most 100% of the memory, got '150%'"),
    ],
)
def test_a_bad_value_in_a_file_names_the_file_and_the_setting(
    tmp_path: Path, section: str, name: str, value: object, reason: str
) -> None:
    """Values that passed the checks used to fail later: DuckDB's "Unable to parse valid
    percentage" or "Memory value out of range", an INTEGER overflow in the attribution SQL,
    OverflowError for inf; and TOML's unquoted `false` became the tag value "False"."""
    written = str(value).lower() if isinstance(value, bool) else repr(value).replace("'", '"')
    toml = _toml(tmp_path, f"[{section}]\n{name} = {written}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(environ={}, cwd=tmp_path)
    assert info.value.one_line() == f"{toml}: {section}.{name}: {reason}"
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("AGENTTRAIL_INGEST_WORKERS", "0", "must be 1 or more, got '0'"),
        ("AGENTTRAIL_INGEST_WORKERS", "2.9", "expected an integer, got '2.9'"),
        ("AGENTTRAIL_INGEST_STREAM_THRESHOLD_MB", "inf", "must be a finite number, got 'inf'"),
        # Each was an internal error (OverflowError) once the ingest had started.
        (
            "AGENTTRAIL_INGEST_LATE_DELIVERY_DAYS",
            "99999999999",
            "must be 365 or less, got '99999999999'",
        ),
        (
            "AGENTTRAIL_INGEST_WORKERS",
            "99999999999999999999",
            "must be 1024 or less, got '99999999999999999999'",
        ),
        (
            "AGENTTRAIL_INGEST_ROW_GROUP_ROWS",
            "99999999999999999999",
            "must be 16777216 or less, got '99999999999999999999'",
        ),
        (
            "AGENTTRAIL_INGEST_STREAM_THRESHOLD_MB",
            "1e308",
            "must be 1048576 or less, got '1e308'",
        ),
        (
            "AGENTTRAIL_ATTRIBUTION_CHAIN_MAX_DEPTH",
            "2147483648",
            "must be 100 or less, got '2147483648'",
        ),
        (
            "AGENTTRAIL_QUERY_DUCKDB_MEMORY_LIMIT",
            "150%",
            "must be at most 100% of the memory, got '150%'",
        ),
        (
            "AGENTTRAIL_QUERY_DUCKDB_MEMORY_LIMIT",
            "lots",
            "expected a memory size such as 700MB or 2GB, got 'lots'",
        ),
    ],
)
def test_a_bad_value_in_the_environment_names_the_variable(
    tmp_path: Path, name: str, value: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={name: value}, cwd=tmp_path)
    assert info.value.one_line() == f"environment variable {name}: {reason}"


@pytest.mark.parametrize(
    ("where", "what"),
    [
        ("file", "{toml}: warehouse"),
        ("environment", "environment variable AGENTTRAIL_WAREHOUSE"),
        ("flag", "--warehouse"),
    ],
)
def test_a_warehouse_uri_with_credentials_is_refused_without_them(
    tmp_path: Path, where: str, what: str
) -> None:
    """Every error about the warehouse showed them ("cannot read s3://KEY:SECRET@...")."""
    uri = "s3://AKIAEXAMPLE:hunter2pass@bucket/wh"
    toml = _toml(tmp_path, f'warehouse = "{uri}"\n' if where == "file" else "")
    environ = {"AGENTTRAIL_WAREHOUSE": uri} if where == "environment" else {}
    overrides = {"warehouse": uri} if where == "flag" else {}
    with pytest.raises(UsageError) as info:
        load_settings(environ=environ, cwd=tmp_path, overrides=overrides)
    assert info.value.message == (
        f"{what.format(toml=toml)} s3://bucket/wh has a user name or password before the bucket"
        " (USER:PASSWORD@), which agenttrail never uses (not shown here)"
    )
    assert info.value.exit_code == 2


@pytest.mark.parametrize("value", ["true", "5", "2026-06-30", '["wh"]'])
def test_a_warehouse_that_is_not_text_is_refused(tmp_path: Path, value: str) -> None:
    """`warehouse = true` became the folder ./True."""
    toml = _toml(tmp_path, f"warehouse = {value}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(environ={}, cwd=tmp_path)
    shown = {"true": "True", "5": "5", "2026-06-30": "datetime.date(2026, 6, 30)"}
    assert info.value.one_line() == (
        f"{toml}: warehouse: expected a string, got {shown.get(value, repr(['wh']))}"
    )
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("dotted", "value", "line"),
    [
        ("ingest.workers", 0, "--workers: must be 1 or more, got 0"),
        ("ingest.max_object_mb", -5, "--max-object-mb: must be 1 or more, got -5"),
    ],
)
def test_a_bad_flag_value_names_the_flag(
    tmp_path: Path, dotted: str, value: int, line: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={}, cwd=tmp_path, overrides={dotted: value})
    assert info.value.one_line() == line


def test_relative_paths_in_a_file_are_read_from_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a cron job with --config /etc/agenttrail.toml expects, wherever it starts."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "rel.toml").write_text(
        'warehouse = "wh2"\n[query]\nqueries_dirs = ["./myq", "/abs/q", "~/q"]\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings(config_file="../conf/rel.toml", environ={})
    assert settings.warehouse == str(elsewhere / ".." / "conf" / "wh2")
    assert settings.query.queries_dirs == (str(elsewhere / ".." / "conf" / "myq"), "/abs/q", "~/q")
    # The environment and flags stay relative to the working folder.
    env = load_settings(
        config_file=conf / "rel.toml",
        environ={"AGENTTRAIL_WAREHOUSE": "wh3", "AGENTTRAIL_QUERY_QUERIES_DIRS": "q1"},
    )
    assert (env.warehouse, env.query.queries_dirs) == ("wh3", ("q1",))
    assert env.environment == ("AGENTTRAIL_WAREHOUSE", "AGENTTRAIL_QUERY_QUERIES_DIRS")
    flag = load_settings(config_file=conf / "rel.toml", environ={}, overrides={"warehouse": "w"})
    assert flag.warehouse == "w"
    s3 = _toml(tmp_path, 'warehouse = "s3://bucket/wh"\n')
    assert load_settings(config_file=s3, environ={}).warehouse == "s3://bucket/wh"


def test_agenttrail_config_names_the_file_between_the_flag_and_the_working_folder(
    tmp_path: Path,
) -> None:
    named = tmp_path / "named.toml"
    named.write_text('warehouse = "/data/named"\n')
    flagged = tmp_path / "flagged.toml"
    flagged.write_text('warehouse = "/data/flagged"\n')
    _toml(tmp_path, 'warehouse = "/data/cwd"\n')
    environ = {"AGENTTRAIL_CONFIG": str(named)}
    assert load_settings(environ=environ, cwd=tmp_path).warehouse == "/data/named"
    assert load_settings(config_file=flagged, environ=environ, cwd=tmp_path).warehouse == (
        "/data/flagged"
    )
    assert load_settings(environ={}, cwd=tmp_path).warehouse == "/data/cwd"


@pytest.mark.parametrize(
    "size",
    [
        "700MB",
        "2GB",
        "2 GiB",
        "20000kib",
        "1.5 TB",
        ".5GB",
        "80%",
        "2t",
        "20000000b",
        "20000000 bytes",
        "20000 kilobyte",
        "2 gigabytes",
        "3 terabytes",
        " 40 mb ",
        "2 gibibytes",
        "2 kibibyte",
        "2 mebibytes",
        "2 tebibyte",
        "2 gigs",
        "2 GBs",
        "lots",
        "100%",
        "100.0%",
        "0.5%",
        "100.5%",
        "101%",
        "150%",
        "18446744073709551615b",
        "18446744073709551616b",
        "16777215TiB",
        "16777216TiB",
        "99999999TB",
    ],
)
def test_a_memory_size_is_accepted_exactly_when_duckdb_accepts_it(
    tmp_path: Path, size: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A size the check lets through and DuckDB refuses became an internal error, after an
    ingest had parsed every file. (Sizes of at least MIN_MEMORY: below it, see the next tests;
    shares whatever the machine's memory, which is not known here.)"""
    monkeypatch.setattr(config, "physical_memory", lambda: None)
    con = duckdb.connect()
    try:
        con.execute(f"SET memory_limit = '{size}'")
        duckdb_accepts = True
    except duckdb.Error:
        duckdb_accepts = False
    finally:
        con.close()
    try:
        load_settings(environ={"AGENTTRAIL_QUERY_DUCKDB_MEMORY_LIMIT": size}, cwd=tmp_path)
        we_accept = True
    except ConfigError:
        we_accept = False
    assert we_accept == duckdb_accepts


@pytest.mark.parametrize(
    ("size", "accepted"),
    [
        ("0.5b", False),
        ("1b", False),
        ("1KB", False),
        ("4MB", False),
        ("15999999b", False),
        ("15MiB", False),
        ("16000000b", True),
        ("16MB", True),
        ("16MiB", True),
    ],
)
def test_a_memory_limit_below_16mb_is_refused(tmp_path: Path, size: str, accepted: bool) -> None:
    """DuckDB takes them, then runs out of memory on the smallest statement: `sql` ended in
    "internal error: OutOfMemoryException"."""
    variable = "AGENTTRAIL_QUERY_DUCKDB_MEMORY_LIMIT"
    if accepted:
        assert load_settings(environ={variable: size}, cwd=tmp_path).query.duckdb_memory_limit == (
            size
        )
        return
    with pytest.raises(ConfigError) as info:
        load_settings(environ={variable: size}, cwd=tmp_path)
    assert info.value.one_line() == (
        f"environment variable {variable}: must be 16MB or more, got {size!r}"
    )
    assert info.value.exit_code == 2


# A machine of 16GB: 0.1% of it is 16MB.
SIXTEEN_GB = 16 * 1000**3


@pytest.mark.parametrize(
    ("share", "accepted"),
    [("0.001%", False), ("0.0999%", False), ("0.1%", True), ("0.5%", True), ("80%", True)],
)
def test_a_share_of_memory_below_16mb_is_refused(
    tmp_path: Path, share: str, accepted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB takes a share of the machine's memory that comes to a few KB, then runs out of
    memory once the command has started, as for a size below 16MB."""
    monkeypatch.setattr(config, "physical_memory", lambda: SIXTEEN_GB)
    variable = "AGENTTRAIL_ATTRIBUTION_VERDICTS_DUCKDB_MEMORY_LIMIT"
    if accepted:
        settings = load_settings(environ={variable: share}, cwd=tmp_path)
        assert settings.attribution.verdicts_duckdb_memory_limit == share
        return
    with pytest.raises(ConfigError) as info:
        load_settings(environ={variable: share}, cwd=tmp_path)
    assert info.value.one_line() == (
        f"environment variable {variable}: must come to 16MB or more: 0.1% or more of this "
        f"machine's 16.0GB of memory, or a size such as 700MB, got {share!r}"
    )
    assert info.value.exit_code == 2


def test_a_share_too_small_in_a_file_names_the_file_and_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The share that comes to 16MB is rounded up, so that the one the error asks for passes."""
    memory = 3 * 1000**3 + 1  # 0.5333...% is 16MB
    monkeypatch.setattr(config, "physical_memory", lambda: memory)
    toml = _toml(tmp_path, '[ingest]\nduckdb_memory_limit = "0.5%"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(environ={}, cwd=tmp_path)
    assert info.value.one_line() == (
        f"{toml}: ingest.duckdb_memory_limit: must come to 16MB or more: 0.534% or more of this "
        "machine's 3.0GB of memory, or a size such as 700MB, got '0.5%'"
    )
    _toml(tmp_path, '[ingest]\nduckdb_memory_limit = "0.534%"\n')
    assert load_settings(environ={}, cwd=tmp_path).ingest.duckdb_memory_limit == "0.534%"


def test_a_share_is_taken_where_the_machines_memory_is_not_known(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "physical_memory", lambda: None)
    variable = "AGENTTRAIL_QUERY_DUCKDB_MEMORY_LIMIT"
    settings = load_settings(environ={variable: "0.001%"}, cwd=tmp_path)
    assert settings.query.duckdb_memory_limit == "0.001%"


def test_physical_memory_is_pages_times_page_size(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {"SC_PHYS_PAGES": 4_000_000, "SC_PAGE_SIZE": 4096}
    monkeypatch.setattr(os, "sysconf", lambda name: values[name])
    assert physical_memory() == 4_000_000 * 4096


@pytest.mark.parametrize("pages", [-1, 0])
def test_physical_memory_that_the_system_does_not_tell_is_unknown(
    monkeypatch: pytest.MonkeyPatch, pages: int
) -> None:
    """sysconf returns -1 for a value the system has no answer for."""
    monkeypatch.setattr(os, "sysconf", lambda name: pages if name == "SC_PHYS_PAGES" else 4096)
    assert physical_memory() is None


@pytest.mark.parametrize("error", [ValueError, OSError])
def test_physical_memory_without_the_sysconf_names_is_unknown(
    monkeypatch: pytest.MonkeyPatch, error: type[Exception]
) -> None:
    def sysconf(name: str) -> int:
        raise error(name)

    monkeypatch.setattr(os, "sysconf", sysconf)
    assert physical_memory() is None


def test_physical_memory_without_sysconf_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows has no os.sysconf."""
    monkeypatch.delattr(os, "sysconf")
    assert physical_memory() is None


@pytest.mark.parametrize(
    "name", ["AGENTTRAIL_ATTRIBUTON_DUCKDB_MEMORY_LIMIT", "AGENTTRAIL_WAREHOSE", "AGENTTRAIL_"]
)
def test_an_unknown_agenttrail_variable_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={name: "24MB", "AGENTTRAIL_INGEST_WORKERS": "2"}, cwd=tmp_path)
    assert info.value.one_line() == (
        f"environment variable {name}: unknown setting (agenttrail reads AGENTTRAIL_WAREHOUSE, "
        "AGENTTRAIL_CONFIG and AGENTTRAIL_INGEST_<NAME>, AGENTTRAIL_ATTRIBUTION_<NAME>, "
        "AGENTTRAIL_QUERY_<NAME>)"
    )
    assert info.value.exit_code == 2


def test_the_known_variables_are_read(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("[ingest]\nworkers = 3\n")
    settings = load_settings(
        environ={
            "AGENTTRAIL_CONFIG": str(tmp_path / "c.toml"),
            "AGENTTRAIL_WAREHOUSE": str(tmp_path / "wh"),
            "AGENTTRAIL_QUERY_DUCKDB_MEMORY_LIMIT": "1GB",
        },
        cwd=tmp_path,
    )
    assert (settings.ingest.workers, settings.query.duckdb_memory_limit) == (3, "1GB")
    assert settings.warehouse == str(tmp_path / "wh")

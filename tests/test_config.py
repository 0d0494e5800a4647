"""Settings precedence: defaults < agenttrail.toml < environment < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_settings
from pipeline.errors import ConfigError


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


def test_a_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_settings(config_file=tmp_path / "nope.toml", environ={})

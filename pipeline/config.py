"""Settings: one typed, frozen object resolved once per command.

Precedence: built-in defaults < agenttrail.toml < AGENTTRAIL_<SECTION>_<NAME> environment variables
< command-line flags. Every threshold says who uses it and why, because a security analyst must
be able to tell what a verdict or a skipped file depended on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

CONFIG_FILE_NAME = "agenttrail.toml"


@dataclass(frozen=True)
class IngestSettings:
    # Parse processes. Ingest is CPU-bound (gunzip + JSON), so one per core is the sweet spot.
    workers: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    # Concurrent S3 downloads feeding the parse processes; trail objects are small, so latency,
    # not bandwidth, bounds a listing of thousands of keys.
    download_threads: int = 16
    # Objects larger than this (bytes as stored) are quarantined instead of read; protects a
    # scheduled job from a stray multi-GB export. Real CloudTrail files are a few MB at most.
    max_object_mb: int = 1024
    # Decompressed documents above this size are parsed record by record instead of in one
    # piece, so memory stays flat whatever the file size (the 1 GB process-tree budget).
    stream_threshold_mb: float = 128
    # Rows staged before a commit to events/: bounds the work lost to a kill and DuckDB's
    # de-duplication memory. Commits run in the main process while the parse processes work, so
    # smaller batches leave less to do after the last object is parsed; a commit costs about
    # one read of its staged eventIDs plus a hash lookup (see warehouse/commit.py), not a scan
    # of the warehouse. File sizes do not depend on it: staged files are renamed as written.
    commit_rows: int = 250_000
    # Parquet row-group size of events/: DuckDB parallelises scans per row group; 122,880 is its
    # own default vector-aligned size.
    row_group_rows: int = 122_880
    # DuckDB memory cap during ingest commits; beyond it DuckDB spills to the warehouse's temp
    # folder. Keeps the whole ingest process tree under 1 GB.
    duckdb_memory_limit: str = "256MB"
    # botocore retries (adaptive mode) for throttling and transient S3 errors.
    retry_max_attempts: int = 10
    # Days of slack when pruning the S3 listing by date folders: files are delivered up to a
    # few minutes late, so an event of 23:59 can sit in the next day's folder.
    late_delivery_days: int = 1


@dataclass(frozen=True)
class AttributionSettings:
    # Service principals of AWS-managed MCP servers (rule 1). AWS adds servers over time, so
    # any *-mcp.amazonaws.com also matches; the list documents the known ones (facts doc s.4).
    mcp_service_principals: tuple[str, ...] = (
        "aws-mcp.amazonaws.com",
        "aws-api-mcp.amazonaws.com",
        "eks-mcp.amazonaws.com",
        "ecs-mcp.amazonaws.com",
        "sagemaker-unified-studio-mcp.amazonaws.com",
    )
    # Session tag (and IAM role tag) that marks an agent, per AWS's guidance (rules 2 and 4).
    # The value is compared case-insensitively.
    agent_tag_key: str = "Usage"
    agent_tag_value: str = "Agent"
    # Session tag whose value names a self-managed MCP server (rule 2, the "MCP mark").
    mcp_server_tag_key: str = "MCPServer"
    # SQL LIKE patterns on sourceIdentity that mark agent sessions (rule 2); the *_mcp ones
    # also count as an MCP mark. Empty by default: conventions differ per organisation.
    agent_source_identity_patterns: tuple[str, ...] = ()
    mcp_source_identity_patterns: tuple[str, ...] = ()
    # SQL LIKE patterns on role names that are agent roles even without the tag (rule 4).
    agent_role_patterns: tuple[str, ...] = ()
    # SQL LIKE patterns on the resource of a signin CreateOAuth2Token that make it an MCP
    # OAuth grant (rule 1): the managed MCP endpoints, e.g. https://aws-mcp.us-east-1.api.aws/mcp.
    mcp_oauth_resource_patterns: tuple[str, ...] = (
        "https://%-mcp.%.api.aws%",
        "https://%-mcp.%.amazonaws.com%",
    )
    # SQL LIKE patterns on OIDC providers whose web-identity sessions are workloads (rule 6):
    # CI pipelines and Kubernetes service accounts. Records name the provider either by host
    # or by its IAM ARN (arn:aws:iam::ACCOUNT:oidc-provider/HOST), hence the leading %.
    workload_web_identity_providers: tuple[str, ...] = (
        "%token.actions.githubusercontent.com",
        "%gitlab.com",
        "%app.terraform.io",
        "%oidc.circleci.com/%",
        "%agent.buildkite.com",
        "%oidc.eks.%.amazonaws.com/id/%",
    )
    # SQL LIKE patterns on role or user names that are workloads (rule 6).
    workload_role_patterns: tuple[str, ...] = ()
    workload_user_patterns: tuple[str, ...] = ()
    # How many AssumeRole hops a chain walk follows; AWS caps role chaining sessions at 1 hour
    # but not their count, and a cycle in bad data must not loop. A longer chain is marked
    # chain_truncated (sessions), and the verdicts that read it drop to medium confidence.
    chain_max_depth: int = 10

    # DuckDB memory cap while classifying (ingest and import end with it); beyond it DuckDB
    # spills to the warehouse's temp folder. Measured at 10M events (1M STS sessions): 700MB
    # classifies them in 39 s at a 1.25 GB peak RSS, 1.5GB in 29 s at 2.05 GB, 450MB runs out of
    # memory in the session build; at 1M events 700MB costs no time (2.6 s, 725 MB).
    # Not a rule: it does not enter rules_version.
    duckdb_memory_limit: str = "700MB"
    # DuckDB memory cap for the last step of a rebuild, where the verdicts are sorted into file
    # order (the sort spills) and handed to pyarrow, whose writers and footer merges need
    # memory of their own at the same time. Measured at 10M events: the peak RSS of
    # `agenttrail attribute` fell from 1,085 MB (700MB for this step too) to 940 MB, at the
    # same time. Not a rule either.
    verdicts_duckdb_memory_limit: str = "400MB"

    def rules_version(self) -> str:
        """Short hash of the rule configuration, stamped on every verdict."""
        rules = dataclasses.asdict(self)
        rules.pop("duckdb_memory_limit")
        rules.pop("verdicts_duckdb_memory_limit")
        payload = json.dumps(rules, sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:12]


@dataclass(frozen=True)
class QuerySettings:
    # Extra folders of user .sql queries; a user query named like a built-in one wins.
    queries_dirs: tuple[str, ...] = ()
    # First month of the fiscal year for --quarter (1 = calendar quarters).
    fiscal_year_start_month: int = 1
    # DuckDB memory cap for queries (analyst laptops and the 2-core CI box).
    duckdb_memory_limit: str = "4GB"


@dataclass(frozen=True)
class Settings:
    warehouse: str = "warehouse"
    ingest: IngestSettings = field(default_factory=IngestSettings)
    attribution: AttributionSettings = field(default_factory=AttributionSettings)
    query: QuerySettings = field(default_factory=QuerySettings)
    config_file: str | None = None


_SECTIONS = {"ingest": IngestSettings, "attribution": AttributionSettings, "query": QuerySettings}


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Convert a TOML or environment value to the field's declared type."""
    origin = typing.get_origin(annotation)
    if annotation is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if annotation is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if annotation is str:
        if not isinstance(value, str | int):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
        return tuple(value)
    if origin in (types.UnionType, typing.Union):
        return None if value in (None, "") else str(value)
    raise ConfigError(f"{where}: unsupported setting type {annotation!r}")


def _section_overrides(cls: type, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(f"{where}: unknown setting {key!r}", hint=f"known: {known}")
        out[key] = _coerce(value, hints[key], f"{where}.{key}")
    return out


def load_settings(
    *,
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Resolve Settings: defaults < agenttrail.toml < environment < overrides (CLI flags).

    `overrides` uses dotted names ("warehouse", "ingest.workers"); None values are ignored so the
    CLI can pass every flag through unconditionally.
    """
    environ = os.environ if environ is None else environ
    layers: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    top: dict[str, Any] = {}

    path = Path(config_file) if config_file else None
    if path is None and environ.get("AGENTTRAIL_CONFIG"):
        path = Path(environ["AGENTTRAIL_CONFIG"])
    if path is None:
        candidate = (cwd or Path.cwd()) / CONFIG_FILE_NAME
        path = candidate if candidate.exists() else None
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"configuration file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        for key, value in data.items():
            if key in _SECTIONS:
                if not isinstance(value, dict):
                    raise ConfigError(f"{path}: [{key}] must be a table")
                layers[key].update(_section_overrides(_SECTIONS[key], value, f"{path}: {key}"))
            elif key == "warehouse":
                top["warehouse"] = _coerce(value, str, f"{path}: warehouse")
            else:
                raise ConfigError(
                    f"{path}: unknown key {key!r}",
                    hint="top level takes 'warehouse' and the tables [ingest], [attribution], [query]",
                )
        top["config_file"] = str(path)

    if environ.get("AGENTTRAIL_WAREHOUSE"):
        top["warehouse"] = environ["AGENTTRAIL_WAREHOUSE"]
    for section, cls in _SECTIONS.items():
        prefix = f"AGENTTRAIL_{section.upper()}_"
        env_values = {
            k[len(prefix) :].lower(): v for k, v in environ.items() if k.startswith(prefix)
        }
        layers[section].update(_section_overrides(cls, env_values, f"environment {prefix}*"))

    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        if "." in dotted:
            section, name = dotted.split(".", 1)
            layers[section].update(
                _section_overrides(_SECTIONS[section], {name: value}, f"flag {dotted}")
            )
        else:
            top[dotted] = value

    return Settings(
        ingest=IngestSettings(**layers["ingest"]),
        attribution=AttributionSettings(**layers["attribution"]),
        query=QuerySettings(**layers["query"]),
        **top,
    )

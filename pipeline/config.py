"""Settings: one typed, frozen object resolved once per command.

Precedence: built-in defaults < agenttrail.toml < AGENTTRAIL_<SECTION>_<NAME> environment variables
< command-line flags. Every threshold says who uses it and why, because a security analyst must
be able to tell what a verdict or a skipped file depended on.

Every value is checked where it is read (a count must be positive, a memory limit a size DuckDB
understands), and a bad one is a usage error naming the setting and where it came from: the
file, the environment variable or the flag. Relative paths in a configuration file (`warehouse`,
`[query] queries_dirs`) are read from the file's folder, so a scheduled `--config
/etc/agenttrail.toml` means the same wherever the job starts; environment variables and flags
are relative to the working directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

from pipeline.endpoints import check_s3_uri
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
    # SQL LIKE patterns on role names that are agent roles even without the tag (rule 7).
    agent_role_patterns: tuple[str, ...] = ()
    # SQL LIKE patterns on the resource of a signin CreateOAuth2Token that make it an MCP
    # OAuth grant (rule 1): the managed MCP endpoints, e.g. https://aws-mcp.us-east-1.api.aws/mcp.
    mcp_oauth_resource_patterns: tuple[str, ...] = (
        "https://%-mcp.%.api.aws%",
        "https://%-mcp.%.amazonaws.com%",
    )
    # SQL LIKE patterns on OIDC providers whose web-identity sessions are workloads (rule 11):
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
    # SQL LIKE patterns on role or user names that are workloads (rule 11).
    workload_role_patterns: tuple[str, ...] = ()
    workload_user_patterns: tuple[str, ...] = ()
    # How many AssumeRole hops a chain walk follows; AWS caps role chaining sessions at 1 hour
    # but not their count, and a cycle in bad data must not loop. A longer chain is marked
    # chain_truncated (sessions), and the verdicts that read it drop to medium confidence.
    # At most CHAIN_MAX_DEPTH_LIMIT (below).
    chain_max_depth: int = 10

    # DuckDB memory cap while classifying (ingest and import end with it), except the per-event
    # pass below. Beyond it DuckDB spills to the warehouse's temp folder, but the session build
    # (list and map aggregates, the chain walk) only partly spills: its need grows with the
    # number of STS sessions. Users: whoever ingests; the out-of-memory error names this
    # setting. Measured on 2026-11-29 at 10M events with 1M STS sessions (the rebuild alone, in
    # alternating runs): 600MB 24.9-27.8 s at a process peak of 844-858 MB, 700MB 24.9-28.5 s
    # at 881-903 MB (one run in 20 peaked at 1,000 MB: too close to ingest's 1 GB bound for the
    # whole process tree); 550MB 28-31 s; at 500MB the tables fit but the per-event pass then
    # ran out of memory at its own 500MB (at 400MB it spills: 50 s). Before `sessions` was built
    # from smaller tables, 550MB ran out of memory in it. At 1M events the limit costs no time.
    # Not a rule: it does not enter rules_version.
    duckdb_memory_limit: str = "600MB"
    # DuckDB memory cap for the last step of a rebuild, where the verdicts are computed per
    # event (the joins' hash tables, sized by the sessions) and handed to pyarrow, whose
    # writers and footer merges need memory of their own at the same time. Users: as above.
    # Measured at 10M events (rebuild alone, tables at 700MB, 2026-11-29): 525MB 25 s, 500MB
    # 24 s at a ~890 MB peak (700MB for this step too had peaked at 1,085 MB), 475MB 35 s and
    # 450MB 33 s (the joins spill), 400MB 39 s, 300MB 56 s. Not a rule either.
    verdicts_duckdb_memory_limit: str = "500MB"

    def rules_version(self) -> str:
        """Short hash of the rule configuration and of RULES_REVISION, stamped on every
        verdict."""
        rules: dict[str, Any] = dataclasses.asdict(self)
        for name in NOT_RULES:
            rules.pop(name)
        rules["rules_revision"] = RULES_REVISION
        payload = json.dumps(rules, sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:12]


# The [attribution] settings that change how a rebuild runs, not what it concludes: they stay
# out of rules_version, and a re-run need not keep them (freshness.attribute_command).
NOT_RULES = ("duckdb_memory_limit", "verdicts_duckdb_memory_limit")
# The revision of the rules' SQL (queries/attribute/*.sql): raise it with every change there
# that changes a verdict under the same settings, so that rules_version changes and a warehouse
# classified by the earlier rules reads as stale (freshness.py) and is re-classified by the
# next ingest or import. 2: the caller of a chain's root counts as an ancestor; calls a service
# made for an agent, workload or person (invokedBy) have the service path; the person behind
# SAML-rooted chains and federated users; agent source identities are no person. 3: a chain
# whose root an EC2 instance's role session assumed (its own issuing event not in the logs) is
# a workload's (workload.service_issued). 4: a snapshot of an account that does not list a
# role makes it no agent role before a later snapshot lists it, too; a snapshot taken in the
# second of a tag event holds before the event where it contradicts it (not after), and says
# nothing where it agrees; a later listing applies from the role's CreateDate, and an absence
# it contradicts, or one of a snapshot that lists no role at all, says nothing; a person's
# console session on a role names that person (human_id: its session name). 5: a configured
# workload pattern reaches the sessions below it: a chain that passes through a session of a
# workload role, or whose root an IAM user of a workload pattern opened, is the workload's
# (workload.configured, whose evidence now names the pattern and what matched it). 6 (the
# rest of the same session's review fixes; a warehouse classified in between reads as stale):
# not a console request on a workload pattern (a person's), nor the federated users of a
# GetFederationToken broker; a TagRole or UntagRole that spells a role in another letter case
# tags that role; a role re-created between two snapshots is the later listing's from its
# CreateDate (of unknown tags until its first event, where events follow); "AWS Internal" is
# no console request, and as invokedBy a service's call (the service path); the root user's
# MCP grant names "root" as its owner; a downstream requestID two tool calls list links to the
# earlier; a session the managed MCP server obtained (its issuing STS call is one of rule 1's,
# not a console request) is an agent mark of its chain, so its credentials used from a shell
# are the agent's bypass (agent_chain.direct). 7: a TagRole or UntagRole in another letter
# case tags the role of that name at its time (the spelling of the listing or CreateRole
# nearest before it), not one spelling chosen for all time. 8: an MCP server tag on a session
# above an agent session in its chain is its MCP mark (agent_session.mcp, not the bypass);
# workload.web_identity and workload.configured on a truncated chain are at most medium and say
# so; a grant an agent obtained names no person (human_id); evidence names a source identity
# only where it matched a pattern, and a supporting example for agent_session.direct_by_name.
# 9: session_root is the session a chain's root was opened with where that session's issuing
# event is not in the logs (one chain, one session_root); a session an awslabs MCP server
# obtained (its issuing call's user agent names one) is an agent mark for its chain, as one
# the managed server obtained, with medium confidence; a CLI, SDK or IaC call in an MCP grant's
# sign-in session is not the grant's (mcp_managed.oauth_session); a session above that opened
# the next one by a console request is no agent mark for the chain below, and the signed-in
# user a console role session is named after is the person of the chain it opens.
# 10: a role is an agent role for a session's calls (and for the chain it opens) where it was
# one when the session was created, not only at the call: an agent that untags its own role
# keeps the session's calls; a session's role is named as the issued session's ARN spells it
# (assumedRoleUser.arn), not as the caller typed roleArn.
# 11: the session that opened a chain's root, its own issuing event not in the logs, was of an
# agent role where its role was one when that session was created (the creationDate of the
# root's issuing call), as its own calls are read: an agent that untags its role and then
# opens another session keeps that session's calls; a call whose record shows no creationDate
# reads its session's creation from the issuing event its key joins (as the chain below it
# does), and a creationDate after the call is not read. 12: a DeleteRole in the logs ends the
# role's agent tag (no agent role from its time until a CreateRole or a later listing of the
# re-created role says otherwise; of events in one second, any but the DeleteRole holds, unless
# the DeleteRole came last: no CreateRole in that second, or the role did not exist before it;
# a listing after a DeleteRole of the role it deleted is stale); the role of an AssumedRole
# record without sessionIssuer is the role of the session its key joins, else the one its
# userIdentity.arn names (an AWSReservedSSO_ one is an Identity Center role, whose session is
# named after the person), for the calls and for the caller that opened a chain's root; the
# sessionIssuer of a FederatedUser (the IAM user that called GetFederationToken) is no role of
# its calls, for the role patterns either; a console sign-in that shows its creationDate has
# the session_root of the console session it opened. 13: events_classified carries each role
# session's role as the rules read it (role_account_id, role_name), which the events files
# classified by an earlier revision do not hold. 14: user agents in the square brackets S3
# writes around them are read inside them (`[Boto3/...]` is an SDK, `[S3Console/0.4]` the
# console), which turns such calls of a person in the S3 console into console calls. 15: an
# empty downstream requestId or grant signInSessionArn links nothing (it linked every event
# with an empty requestID, or an empty signInSessionArn, to the tool call or the grant). 16: an
# empty string in a raw field names nothing, as an absent one: an empty MCPServer tag value no
# MCP server (it made the session an MCP server's agent ''), an empty ec2RoleDelivery no EC2
# instance (a workload), an empty onBehalfOf userId no Identity Center user, an empty
# sourceIdentity, userName or userIdentity.arn no person (human_id ''), and an empty
# sessionIssuer, identity provider or params.name hides no role, web identity or tool named
# after it. 17: sts:AssumeRoot issues sessions (a short-term root session in a member account
# is chained from its caller: an agent's is the agent's, a person's names the person, not "root").
# 18: a short-term root session whose AssumeRoot is not in the logs, known by
# sessionContext.assumedRoot (the events column assumed_root), is unknown, not the root user.
# 19: the user name HIDDEN_DUE_TO_SECURITY_REASONS (a failed console sign-in for a user name
# the account does not have) names no person (human_id). 20: a JSON-RPC method of the MCP
# protocol itself (tools/call, session/destroy, initialize, ...) names no tool (mcp_tool). 21:
# an empty errorCode is no failure (an STS call with one issues its session). 22: a key that
# more than one STS call issued (masked, or a reused example) is no session; its calls join none.
# 23: the evidence of a managed-MCP record that names no tool gives its method (evidence_detail
# holds `tool=NAME` or `method=...`, which the view no longer prefixes with `tool=`). 24: the
# two copies of a cross-account STS call where neither or only one shows a sharedEventID
# (before eventVersion 1.03, or an export that dropped it) are one session again, not a key two
# calls issued: two calls are two events in one account, two sharedEventIDs, or two different
# sessions or expiries.
RULES_REVISION = 24


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
    # The AGENTTRAIL_* variables that set a value. Users: messages that tell the user to run
    # another command, which must run under the same settings (freshness.attribute_command).
    environment: tuple[str, ...] = ()


_SECTIONS = {"ingest": IngestSettings, "attribution": AttributionSettings, "query": QuerySettings}


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Convert a TOML or environment value to the field's declared type."""
    origin = typing.get_origin(annotation)
    if annotation is int:
        # A float is refused rather than truncated: workers = 2.9 must not quietly mean 2.
        if isinstance(value, bool | float):
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
        # Only text: TOML's `agent_tag_value = false` or `warehouse = 5` is a slip (unquoted),
        # which str() would turn into "False" or "5" and the rules would match no tag.
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
        return tuple(value)
    if origin in (types.UnionType, typing.Union):
        return None if value in (None, "") else str(value)
    raise ConfigError(f"{where}: unsupported setting type {annotation!r}")


Check = Callable[[Any], str | None]  # the reason a value is refused, or None


def _at_least(low: int) -> Check:
    return lambda value: None if value >= low else f"must be {low} or more"


def _between(low: int, high: int) -> Check:
    def check(value: Any) -> str | None:
        if value < low:
            return f"must be {low} or more"
        return None if value <= high else f"must be {high} or less"

    return check


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be above 0"


def _positive_finite_at_most(high: float) -> Check:
    """A float threshold: `inf` (and `nan`) pass `> 0` but no size in bytes can hold them."""

    def check(value: Any) -> str | None:
        if not math.isfinite(value):
            return "must be a finite number"
        return _positive(value) or (None if value <= high else f"must be {high:.15g} or less")

    return check


def _month(value: Any) -> str | None:
    return None if 1 <= value <= 12 else "must be a month, 1 to 12"


# What DuckDB's memory_limit takes: a positive size with a unit, or a share of the machine's
# memory ("80%"). Checked here, where the setting is named, not when DuckDB first meets it;
# DuckDB 2.0 knows "gigabytes" and "GiB" but not "gibibytes" (a test holds the two together).
_MEMORY = re.compile(
    r"\s*(?P<number>\d+(?:\.\d+)?|\.\d+)\s*"
    r"(?P<unit>%|[kmgt]i?b|[kmgt]|b|bytes?|(?:kilo|mega|giga|tera)bytes?)\s*",
    re.IGNORECASE,
)
# DuckDB holds a memory limit in 64 bits: a larger size is its parser error, and a share of
# memory above 100% its "Unable to parse valid percentage", both met only once a command has
# started (an ingest after parsing every file).
_MAX_MEMORY_BYTES = (1 << 64) - 1
# The smallest memory limit taken, as a size and as a share of this machine's physical memory
# (physical_memory(), which DuckDB takes its share of unless a container limits it to less; where
# the system does not say, a share is taken unchecked). DuckDB allocates in blocks of 256 KiB, and
# a hash table 2 MiB at a time per thread: with the sample (then 5,460 events) ingest's commit ran
# out of memory at 4MB, and `sql` at 1KB on `SELECT count(*) FROM events_classified`; a limit of
# 0.5b, 1b or 1KB (a unit slipped) ended in DuckDB's OutOfMemoryException once the command had
# started, and so did 0.001% (247KB of 24GB: less than one block). 16MB is twice what that commit
# needed; real limits are hundreds of MB (the defaults: 256MB to 4GB).
MIN_MEMORY = "16MB"
_MIN_MEMORY_BYTES = 16 * 1000**2


def physical_memory() -> int | None:
    """This machine's physical memory in bytes, or None where the system does not say (no
    sysconf, as on Windows, or a name it does not know)."""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * page_size if pages > 0 and page_size > 0 else None


def _smallest_share(memory: int) -> str:
    """The smallest share of `memory` bytes that comes to MIN_MEMORY, rounded up to a
    thousandth of a percent, as a setting would write it ("0.1%")."""
    share = (Decimal(_MIN_MEMORY_BYTES) * 100 / memory).quantize(
        Decimal("0.001"), rounding=ROUND_CEILING
    )
    return f"{share.normalize():f}%"


def _memory(value: Any) -> str | None:
    match = _MEMORY.fullmatch(value)
    number = Decimal(match["number"]) if match else Decimal(0)
    if match is None or not number > 0:
        return "expected a memory size such as 700MB or 2GB"
    unit = match["unit"].lower()
    if unit == "%":
        if number > 100:
            return "must be at most 100% of the memory"
        memory = physical_memory()
        if memory is not None and number * memory / 100 < _MIN_MEMORY_BYTES:
            return (
                f"must come to {MIN_MEMORY} or more: {_smallest_share(memory)} or more of this "
                f"machine's {memory / 1000**3:.1f}GB of memory, or a size such as 700MB"
            )
        return None
    if unit in ("b", "byte", "bytes"):
        size = number
    else:  # KB, MB, GB, TB and k, m, g, t are powers of 1000; KiB, MiB, GiB, TiB of 1024
        base = 1024 if re.fullmatch("[kmgt]ib", unit) else 1000
        size = number * base ** ("kmgt".index(unit[0]) + 1)
    if size < _MIN_MEMORY_BYTES:
        return f"must be {MIN_MEMORY} or more"
    return None if size <= _MAX_MEMORY_BYTES else "must be less than 16 EiB (2^64 bytes)"


# The deepest role chain [attribution] chain_max_depth may ask the sessions walk to follow
# (queries/attribute/20_sessions.sql). Users: analysts raising it when evidence says "chain
# truncated at depth N". Real chains are a few hops (an SSO role, a deployment role, a
# workload's role); only a loop of sessions re-assuming roles goes further, and there the
# walk's work grows with the square of the depth (every step keeps its path). The bound also
# keeps a slip (2147483648, beyond the INTEGER the walk counts in) from failing the rebuild.
CHAIN_MAX_DEPTH_LIMIT = 100

# Upper bounds of the [ingest] counts. Each turns a slip (a digit too many, bytes where MB are
# asked for) into one line naming the setting, where it was an internal error (OverflowError,
# after every object was parsed for some) or a run asking for what no machine has.
# Parse processes: more than the largest machines have cores (two 192-core CPUs with SMT make
# 768), past which processes only share the cores and add their own memory (the parse modules,
# a task's objects) to the process tree; ingest users set it to the cores or fewer.
WORKERS_LIMIT = 1024
# S3 downloads at once, each on its own connection (the client's pool is sized by it): Linux
# gives a process 1,024 open files unless raised (ulimit -n), which the connections share with
# the warehouse's files and the parse processes' pipes.
DOWNLOAD_THREADS_LIMIT = 512
# S3's largest object (5 TiB, in MB of 2^20 bytes as max_object_mb counts them): a larger limit
# quarantines nothing more.
MAX_OBJECT_MB_LIMIT = 5 << 20
# A document below this is parsed in one piece, in memory: no machine ingest runs on gives a
# parse process a TiB (2^20 MB), so a larger threshold means "never stream" as this one does.
STREAM_THRESHOLD_MB_LIMIT = float(1 << 20)
# Rows of a Parquet row group in events/: DuckDB scans a file a row group per thread and skips
# row groups by their min/max; groups of millions of rows defeat both (a staged file's events
# would be one group). 128 times the default.
ROW_GROUP_ROWS_LIMIT = 1 << 24
# botocore's adaptive retries wait up to 20 s between attempts: 100 attempts keep one request
# retrying for up to half an hour, past any throttling burst; more would make an outage look
# like a job that hangs. Users: ingest's S3 client and `iam snapshot`'s IAM client.
RETRY_MAX_ATTEMPTS_LIMIT = 100
# CloudTrail delivers files within minutes of the events (about 5 on average, per AWS): a year
# of slack already lists a year of day folders around the period.
LATE_DELIVERY_DAYS_LIMIT = 365

# Bounds of the numeric thresholds and memory limits, by dotted name. Defaults always pass.
CHECKS: dict[str, Check] = {
    "ingest.workers": _between(1, WORKERS_LIMIT),
    "ingest.download_threads": _between(1, DOWNLOAD_THREADS_LIMIT),
    "ingest.max_object_mb": _between(1, MAX_OBJECT_MB_LIMIT),
    "ingest.stream_threshold_mb": _positive_finite_at_most(STREAM_THRESHOLD_MB_LIMIT),
    # No upper bound: a larger count than the rows read commits once, at the end.
    "ingest.commit_rows": _at_least(1),
    "ingest.row_group_rows": _between(1, ROW_GROUP_ROWS_LIMIT),
    "ingest.duckdb_memory_limit": _memory,
    "ingest.retry_max_attempts": _between(1, RETRY_MAX_ATTEMPTS_LIMIT),
    "ingest.late_delivery_days": _between(0, LATE_DELIVERY_DAYS_LIMIT),
    "attribution.chain_max_depth": _between(1, CHAIN_MAX_DEPTH_LIMIT),
    "attribution.duckdb_memory_limit": _memory,
    "attribution.verdicts_duckdb_memory_limit": _memory,
    "query.fiscal_year_start_month": _month,
    "query.duckdb_memory_limit": _memory,
}


def _section_overrides(
    section: str, raw: Mapping[str, Any], where: Callable[[str], str]
) -> dict[str, Any]:
    """Typed, checked values of one section; `where(key)` names a value's origin in errors."""
    cls = _SECTIONS[section]
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(f"{where(key)}: unknown setting {key!r}", hint=f"known: {known}")
        typed = _coerce(value, hints[key], where(key))
        check = CHECKS.get(f"{section}.{key}")
        reason = check(typed) if check else None
        if reason:
            raise ConfigError(f"{where(key)}: {reason}, got {value!r}")
        out[key] = typed
    return out


def _origin(prefix: str, *, upper: bool = False, fixed: bool = False) -> Callable[[str], str]:
    """Names a setting's origin in errors: `prefix` followed by the setting's name (upper-cased
    for environment variables), or `prefix` alone (a flag)."""

    def where(name: str) -> str:
        return prefix if fixed else prefix + (name.upper() if upper else name)

    return where


def _warehouse(value: Any, where: str, relative_to: Path | None = None) -> str:
    """A warehouse location: never empty (an unset shell variable would otherwise make the
    working directory the warehouse); a relative path from a file is read from its folder."""
    text = _coerce(value, str, where)
    if not text.strip():
        raise ConfigError(
            f"{where} is empty",
            hint="name the warehouse folder, e.g. /data/agenttrail, or an s3:// URI to read",
        )
    check_s3_uri(text, where)
    return _from_folder(text, relative_to) if relative_to is not None else text


def _from_folder(path: str, folder: Path) -> str:
    """`path` as written in a configuration file in `folder`: relative paths are read from it;
    absolute paths, ~ paths and URIs stay as they are."""
    if "://" in path or path.startswith("~") or Path(path).is_absolute():
        return path
    return str(folder / path)


# The AGENTTRAIL_* variables that name no section's setting.
_TOP_VARIABLES = frozenset({"AGENTTRAIL_WAREHOUSE", "AGENTTRAIL_CONFIG"})


def _refuse_unknown_variables(environ: Mapping[str, str]) -> None:
    """A misspelt section (AGENTTRAIL_ATTRIBUTON_...) would be ignored in silence, the job
    running with the default it was meant to change; a misspelt name in a known section is
    refused by _section_overrides, and so is this."""
    prefixes = tuple(environment_variable(section, "") for section in _SECTIONS)
    unknown = sorted(
        k
        for k in environ
        if k.startswith("AGENTTRAIL_") and k not in _TOP_VARIABLES and not k.startswith(prefixes)
    )
    if unknown:
        raise ConfigError(
            f"environment variable {unknown[0]}: unknown setting",
            hint="agenttrail reads AGENTTRAIL_WAREHOUSE, AGENTTRAIL_CONFIG and "
            + ", ".join(f"{p}<NAME>" for p in prefixes),
        )


def environment_variable(section: str, name: str) -> str:
    """The variable that sets [section] name: AGENTTRAIL_ATTRIBUTION_DUCKDB_MEMORY_LIMIT."""
    return f"AGENTTRAIL_{section.upper()}_{name.upper()}"


def raise_setting_hint(section: str, name: str, value: object = None) -> str:
    """How to raise [section] name (now `value`, where known): the hint of an error that a
    larger limit avoids, DuckDB running out of memory under one."""
    now = f" (now {value})" if value is not None else ""
    variable = environment_variable(section, name)
    return f"raise [{section}] {name}{now} in agenttrail.toml or with {variable}"


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
    # Who named the file, for the errors where its path alone does not say what to fix: the
    # flag, the variable (set in a scheduler's environment, easily forgotten), or the folder.
    named_by = "--config: "
    if path is None and environ.get("AGENTTRAIL_CONFIG"):
        path = Path(environ["AGENTTRAIL_CONFIG"])
        named_by = "environment variable AGENTTRAIL_CONFIG: "
    if path is None:
        candidate = (cwd or Path.cwd()) / CONFIG_FILE_NAME
        path = candidate if candidate.exists() else None
        named_by = ""
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{named_by}configuration file not found: {path}") from None
        except IsADirectoryError:
            raise ConfigError(
                f"{named_by}configuration file is a folder: {path}",
                hint="name the agenttrail.toml in it",
            ) from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}): TOML is UTF-8") from None
        except OSError as exc:
            raise ConfigError(
                f"{named_by}cannot read configuration file {path}: {exc.strerror or exc}"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        # Relative paths in the file are read from its folder (cwd may be anywhere under cron).
        folder = path.absolute().parent
        for key, value in data.items():
            if key in _SECTIONS:
                if not isinstance(value, dict):
                    raise ConfigError(f"{path}: [{key}] must be a table")
                values = _section_overrides(key, value, _origin(f"{path}: {key}."))
                if key == "query" and "queries_dirs" in values:
                    values["queries_dirs"] = tuple(
                        _from_folder(d, folder) for d in values["queries_dirs"]
                    )
                layers[key].update(values)
            elif key == "warehouse":
                top["warehouse"] = _warehouse(value, f"{path}: warehouse", relative_to=folder)
            else:
                raise ConfigError(
                    f"{path}: unknown key {key!r}",
                    hint="top level takes 'warehouse' and the tables [ingest], [attribution], [query]",
                )
        top["config_file"] = str(path)

    used: list[str] = []
    if "AGENTTRAIL_WAREHOUSE" in environ:
        top["warehouse"] = _warehouse(
            environ["AGENTTRAIL_WAREHOUSE"], "environment variable AGENTTRAIL_WAREHOUSE"
        )
        used.append("AGENTTRAIL_WAREHOUSE")
    _refuse_unknown_variables(environ)
    for section in _SECTIONS:
        prefix = environment_variable(section, "")
        names = sorted(k for k in environ if k.startswith(prefix))
        env_values = {k[len(prefix) :].lower(): environ[k] for k in names}
        origin = _origin(f"environment variable {prefix}", upper=True)
        layers[section].update(_section_overrides(section, env_values, origin))
        used += names

    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        if "." in dotted:
            section, name = dotted.split(".", 1)
            flag = _origin(f"--{name.replace('_', '-')}", fixed=True)
            layers[section].update(_section_overrides(section, {name: value}, flag))
        elif dotted == "warehouse":
            top["warehouse"] = _warehouse(value, "--warehouse")
        else:
            top[dotted] = value

    return Settings(
        ingest=IngestSettings(**layers["ingest"]),
        attribution=AttributionSettings(**layers["attribution"]),
        query=QuerySettings(**layers["query"]),
        environment=tuple(used),
        **top,
    )

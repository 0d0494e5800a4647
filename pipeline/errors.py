"""One error hierarchy for the whole library.

Library code raises these and never prints or exits; the CLI's single error boundary turns them
into one actionable line and an exit code. Each error carries the inputs that led to it (like
dlt's exceptions) so a message can name the file, key or query involved.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """Exit codes shared by every command (README: "Exit codes"). Where several apply, the
    highest wins."""

    OK = 0
    ERROR = 1
    USAGE = 2
    QUARANTINED = 3  # done, but some inputs were quarantined
    FINDINGS = 4  # done, findings at or above the configured severity (reports)
    COVERAGE = 5  # done, coverage incomplete (reports)


class AgenttrailError(Exception):
    """Base of every error the library raises on purpose."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None, **inputs: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.inputs = inputs

    def one_line(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(AgenttrailError):
    """The command line or configuration asks for something that cannot be done as asked."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """agenttrail.toml or an AGENTTRAIL_* variable is invalid."""


class SourceError(AgenttrailError):
    """A source (S3 bucket, folder, file) cannot be listed or read."""


class ParseError(AgenttrailError):
    """A source object or record is not valid CloudTrail; used as a quarantine reason."""


class WarehouseError(AgenttrailError):
    """The warehouse cannot be read or written."""


class WarehouseLockedError(WarehouseError):
    """Another agenttrail process holds the warehouse lock."""


class DatabaseInUseError(WarehouseError):
    """Another process (a DuckDB client, another agenttrail command) has the warehouse database
    open in a way that excludes this one."""


class OutOfMemoryError(WarehouseError):
    """DuckDB could not fit a statement in the memory limit it was given, or an ingest ran out
    of memory (MemoryError). The hint names the setting that raises that limit, where the
    raiser knows it."""


class AttributionPendingError(WarehouseError):
    """An ingest committed its events, but their attribution could not run (the database held
    open by another process, a full disk). Carries the run's summary, which the CLI prints all
    the same (a scheduler must see what was committed and quarantined), and the exit code the
    README's rule gives: the highest that applies (3 when objects were also quarantined)."""

    def __init__(
        self, message: str, *, summary: Any, exit_code: int, hint: str | None = None, **inputs: Any
    ) -> None:
        super().__init__(message, hint=hint, **inputs)
        self.summary = summary
        self.exit_code = ExitCode(exit_code)


class IamError(AgenttrailError):
    """An IAM snapshot cannot be read, imported or taken."""


class QueryError(AgenttrailError):
    """A named query or an ad-hoc statement cannot be prepared or run."""

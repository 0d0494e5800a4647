"""Whether events_classified covers the warehouse as it is, under the rules in force.

derived/ATTRIBUTED_WITH holds the rules_version of the last attribution rebuild that finished.
Anything that changes what the rules would conclude removes it first (an ingest before it
commits events, an IAM import before it stores a snapshot), and only a finished rebuild writes
it back. So a rebuild that failed or was killed leaves the warehouse marked stale: the next
ingest rebuilds even when it finds nothing new, and readers are told their verdicts lag.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from pipeline.config import NOT_RULES, Settings, environment_variable
from pipeline.sqlfile import strip_comments_and_strings
from pipeline.warehouse.connect import GENERATION_FORMAT, has_attribution, published_format
from pipeline.warehouse.layout import Layout
from pipeline.warehouse.remote import is_remote


def mark_stale(layout: Layout) -> None:
    """Before a change that the classification does not reflect yet."""
    layout.attribution_marker.unlink(missing_ok=True)


def mark_current(layout: Layout, rules_version: str) -> None:
    """After a rebuild over every events file and snapshot the warehouse holds."""
    layout.attribution_marker.write_text(rules_version)


def is_current(layout: Layout, rules_version: str) -> bool:
    """A published classification of everything in the warehouse, under these rules."""
    marker = layout.attribution_marker
    return (
        marker.is_file() and marker.read_text().strip() == rules_version and has_attribution(layout)
    )


def attribute_command(settings: Settings) -> str:
    """The `agenttrail attribute` command, quoted, that classifies under the rules in force:
    the same warehouse and configuration file (run as printed, a command without them would
    classify under other rules and leave the notice standing), and the AGENTTRAIL_ATTRIBUTION_*
    variables that were set, but for the memory limits (which an out-of-memory error asks to
    change)."""
    words = ["agenttrail", "attribute", "--warehouse", str(Layout.at(settings.warehouse).root)]
    if settings.config_file:
        words += ["--config", str(Path(settings.config_file).absolute())]
    command = "'" + " ".join(shlex.quote(w) for w in words) + "'"
    variables = [
        n
        for n in settings.environment
        if n.startswith(environment_variable("attribution", ""))
        and n not in {environment_variable("attribution", name) for name in NOT_RULES}
    ]
    if variables:
        command += f" with {', '.join(variables)} set as now"
    return command


def _other_version(layout: Layout) -> str | None:
    """What says the published generation is of another FORMAT (written by another version,
    so this one defines no views over it), else None."""
    written = published_format(layout)
    if written is None or written == GENERATION_FORMAT:
        return None
    return (
        "events_classified was written by another version of agenttrail (generation format "
        f"{written}; this version reads {GENERATION_FORMAT})"
    )


def other_version_hint(settings: Settings) -> str | None:
    """For a query that found no attribution views (execute.NO_ATTRIBUTION_HINT): the command
    that rebuilds a generation another version wrote, else None."""
    if is_remote(settings.warehouse):
        return None
    written = _other_version(Layout.at(settings.warehouse))
    return f"{written}: run {attribute_command(settings)}" if written else None


def staleness_notice(layout: Layout, settings: Settings) -> str | None:
    """A line for readers of events_classified when it lags, else None."""
    attribute = f"run {attribute_command(settings)} for complete verdicts"
    if not has_attribution(layout):
        written = _other_version(layout)
        if written:
            # An upgrade: the views say only that there is no attribution.
            return f"{written}, so it cannot be read until it is rebuilt; {attribute}"
        return None  # nothing classified yet: the views say so themselves
    rules_version = settings.attribution.rules_version()
    marker = layout.attribution_marker
    done = marker.read_text().strip() if marker.is_file() else None
    if done is None:
        return (
            "events_classified predates the latest ingest or IAM import (its attribution did "
            f"not finish), so newer events and role tags are missing from it; {attribute}"
        )
    if done != rules_version:
        return (
            f"events_classified was classified under rules {done}, but the [attribution] "
            f"settings in force are rules {rules_version}; {attribute}"
        )
    return None


# The views over the published attribution (warehouse/connect.py DERIVED_VIEWS and the
# verdicts): a statement naming none of them (`events`, `manifest`, `select 1`) reads nothing
# that can lag, and gets no notice.
_ATTRIBUTION_VIEW = re.compile(
    r"\b(?:events_classified|events_verdicts|sessions|mcp_tool_calls|mcp_grants"
    r"|role_agent_observations|role_agent_intervals|attribution_rules|attribution_run)\b",
    re.IGNORECASE,
)


def reads_attribution(sql: str) -> bool:
    """Whether `sql` names a view over the published attribution (outside comments and
    strings)."""
    return _ATTRIBUTION_VIEW.search(strip_comments_and_strings(sql)) is not None


def reader_notice(settings: Settings, sql: str | None = None) -> str | None:
    """staleness_notice for the warehouse of `settings`, for a reader of `sql` (None: of the
    attribution); an s3:// warehouse is read as it was uploaded, and says nothing."""
    if sql is not None and not reads_attribution(sql):
        return None
    if is_remote(settings.warehouse):
        return None
    layout = Layout.at(settings.warehouse)
    return staleness_notice(layout, settings) if layout.database.exists() else None

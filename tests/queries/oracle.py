"""Expected answers for the named queries, computed from the generator's ground truth only.

Inputs: `sample_logs/labels.csv` (actor_kind, access_path, agent_name per event), the raw
CloudTrail files read with plain gzip + json, and the IAM snapshot files. Nothing here imports
`pipeline` or runs SQL: the rules each query documents in its header are re-implemented in
plain Python, so a query (or the classification under it) that drifts from them fails its test.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

SAMPLE = Path(__file__).resolve().parents[2] / "sample_logs"
SNAPSHOT_TAKEN_AT = datetime(2026, 6, 30, 12, 0, 0, tzinfo=UTC)
AGENT_TAG = ("usage", "agent")  # key and value, compared case-insensitively

SSO_PATH = ":role/aws-reserved/sso.amazonaws.com/"
SERVICE_ROLE_PATH = ":role/aws-service-role/"
DENIED = re.compile(
    r"AccessDenied|UnauthorizedOperation$|UnauthorizedAccess|^AuthorizationError$|^Forbidden$"
)
AWSLABS = re.compile(r"(md/)?awslabs[#/]mcp[#/]([\w.-]+)")


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def joined(values: Iterable[str | None]) -> str | None:
    """The queries' `string_agg(DISTINCT x, ',' ORDER BY x)`: NULL when nothing is left."""
    items = sorted({v for v in values if v is not None})
    return ",".join(items) if items else None


@dataclass(frozen=True)
class Event:
    """One distinct CloudTrail event, with its label and the fields the queries use."""

    record: dict[str, Any]
    file_key: str  # path of the file the kept copy came from, relative to sample_logs/
    kind: str
    path: str
    agent_name: str | None
    # The person who started the event's session chain (Truth sets it once sessions exist).
    root_person: str | None = None

    @property
    def event_id(self) -> str:
        return str(self.record["eventID"])

    @cached_property
    def time(self) -> datetime:
        return parse_time(self.record["eventTime"])

    @property
    def day(self) -> date:
        return self.time.date()

    @property
    def account(self) -> str:
        return str(self.record["recipientAccountId"])

    @property
    def region(self) -> str:
        return str(self.record["awsRegion"])

    @property
    def source(self) -> str:
        return str(self.record["eventSource"])

    @property
    def name(self) -> str:
        return str(self.record["eventName"])

    @property
    def event_type(self) -> str | None:
        return self.record.get("eventType")

    @property
    def error_code(self) -> str | None:
        return self.record.get("errorCode")

    @property
    def denied(self) -> bool:
        return self.error_code is not None and DENIED.search(self.error_code) is not None

    @property
    def write(self) -> bool:
        return self.record.get("readOnly") is False

    @property
    def user_agent(self) -> str | None:
        return self.record.get("userAgent")

    @property
    def request_id(self) -> str | None:
        return self.record.get("requestID")

    @property
    def identity(self) -> dict[str, Any]:
        return self.record.get("userIdentity") or {}

    @property
    def identity_type(self) -> str | None:
        return self.identity.get("type")

    @property
    def context(self) -> dict[str, Any]:
        return self.identity.get("sessionContext") or {}

    @property
    def issuer(self) -> dict[str, Any]:
        return self.context.get("sessionIssuer") or {}

    @property
    def access_key(self) -> str | None:
        return self.identity.get("accessKeyId") or None

    @property
    def sign_in_session(self) -> str | None:
        return self.context.get("signInSessionArn")

    @property
    def arn(self) -> str | None:
        return self.identity.get("arn")

    @cached_property
    def principal(self) -> str:
        """events_classified.principal: role ARN (with path) for sessions, user ARN,
        web-identity subject, AWS service, else type:account."""
        ui = self.identity
        kind = ui.get("type")
        if kind == "AssumedRole" and self.issuer.get("arn"):
            return str(self.issuer["arn"])
        if kind == "WebIdentityUser" and ui.get("principalId"):
            return str(ui["principalId"])
        if ui.get("arn"):
            return str(ui["arn"])
        # invokedBy names a service that called on its own, not one that called for a caller.
        if ui.get("invokedBy") and kind in (None, "AWSService"):
            return str(ui["invokedBy"])
        return f"{kind or 'Unknown'}:{ui.get('accountId') or self.account}"

    @property
    def identity_arn(self) -> str | None:
        """The role ARN of a session, else the identity's ARN: untagged_agent_roles'
        `coalesce(iam_principal_arn, session_issuer_arn)` on the role sessions it reads."""
        if self.identity_type == "AssumedRole" and self.issuer.get("arn"):
            return str(self.issuer["arn"])
        return self.arn

    @cached_property
    def human_id(self) -> str | None:
        """The person behind a human's or an agent's call (issue 3's human_id)."""
        if self.kind not in ("human", "agent"):
            return None
        on_behalf = self.identity.get("onBehalfOf") or {}
        if on_behalf.get("userId"):
            return str(on_behalf["userId"])
        if self.context.get("sourceIdentity"):
            return str(self.context["sourceIdentity"])
        if SSO_PATH in (self.issuer.get("arn") or "") and self.arn:
            return self.arn.rsplit("/", 1)[1]
        # A person's console session on a role is named after the signed-in user.
        if self.kind == "human" and self.path == "console" and self.identity_type == "AssumedRole":
            return self.arn.rsplit("/", 1)[1] if self.arn else None
        if self.identity_type == "IAMUser":
            return self.identity.get("userName")
        if self.identity_type == "Root":
            return "root"
        return self.root_person

    def matches(self, principal: str) -> bool:
        """The queries' principal parameter: the identity (`principal`), the session ARN, the
        agent name or the person."""
        return principal in (self.principal, self.arn, self.agent_name, self.human_id)

    @property
    def actor(self) -> str:
        """`coalesce(agent_name, human_id, principal)` of the queries."""
        return self.agent_name or self.human_id or self.principal

    @cached_property
    def client(self) -> str:
        """The client behind the call, from the user agent (facts doc s.4: MCP marks first),
        read inside the square brackets S3 writes around it."""
        ua = self.user_agent or ""
        if ua.startswith("["):
            ua = ua[1:-1] if ua.endswith("]") else ua[1:]
        if (
            self.event_type == "AwsMcpEvent"
            or AWSLABS.search(ua)
            or (self.identity.get("invokedBy") or "").endswith("-mcp.amazonaws.com")
            or ua.endswith("-mcp.amazonaws.com")
            or ua.startswith(("claude-code/", "mcp-proxy-for-aws/"))
        ):
            return "mcp"
        if ua.startswith(("Mozilla/", "S3Console/")) or re.fullmatch(
            r"console\.[\w.-]*amazonaws\.com", ua
        ):
            return "console"
        if "Terraform/" in ua:
            return "iac"
        if ua.startswith("aws-cli/"):
            return "cli"
        if ua.startswith(("Boto3/", "Botocore/", "aws-sdk-")):
            return "sdk"
        if ua.endswith(".amazonaws.com"):
            return "service"
        if self.path == "console":
            return "console"
        if self.kind == "service":
            return "service"
        return "unknown"

    @property
    def session_created_at(self) -> datetime | None:
        created = (self.context.get("attributes") or {}).get("creationDate")
        return parse_time(created) if created else None

    @property
    def request(self) -> dict[str, Any]:
        return self.record.get("requestParameters") or {}

    @property
    def response(self) -> dict[str, Any]:
        return self.record.get("responseElements") or {}

    @property
    def additional(self) -> dict[str, Any]:
        return self.record.get("additionalEventData") or {}


@dataclass
class Session:
    """One access key issued by STS, merged over the copies of its issuing event."""

    issued_key: str
    issued_at: datetime
    issued_by_call: str
    role_arn: str
    session_name: str | None
    parent_key: str | None
    caller_type: str | None
    caller: str | None
    source_identity: str | None
    tags: dict[str, str] = field(default_factory=dict)
    transitive: set[str] = field(default_factory=set)
    root_key: str = ""
    depth: int = 0
    chain_source_identity: str | None = None
    effective_tags: dict[str, str] = field(default_factory=dict)

    @property
    def role_account(self) -> str:
        return self.role_arn.split(":")[4]

    @property
    def person(self) -> str | None:
        """The person this session was issued to, when it was a person: an IAM user, an
        Identity Center user's SSO role session (its session name), or the root user."""
        caller = self.caller or ""
        if self.caller_type == "IAMUser":
            return caller.rsplit("/", 1)[-1]
        if self.caller_type == "AssumedRole" and ":assumed-role/AWSReservedSSO_" in caller:
            return caller.split("/")[2]
        if self.caller_type == "Root":
            return "root"
        return None


@dataclass(frozen=True)
class Observation:
    """What one IAM snapshot or tag event says about a role's agent tag."""

    observed_at: datetime
    is_agent: bool
    source: str  # "snapshot", "CreateRole", "TagRole" or "UntagRole"
    event_id: str | None

    def matches(self, observed_by: str | None) -> bool:
        """Does the warehouse's observed_by text name this observation? Snapshot ids are the
        warehouse's own, so only the kind is compared for snapshots."""
        if observed_by is None:
            return False
        if self.source == "snapshot":
            return observed_by.startswith("snapshot ")
        return observed_by == f"{self.source} {self.event_id}"


STS_ISSUING = {
    "AssumeRole",
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
    "GetSessionToken",
    "GetFederationToken",
    "AssumeRoot",
}


def in_period(when: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or when >= since) and (until is None or when < until)


class Truth:
    """Every distinct event of the sample with its label, plus sessions and IAM state."""

    def __init__(self, root: Path = SAMPLE) -> None:
        self.root = root
        self.labels = self._labels()
        self.events = self._events()
        for e in self.events:
            session = self.sessions.get(e.access_key or "")
            if session is not None:
                # Frozen for everything else: the chain is known only once every event is.
                object.__setattr__(e, "root_person", self.sessions[session.root_key].person)
        self.scenario = json.loads((root / "scenario.json").read_text())

    # --- loading -----------------------------------------------------------------------

    def _labels(self) -> dict[str, tuple[str, str, str | None]]:
        with (self.root / "labels.csv").open(newline="") as handle:
            return {
                row["event_id"]: (row["actor_kind"], row["access_path"], row["agent_name"] or None)
                for row in csv.DictReader(handle)
            }

    def event_files(self) -> list[Path]:
        return sorted(
            p
            for p in (self.root / "AWSLogs").rglob("*.json.gz")
            if "CloudTrail" in p.relative_to(self.root).parts
        )

    def _events(self) -> list[Event]:
        copies: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
        for path in self.event_files():
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                records = json.load(handle)["Records"]
            key = path.relative_to(self.root).as_posix()
            for record in records:
                copies[record["eventID"]].append((key, record))
        events = []
        for event_id, found in copies.items():
            key, record = min(found, key=lambda item: item[0])
            kind, access_path, agent = self.labels[event_id]
            events.append(Event(record, key, kind, access_path, agent))
        assert len(events) == len(self.labels)
        return sorted(events, key=lambda e: (e.time, e.event_id))

    def scoped(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        account: str | None = None,
        principal: str | None = None,
    ) -> Iterator[Event]:
        """The events a query with these scope parameters reads."""
        for e in self.events:
            if (
                in_period(e.time, since, until)
                and (account is None or e.account == account)
                and (principal is None or e.matches(principal))
            ):
                yield e

    @cached_property
    def copies(self) -> dict[str, set[str]]:
        """eventID -> every file holding a copy (two for the duplicated events)."""
        found: dict[str, set[str]] = defaultdict(set)
        for path in self.event_files():
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                for record in json.load(handle)["Records"]:
                    found[record["eventID"]].add(path.relative_to(self.root).as_posix())
        return found

    # --- sessions ------------------------------------------------------------------------

    @cached_property
    def sessions(self) -> dict[str, Session]:
        found: dict[str, Session] = {}
        for e in self.events:
            if e.source != "sts.amazonaws.com" or e.name not in STS_ISSUING or e.error_code:
                continue
            key = ((e.response.get("credentials") or {}).get("accessKeyId")) or None
            if key is None:
                continue
            request = e.request
            session = found.get(key)
            if session is None:
                session = found[key] = Session(
                    issued_key=key,
                    issued_at=e.time,
                    issued_by_call=e.name,
                    role_arn=request.get("roleArn"),
                    session_name=request.get("roleSessionName"),
                    parent_key=e.access_key,
                    caller_type=e.identity_type,
                    caller=e.arn
                    or e.identity.get("invokedBy")
                    or e.identity.get("identityProvider"),
                    source_identity=request.get("sourceIdentity")
                    or e.response.get("sourceIdentity"),
                )
            session.issued_at = min(session.issued_at, e.time)
            session.parent_key = session.parent_key or e.access_key
            for tag in request.get("tags") or []:
                session.tags[tag["key"]] = tag["value"]
            session.tags.update(request.get("principalTags") or {})
            session.tags.update(request.get("incomingTransitiveTags") or {})
            session.transitive.update(request.get("transitiveTagKeys") or [])
        for session in found.values():
            chain = [session]
            while chain[-1].parent_key in found and found[chain[-1].parent_key] not in chain:
                chain.append(found[chain[-1].parent_key])
            session.root_key = chain[-1].issued_key
            session.depth = len(chain) - 1
            inherited = {
                k: v
                for ancestor in chain[1:]
                for k, v in ancestor.tags.items()
                if k in ancestor.transitive
            }
            session.effective_tags = {**inherited, **session.tags}
            roots_first = [s.source_identity for s in reversed(chain) if s.source_identity]
            session.chain_source_identity = session.source_identity or (
                roots_first[0] if roots_first else None
            )
        return found

    # --- IAM -----------------------------------------------------------------------------

    @cached_property
    def iam_files(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted((self.root / "iam").glob("*.json"))]

    @cached_property
    def iam_tags(self) -> dict[str, dict[str, str]]:
        """Tags of every role and user in the snapshots, by ARN."""
        tags = {}
        for document in self.iam_files:
            for entity in [
                *document.get("RoleDetailList", []),
                *document.get("UserDetailList", []),
            ]:
                tags[entity["Arn"]] = {t["Key"]: t["Value"] for t in entity.get("Tags") or []}
        return tags

    @cached_property
    def role_observations(self) -> dict[tuple[str, str], list[Observation]]:
        """(account, role name) -> what the snapshots and the tag events say, oldest first."""
        observations: dict[tuple[str, str], list[Observation]] = defaultdict(list)
        for document in self.iam_files:
            for role in document.get("RoleDetailList", []):
                account = role["Arn"].split(":")[4]
                tags = {t["Key"]: t["Value"] for t in role.get("Tags") or []}
                observations[(account, role["RoleName"])].append(
                    Observation(SNAPSHOT_TAKEN_AT, is_agent_tagged(tags), "snapshot", None)
                )
        for e in self.events:
            if e.source != "iam.amazonaws.com" or e.error_code:
                continue
            key = (e.account, e.request.get("roleName"))
            if e.name in ("CreateRole", "TagRole"):
                tags = {t["key"]: t["value"] for t in e.request.get("tags") or []}
                touches = any(k.lower() == AGENT_TAG[0] for k in tags)
                if e.name == "CreateRole" or touches:
                    observations[key].append(
                        Observation(e.time, is_agent_tagged(tags), e.name, e.event_id)
                    )
            elif e.name == "UntagRole" and any(
                k.lower() == AGENT_TAG[0] for k in e.request.get("tagKeys") or []
            ):
                observations[key].append(Observation(e.time, False, e.name, e.event_id))
        for items in observations.values():
            items.sort(key=lambda item: item.observed_at)
        return observations

    def agent_role_at(self, account: str, role_name: str, when: datetime) -> Observation | None:
        """The role's agent tag at `when`, on the classification's timeline: the newest
        observation at or before it, else the role's first observation where that is a snapshot
        (a tag event says nothing of the time before it); None when none applies (no snapshot or
        tag event names the role, or only tag events after `when`)."""
        items = self.role_observations.get((account, role_name), [])
        before = [item for item in items if item.observed_at <= when]
        if before:
            return before[-1]
        return items[0] if items and items[0].source == "snapshot" else None


def is_agent_tagged(tags: dict[str, str]) -> bool:
    return any(k.lower() == AGENT_TAG[0] and v.lower() == AGENT_TAG[1] for k, v in tags.items())


def tag_text(tags: dict[str, str]) -> str | None:
    return ",".join(sorted(f"{k}={v}" for k, v in tags.items())) or None


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]

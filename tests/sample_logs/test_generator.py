"""The committed sample set (sample_logs/) is what its generator makes, and it is self-consistent.

These tests read the files with plain gzip + json and never import the `pipeline` package: the
labels in labels.csv are the independent truth the classifier is later tested against.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import itertools
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

SAMPLE = Path(__file__).resolve().parents[2] / "sample_logs"
GENERATED = ("AWSLogs", "iam", "labels.csv", "scenario.json")
ORG = "o-a1b2c3d4e5"
ACCOUNTS = {"111111111111", "222222222222"}
REGIONS = {"us-east-1", "eu-west-1"}
EVENT_KEY = re.compile(
    rf"^AWSLogs/{ORG}/(?P<account>\d{{12}})/CloudTrail/(?P<region>[a-z]{{2}}-[a-z]+-\d)/"
    r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P=account)_CloudTrail_(?P=region)_"
    r"(?P<stamp>\d{8}T\d{4}Z)_[A-Za-z0-9]{16}\.json\.gz$"
)
DIGEST_KEY = re.compile(
    rf"^AWSLogs/{ORG}/(?P<account>\d{{12}})/CloudTrail-Digest/(?P<region>[a-z0-9-]+)/\d{{4}}/\d{{2}}/\d{{2}}/"
    r"(?P=account)_CloudTrail-Digest_(?P=region)_org-trail_us-east-1_\d{8}T\d{6}Z\.json\.gz$"
)
EVENT_TIME = re.compile(r"^2026-(0[4-9])-\d{2}T\d{2}:\d{2}:\d{2}Z$")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ACTOR_KINDS = {"agent", "human", "workload", "service", "unknown"}
ACCESS_PATHS = {"mcp_managed", "mcp_self_managed", "console", "direct", "service", "none"}
# Fields every record has (null allowed for the two parameter fields), then those tied to a version.
ALWAYS = (
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "requestParameters",
    "responseElements",
    "eventID",
    "readOnly",
    "eventType",
    "recipientAccountId",
)
SINCE_VERSION = {"managementEvent": (1, 6), "eventCategory": (1, 7)}
ISSUING = {
    "AssumeRole",
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
    "GetSessionToken",
    "GetFederationToken",
}

Record = dict[str, Any]


def relative_files(root: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for name in GENERATED:
        top = root / name
        paths = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        files.update({p.relative_to(root).as_posix(): p for p in paths})
    return files


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    subprocess.run(
        [sys.executable, str(SAMPLE / "generate.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="module")
def event_files() -> dict[str, list[Record]]:
    """Every CloudTrail event file of the committed set, read with plain gzip + json."""
    files = {}
    for key, path in relative_files(SAMPLE).items():
        if "/CloudTrail/" in key:
            files[key] = json.loads(gzip.decompress(path.read_bytes()))["Records"]
    return files


@pytest.fixture(scope="module")
def records(event_files: dict[str, list[Record]]) -> dict[str, Record]:
    """One record per eventID (duplicates are identical, checked separately)."""
    return {r["eventID"]: r for batch in event_files.values() for r in batch}


@pytest.fixture(scope="module")
def labels() -> dict[str, dict[str, str]]:
    with (SAMPLE / "labels.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {row["event_id"]: row for row in rows}


@pytest.fixture(scope="module")
def scenario() -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((SAMPLE / "scenario.json").read_text())
    return summary


def test_regenerating_gives_byte_identical_files(regenerated: Path) -> None:
    committed = relative_files(SAMPLE)
    fresh = relative_files(regenerated)
    assert sorted(fresh) == sorted(committed)
    differing = [key for key in committed if committed[key].read_bytes() != fresh[key].read_bytes()]
    assert differing == [], f"run `python sample_logs/generate.py` and commit: {differing[:5]}"


def test_labels_cover_every_distinct_event_once(records: dict[str, Record]) -> None:
    text = (SAMPLE / "labels.csv").read_text()
    lines = text.splitlines()
    assert lines[0] == "event_id,actor_kind,access_path,agent_name"
    ids = [line.split(",", 1)[0] for line in lines[1:]]
    assert ids == sorted(ids)
    assert len(ids) == len(set(ids))
    assert set(ids) == set(records)


def test_label_values_follow_the_conventions(labels: dict[str, dict[str, str]]) -> None:
    for row in labels.values():
        assert row["actor_kind"] in ACTOR_KINDS
        assert row["access_path"] in ACCESS_PATHS
        assert bool(row["agent_name"]) == (row["actor_kind"] == "agent"), row
        if row["access_path"] == "mcp_managed":
            assert row["agent_name"] == "aws-mcp.amazonaws.com"
    pairs = Counter((r["actor_kind"], r["access_path"]) for r in labels.values())
    assert set(pairs) == {
        ("agent", "mcp_managed"),
        ("agent", "mcp_self_managed"),
        ("agent", "direct"),
        ("human", "console"),
        ("human", "direct"),
        ("service", "service"),
        ("workload", "direct"),
        ("unknown", "none"),
        # Calls CloudFormation made with an agent's, a person's and a workload's credentials.
        ("agent", "service"),
        ("human", "service"),
        ("workload", "service"),
    }


def test_scenario_counts_match_the_labels(
    labels: dict[str, dict[str, str]], scenario: dict[str, Any], records: dict[str, Record]
) -> None:
    events = scenario["events"]
    assert events["distinct"] == len(labels) == len(records)
    assert 3000 <= events["distinct"] <= 6000
    per_label = Counter(f"{r['actor_kind']}/{r['access_path']}" for r in labels.values())
    assert events["per_label"] == dict(per_label)
    assert events["per_account"] == dict(Counter(r["recipientAccountId"] for r in records.values()))
    assert scenario["agent_names"] == sorted(
        {r["agent_name"] for r in labels.values() if r["agent_name"]}
    )


def test_every_record_has_the_required_fields(records: dict[str, Record]) -> None:
    for record in records.values():
        missing = [f for f in ALWAYS if f not in record]
        version = tuple(int(p) for p in record["eventVersion"].split("."))
        missing += [f for f, since in SINCE_VERSION.items() if version >= since and f not in record]
        assert not missing, (record["eventID"], missing)
        assert record["eventVersion"] in {"1.05", "1.08", "1.09", "1.10"}
        assert UUID4.match(record["eventID"])
        assert isinstance(record["readOnly"], bool)
        assert record["recipientAccountId"] in ACCOUNTS
        assert record["awsRegion"] in REGIONS
        if record["eventType"] == "AwsApiCall":
            assert record.get("requestID"), record["eventID"]
        if "sessionCredentialFromConsole" in record:
            assert record["sessionCredentialFromConsole"] == "true"
        if record.get("errorCode"):
            assert record.get("errorMessage")
        credentials = (record["responseElements"] or {}).get("credentials")
        if credentials:
            assert credentials["accessKeyId"].startswith("ASIA")
            assert re.match(
                r"^[A-Z][a-z]{2} \d{1,2}, 2026, \d{1,2}:\d{2}:\d{2} [AP]M$",
                credentials["expiration"],
            )
            assert record.get("responseElements", {}).get("assumedRoleUser")


def test_event_times_lie_in_the_period(records: dict[str, Record]) -> None:
    times = sorted(r["eventTime"] for r in records.values())
    assert all(EVENT_TIME.match(t) for t in times)
    assert times[0] >= "2026-04-01T00:00:00Z"
    assert times[-1] <= "2026-09-30T23:59:59Z"
    months = Counter(t[:7] for t in times)
    assert len(months) == 6  # both quarters, every month


def test_files_follow_the_organization_trail_layout(
    event_files: dict[str, list[Record]], scenario: dict[str, Any]
) -> None:
    assert len(event_files) == scenario["files"]["event_files"] < 800
    late = 0
    for key, batch in event_files.items():
        match = EVENT_KEY.match(key)
        assert match, key
        assert {r["recipientAccountId"] for r in batch} == {match["account"]}
        assert {r["awsRegion"] for r in batch} == {match["region"]}
        folder = f"{match['y']}-{match['m']}-{match['d']}"
        assert match["stamp"].startswith(folder.replace("-", ""))
        newest = max(r["eventTime"] for r in batch)
        assert newest[:10] <= folder  # delivered on or after the day of its newest record
        late += newest[:10] < folder
    assert late == len(scenario["files"]["late_files"]) >= 3
    assert any(not _is_sorted(batch) for batch in event_files.values())


def _is_sorted(batch: list[Record]) -> bool:
    times = [r["eventTime"] for r in batch]
    return times == sorted(times)


def test_duplicated_events_are_identical_copies_in_two_files(
    event_files: dict[str, list[Record]], scenario: dict[str, Any]
) -> None:
    copies: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key, batch in event_files.items():
        for record in batch:
            copies[record["eventID"]].append((key, json.dumps(record, sort_keys=True)))
    duplicated = sorted(event_id for event_id, seen in copies.items() if len(seen) > 1)
    assert duplicated == scenario["duplicated_event_ids"]
    assert 5 <= len(duplicated) <= 10
    for event_id in duplicated:
        (key_a, text_a), (key_b, text_b) = copies[event_id]
        assert key_a != key_b
        assert text_a == text_b


def test_downstream_calls_of_tagged_sessions_use_keys_issued_in_the_set(
    records: dict[str, Record], labels: dict[str, dict[str, str]], scenario: dict[str, Any]
) -> None:
    """The access-key join: keys of tagged sessions (and of sessions chained from them) are
    issued by an STS event in the set, and every call of such a session is labelled agent."""
    issuing = [r for r in records.values() if r["eventName"] in ISSUING and r["responseElements"]]
    tagged: set[str] = set()
    for record in issuing:
        params = record["requestParameters"] or {}
        if (
            params.get("tags")
            or params.get("principalTags")
            or params.get("incomingTransitiveTags")
        ):
            tagged.add(record["responseElements"]["credentials"]["accessKeyId"])
    # Chains: a session a tagged session opened is the agent's too (transitive tags carry on;
    # where none are transitive the marks drop, the actor does not).
    grew = True
    while grew:
        before = len(tagged)
        for record in issuing:
            if record["userIdentity"].get("accessKeyId") in tagged:
                tagged.add(record["responseElements"]["credentials"]["accessKeyId"])
        grew = len(tagged) > before

    tag_agents = set(scenario["mcp_server_tag_values"]) | {"AgentHarnessRole"}
    checked = 0
    for event_id, label in labels.items():
        if label["agent_name"] in tag_agents:
            assert records[event_id]["userIdentity"].get("accessKeyId") in tagged, event_id
            checked += 1
    assert checked > 300
    for event_id, record in records.items():
        if record["userIdentity"].get("accessKeyId") in tagged:
            assert labels[event_id]["actor_kind"] == "agent", event_id


def test_cross_account_assume_role_is_logged_in_both_accounts(
    records: dict[str, Record], scenario: dict[str, Any]
) -> None:
    by_shared: dict[str, list[Record]] = defaultdict(list)
    for record in records.values():
        if "sharedEventID" in record:
            by_shared[record["sharedEventID"]].append(record)
    pairs = scenario["cross_account_shared_event_ids"]
    assert pairs
    incoming = 0
    for shared in pairs:
        a, b = by_shared[shared]
        assert {a["recipientAccountId"], b["recipientAccountId"]} == ACCOUNTS
        assert a["eventID"] != b["eventID"]
        assert a["responseElements"] == b["responseElements"]
        incoming += (
            "incomingTransitiveTags" in b["requestParameters"]
            or "incomingTransitiveTags" in (a["requestParameters"])
        )
    assert incoming > 0


def test_managed_mcp_tool_calls_join_their_downstream_calls(
    records: dict[str, Record], labels: dict[str, dict[str, str]], scenario: dict[str, Any]
) -> None:
    """Both tool-call shapes (observed: Management; documented: Data) list their downstream
    calls (requestId = requestID), and every downstream call, in either shape, keeps dan's
    identity with invokedBy, sourceIPAddress and userAgent = aws-mcp.amazonaws.com (facts doc
    s.4: the client's address is not recorded there). Where the trail did not log the Data-event
    tool call yet, invokedBy and the grant's signInSessionArn still mark them. Every such call is
    labelled agent, mcp_managed."""
    by_request_id: dict[str, list[Record]] = defaultdict(list)
    for record in records.values():
        if record.get("requestID"):
            by_request_id[record["requestID"]].append(record)
    invoked = {
        r["eventID"]
        for r in records.values()
        if r["userIdentity"].get("invokedBy") == "aws-mcp.amazonaws.com"
    }
    tool_calls = [r for r in records.values() if r["eventType"] == "AwsMcpEvent"]
    shapes = Counter((r["eventSource"], r["eventCategory"]) for r in tool_calls)
    assert set(shapes) == {
        ("aws-mcp.amazonaws.com", "Management"),
        ("aws-mcp.us-east-1.api.aws", "Data"),
    }
    joined: dict[str, int] = Counter()
    linked: set[str] = set()
    for tool_call in tool_calls:
        for request in (tool_call.get("additionalEventData") or {}).get("downstreamRequests", []):
            (downstream,) = by_request_id[request["requestId"]]
            assert downstream["userIdentity"]["arn"] == tool_call["userIdentity"]["arn"]
            assert downstream["eventID"] in invoked
            assert (
                downstream["sourceIPAddress"] == downstream["userAgent"] == "aws-mcp.amazonaws.com"
            )
            assert labels[downstream["eventID"]]["access_path"] == "mcp_managed"
            joined[tool_call["eventCategory"]] += 1
            linked.add(downstream["eventID"])
    assert joined["Management"] > 50
    assert joined["Data"] > 0
    assert any("additionalEventData" not in r for r in tool_calls)  # documentation searches
    # Documented-shape tool calls before the trail selected MCP data events left no record:
    # their downstream calls still carry invokedBy, and the grant's sign-in session.
    grants = {
        r["additionalEventData"]["signInSessionArn"]: r["eventTime"]
        for r in records.values()
        if r["eventName"] == "CreateOAuth2Token"
        and (r["requestParameters"] or {}).get("resource", "").startswith("https://aws-mcp.")
    }
    logged_from = scenario["mcp_data_events_logged_from"]
    unlinked = [
        r
        for r in records.values()
        if r["userIdentity"].get("sessionContext", {}).get("signInSessionArn") in grants
        and r["eventType"] == "AwsApiCall"
        and r["eventID"] not in linked
    ]
    assert unlinked
    for record in unlinked:
        assert record["eventID"] in invoked
        assert record["sourceIPAddress"] == record["userAgent"] == "aws-mcp.amazonaws.com"
        assert record["eventTime"] < logged_from
        label = labels[record["eventID"]]
        assert (label["actor_kind"], label["access_path"]) == ("agent", "mcp_managed")
    # Every call the MCP server made is one of these: listed by a tool call, or unlogged ones.
    assert invoked <= linked | {r["eventID"] for r in unlinked}
    assert all(r["eventTime"] >= logged_from for r in tool_calls if r["eventCategory"] == "Data")


def test_role_tagged_during_the_period_changes_hands(
    records: dict[str, Record], labels: dict[str, dict[str, str]], scenario: dict[str, Any]
) -> None:
    """DataPipelineAgentRole: carol by hand before the TagRole (her CLI, her laptop, botocore
    session names), the pipeline agent after (the aws CLI on a runner host, pipeline-agent-*
    sessions opened by the runner's instance role). The records tell the two apart, and the
    labels say who acted: not which side of the TagRole a call falls on."""
    change = scenario["role_tag_changes"][0]
    before: Counter[tuple[str, str, str]] = Counter()
    after: Counter[tuple[str, str, str]] = Counter()
    sides: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    for event_id, record in records.items():
        identity = record["userIdentity"]
        issuer = identity.get("sessionContext", {}).get("sessionIssuer", {})
        if issuer.get("arn") == change["role_arn"]:
            label = labels[event_id]
            side = "after" if record["eventTime"] > change["time"] else "before"
            (after if side == "after" else before)[
                (label["actor_kind"], label["access_path"], label["agent_name"])
            ] += 1
            session = identity["arn"].rsplit("/", 1)[1]
            sides[side].add(
                (
                    session.rstrip("0123456789abcdef"),
                    record["sourceIPAddress"],
                    record["userAgent"][:8],
                )
            )
    assert set(before) == {("human", "direct", "")}
    assert set(after) == {("agent", "direct", "DataPipelineAgentRole")}
    assert {s[0] for s in sides["before"]} == {"botocore-session-"}
    assert {s[0] for s in sides["after"]} == {"pipeline-agent-"}
    assert not {s[1] for s in sides["before"]} & {s[1] for s in sides["after"]}
    # Who opened the sessions: carol (IAM user) before, the runner's instance role after.
    openers = defaultdict(set)
    for record in records.values():
        params = record["requestParameters"] or {}
        if record["eventName"] == "AssumeRole" and params.get("roleArn") == change["role_arn"]:
            side = "after" if record["eventTime"] > change["time"] else "before"
            openers[side].add(record["userIdentity"]["arn"].split(":")[5].split("/")[1])
    assert openers == {"before": {"carol"}, "after": {"AgentRunnerInstanceRole"}}


def test_credentials_are_used_only_while_valid(records: dict[str, Record]) -> None:
    """Every call made with a key an STS event in the set issued falls between that event and
    the credentials' expiration: ECS and EC2 re-issue a running workload's credentials before
    they expire (a new AssumeRole by the service, a new key)."""
    issued: dict[str, tuple[datetime, datetime]] = {}
    for record in records.values():
        credentials = (record["responseElements"] or {}).get("credentials")
        if credentials:
            issued[credentials["accessKeyId"]] = (
                _time(record["eventTime"]),
                datetime.strptime(credentials["expiration"], "%b %d, %Y, %I:%M:%S %p").replace(
                    tzinfo=UTC
                ),
            )
    used = 0
    for record in records.values():
        key = record["userIdentity"].get("accessKeyId")
        if key in issued:
            start, end = issued[key]
            assert start <= _time(record["eventTime"]) <= end, (record["eventID"], key)
            used += 1
    assert used > 2000
    # The workloads that run all day hold several keys a day, one session name.
    renewed = Counter(
        (r["requestParameters"]["roleArn"], r["requestParameters"]["roleSessionName"])
        for r in records.values()
        if r["eventName"] == "AssumeRole"
        and r["userIdentity"].get("type") == "AWSService"
        and r["userIdentity"].get("invokedBy") in ("ecs-tasks.amazonaws.com", "ec2.amazonaws.com")
    )
    assert max(renewed.values()) >= 3


def _time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def test_operations_of_two_services_keep_their_own_source(records: dict[str, Record]) -> None:
    """GetQueryResults is both Athena's and CloudWatch Logs': the cloudwatch MCP server's calls
    go to logs.amazonaws.com, the pipeline's to athena.amazonaws.com."""
    sources = Counter(
        (r["eventSource"], "awslabs#mcp#cloudwatch" in (r["userAgent"] or ""))
        for r in records.values()
        if r["eventName"] == "GetQueryResults"
    )
    assert set(sources) == {("logs.amazonaws.com", True), ("athena.amazonaws.com", False)}


def test_ec2_responses_repeat_the_request_id(records: dict[str, Record]) -> None:
    checked = 0
    for record in records.values():
        response = record["responseElements"]
        if isinstance(response, dict) and "requestId" in response:
            assert response["requestId"] == record["requestID"], record["eventID"]
            checked += 1
    assert checked > 50


def test_iam_snapshots_match_the_scenario() -> None:
    dev = json.loads((SAMPLE / "iam" / "111111111111.json").read_text())
    prod = json.loads((SAMPLE / "iam" / "222222222222.json").read_text())
    for snapshot in (dev, prod):
        assert set(snapshot) == {"UserDetailList", "GroupDetailList", "RoleDetailList", "Policies"}
    dev_roles = {r["RoleName"]: r for r in dev["RoleDetailList"]}
    prod_roles = {r["RoleName"]: r for r in prod["RoleDetailList"]}
    assert "ReportAgentRole" not in dev_roles
    assert "Tags" not in prod_roles["DataPipelineAgentRole"]
    assert {"Key": "Usage", "Value": "Agent"} in dev_roles["AgentMcpRole"]["Tags"]
    assert dev_roles["AgentMcpRole"]["PermissionsBoundary"]["PermissionsBoundaryType"] == "Policy"
    assert all(r["Arn"].startswith("arn:aws:iam::111111111111:role/") for r in dev_roles.values())
    assert all(r["Arn"].startswith("arn:aws:iam::222222222222:role/") for r in prod_roles.values())


def test_digests_hash_the_listed_log_files_and_chain(scenario: dict[str, Any]) -> None:
    digests = sorted(scenario["digests"], key=lambda d: d["key"])
    assert len(digests) == 12
    signature = {d["key"]: d["signature"] for d in digests}
    chains: dict[tuple[str, str], list[tuple[str, dict[str, Any], bytes]]] = defaultdict(list)
    for digest in digests:
        match = DIGEST_KEY.match(digest["key"])
        assert match, digest["key"]
        body = gzip.decompress((SAMPLE / digest["key"]).read_bytes())
        content = json.loads(body)
        assert content["digestS3Object"] == digest["key"]
        for log in content["logFiles"]:
            data = gzip.decompress((SAMPLE / log["s3Object"]).read_bytes())
            assert hashlib.sha256(data).hexdigest() == log["hashValue"]
        chains[(match["account"], match["region"])].append((digest["key"], content, body))
    for chain in chains.values():
        first = chain[0][1]
        assert first["previousDigestSignature"] is None
        assert first["previousDigestHashValue"] is None
        for (key, _, body), (_, content, _) in itertools.pairwise(chain):
            assert content["previousDigestS3Object"] == key
            assert content["previousDigestSignature"] == signature[key]
            assert content["previousDigestHashValue"] == hashlib.sha256(body).hexdigest()


def test_non_event_objects_are_present_outside_the_cloudtrail_folders(
    scenario: dict[str, Any],
) -> None:
    others = scenario["files"]["other_objects"]
    assert any("/CloudTrail-Insight/" in key for key in others)
    assert any("/vpcflowlogs/" in key for key in others)
    for key in others:
        assert "/CloudTrail/" not in key
        assert (SAMPLE / key).is_file()
    insight = next(key for key in others if "/CloudTrail-Insight/" in key)
    for record in json.loads(gzip.decompress((SAMPLE / insight).read_bytes()))["Records"]:
        assert record["eventType"] == "AwsCloudTrailInsight"
        assert "userIdentity" not in record


def test_the_role_tag_changes_of_the_scenario_are_the_logged_events(
    records: dict[str, Record], scenario: dict[str, Any]
) -> None:
    """scenario.json is the machine-readable truth: each tag change is one logged event of that
    name, role, time and tags (the TagRole's time once named the console sign-in before it)."""
    logged = sorted(
        (
            r["eventName"],
            r["recipientAccountId"],
            r["requestParameters"]["roleName"],
            r["eventTime"],
            {t["key"]: t["value"] for t in r["requestParameters"].get("tags", [])},
        )
        for r in records.values()
        if r["eventName"] in ("TagRole", "CreateRole", "UntagRole") and not r.get("errorCode")
    )
    expected = sorted(
        (
            change["event"],
            change["role_arn"].split(":")[4],
            change["role_arn"].rsplit("/", 1)[1],
            change["time"],
            change["tags"],
        )
        for change in scenario["role_tag_changes"]
    )
    assert logged == expected

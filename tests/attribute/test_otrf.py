"""Real records: OTRF Security-Datasets "EC2 proxy S3 exfiltration" (103 CloudTrail records of
2020-09-14, NDJSON from a SIEM with @timestamp instead of eventTime). An attacker takes the
instance-profile credentials of MordorNginxStack-BankingWAFRole-9S3E0UAE1MM0 through a
misconfigured reverse proxy and uses them from a laptop; the console user pedro looks around.

The numbers below were counted from records.ndjson itself. Skipped where ../shared/datasets is
absent (the data set is not copied into this repository).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from .helpers import REPO, ingest, rows, verdicts

RECORDS = REPO / ".." / "shared" / "datasets" / "otrf-ec2-proxy-s3-exfiltration" / "records.ndjson"
ACCOUNT = "123456789123"
WAF_ROLE = "MordorNginxStack-BankingWAFRole-9S3E0UAE1MM0"
LOG_ROLE = "MordorLogCollectorStack-LogCollectorRole-1JJTG88NNY4KN"
STOLEN_KEY = "ASIA5FLZVX4OPVKKVBMX"
STOLEN_KEY_ISSUED_BY = "a3a3dded-7c27-42c0-a42d-891cdd436278"
PEDRO_KEY = "ASIA5FLZVX4OI4ZDQJOL"
# The attacker's calls with the instance credentials, from a Mac ([aws-cli/1.18.136 ... Darwin).
STOLEN_KEY_CALLS = {
    "19d32cc1-edab-4b96-9a11-2cd7794b2527",
    "2308e1b4-ed27-49fc-b6e4-cc9a612c1c13",
    "40266d7a-ea06-445b-875c-e17ea31b1bb4",
    "46937d3a-6d68-4ba2-9520-a2ecf06dca32",
    "5376677f-96d4-468a-9539-f0f7edbec349",
    "771299cb-e200-4926-9604-c85358b30499",
    "7d91ac29-614a-4af9-af5c-c5a80e63a0bb",
    "bf575a0c-c344-4302-a468-00e6a84a127a",
    "e5a92162-e061-4d33-a39c-c2b8ec9dbf83",
    "edc2222c-5063-47fb-9fc0-c2ffb86b9d15",
    "fddb4992-b7e8-4c4a-bce5-31fee5c25667",
}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# issued key -> (issuing event, role, session name = instance id, issued at, expires at): the
# expiry parsed from responseElements.credentials.expiration ("Sep 14, 2020, 7:01:26 AM").
SESSIONS = {
    "ASIA5FLZVX4OLY6BJN4L": ("0f902c35-794c-4864-b2e0-3c4564b857b0", LOG_ROLE,
                             "i-044b1baf4c96e1b62", utc("2020-09-14T00:50:17"),
                             utc("2020-09-14T07:01:26")),
    "ASIA5FLZVX4OAET5K4P5": ("1da77391-d4f7-4c3f-bc15-dcb4e5e1e4d8", WAF_ROLE,
                             "i-0317f6c6b66ae9c40", utc("2020-09-14T00:48:30"),
                             utc("2020-09-14T06:57:19")),
    "ASIA5FLZVX4OO3RUSEX6": ("a2de2399-b9c8-494d-b76f-cb0c377784c5", WAF_ROLE,
                             "i-0317f6c6b66ae9c40", utc("2020-09-14T00:48:30"),
                             utc("2020-09-14T06:51:49")),
    STOLEN_KEY: (STOLEN_KEY_ISSUED_BY, WAF_ROLE, "i-0317f6c6b66ae9c40",
                 utc("2020-09-14T00:48:30"), utc("2020-09-14T07:10:27")),
    "ASIA5FLZVX4OK6HMTKWY": ("c9dd614e-0d2e-4c01-992a-eec74b38399b", LOG_ROLE,
                             "i-044b1baf4c96e1b62", utc("2020-09-14T00:50:17"),
                             utc("2020-09-14T07:14:11")),
}  # fmt: skip


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not RECORDS.is_file():
        pytest.skip(f"OTRF data set not found at {RECORDS.resolve()}")
    root = tmp_path_factory.mktemp("otrf") / "warehouse"
    ingest([RECORDS], root)
    return root


@pytest.fixture(scope="module")
def classified(warehouse: Path) -> dict[str, dict[str, Any]]:
    return verdicts(warehouse)


def principal(row: dict[str, Any]) -> str:
    return row["principal_arn"] or row["invoked_by"]


def test_every_principal_has_one_exact_class(classified: dict[str, dict[str, Any]]) -> None:
    assert len(classified) == 103
    found = Counter(
        (
            principal(r),
            r["actor_kind"],
            r["access_path"],
            r["classified_by"],
            r["human_id"],
            r["agent_name"],
            r["confidence"],
        )
        for r in classified.values()
    )
    assert found == {
        # The console IAM user (console.ec2 and EC2ConsoleFrontend user agents).
        (f"arn:aws:iam::{ACCOUNT}:user/pedro", "human", "console", "human.console", "pedro",
         None, "high"): 87,
        # The instance role's credentials used from a laptop: still the instance's workload,
        # through the session ec2.amazonaws.com obtained.
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/{WAF_ROLE}/i-0317f6c6b66ae9c40", "workload",
         "direct", "workload.service_issued", None, None, "high"): 11,
        # EC2 fetching instance-profile credentials for both instances.
        ("ec2.amazonaws.com", "service", "service", "service.aws_service", None, None,
         "high"): 5,
    }  # fmt: skip


def test_the_stolen_credentials(classified: dict[str, dict[str, Any]]) -> None:
    stolen = [r for r in classified.values() if r["access_key_id"] == STOLEN_KEY]
    assert {r["event_id"] for r in stolen} == STOLEN_KEY_CALLS
    assert Counter(r["event_name"] for r in stolen) == {
        "ListObjects": 7,
        "GetObject": 2,
        "ListBuckets": 2,
    }
    assert {r["client"] for r in stolen} == {"cli"}
    assert {r["ec2_role_delivery"] for r in stolen} == {"1.0"}
    assert {r["evidence"] for r in stolen} == {
        f"session {STOLEN_KEY} of {WAF_ROLE}, whose credentials ec2.amazonaws.com issued"
    }
    assert {r["event_time_source"] for r in classified.values()} == {"@timestamp"}


def test_access_key_join(warehouse: Path, classified: dict[str, dict[str, Any]]) -> None:
    found = rows(
        warehouse,
        "SELECT issued_key, issuing_event_id, role_name, session_name, issued_at, expires_at,"
        " caller_type, caller, parent_key, root_key, chain_depth FROM sessions",
    )
    assert {
        r["issued_key"]: (
            r["issuing_event_id"],
            r["role_name"],
            r["session_name"],
            r["issued_at"],
            r["expires_at"],
        )
        for r in found
    } == SESSIONS
    assert len(found) == 5
    for r in found:
        assert (r["caller_type"], r["caller"], r["parent_key"]) == (
            "AWSService",
            "ec2.amazonaws.com",
            None,
        )
        assert (r["root_key"], r["chain_depth"]) == (r["issued_key"], 0)
    joined = rows(
        warehouse,
        "SELECT e.event_id, s.issuing_event_id FROM events AS e"
        " JOIN sessions AS s ON s.issued_key = e.access_key_id",
    )
    # Only the stolen key's 11 calls join; pedro's console key joins nothing, and the five
    # AssumeRole calls (made by the EC2 service) carry no key.
    assert {r["event_id"]: r["issuing_event_id"] for r in joined} == dict.fromkeys(
        STOLEN_KEY_CALLS, STOLEN_KEY_ISSUED_BY
    )
    assert {e for e, r in classified.items() if r["session_joined"]} == STOLEN_KEY_CALLS
    pedro = [r for r in classified.values() if r["access_key_id"] == PEDRO_KEY]
    assert len(pedro) == 87
    # Console requests: the console session (principal and creationDate), not the key.
    assert {(r["session_joined"], r["session_root"]) for r in pedro} == {
        (False, f"console:arn:aws:iam::{ACCOUNT}:user/pedro@2020-09-13T17:16:47Z")
    }
    assert {r["access_key_id"] for r in classified.values() if r["event_name"] == "AssumeRole"} == {
        None
    }

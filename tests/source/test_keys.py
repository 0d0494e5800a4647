"""classify_key: what an object is from its key alone (facts doc s.1)."""

from __future__ import annotations

from datetime import date

import pytest

from pipeline.source.keys import KeyInfo, classify_key

ORG = "o-aa11bb22cc"
ACCOUNT = "111122223333"
EVENTS_FILE = f"{ACCOUNT}_CloudTrail_us-east-1_20260701T0005Z_abcdEFGH12345678.json.gz"
DIGEST_FILE = f"{ACCOUNT}_CloudTrail-Digest_us-east-1_org-trail_us-east-1_20260701T005237Z.json.gz"
JULY_1 = date(2026, 7, 1)

CASES = {
    "org_trail_events": (
        f"AWSLogs/{ORG}/{ACCOUNT}/CloudTrail/us-east-1/2026/07/01/{EVENTS_FILE}",
        KeyInfo("events", ORG, ACCOUNT, "us-east-1", JULY_1, in_layout=True),
    ),
    "account_trail_events": (
        f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/07/01/{EVENTS_FILE}",
        KeyInfo("events", None, ACCOUNT, "us-east-1", JULY_1, in_layout=True),
    ),
    "trail_prefix_before_awslogs": (
        f"security/trails/AWSLogs/{ACCOUNT}/CloudTrail/eu-west-1/2026/07/01/{EVENTS_FILE}",
        KeyInfo("events", None, ACCOUNT, "eu-west-1", JULY_1, in_layout=True),
    ),
    "digest": (
        f"AWSLogs/{ORG}/{ACCOUNT}/CloudTrail-Digest/us-east-1/2026/07/01/{DIGEST_FILE}",
        KeyInfo("digest", ORG, ACCOUNT, "us-east-1", JULY_1, in_layout=True),
    ),
    "insight": (
        f"AWSLogs/{ACCOUNT}/CloudTrail-Insight/us-east-1/2026/07/01/insight.json.gz",
        KeyInfo("insight", None, ACCOUNT, "us-east-1", JULY_1, in_layout=True),
    ),
    "aggregated": (
        f"AWSLogs/{ACCOUNT}/CloudTrail-Aggregated/us-east-1/2026/07/01/agg.json.gz",
        KeyInfo("aggregated", None, ACCOUNT, "us-east-1", JULY_1, in_layout=True),
    ),
    "other_service": (
        f"AWSLogs/{ACCOUNT}/vpcflowlogs/us-east-1/2026/07/01/flow.log.gz",
        KeyInfo("other", None, ACCOUNT, "us-east-1", JULY_1, in_layout=True),
    ),
    "service_name_must_match_exactly": (
        f"AWSLogs/{ACCOUNT}/CloudTrailCopy/us-east-1/2026/07/01/{EVENTS_FILE}",
        KeyInfo("other", None, ACCOUNT, "us-east-1", JULY_1, in_layout=True),
    ),
    "not_an_account_under_org": (
        f"AWSLogs/{ORG}/not-an-account/CloudTrail/us-east-1/2026/07/01/{EVENTS_FILE}",
        KeyInfo("other", ORG, in_layout=True),
    ),
    "loose_file_under_awslogs": (
        "AWSLogs/readme.txt",
        KeyInfo("other", in_layout=True),
    ),
    "windows_path": (
        rf"C:\logs\AWSLogs\{ACCOUNT}\CloudTrail\us-east-1\2026\07\01\{EVENTS_FILE}",
        KeyInfo("events", None, ACCOUNT, "us-east-1", JULY_1, in_layout=True),
    ),
    "export_outside_layout": (
        "exports/siem/cloudtrail-2026-07-01.ndjson",
        KeyInfo("events"),
    ),
    "awslogs_as_substring_is_not_the_layout": (
        f"myAWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/07/01/{EVENTS_FILE}",
        KeyInfo("events"),
    ),
    "file_directly_in_region_folder": (
        f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/{EVENTS_FILE}",
        KeyInfo("events", None, ACCOUNT, "us-east-1", None, in_layout=True),
    ),
    "date_folders_incomplete": (
        f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/07/{EVENTS_FILE}",
        KeyInfo("events", None, ACCOUNT, "us-east-1", None, in_layout=True),
    ),
    "bad_month": (
        f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/13/01/{EVENTS_FILE}",
        KeyInfo("events", None, ACCOUNT, "us-east-1", None, in_layout=True),
    ),
    "bad_day": (
        f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/02/30/{EVENTS_FILE}",
        KeyInfo("events", None, ACCOUNT, "us-east-1", None, in_layout=True),
    ),
    "non_numeric_date": (
        f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/yyyy/mm/dd/{EVENTS_FILE}",
        KeyInfo("events", None, ACCOUNT, "us-east-1", None, in_layout=True),
    ),
}


@pytest.mark.parametrize(("key", "expected"), CASES.values(), ids=CASES.keys())
def test_classify_key(key: str, expected: KeyInfo) -> None:
    assert classify_key(key) == expected

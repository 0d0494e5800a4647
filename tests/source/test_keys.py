"""classify_key: what an object is from its key alone (facts doc s.1)."""

from __future__ import annotations

from datetime import date

import botocore.loaders
import pytest

from pipeline.errors import UsageError
from pipeline.source.keys import KeyInfo, check_account_id, check_region, classify_key

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


def _aws_regions() -> list[str]:
    """Every region botocore knows, in every partition (aws, aws-cn, aws-us-gov, the isolated
    ones, the European Sovereign Cloud), but its "aws-global"-like endpoints, which name no
    region."""
    partitions = botocore.loaders.create_loader().load_data("partitions")["partitions"]
    regions = [name for p in partitions for name in p["regions"] if not name.endswith("-global")]
    assert {"us-east-1", "eu-west-3", "us-gov-west-1", "cn-north-1"} <= set(regions)
    return regions


def test_every_aws_region_is_a_region_name() -> None:
    for region in _aws_regions():
        check_region(region)


@pytest.mark.parametrize("region", ["abc", "US-EAST-1", "us-east1", "us_east_1", "111122223333"])
def test_what_is_no_region_name_is_a_usage_error(region: str) -> None:
    """`ingest --region abc` ran to its end having read nothing, a notice aside."""
    with pytest.raises(UsageError) as caught:
        check_region(region)
    assert caught.value.one_line() == (
        f"--region {region!r} is not an AWS region name (write it as AWS does, in lower case,"
        " e.g. us-east-1 or eu-west-3)"
    )


@pytest.mark.parametrize("account", ["abc", "12345678901", "1234567890123", "123456789012\n"])
def test_what_is_no_account_id_is_a_usage_error(account: str) -> None:
    with pytest.raises(UsageError) as caught:
        check_account_id(account)
    assert caught.value.one_line() == (
        f"--account {account!r} is not an account id (use the 12 digits)"
    )
    check_account_id(ACCOUNT)

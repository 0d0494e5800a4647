"""CloudTrail's S3 key layout: what an object is, from its key alone.

`[PREFIX/]AWSLogs/[o-ORGID/]ACCOUNT/SERVICE/REGION/YYYY/MM/DD/FILE`. SERVICE tells event files
(`CloudTrail`) from digests, Insights, aggregated events and other services' logs. Matching is on
exact path segments, never substrings (facts doc s.1). The account in the key is only a
fallback: a record's recipientAccountId is the truth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from pipeline.errors import UsageError

ObjectKind = Literal["events", "digest", "insight", "aggregated", "other"]

SERVICE_KINDS: dict[str, ObjectKind] = {
    "CloudTrail": "events",
    "CloudTrail-Digest": "digest",
    "CloudTrail-Insight": "insight",
    "CloudTrail-Aggregated": "aggregated",
}
ORG_ID = re.compile(r"^o-[a-z0-9]{10,32}$")
ACCOUNT_ID = re.compile(r"^\d{12}$")
# The shape of every AWS region's name (botocore's partitions: us-east-1, eu-west-3,
# us-gov-west-1, cn-north-1, us-isob-east-1, eusc-de-east-1): letters, a hyphen before each
# further group of letters, a hyphen and a number. Lower case: CloudTrail's folders and
# awsRegion are, and a filter compares exactly.
REGION_NAME = re.compile(r"[a-z]{2,}(?:-[a-z]+)+-\d+")


def check_account_id(value: str, flag: str = "--account") -> None:
    """A usage error unless `value` is an account id, 12 digits: any other value matches no
    record, and a command would run to its end without a word about it."""
    if not ACCOUNT_ID.fullmatch(value):
        raise UsageError(f"{flag} {value!r} is not an account id", hint="use the 12 digits")


def check_region(value: str, flag: str = "--region") -> None:
    """A usage error unless `value` has the shape of a region's name (REGION_NAME), for the
    same reason."""
    if not REGION_NAME.fullmatch(value):
        raise UsageError(
            f"{flag} {value!r} is not an AWS region name",
            hint="write it as AWS does, in lower case, e.g. us-east-1 or eu-west-3",
        )


@dataclass(frozen=True)
class KeyInfo:
    kind: ObjectKind
    org_id: str | None = None
    account: str | None = None
    region: str | None = None
    day: date | None = None
    in_layout: bool = False  # True when the key follows the AWSLogs layout


def classify_key(key: str) -> KeyInfo:
    """Kind, account, region and day of an object from its key (or relative path).

    Keys outside the AWSLogs layout (a folder of exports, a single file) are event candidates
    whose format is decided by content.
    """
    parts = key.replace("\\", "/").split("/")
    try:
        start = len(parts) - 1 - parts[::-1].index("AWSLogs")
    except ValueError:
        return KeyInfo("events")
    rest = parts[start + 1 :]
    org_id = None
    if rest and ORG_ID.match(rest[0]):
        org_id, rest = rest[0], rest[1:]
    if len(rest) < 2 or not ACCOUNT_ID.match(rest[0]):
        return KeyInfo("other", org_id, in_layout=True)
    account, service = rest[0], rest[1]
    kind = SERVICE_KINDS.get(service, "other")
    region = rest[2] if len(rest) > 3 else None
    day = None
    if len(rest) >= 7:
        try:
            day = date(int(rest[3]), int(rest[4]), int(rest[5]))
        except ValueError:
            day = None
    return KeyInfo(kind, org_id, account, region, day, in_layout=True)

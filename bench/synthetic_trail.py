#!/usr/bin/env python3
"""A synthetic CloudTrail organization trail for benchmarks: deterministic, fast, cached.

    .venv/bin/python bench/synthetic_trail.py OUT [--events 1000000] [--files 2000]

Writes `OUT/AWSLogs/o-ORGID/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/..._CloudTrail_REGION_...json.gz`
objects (`{"Records": [...]}`, gzip level 6) and an index `OUT.json` beside the folder: 2 accounts,
3 regions, 90 days, records of about 1.5 KB of JSON from a dozen kinds of calls (S3 and DynamoDB
data events, where `requestParameters.key` is a string for S3 and an object for DynamoDB;
AssumeRole with session tags and credentials; service-invoked KMS and STS calls; EC2, IAM, Logs,
Secrets Manager errors, console sign-ins).

Speed: each kind of record is encoded once as a template and only its placeholders are
substituted per event (no per-event deepcopy or encode); files are written by one process per
core; each file is rendered and compressed RENDER_CHUNK records at a time, so memory stays flat
at any size. The same parameters always give the same bytes: a per-file RNG seeded from the
file's index, gzip headers without name or mtime, event IDs unique by construction.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import itertools
import json
import multiprocessing
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from random import Random
from typing import Any

import msgspec

# Bump when the records change: invalidates cached data sets. 2: every issued key is unique (the
# keys of version 1 were drawn from a small pool: ~2.6% of 10M events' ~1.05M STS responses showed
# a key another response showed too, which the attribution reads as masked keys).
GENERATOR_VERSION = 2
SEED = 20250401
ORG_ID = "o-a1b2c3d4e5"
ACCOUNTS = ("111122223333", "444455556666")
REGIONS = ("us-east-1", "eu-west-1", "us-west-2")
FIRST_DAY = date(2025, 4, 1)
DAYS = 90
GZIP_LEVEL = 6
WINDOW_SECONDS = 300  # CloudTrail delivers about every 5 minutes: one file covers one window
RENDER_CHUNK = 1000  # records rendered and compressed at a time: flat memory at any file size

_TOKEN = re.compile(r'"##(\w+)##"|@@(\w+)@@')


@dataclass(frozen=True)
class Template:
    """A record encoded once; per event only the placeholders are substituted.

    `@@name@@` inside a string is replaced by raw text; `"##name##"` (a whole JSON value) by a
    JSON fragment (a number, an object, null). Values are generated from safe alphabets, so no
    escaping is needed. No per-event deepcopy or encode: one join per record.
    """

    literals: tuple[str, ...]
    names: tuple[str, ...]

    @classmethod
    def of(cls, record: dict[str, Any]) -> Template:
        text = msgspec.json.encode(record).decode()
        literals: list[str] = []
        names: list[str] = []
        pos = 0
        for match in _TOKEN.finditer(text):
            literals.append(text[pos : match.start()])
            names.append(match.group(1) or match.group(2))
            pos = match.end()
        literals.append(text[pos:])
        return cls(tuple(literals), tuple(names))

    def render(self, values: dict[str, str]) -> str:
        out = [self.literals[0]]
        for name, literal in zip(self.names, self.literals[1:], strict=True):
            out.append(values[name])
            out.append(literal)
        return "".join(out)


def _assumed_role(**context: str) -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "principalId": "@@role_id@@:@@session@@",
        "arn": "arn:aws:sts::@@account@@:assumed-role/@@role@@/@@session@@",
        "accountId": "@@account@@",
        "accessKeyId": "@@akid@@",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "@@role_id@@",
                "arn": "arn:aws:iam::@@account@@:role@@role_path@@@@role@@",
                "accountId": "@@account@@",
                "userName": "@@role@@",
            },
            "webIdFederationData": {},
            "attributes": {"creationDate": "@@session_created@@", "mfaAuthenticated": "false"},
            **context,
        },
    }


IDENTITIES: dict[str, Template] = {
    "assumed_role": Template.of(_assumed_role()),
    "assumed_role_source_identity": Template.of(
        _assumed_role(sourceIdentity="@@source_identity@@")
    ),
    "instance_role": Template.of(_assumed_role(ec2RoleDelivery="2.0")),
    "iam_user": Template.of(
        {
            "type": "IAMUser",
            "principalId": "@@user_id@@",
            "arn": "arn:aws:iam::@@account@@:user/@@user@@",
            "accountId": "@@account@@",
            "accessKeyId": "@@user_akid@@",
            "userName": "@@user@@",
        }
    ),
    "aws_service": Template.of({"type": "AWSService", "invokedBy": "@@service_principal@@"}),
}


def _base(
    source: str, name: str, category: str, read_only: bool, host: str = "", **rest: Any
) -> dict[str, Any]:
    """A record of the common shape; `host` is the TLS host header (default: regional)."""
    host = host or source.split(".", 1)[0] + ".@@region@@.amazonaws.com"
    record: dict[str, Any] = {
        "eventVersion": "1.09" if category == "Management" else "1.10",
        "userIdentity": "##identity##",
        "eventTime": "@@time@@",
        "eventSource": source,
        "eventName": name,
        "awsRegion": "@@region@@",
        "sourceIPAddress": "@@ip@@",
        "userAgent": "@@user_agent@@",
        "requestParameters": None,
        "responseElements": None,
        "requestID": "@@request_id@@",
        "eventID": "@@event_id@@",
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": category == "Management",
        "recipientAccountId": "@@account@@",
        "eventCategory": category,
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": host,
        },
    }
    record.update(rest)
    return record


S3_HOST = "@@bucket@@.s3.@@region@@.amazonaws.com"
S3_RESOURCES = [
    {"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::@@bucket@@/@@s3_key@@"},
    {"accountId": "@@account@@", "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::@@bucket@@"},
]
S3_EXTRA = {
    "SignatureVersion": "SigV4",
    "CipherSuite": "TLS_AES_128_GCM_SHA256",
    "bytesTransferredIn": "##bytes_in##",
    "AuthenticationMethod": "AuthHeader",
    "x-amz-id-2": "@@amz_id2@@",
    "bytesTransferredOut": "##bytes_out##",
}
DDB_RESOURCES = [
    {
        "accountId": "@@account@@",
        "type": "AWS::DynamoDB::Table",
        "ARN": "arn:aws:dynamodb:@@region@@:@@account@@:table/@@table@@",
    }
]
KMS_KEY_ARN = "arn:aws:kms:@@region@@:@@account@@:key/@@kms_key@@"


@dataclass(frozen=True)
class Kind:
    name: str
    weight: int
    template: Template
    identities: tuple[str, ...]  # picked uniformly per event
    values: Callable[[RecordFactory, dict[str, str]], None]


def _kinds() -> list[Kind]:
    human = (
        "assumed_role",
        "assumed_role",
        "assumed_role",
        "assumed_role_source_identity",
        "instance_role",
        "iam_user",
    )
    return [
        Kind(
            "s3_get_object",
            14,
            Template.of(
                _base(
                    "s3.amazonaws.com",
                    "GetObject",
                    "Data",
                    True,
                    host=S3_HOST,
                    requestParameters={
                        "bucketName": "@@bucket@@",
                        "Host": S3_HOST,
                        "key": "@@s3_key@@",
                    },
                    additionalEventData=S3_EXTRA,
                    resources=S3_RESOURCES,
                )
            ),
            human,
            RecordFactory.s3_values,
        ),
        Kind(
            "s3_put_object",
            5,
            Template.of(
                _base(
                    "s3.amazonaws.com",
                    "PutObject",
                    "Data",
                    False,
                    host=S3_HOST,
                    requestParameters={
                        "bucketName": "@@bucket@@",
                        "Host": S3_HOST,
                        "key": "@@s3_key@@",
                        "x-amz-server-side-encryption": "aws:kms",
                        "x-amz-server-side-encryption-aws-kms-key-id": KMS_KEY_ARN,
                    },
                    responseElements={
                        "x-amz-server-side-encryption": "aws:kms",
                        "x-amz-server-side-encryption-aws-kms-key-id": KMS_KEY_ARN,
                        "x-amz-version-id": "@@version_id@@",
                    },
                    additionalEventData=S3_EXTRA,
                    resources=S3_RESOURCES,
                    vpcEndpointId="vpce-0a1b2c3d4e5f67890",
                    vpcEndpointAccountId="@@account@@",
                )
            ),
            human,
            RecordFactory.s3_values,
        ),
        Kind(
            "dynamodb_get_item",
            10,
            Template.of(
                _base(
                    "dynamodb.amazonaws.com",
                    "GetItem",
                    "Data",
                    True,
                    requestParameters={
                        "tableName": "@@table@@",
                        "key": "##ddb_key##",  # an object here, a string for S3
                        "consistentRead": False,
                        "projectionExpression": "#n, price",
                    },
                    resources=DDB_RESOURCES,
                )
            ),
            human,
            RecordFactory.ddb_values,
        ),
        Kind(
            "dynamodb_put_item",
            4,
            Template.of(
                _base(
                    "dynamodb.amazonaws.com",
                    "PutItem",
                    "Data",
                    False,
                    requestParameters={
                        "tableName": "@@table@@",
                        "key": "##ddb_key##",
                        "returnValue": "NONE",
                        "returnConsumedCapacity": "TOTAL",
                    },
                    responseElements={"consumedCapacity": {"capacityUnits": 1.0}},
                    resources=DDB_RESOURCES,
                )
            ),
            human,
            RecordFactory.ddb_values,
        ),
        Kind(
            "sts_assume_role",
            6,
            Template.of(
                _base(
                    "sts.amazonaws.com",
                    "AssumeRole",
                    "Management",
                    True,
                    requestParameters={
                        "roleArn": "arn:aws:iam::@@account@@:role/@@target_role@@",
                        "roleSessionName": "@@new_session@@",
                        "durationSeconds": 3600,
                        "tags": [
                            {"key": "Usage", "value": "Agent"},
                            {"key": "MCPServer", "value": "@@mcp_server@@"},
                        ],
                        "transitiveTagKeys": ["Usage", "MCPServer"],
                        "sourceIdentity": "@@source_identity@@",
                    },
                    responseElements={
                        "credentials": {
                            "accessKeyId": "@@new_akid@@",
                            "sessionToken": "@@session_token@@",
                            "expiration": "@@expiration@@",
                        },
                        "assumedRoleUser": {
                            "assumedRoleId": "@@target_role_id@@:@@new_session@@",
                            "arn": "arn:aws:sts::@@account@@:assumed-role/@@target_role@@/@@new_session@@",
                        },
                        "packedPolicySize": 9,
                        "sourceIdentity": "@@source_identity@@",
                    },
                    resources=[
                        {
                            "accountId": "@@account@@",
                            "type": "AWS::IAM::Role",
                            "ARN": "arn:aws:iam::@@account@@:role/@@target_role@@",
                        }
                    ],
                    sharedEventID="@@shared_event_id@@",
                )
            ),
            human,
            RecordFactory.assume_role_values,
        ),
        Kind(
            "sts_assume_role_service",
            5,
            Template.of(
                _base(
                    "sts.amazonaws.com",
                    "AssumeRole",
                    "Management",
                    True,
                    requestParameters={
                        "roleArn": "arn:aws:iam::@@account@@:role/@@target_role@@",
                        "roleSessionName": "@@new_session@@",
                    },
                    responseElements={
                        "credentials": {
                            "accessKeyId": "@@new_akid@@",
                            "sessionToken": "@@session_token@@",
                            "expiration": "@@expiration@@",
                        },
                        "assumedRoleUser": {
                            "assumedRoleId": "@@target_role_id@@:@@new_session@@",
                            "arn": "arn:aws:sts::@@account@@:assumed-role/@@target_role@@/@@new_session@@",
                        },
                    },
                    resources=[
                        {
                            "accountId": "@@account@@",
                            "type": "AWS::IAM::Role",
                            "ARN": "arn:aws:iam::@@account@@:role/@@target_role@@",
                        }
                    ],
                    sharedEventID="@@shared_event_id@@",
                    eventType="AwsServiceEvent",
                )
            ),
            ("aws_service",),
            RecordFactory.assume_role_values,
        ),
        Kind(
            "ec2_describe_instances",
            14,
            Template.of(
                _base(
                    "ec2.amazonaws.com",
                    "DescribeInstances",
                    "Management",
                    True,
                    requestParameters={
                        "instancesSet": {},
                        "filterSet": {
                            "items": [
                                {
                                    "name": "instance-state-name",
                                    "valueSet": {"items": [{"value": "running"}]},
                                },
                                {
                                    "name": "tag:Team",
                                    "valueSet": {"items": [{"value": "@@team@@"}]},
                                },
                            ]
                        },
                        "maxResults": 1000,
                    },
                )
            ),
            human,
            RecordFactory.no_values,
        ),
        Kind(
            "kms_decrypt",
            22,
            Template.of(
                _base(
                    "kms.amazonaws.com",
                    "Decrypt",
                    "Management",
                    True,
                    requestParameters={
                        "encryptionContext": {"aws:s3:arn": "arn:aws:s3:::@@bucket@@/@@s3_key@@"},
                        "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
                    },
                    resources=[
                        {"accountId": "@@account@@", "type": "AWS::KMS::Key", "ARN": KMS_KEY_ARN}
                    ],
                )
            ),
            ("aws_service",),
            RecordFactory.s3_values,
        ),
        Kind(
            "iam_get_role",
            6,
            Template.of(
                _base(
                    "iam.amazonaws.com",
                    "GetRole",
                    "Management",
                    True,
                    host="iam.amazonaws.com",
                    requestParameters={"roleName": "@@target_role@@"},
                )
            ),
            human,
            RecordFactory.role_values,
        ),
        Kind(
            "logs_create_log_stream",
            8,
            Template.of(
                _base(
                    "logs.amazonaws.com",
                    "CreateLogStream",
                    "Management",
                    False,
                    requestParameters={
                        "logGroupName": "/aws/lambda/@@function@@",
                        "logStreamName": "@@day_path@@/[$LATEST]@@hex32@@",
                    },
                )
            ),
            ("assumed_role",),
            RecordFactory.lambda_values,
        ),
        Kind(
            "secrets_access_denied",
            3,
            Template.of(
                _base(
                    "secretsmanager.amazonaws.com",
                    "GetSecretValue",
                    "Management",
                    True,
                    errorCode="AccessDenied",
                    errorMessage=(
                        "User: arn:aws:sts::@@account@@:assumed-role/@@role@@/@@session@@ is not "
                        "authorized to perform: secretsmanager:GetSecretValue on resource: "
                        "prod/db/@@table@@ because no identity-based policy allows the "
                        "secretsmanager:GetSecretValue action"
                    ),
                )
            ),
            ("assumed_role",),
            RecordFactory.ddb_values,
        ),
        Kind(
            "sts_get_caller_identity",
            7,
            Template.of(_base("sts.amazonaws.com", "GetCallerIdentity", "Management", True)),
            human,
            RecordFactory.no_values,
        ),
        Kind(
            "console_login",
            1,
            Template.of(
                _base(
                    "signin.amazonaws.com",
                    "ConsoleLogin",
                    "Management",
                    False,
                    host="signin.aws.amazon.com",
                    eventType="AwsConsoleSignIn",
                    responseElements={"ConsoleLogin": "Success"},
                    additionalEventData={
                        "LoginTo": "https://console.aws.amazon.com/console/home?state=hashArgs%23",
                        "MobileVersion": "No",
                        "MFAIdentifier": "arn:aws:iam::@@account@@:mfa/@@user@@",
                        "MFAUsed": "Yes",
                    },
                )
            ),
            ("iam_user",),
            RecordFactory.no_values,
        ),
    ]


USER_AGENTS = (
    "aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/linux#6.1.102 md/arch#x86_64 lang/python#3.11.9 "
    "md/pyimpl#CPython cfg/retry-mode#standard md/command#s3.cp",
    "Boto3/1.35.10 md/Botocore#1.35.10 ua/2.0 os/linux#6.8.0-1012-aws md/arch#x86_64 "
    "lang/python#3.12.4 Botocore/1.35.10",
    "aws-sdk-java/2.26.7 Linux/5.10.219-208.866.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.11+9-LTS "
    "Java/17.0.11 vendor/Amazon.com_Inc. exec-env/AWS_ECS_FARGATE",
    "Boto3/1.35.10 md/Botocore#1.35.10 ua/2.0 os/macos#23.5.0 md/arch#arm64 lang/python#3.12.4 "
    "md/pyimpl#CPython md/awslabs#mcp#aws-api-mcp-server#0.2.4 cfg/retry-mode#standard",
    "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64 "
    "api/dynamodb#1.34.4",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "AWS Internal",
    "console.amazonaws.com",
    "[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.750]",
    "aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/linux#6.1.102 md/arch#x86_64 lang/python#3.11.9",
)
SERVICE_PRINCIPALS = ("s3.amazonaws.com", "lambda.amazonaws.com", "ec2.amazonaws.com")
BUCKETS = ("acme-datalake-raw", "acme-ml-artifacts", "acme-app-uploads", "acme-backups-prod")
S3_PREFIXES = ("raw/events", "curated/sales", "models/checkpoints", "uploads/users", "exports")
S3_EXTS = ("snappy.parquet", "json.gz", "csv", "bin", "png")
TABLES = ("orders", "customers", "sessions", "inventory", "feature-flags")
FUNCTIONS = ("ingest-orders", "resize-images", "nightly-report", "token-rotator")
MCP_SERVERS = ("infra-agent", "cost-agent", "support-bot")
TEAMS = ("platform", "data", "ml", "web")
ROLES = (
    ("/", "AgentRole"),
    ("/service-role/", "OrdersLambdaRole"),
    ("/", "GitHubActionsDeploy"),
    ("/aws-reserved/sso.amazonaws.com/", "AWSReservedSSO_PowerUserAccess_0123456789abcdef"),
    ("/", "DataScienceRole"),
    ("/", "EC2AppServerRole"),
)
USERS = ("alice", "bob", "ci-legacy", "breakglass")
SESSIONS = (
    "alice@example.com",
    "bob@example.com",
    "i-0abc123def4567890",
    "botocore-session-17",
    "mcp-1a2b3c4d",
    "GitHubActions",
)
SOURCE_IDENTITIES = ("alice@example.com", "bob@example.com", "agent-infra-01")
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_SCRAMBLE = 0x9E3779B97F4B  # odd, so multiplying by it modulo 2**48 is a bijection
_KEY_SCRAMBLE = 0x9E3779B97F4A7C15F39D  # odd: a bijection modulo 2**80
B62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _stable_id(prefix: str, text: str, length: int = 17) -> str:
    """Deterministic IAM-style unique id (AROA..., AIDA...) from a name."""
    rng = Random(f"{prefix}:{text}")
    return prefix + "".join(rng.choice(B32) for _ in range(length))


class RecordFactory:
    """Renders the records of one file from the kind templates and a per-file RNG."""

    def __init__(self, rng: Random, account: str, region: str, day: date, window: int) -> None:
        self.index = 0  # the global index of the record being made (record())
        self.rng = rng
        self.account = account
        self.region = region
        self.day = day
        # Random text to slice from: base64 for tokens, base32 for access key ids.
        self.b64 = base64.b64encode(rng.randbytes(24_000)).decode()
        self.b32 = base64.b32encode(rng.randbytes(6_000)).decode()
        iso_day = day.isoformat()
        self.times = [
            f"{iso_day}T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z"
            for s in range(window, window + WINDOW_SECONDS)
        ]
        earlier = max(0, window - 3600)
        self.created = [self.times[0]] + [
            f"{iso_day}T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z"
            for s in (earlier, earlier + 600, earlier + 1700)
        ]
        self.expiration = f"{day:%b} {day.day}, {day.year}, {window // 3600 % 12 + 1}:00:00 PM"
        self.day_path = day.strftime("%Y/%m/%d")
        self.ips = [
            f"{rng.randrange(3, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            for _ in range(24)
        ]
        self.kinds = KINDS
        self.cum_weights = list(itertools.accumulate(k.weight for k in KINDS))

    # ---- small random pieces ------------------------------------------------------------
    def _b64(self, n: int) -> str:
        start = self.rng.randrange(len(self.b64) - n)
        return self.b64[start : start + n]

    def _key_id(self, prefix: str) -> str:
        start = self.rng.randrange(len(self.b32) - 16)
        return prefix + self.b32[start : start + 16]

    def _uuid(self, unique: int | None = None) -> str:
        """A random UUID 4; with `unique`, its last 48 bits are a bijection of that number."""
        h = f"{self.rng.getrandbits(128):032x}"
        last = h[20:] if unique is None else f"{unique * _SCRAMBLE % (1 << 48):012x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{last}"

    # ---- per-kind values ----------------------------------------------------------------
    def no_values(self, v: dict[str, str]) -> None:
        return None

    def s3_values(self, v: dict[str, str]) -> None:
        rng = self.rng
        v["bucket"] = rng.choice(BUCKETS)
        v["s3_key"] = (
            f"{rng.choice(S3_PREFIXES)}/{self.day_path}/part-{rng.randrange(100_000):05d}-"
            f"{rng.getrandbits(32):08x}.{rng.choice(S3_EXTS)}"
        )
        v["bytes_in"] = str(rng.randrange(0, 3) * rng.randrange(1, 50_000_000))
        v["bytes_out"] = str(rng.randrange(1, 200_000_000))
        v["amz_id2"] = self._b64(76)
        v["version_id"] = self._b64(32).replace("+", "_").replace("/", ".")
        v["kms_key"] = "1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d"

    def ddb_values(self, v: dict[str, str]) -> None:
        rng = self.rng
        v["table"] = rng.choice(TABLES)
        v["ddb_key"] = (
            f'{{"pk":"CUSTOMER#{rng.randrange(1_000_000)}",'
            f'"sk":"ORDER#{self.day.isoformat()}#{rng.randrange(10_000):04d}"}}'
        )

    def role_values(self, v: dict[str, str]) -> None:
        _, name = self.rng.choice(ROLES)
        v["target_role"] = name
        v["target_role_id"] = _ROLE_IDS[name]

    def assume_role_values(self, v: dict[str, str]) -> None:
        rng = self.rng
        self.role_values(v)
        v["new_session"] = rng.choice(SESSIONS)
        # Unique in the data set, as AWS's are: a bijection of the record's global index.
        v["new_akid"] = "ASIA" + base64.b32encode(
            (self.index * _KEY_SCRAMBLE % (1 << 80)).to_bytes(10, "big")
        ).decode()
        v["session_token"] = self._b64(rng.randrange(350, 650))
        v["expiration"] = self.expiration
        v["mcp_server"] = rng.choice(MCP_SERVERS)
        v["shared_event_id"] = self._uuid()

    def lambda_values(self, v: dict[str, str]) -> None:
        v["function"] = self.rng.choice(FUNCTIONS)
        v["day_path"] = self.day_path
        v["hex32"] = f"{self.rng.getrandbits(128):032x}"

    # ---- one record ---------------------------------------------------------------------
    def record(self, global_index: int) -> str:
        rng = self.rng
        kind = rng.choices(self.kinds, cum_weights=self.cum_weights)[0]
        path, role = rng.choice(ROLES)
        user = rng.choice(USERS)
        v: dict[str, str] = {
            "account": self.account,
            "region": self.region,
            "time": rng.choice(self.times),
            "event_id": self._uuid(global_index),  # unique by construction
            "request_id": self._uuid(),
            "user_agent": rng.choice(USER_AGENTS),
            "role": role,
            "role_path": path,
            "role_id": _ROLE_IDS[role],
            "session": rng.choice(SESSIONS),
            "session_created": rng.choice(self.created),
            "source_identity": rng.choice(SOURCE_IDENTITIES),
            "akid": self._key_id("ASIA"),
            "user": user,
            "user_id": _USER_IDS[user],
            "user_akid": _USER_KEYS[user],
            "service_principal": rng.choice(SERVICE_PRINCIPALS),
            "team": rng.choice(TEAMS),
        }
        self.index = global_index
        kind.values(self, v)
        identity = rng.choice(kind.identities)
        v["identity"] = IDENTITIES[identity].render(v)
        if identity == "aws_service":
            v["ip"] = v["user_agent"] = v["service_principal"]
        else:
            v["ip"] = rng.choice(self.ips)
        return kind.template.render(v)


KINDS = _kinds()
_ROLE_IDS = {name: _stable_id("AROA", name) for _, name in ROLES}
_USER_IDS = {name: _stable_id("AIDA", name) for name in USERS}
_USER_KEYS = {name: _stable_id("AKIA", name, 16) for name in USERS}


@dataclass(frozen=True)
class FileSpec:
    index: int
    relpath: str
    events: int
    first_event: int  # global index of the file's first record (event ids are unique)
    account: str
    region: str
    day: date
    window: int  # second of the day the file's records start at


@dataclass(frozen=True)
class FileStats:
    relpath: str
    events: int
    compressed: int
    uncompressed: int


def plan_files(events: int, files: int) -> list[FileSpec]:
    """Deterministic placement: files spread evenly over the days, accounts and regions."""
    specs = []
    first = 0
    for i in range(files):
        n = events // files + (1 if i < events % files else 0)
        rng = Random(f"{SEED}:plan:{i}")
        account = ACCOUNTS[i % len(ACCOUNTS)]
        region = REGIONS[i // len(ACCOUNTS) % len(REGIONS)]
        day = FIRST_DAY + timedelta(days=i * DAYS // files)
        window = rng.randrange(0, 86_400 - WINDOW_SECONDS - 600) // 60 * 60
        delivered = window + WINDOW_SECONDS + rng.randrange(60, 600)
        unique = "".join(rng.choice(B62) for _ in range(16))
        name = (
            f"{account}_CloudTrail_{region}_{day:%Y%m%d}T{delivered // 3600:02d}"
            f"{delivered // 60 % 60:02d}Z_{unique}.json.gz"
        )
        relpath = f"AWSLogs/{ORG_ID}/{account}/CloudTrail/{region}/{day:%Y/%m/%d}/{name}"
        specs.append(FileSpec(i, relpath, n, first, account, region, day, window))
        first += n
    return specs


def write_file(root: str, spec: FileSpec) -> FileStats:
    """Render and gzip one file, RENDER_CHUNK records at a time (flat memory)."""
    factory = RecordFactory(
        Random(f"{SEED}:file:{spec.index}"), spec.account, spec.region, spec.day, spec.window
    )
    path = Path(root) / spec.relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    uncompressed = 0
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=0) as gz,
    ):
        head = '{"Records":['
        for start in range(0, spec.events, RENDER_CHUNK):
            stop = min(spec.events, start + RENDER_CHUNK)
            text = ",".join(factory.record(spec.first_event + i) for i in range(start, stop))
            chunk = (head + text).encode()
            gz.write(chunk)
            uncompressed += len(chunk)
            head = ","
        tail = b"]}" if spec.events else b'{"Records":[]}'
        gz.write(tail)
        uncompressed += len(tail)
    return FileStats(spec.relpath, spec.events, path.stat().st_size, uncompressed)


def _write_many(root: str, specs: list[FileSpec]) -> list[FileStats]:
    return [write_file(root, spec) for spec in specs]


@dataclass
class Dataset:
    root: Path
    events: int
    files: list[FileStats]
    generated_seconds: float | None = None  # None when reused from the cache

    @property
    def compressed(self) -> int:
        return sum(f.compressed for f in self.files)

    @property
    def uncompressed(self) -> int:
        return sum(f.uncompressed for f in self.files)

    @property
    def glob(self) -> str:
        return str(self.root / "AWSLogs/*/*/CloudTrail/*/*/*/*/*.json.gz")

    def paths(self) -> list[str]:
        return [str(self.root / f.relpath) for f in self.files]


def ensure_dataset(root: Path, events: int, files: int, processes: int) -> Dataset:
    """The data set for these parameters, generated only when missing or different."""
    params = {"generator": GENERATOR_VERSION, "seed": SEED, "events": events, "files": files}
    index = root.with_name(root.name + ".json")  # beside the data: not an input object
    if index.exists():
        saved = json.loads(index.read_text())
        stats = [FileStats(*row) for row in saved["files"]]
        if saved["params"] == params and all((root / s.relpath).is_file() for s in stats):
            return Dataset(root, events, stats)
    index.unlink(missing_ok=True)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    specs = plan_files(events, files)
    batch = max(1, min(16, len(specs) // (processes * 8) or 1))
    batches = [specs[i : i + batch] for i in range(0, len(specs), batch)]
    started = time.perf_counter()
    stats = []
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        for done in pool.map(_write_many, [str(root)] * len(batches), batches):
            stats.extend(done)
    seconds = time.perf_counter() - started
    os.sync()  # flush now, not during the first measurement
    # Written last: an interrupted generation leaves no index, so the next run starts over.
    index.write_text(
        json.dumps({"params": params, "files": [list(asdict(s).values()) for s in stats]})
    )
    return Dataset(root, events, stats, seconds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("out", help="folder to write (its index goes to OUT.json)")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=2_000)
    args = parser.parse_args(argv)
    data = ensure_dataset(Path(args.out).resolve(), args.events, args.files, os.cpu_count() or 1)
    state = f"generated in {data.generated_seconds:.1f} s" if data.generated_seconds else "cached"
    print(
        f"{data.events:,} events in {len(data.files):,} files, {data.compressed / 1e6:,.1f} MB "
        f"gzipped, {data.uncompressed / 1e6:,.1f} MB of JSON ({state}): {data.root}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Generate agenttrail's sample CloudTrail data set, deterministically.

Run ``python sample_logs/generate.py [--out DIR]`` (default: this script's folder). It deletes and
rewrites only what it generates inside DIR: ``AWSLogs/``, ``iam/``, ``labels.csv`` and
``scenario.json``. Two runs give byte-identical files.

The scenario (see README.md beside this file) is a set of actors. Each actor knows who it is, so
every event it emits carries its expected label (actor_kind, access_path, agent_name) from the
scenario's own definition. This script therefore uses only the standard library and never imports
the ``pipeline`` package: the labels are an independent truth to test the classifier against.

Record shapes follow ``../shared/docs/cloudtrail-facts.md``. Everything secret-looking is fake:
session tokens, digest signatures, the public-key fingerprint, IP addresses (RFC 5737 ranges).
"""

from __future__ import annotations

import argparse
import base64
import copy
import csv
import dataclasses
import gzip
import hashlib
import io
import json
import random
import re
import shutil
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------------------------
# The world: organization, accounts, regions, period
# ---------------------------------------------------------------------------------------------

SEED = "agenttrail-sample-logs-v1"
ORG_ID = "o-a1b2c3d4e5"
DEV = "111111111111"  # the organization's "dev" account
PROD = "222222222222"  # the organization's "prod" account
ACCOUNTS = (DEV, PROD)
US = "us-east-1"
EU = "eu-west-1"
REGIONS = (US, EU)
PERIOD_START = date(2026, 4, 1)  # 2026Q2 is the baseline quarter ...
Q3_START = date(2026, 7, 1)
PERIOD_END = date(2026, 9, 30)  # ... and 2026Q3 the quarter under analysis.
SNAPSHOT_TAKEN_AT = datetime(2026, 6, 30, 12, 0, 0, tzinfo=UTC)

TRAIL_NAME = "org-trail"
TRAIL_HOME_REGION = US
TRAIL_BUCKET = "example-org-trail-logs"  # lives in the dev account (us-east-1)

MCP_PRINCIPAL = "aws-mcp.amazonaws.com"
MCP_ENDPOINT = "https://aws-mcp.us-east-1.api.aws/mcp"
SSO_SAML_PROVIDER = "AWSSSO_0123456789abcdef_DO_NOT_DELETE"

# Records from this minute of the day on are delivered in the next day's folder (late delivery).
LATE_FROM = (23, 50)
# Each log file holds the records of one account/region and one delivery window of this many hours.
DELIVERY_WINDOW_HOURS = 8
DUPLICATED_EVENTS = 8  # events delivered twice (identical record, two files)
DIGEST_DAYS = (date(2026, 8, 12), date(2026, 8, 13), date(2026, 8, 14))

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
UNIQUE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def iso(t: datetime) -> str:
    """CloudTrail's eventTime form."""
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def iam_time(t: datetime) -> str:
    """The form the AWS CLI prints IAM dates in."""
    return t.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def human_time(t: datetime) -> str:
    """STS's `expiration` and IAM's `createDate` in responses: "Oct 2, 2026, 11:12:29 PM"."""
    hour = t.hour % 12 or 12
    half = "AM" if t.hour < 12 else "PM"
    return f"{MONTHS[t.month - 1]} {t.day}, {t.year}, {hour}:{t.minute:02d}:{t.second:02d} {half}"


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)


def all_days(start: date = PERIOD_START, end: date = PERIOD_END) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def weekdays(start: date = PERIOD_START, end: date = PERIOD_END) -> list[date]:
    return [d for d in all_days(start, end) if d.weekday() < 5]


Q2_WEEKDAYS = weekdays(PERIOD_START, Q3_START - timedelta(days=1))
Q3_WEEKDAYS = weekdays(Q3_START, PERIOD_END)


# ---------------------------------------------------------------------------------------------
# Seeded randomness and CloudTrail-shaped identifiers
# ---------------------------------------------------------------------------------------------


class Rand(random.Random):
    """`random.Random` seeded from a name, with helpers for CloudTrail-shaped identifiers.

    Every actor has its own stream (seeded with SEED and the actor's name), so changing one actor
    does not reshuffle the others. String seeds are hashed with SHA-512 by `random`, so they do
    not depend on PYTHONHASHSEED.
    """

    def __init__(self, name: str) -> None:
        super().__init__(f"{SEED}:{name}")

    def uuid4(self) -> str:
        return str(uuid.UUID(int=self.getrandbits(128), version=4))

    def text(self, alphabet: str, n: int) -> str:
        return "".join(self.choice(alphabet) for _ in range(n))

    def hex(self, n: int) -> str:
        return self.text("0123456789abcdef", n)

    def session_token(self) -> str:
        # Fake: the right prefix and length, random bytes, and FAKE in it so nobody wonders.
        return "IQoJb3JpZ2luX2VjEFAKE" + base64.b64encode(self.randbytes(300)).decode()

    def s3_request_id(self) -> str:
        return self.text("0123456789ABCDEF", 16)

    def gap(self, low: int, high: int) -> timedelta:
        return timedelta(seconds=self.randint(low, high))

    def chance(self, p: float) -> bool:
        return self.random() < p

    def version(self) -> str:
        """Event versions of today's records: mostly 1.08, then 1.09 and 1.10."""
        return self.choices(("1.08", "1.09", "1.10"), weights=(5, 3, 2))[0]


def stable_id(prefix: str, name: str, n: int = 17) -> str:
    """An IAM unique id (AROA..., AIDA..., ANPA..., AIPA...) that depends only on `name`."""
    return prefix + Rand(f"iam-id:{prefix}:{name}").text(ID_ALPHABET, n)


# ---------------------------------------------------------------------------------------------
# Labels (the expected classification, issue 3)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Label:
    actor_kind: str  # agent | human | workload | service | unknown
    access_path: str  # mcp_managed | mcp_self_managed | console | direct | service | none
    agent_name: str = ""


HUMAN_CONSOLE = Label("human", "console")
HUMAN_DIRECT = Label("human", "direct")
SERVICE = Label("service", "service")
WORKLOAD = Label("workload", "direct")
UNKNOWN = Label("unknown", "none")
MANAGED_MCP = Label("agent", "mcp_managed", MCP_PRINCIPAL)


def self_managed_mcp(server: str) -> Label:
    return Label("agent", "mcp_self_managed", server)


def agent_direct(role_name: str) -> Label:
    return Label("agent", "direct", role_name)


# ---------------------------------------------------------------------------------------------
# IAM model: the roles and users of both accounts (shared by the events and the snapshot)
# ---------------------------------------------------------------------------------------------


def policy_doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(actions: str | list[str], resources: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def trust(principal: dict[str, Any], actions: str | list[str] = "sts:AssumeRole", **extra: Any) -> dict[str, Any]:
    return policy_doc({"Effect": "Allow", "Principal": principal, "Action": actions, **extra})


@dataclass
class Role:
    account: str
    name: str
    path: str
    created: datetime
    trust_policy: dict[str, Any]
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    managed_policies: list[str] = field(default_factory=list)  # policy ARNs
    inline_policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    boundary: str | None = None
    instance_profile: str | None = None
    in_snapshot: bool = True  # False for roles created after the snapshot was taken

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{self.account}:role{self.path}{self.name}"

    @property
    def role_id(self) -> str:
        return stable_id("AROA", f"{self.account}:{self.name}")

    def session_arn(self, session_name: str) -> str:
        return f"arn:aws:sts::{self.account}:assumed-role/{self.name}/{session_name}"

    def issuer(self) -> dict[str, str]:
        return {
            "type": "Role",
            "principalId": self.role_id,
            "arn": self.arn,
            "accountId": self.account,
            "userName": self.name,
        }


@dataclass
class IamUser:
    account: str
    name: str
    created: datetime
    groups: list[str]
    access_key: str

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{self.account}:user/{self.name}"

    @property
    def user_id(self) -> str:
        return stable_id("AIDA", f"{self.account}:{self.name}")


def aws_policy(name: str, path: str = "/") -> str:
    return f"arn:aws:iam::aws:policy{path}{name}"


def local_policy(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:policy/{name}"


SSO_PATH = "/aws-reserved/sso.amazonaws.com/"
SSO_ADMIN = "AWSReservedSSO_AdministratorAccess_0123456789abcdef"
SSO_DEVELOPER = "AWSReservedSSO_DeveloperAccess_fedcba9876543210"
AGENT_TAG = {"Usage": "Agent"}


def sso_trust(account: str) -> dict[str, Any]:
    return trust(
        {"Federated": f"arn:aws:iam::{account}:saml-provider/{SSO_SAML_PROVIDER}"},
        ["sts:AssumeRoleWithSAML", "sts:TagSession"],
        Condition={"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}},
    )


EKS_OIDC = "oidc.eks.us-east-1.amazonaws.com/id/5E1A0C3B7D9F2E4A6C8B0D1F3A5C7E9B"


GITHUB_OIDC = "token.actions.githubusercontent.com"


def build_roles() -> dict[tuple[str, str], Role]:
    """Every role of both accounts, keyed by (account, name)."""
    created = datetime(2025, 3, 4, 9, 15, 22, tzinfo=UTC)
    roles: list[Role] = []
    for account in ACCOUNTS:
        roles += [
            Role(account, SSO_ADMIN, SSO_PATH, created, sso_trust(account),
                 managed_policies=[aws_policy("AdministratorAccess")]),
            Role(account, SSO_DEVELOPER, SSO_PATH, created, sso_trust(account),
                 managed_policies=[aws_policy("PowerUserAccess"), local_policy(account, "DeveloperExtras")]),
            Role(account, "AWSServiceRoleForConfig", "/aws-service-role/config.amazonaws.com/", created,
                 trust({"Service": "config.amazonaws.com"}),
                 managed_policies=[aws_policy("AWSConfigServiceRolePolicy", "/aws-service-role/")]),
            Role(account, "AWSServiceRoleForSSO", "/aws-service-role/sso.amazonaws.com/", created,
                 trust({"Service": "sso.amazonaws.com"}),
                 managed_policies=[aws_policy("AWSSSOServiceRolePolicy", "/aws-service-role/")]),
            Role(account, "OrganizationAccountAccessRole", "/", created,
                 trust({"AWS": "arn:aws:iam::999999999999:root"}),
                 managed_policies=[aws_policy("AdministratorAccess")]),
        ]
    mcp_task = Role(DEV, "McpServerTaskRole", "/", datetime(2025, 11, 3, 14, 2, 10, tzinfo=UTC),
                    trust({"Service": "ecs-tasks.amazonaws.com"}), "Task role of the cost-explorer MCP server",
                    tags={"Owner": "platform-team"},
                    inline_policies={"AssumeAgentRoles": policy_doc(allow(
                        ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
                        [f"arn:aws:iam::{DEV}:role/agents/AgentMcpRole"]), allow("ssm:GetParameter",
                        f"arn:aws:ssm:us-east-1:{DEV}:parameter/mcp/*"))})
    agent_boundary = {"PermissionsBoundary": local_policy(DEV, "AgentBoundary")}
    roles += [
        mcp_task,
        Role(DEV, "AgentMcpRole", "/agents/", datetime(2025, 11, 3, 14, 2, 12, tzinfo=UTC),
             policy_doc({"Effect": "Allow", "Principal": {"AWS": mcp_task.arn},
                         "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]}),
             "Role the MCP server uses on behalf of people",
             tags={**AGENT_TAG, "Owner": "platform-team"},
             managed_policies=[aws_policy("ReadOnlyAccess"), local_policy(DEV, "CostExplorerRead")],
             inline_policies={"ChainToProd": policy_doc(allow(
                 ["sts:AssumeRole", "sts:TagSession"], f"arn:aws:iam::{PROD}:role/agents/AgentReadOnlyRole"))},
             boundary=agent_boundary["PermissionsBoundary"]),
        Role(DEV, "AgentHarnessRole", "/agents/", datetime(2026, 2, 9, 10, 40, 0, tzinfo=UTC),
             policy_doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{DEV}:role/AgentRunnerInstanceRole"},
                         "Action": ["sts:AssumeRole", "sts:TagSession"],
                         "Condition": {"StringEquals": {"aws:RequestTag/Usage": "Agent"}}}),
             "Role of the coding-agent harness", tags=dict(AGENT_TAG),
             managed_policies=[aws_policy("ReadOnlyAccess")],
             inline_policies={"DeployLambda": policy_doc(allow(
                 ["lambda:UpdateFunctionCode", "lambda:GetFunction"], f"arn:aws:lambda:*:{DEV}:function:*"),
                 allow("sts:AssumeRole", f"arn:aws:iam::{DEV}:role/AppDeployRole"))},
             boundary=agent_boundary["PermissionsBoundary"]),
        Role(DEV, "AgentRunnerInstanceRole", "/", datetime(2026, 2, 9, 10, 38, 0, tzinfo=UTC),
             trust({"Service": "ec2.amazonaws.com"}), "Instance profile of the agent runner host",
             managed_policies=[aws_policy("AmazonSSMManagedInstanceCore")],
             inline_policies={"AssumeHarness": policy_doc(allow(
                 ["sts:AssumeRole", "sts:TagSession"], f"arn:aws:iam::{DEV}:role/agents/AgentHarnessRole"))},
             instance_profile="AgentRunnerInstanceProfile"),
        Role(DEV, "K8sMcpServerRole", "/agents/", datetime(2026, 1, 20, 8, 5, 0, tzinfo=UTC),
             policy_doc({"Effect": "Allow",
                         "Principal": {"Federated": f"arn:aws:iam::{DEV}:oidc-provider/{EKS_OIDC}"},
                         "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"],
                         "Condition": {"StringEquals": {
                             f"{EKS_OIDC}:sub": "system:serviceaccount:mcp:k8s-mcp",
                             f"{EKS_OIDC}:aud": "sts.amazonaws.com"}}}),
             "IRSA role of the Kubernetes MCP server", tags=dict(AGENT_TAG),
             managed_policies=[local_policy(DEV, "EksReadOnly")],
             inline_policies={"LookAtProd": policy_doc(allow(
                 "sts:AssumeRole", f"arn:aws:iam::{PROD}:role/EksReadOnlyRole"))},
             boundary=agent_boundary["PermissionsBoundary"]),
        Role(DEV, "ReportAgentRole", "/", datetime(2026, 7, 15, 10, 2, 11, tzinfo=UTC),
             trust({"Service": "lambda.amazonaws.com"}), "Weekly cost report agent",
             tags={**AGENT_TAG, "ManagedBy": "terraform"},
             managed_policies=[aws_policy("service-role/AWSLambdaBasicExecutionRole")],
             inline_policies={"CostReport": policy_doc(allow(["ce:GetCostAndUsage", "ce:GetCostForecast",
                                                               "cloudwatch:GetMetricData"]))},
             in_snapshot=False),  # created in Q3 by a CreateRole event, after the snapshot
        Role(PROD, "AgentReadOnlyRole", "/agents/", datetime(2025, 11, 3, 14, 30, 0, tzinfo=UTC),
             policy_doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{DEV}:role/agents/AgentMcpRole"},
                         "Action": ["sts:AssumeRole", "sts:TagSession"]},
                        # administrators may switch into it in the console to see what agents see
                        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{PROD}:root"},
                         "Action": "sts:AssumeRole",
                         "Condition": {"ArnLike": {"aws:PrincipalArn":
                                                   f"arn:aws:iam::{PROD}:role{SSO_PATH}{SSO_ADMIN}"}}}),
             "Read-only role agents chain into in prod", tags=dict(AGENT_TAG),
             managed_policies=[aws_policy("ReadOnlyAccess")],
             boundary=local_policy(PROD, "AgentBoundary")),
        # Untagged, and trusting carol, until alice hands the pipeline to an agent in Q3 (TagRole,
        # UpdateAssumeRolePolicy: PIPELINE_TRUST_AFTER).
        Role(PROD, "DataPipelineAgentRole", "/", datetime(2025, 9, 1, 7, 0, 0, tzinfo=UTC),
             trust({"AWS": f"arn:aws:iam::{DEV}:user/carol"}), "Data pipeline (Athena, Glue)",
             managed_policies=[local_policy(PROD, "DataPipelineAccess")]),
        Role(PROD, "EksReadOnlyRole", "/", datetime(2025, 7, 2, 9, 0, 0, tzinfo=UTC),
             policy_doc({"Effect": "Allow", "Principal": {"AWS": [
                 f"arn:aws:iam::{DEV}:role/agents/K8sMcpServerRole", f"arn:aws:iam::{PROD}:root"]},
                 "Action": "sts:AssumeRole"}),
             "Read-only view of prod's EKS cluster, shared by people and tools",
             managed_policies=[aws_policy("ReadOnlyAccess")]),
        Role(DEV, "AppDeployRole", "/", datetime(2025, 10, 6, 15, 0, 0, tzinfo=UTC),
             policy_doc({"Effect": "Allow", "Principal": {"AWS": [
                 f"arn:aws:iam::{DEV}:role/agents/AgentHarnessRole",
                 f"arn:aws:iam::{DEV}:role{SSO_PATH}{SSO_DEVELOPER}"]},
                 "Action": "sts:AssumeRole"}),
             "Deploys the dev application stacks (people and tools)",
             managed_policies=[local_policy(DEV, "AppDeployAccess")]),
        Role(PROD, "OrderProcessorLambdaRole", "/service-role/", datetime(2025, 6, 12, 16, 20, 0, tzinfo=UTC),
             trust({"Service": "lambda.amazonaws.com"}),
             managed_policies=[aws_policy("service-role/AWSLambdaBasicExecutionRole"),
                               local_policy(PROD, "OrderProcessorAccess")]),
        Role(PROD, "WebAppInstanceRole", "/", datetime(2025, 6, 10, 11, 0, 0, tzinfo=UTC),
             trust({"Service": "ec2.amazonaws.com"}), "Web application servers",
             managed_policies=[aws_policy("AmazonSSMManagedInstanceCore"), local_policy(PROD, "WebAppAccess")],
             instance_profile="WebAppInstanceProfile"),
        Role(PROD, "GitHubDeployRole", "/", datetime(2025, 8, 21, 13, 45, 0, tzinfo=UTC),
             policy_doc({"Effect": "Allow",
                         "Principal": {"Federated": f"arn:aws:iam::{PROD}:oidc-provider/{GITHUB_OIDC}"},
                         "Action": "sts:AssumeRoleWithWebIdentity",
                         "Condition": {"StringEquals": {f"{GITHUB_OIDC}:aud": "sts.amazonaws.com"},
                                       "StringLike": {f"{GITHUB_OIDC}:sub": "repo:example-org/webapp:*"}}}),
             "GitHub Actions deployments", tags={"ManagedBy": "terraform"},
             managed_policies=[local_policy(PROD, "GitHubDeployPolicy")]),
    ]
    return {(r.account, r.name): r for r in roles}


ROLES = build_roles()
CAROL = IamUser(DEV, "carol", datetime(2024, 10, 7, 9, 30, 0, tzinfo=UTC), ["Developers"],
                "AKIA" + Rand("carol-key").text(KEY_ALPHABET, 16))


def role(account: str, name: str) -> Role:
    return ROLES[(account, name)]


# ---------------------------------------------------------------------------------------------
# Names of resources the calls touch (fake but consistent)
# ---------------------------------------------------------------------------------------------

ENV = {DEV: "dev", PROD: "prod"}
BUCKETS = {
    (DEV, US): ["dev-app-artifacts-111111111111", "dev-terraform-state-111111111111", TRAIL_BUCKET],
    (DEV, EU): ["dev-eu-exports-111111111111"],
    (PROD, US): ["prod-static-assets-222222222222", "prod-backups-222222222222"],
    (PROD, EU): ["prod-data-lake-222222222222", "prod-athena-results-222222222222"],
}
INSTANCES = {
    (DEV, US): ["i-0abc9876fed543210", "i-0a1b2c3d4e5f60718", "i-05f4e3d2c1b0a9f87"],
    (DEV, EU): ["i-0e1d2c3b4a5f60789"],
    (PROD, US): ["i-0b2c3d4e5f6a7b8c9"],
    (PROD, EU): ["i-0abc1234def567890", "i-0c3d4e5f6a7b8c9d0", "i-0d4e5f6a7b8c9d0e1"],
}
AGENT_RUNNER_INSTANCE = "i-0abc9876fed543210"  # dev, us-east-1
WEBAPP_INSTANCE = "i-0abc1234def567890"  # prod, eu-west-1
FUNCTIONS = {DEV: ["dev-image-resizer", "dev-slack-notifier"], PROD: ["order-processor", "invoice-mailer"]}
STACKS = {DEV: ["dev-network", "dev-webapp"], PROD: ["prod-network", "prod-webapp"]}
LOG_GROUPS = {DEV: ["/aws/lambda/dev-image-resizer", "/ecs/cost-explorer-mcp", "/aws/eks/dev-eks/cluster"],
              PROD: ["/aws/lambda/order-processor", "/webapp/prod/application", "/aws/lambda/invoice-mailer"]}
SECURITY_GROUPS = {DEV: ["sg-0a11b22c33d44e55f", "sg-0f55e44d33c22b11a"], PROD: ["sg-0123abcd4567ef890"]}
TABLES = {DEV: ["dev-sessions"], PROD: ["orders", "customers"]}
ROLE_NAMES = {DEV: ["AgentMcpRole", "McpServerTaskRole", SSO_DEVELOPER], PROD: ["WebAppInstanceRole", "GitHubDeployRole"]}


def kms_key_arn(account: str, region: str) -> str:
    suffix = Rand(f"kms:{account}:{region}").uuid4()
    return f"arn:aws:kms:{region}:{account}:key/{suffix}"


def pick(rng: Rand, table: dict[Any, list[str]], *key: str) -> str:
    return rng.choice(table[key[0] if len(key) == 1 else key])


# ---------------------------------------------------------------------------------------------
# Identities and callers
# ---------------------------------------------------------------------------------------------


@dataclass
class Caller:
    """Who makes a call: the userIdentity CloudTrail writes, where the call comes from, its label."""

    identity: dict[str, Any]
    account: str  # the account the call is logged in (recipientAccountId)
    source_ip: str
    user_agent: str
    label: Label
    from_console: bool = False  # sessionCredentialFromConsole "true"
    by_service: bool = False  # made by an AWS service on the principal's behalf: no TLS details

    @property
    def arn(self) -> str:
        return str(self.identity.get("arn", ""))

    def with_key(self, key: str) -> Caller:
        identity = copy.deepcopy(self.identity)
        identity["accessKeyId"] = key
        return dataclasses.replace(self, identity=identity)

    def but(self, **changes: Any) -> Caller:
        return dataclasses.replace(self, **changes)


def session_identity(
    r: Role,
    session_name: str,
    key: str,
    created: datetime,
    *,
    mfa: bool = False,
    source_identity: str | None = None,
    ec2_role_delivery: str | None = None,
    web_identity: dict[str, Any] | None = None,
    sign_in_session: str | None = None,
    invoked_by: str | None = None,
) -> dict[str, Any]:
    """userIdentity of an assumed-role session (the shape every downstream call carries)."""
    context: dict[str, Any] = {
        "sessionIssuer": r.issuer(),
        "webIdFederationData": web_identity or {},
        "attributes": {"creationDate": iso(created), "mfaAuthenticated": "true" if mfa else "false"},
    }
    if source_identity:
        context["sourceIdentity"] = source_identity
    if ec2_role_delivery:
        context["ec2RoleDelivery"] = ec2_role_delivery
    if sign_in_session:
        context["signInSessionArn"] = sign_in_session
    identity: dict[str, Any] = {
        "type": "AssumedRole",
        "principalId": f"{r.role_id}:{session_name}",
        "arn": r.session_arn(session_name),
        "accountId": r.account,
        "accessKeyId": key,
        "sessionContext": context,
    }
    if invoked_by:
        identity["invokedBy"] = invoked_by
    return identity


def user_identity(user: IamUser) -> dict[str, Any]:
    return {"type": "IAMUser", "principalId": user.user_id, "arn": user.arn, "accountId": user.account,
            "accessKeyId": user.access_key, "userName": user.name}


def service_identity(service: str) -> dict[str, Any]:
    return {"type": "AWSService", "invokedBy": service}


def service_caller(service: str, account: str, label: Label = SERVICE) -> Caller:
    return Caller(service_identity(service), account, service, service, label, by_service=True)


# ---------------------------------------------------------------------------------------------
# The API catalogue: what each call looks like in a record
# ---------------------------------------------------------------------------------------------

VERSIONED_NAME = re.compile(r"(\d{4}_?\d{2}_?\d{2})(v\d+)?$")  # Lambda's GetFunction20150331v2
Params = Callable[[Rand, str, str, datetime], "dict[str, Any] | None"]
# A response builder also gets the record's requestID: EC2 repeats it as responseElements.requestId.
Response = Callable[[Rand, str, str, datetime, str], "dict[str, Any] | None"]


def no_params(rng: Rand, account: str, region: str, when: datetime) -> None:
    return None


def no_response(rng: Rand, account: str, region: str, when: datetime, request_id: str) -> None:
    return None


@dataclass(frozen=True)
class Api:
    source: str  # eventSource
    name: str  # eventName
    read_only: bool
    cli: str  # the AWS CLI command behind the call (md/command#..., the MCP tool's argument)
    params: Params = no_params
    response: Response = no_response
    home_region: str | None = None  # global services are logged in us-east-1
    protocol: str = "json"  # decides the AccessDenied error code: json | query | ec2

    @property
    def service(self) -> str:
        return self.source.split(".")[0]

    @property
    def iam_action(self) -> str:
        prefix = {"monitoring": "cloudwatch"}.get(self.service, self.service)
        return f"{prefix}:{VERSIONED_NAME.sub('', self.name)}"

    def host(self, region: str) -> str:
        if self.home_region and self.service in ("iam", "sts", "s3"):
            return f"{self.service}.amazonaws.com"
        return f"{self.service}.{region}.amazonaws.com"


def epoch_ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def month_window(when: datetime) -> dict[str, str]:
    first = when.date().replace(day=1)
    return {"start": (first - timedelta(days=1)).replace(day=1).isoformat(), "end": first.isoformat()}


def s3_params(extra: dict[str, Any]) -> Params:
    def build(rng: Rand, account: str, region: str, when: datetime) -> dict[str, Any]:
        bucket = pick(rng, BUCKETS, account, region)
        return {"bucketName": bucket, "Host": f"{bucket}.s3.{region}.amazonaws.com", **extra}
    return build


def instance_items(rng: Rand, account: str, region: str) -> dict[str, Any]:
    return {"items": [{"instanceId": pick(rng, INSTANCES, account, region)}]}


def state_change(old: tuple[int, str], new: tuple[int, str]) -> Response:
    def build(rng: Rand, account: str, region: str, when: datetime, request_id: str) -> dict[str, Any]:
        return {"requestId": request_id, "instancesSet": {"items": [{
            "instanceId": pick(rng, INSTANCES, account, region),
            "currentState": {"code": new[0], "name": new[1]},
            "previousState": {"code": old[0], "name": old[1]}}]}}
    return build


def metric_query(rng: Rand, account: str, region: str, when: datetime) -> dict[str, Any]:
    return {
        "metricDataQueries": [{"id": "m1", "metricStat": {
            "metric": {"namespace": "AWS/EC2", "metricName": "CPUUtilization",
                       "dimensions": [{"name": "InstanceId", "value": pick(rng, INSTANCES, account, region)}]},
            "period": 300, "stat": "Average"}, "returnData": True}],
        "startTime": human_time(when - timedelta(hours=3)),
        "endTime": human_time(when),
    }


def cost_query(rng: Rand, account: str, region: str, when: datetime) -> dict[str, Any]:
    return {"timePeriod": month_window(when), "granularity": rng.choice(["MONTHLY", "DAILY"]),
            "metrics": ["UnblendedCost"], "groupBy": [{"type": "DIMENSION", "key": "SERVICE"}]}


def query_id(rng: Rand, account: str, region: str, when: datetime) -> dict[str, Any]:
    return {"queryExecutionId": rng.uuid4()}


def stack(rng: Rand, account: str, region: str, when: datetime) -> dict[str, Any]:
    return {"stackName": pick(rng, STACKS, account)}


def change_set(rng: Rand, account: str, region: str, when: datetime) -> dict[str, Any]:
    return {"stackName": pick(rng, STACKS, account), "changeSetName": f"deploy-{when:%Y%m%d%H%M}"}


def api_catalogue() -> dict[tuple[str, str], Api]:
    q, e = "query", "ec2"
    apis = [
        # EC2
        Api("ec2.amazonaws.com", "DescribeInstances", True, "ec2.describe-instances",
            lambda r, a, g, t: {"instancesSet": {}, "filterSet": {}}, protocol=e),
        Api("ec2.amazonaws.com", "DescribeSecurityGroups", True, "ec2.describe-security-groups",
            lambda r, a, g, t: {"securityGroupSet": {}, "securityGroupIdSet": {}, "filterSet": {}}, protocol=e),
        Api("ec2.amazonaws.com", "DescribeVpcs", True, "ec2.describe-vpcs",
            lambda r, a, g, t: {"vpcSet": {}, "filterSet": {}}, protocol=e),
        Api("ec2.amazonaws.com", "DescribeVolumes", True, "ec2.describe-volumes",
            lambda r, a, g, t: {"volumeSet": {}, "filterSet": {}, "maxResults": 500}, protocol=e),
        Api("ec2.amazonaws.com", "DescribeSubnets", True, "ec2.describe-subnets",
            lambda r, a, g, t: {"subnetSet": {}, "filterSet": {}}, protocol=e),
        Api("ec2.amazonaws.com", "StopInstances", False, "ec2.stop-instances",
            lambda r, a, g, t: {"instancesSet": instance_items(r, a, g), "force": False},
            state_change((16, "running"), (64, "stopping")), protocol=e),
        Api("ec2.amazonaws.com", "StartInstances", False, "ec2.start-instances",
            lambda r, a, g, t: {"instancesSet": instance_items(r, a, g)},
            state_change((80, "stopped"), (0, "pending")), protocol=e),
        Api("ec2.amazonaws.com", "TerminateInstances", False, "ec2.terminate-instances",
            lambda r, a, g, t: {"instancesSet": instance_items(r, a, g)},
            state_change((16, "running"), (32, "shutting-down")), protocol=e),
        Api("ec2.amazonaws.com", "CreateTags", False, "ec2.create-tags",
            lambda r, a, g, t: {"resourcesSet": {"items": [{"resourceId": pick(r, INSTANCES, a, g)}]},
                                "tagSet": {"items": [{"key": "Owner", "value": r.choice(["web", "data"])}]}},
            lambda r, a, g, t, rid: {"requestId": rid, "_return": True}, protocol=e),
        Api("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", False, "ec2.authorize-security-group-ingress",
            lambda r, a, g, t: {"groupId": pick(r, SECURITY_GROUPS, a), "ipPermissions": {"items": [{
                "ipProtocol": "tcp", "fromPort": 443, "toPort": 443,
                "ipRanges": {"items": [{"cidrIp": "10.0.0.0/16"}]}}]}},
            lambda r, a, g, t, rid: {"requestId": rid, "_return": True}, protocol=e),
        Api("ec2.amazonaws.com", "DeleteSecurityGroup", False, "ec2.delete-security-group",
            lambda r, a, g, t: {"groupId": pick(r, SECURITY_GROUPS, a)},
            lambda r, a, g, t, rid: {"requestId": rid, "_return": True}, protocol=e),
        Api("ec2.amazonaws.com", "RunInstances", False, "ec2.run-instances",
            lambda r, a, g, t: {"instancesSet": {"items": [{"imageId": "ami-0c1d2e3f4a5b6c7d8", "minCount": 1,
                                                            "maxCount": 1}]}, "instanceType": "t3.small",
                                "monitoring": {"enabled": False}, "disableApiTermination": False},
            lambda r, a, g, t, rid: {"requestId": rid, "reservationId": "r-0" + r.hex(16), "ownerId": a,
                                "instancesSet": {"items": [{"instanceId": "i-0" + r.hex(16),
                                                            "instanceType": "t3.small"}]}}, protocol=e),
        # S3 (bucket calls are logged in the bucket's region; ListBuckets in us-east-1)
        Api("s3.amazonaws.com", "ListBuckets", True, "s3.ls",
            lambda r, a, g, t: {"Host": "s3.amazonaws.com"}, home_region=US, protocol=q),
        Api("s3.amazonaws.com", "GetBucketLocation", True, "s3api.get-bucket-location",
            s3_params({"location": ""}), protocol=q),
        Api("s3.amazonaws.com", "GetBucketPolicy", True, "s3api.get-bucket-policy",
            s3_params({"policy": ""}), protocol=q),
        Api("s3.amazonaws.com", "GetBucketAcl", True, "s3api.get-bucket-acl", s3_params({"acl": ""}), protocol=q),
        Api("s3.amazonaws.com", "GetBucketEncryption", True, "s3api.get-bucket-encryption",
            s3_params({"encryption": ""}), protocol=q),
        Api("s3.amazonaws.com", "GetBucketVersioning", True, "s3api.get-bucket-versioning",
            s3_params({"versioning": ""}), protocol=q),
        Api("s3.amazonaws.com", "PutBucketTagging", False, "s3api.put-bucket-tagging",
            s3_params({"tagging": "", "Tagging": {"xmlns": "http://s3.amazonaws.com/doc/2006-03-01/",
                                                  "TagSet": {"Tag": [{"Key": "team", "Value": "data"}]}}}),
            protocol=q),
        Api("s3.amazonaws.com", "DeleteBucket", False, "s3.rb", s3_params({}), protocol=q),
        # IAM (global: logged in us-east-1)
        Api("iam.amazonaws.com", "ListRoles", True, "iam.list-roles", home_region=US, protocol=q),
        Api("iam.amazonaws.com", "ListUsers", True, "iam.list-users", home_region=US, protocol=q),
        Api("iam.amazonaws.com", "GetRole", True, "iam.get-role",
            lambda r, a, g, t: {"roleName": pick(r, ROLE_NAMES, a)}, home_region=US, protocol=q),
        Api("iam.amazonaws.com", "ListAttachedRolePolicies", True, "iam.list-attached-role-policies",
            lambda r, a, g, t: {"roleName": pick(r, ROLE_NAMES, a)}, home_region=US, protocol=q),
        Api("iam.amazonaws.com", "ListPolicies", True, "iam.list-policies",
            lambda r, a, g, t: {"scope": "Local", "onlyAttached": False}, home_region=US, protocol=q),
        Api("iam.amazonaws.com", "CreateUser", False, "iam.create-user",
            lambda r, a, g, t: {"userName": "agent-break-glass"}, home_region=US, protocol=q),
        Api("iam.amazonaws.com", "AttachRolePolicy", False, "iam.attach-role-policy",
            lambda r, a, g, t: {"roleName": pick(r, ROLE_NAMES, a),
                                "policyArn": aws_policy("CloudWatchReadOnlyAccess")}, home_region=US, protocol=q),
        # STS
        Api("sts.amazonaws.com", "GetCallerIdentity", True, "sts.get-caller-identity", protocol=q),
        # CloudWatch and CloudWatch Logs
        Api("monitoring.amazonaws.com", "DescribeAlarms", True, "cloudwatch.describe-alarms",
            lambda r, a, g, t: {"stateValue": r.choice(["ALARM", "OK"]), "maxRecords": 100}, protocol=q),
        Api("monitoring.amazonaws.com", "GetMetricData", True, "cloudwatch.get-metric-data", metric_query,
            protocol=q),
        Api("monitoring.amazonaws.com", "ListMetrics", True, "cloudwatch.list-metrics",
            lambda r, a, g, t: {"namespace": r.choice(["AWS/EC2", "AWS/Lambda", "AWS/RDS"])}, protocol=q),
        Api("monitoring.amazonaws.com", "PutMetricAlarm", False, "cloudwatch.put-metric-alarm",
            lambda r, a, g, t: {"alarmName": f"high-cpu-{pick(r, INSTANCES, a, g)}", "metricName": "CPUUtilization",
                                "namespace": "AWS/EC2", "statistic": "Average", "period": 300,
                                "evaluationPeriods": 3, "threshold": 80.0,
                                "comparisonOperator": "GreaterThanThreshold"}, protocol=q),
        Api("logs.amazonaws.com", "DescribeLogGroups", True, "logs.describe-log-groups",
            lambda r, a, g, t: {"limit": 50}),
        Api("logs.amazonaws.com", "FilterLogEvents", True, "logs.filter-log-events",
            lambda r, a, g, t: {"logGroupName": pick(r, LOG_GROUPS, a), "filterPattern": "ERROR",
                                "startTime": epoch_ms(t - timedelta(hours=1)), "interleaved": True}),
        Api("logs.amazonaws.com", "StartQuery", True, "logs.start-query",
            lambda r, a, g, t: {"logGroupNames": [pick(r, LOG_GROUPS, a)],
                                "startTime": int((t - timedelta(hours=6)).timestamp()), "endTime": int(t.timestamp()),
                                "queryString": "fields @timestamp, @message | filter @message like /ERROR/ "
                                               "| sort @timestamp desc | limit 50"},
            lambda r, a, g, t, rid: {"queryId": r.uuid4()}),
        Api("logs.amazonaws.com", "GetQueryResults", True, "logs.get-query-results",
            lambda r, a, g, t: {"queryId": r.uuid4()}),
        Api("logs.amazonaws.com", "CreateLogStream", False, "logs.create-log-stream",
            lambda r, a, g, t: {"logGroupName": pick(r, LOG_GROUPS, a),
                                "logStreamName": f"{t:%Y/%m/%d}/[$LATEST]{r.hex(32)}"}),
        # Lambda (versioned event names)
        Api("lambda.amazonaws.com", "ListFunctions20150331", True, "lambda.list-functions"),
        Api("lambda.amazonaws.com", "GetFunction20150331v2", True, "lambda.get-function",
            lambda r, a, g, t: {"functionName": pick(r, FUNCTIONS, a)}),
        Api("lambda.amazonaws.com", "UpdateFunctionCode20150331v2", False, "lambda.update-function-code",
            lambda r, a, g, t: {"functionName": pick(r, FUNCTIONS, a), "publish": True, "dryRun": False},
            lambda r, a, g, t, rid: {"functionName": pick(r, FUNCTIONS, a), "runtime": "python3.12",
                                "codeSha256": base64.b64encode(r.randbytes(32)).decode(),
                                "lastModified": t.strftime("%Y-%m-%dT%H:%M:%S.000+0000")}),
        # Cost Explorer (logged in us-east-1)
        Api("ce.amazonaws.com", "GetCostAndUsage", True, "ce.get-cost-and-usage", cost_query, home_region=US),
        Api("ce.amazonaws.com", "GetCostForecast", True, "ce.get-cost-forecast",
            lambda r, a, g, t: {"timePeriod": {"start": t.date().isoformat(),
                                               "end": (t.date() + timedelta(days=30)).isoformat()},
                                "metric": "UNBLENDED_COST", "granularity": "MONTHLY"}, home_region=US),
        Api("ce.amazonaws.com", "GetDimensionValues", True, "ce.get-dimension-values",
            lambda r, a, g, t: {"timePeriod": month_window(t), "dimension": r.choice(["SERVICE", "LINKED_ACCOUNT"])},
            home_region=US),
        Api("ce.amazonaws.com", "GetReservationUtilization", True, "ce.get-reservation-utilization",
            lambda r, a, g, t: {"timePeriod": month_window(t)}, home_region=US),
        # CloudFormation
        Api("cloudformation.amazonaws.com", "DescribeStacks", True, "cloudformation.describe-stacks", stack,
            protocol=q),
        Api("cloudformation.amazonaws.com", "ListStacks", True, "cloudformation.list-stacks",
            lambda r, a, g, t: {"stackStatusFilter": ["CREATE_COMPLETE", "UPDATE_COMPLETE"]}, protocol=q),
        Api("cloudformation.amazonaws.com", "ValidateTemplate", True, "cloudformation.validate-template",
            lambda r, a, g, t: {"templateURL": f"https://{pick(r, BUCKETS, a, US)}.s3.amazonaws.com/"
                                               f"templates/{pick(r, STACKS, a)}.yaml"}, protocol=q),
        Api("cloudformation.amazonaws.com", "CreateChangeSet", False, "cloudformation.deploy",
            lambda r, a, g, t: {**change_set(r, a, g, t), "changeSetType": "UPDATE",
                                "capabilities": ["CAPABILITY_IAM"], "templateURL": "https://example-org-cfn"
                                ".s3.amazonaws.com/webapp/template.yaml"},
            lambda r, a, g, t, rid: {"id": f"arn:aws:cloudformation:{g}:{a}:changeSet/deploy/{r.uuid4()}",
                                "stackId": f"arn:aws:cloudformation:{g}:{a}:stack/{pick(r, STACKS, a)}/{r.uuid4()}"},
            protocol=q),
        Api("cloudformation.amazonaws.com", "DescribeChangeSet", True, "cloudformation.deploy", change_set,
            protocol=q),
        Api("cloudformation.amazonaws.com", "ExecuteChangeSet", False, "cloudformation.deploy", change_set,
            protocol=q),
        # Systems Manager, KMS, Secrets Manager, DynamoDB, ECR, EKS, RDS
        Api("ssm.amazonaws.com", "GetParameter", True, "ssm.get-parameter",
            lambda r, a, g, t: {"name": r.choice(["/app/db/host", "/app/feature-flags", "/mcp/config"]),
                                "withDecryption": False}),
        Api("ssm.amazonaws.com", "GetParameters", True, "ssm.get-parameters",
            lambda r, a, g, t: {"names": ["/app/db/host", "/app/db/port"], "withDecryption": True}),
        Api("ssm.amazonaws.com", "UpdateInstanceInformation", False, "ssm.update-instance-information",
            lambda r, a, g, t: {"instanceId": pick(r, INSTANCES, a, g), "agentVersion": "3.3.2746.0",
                                "agentStatus": "Active", "platformType": "Linux", "platformName": "Amazon Linux",
                                "platformVersion": "2023", "agentName": "amazon-ssm-agent",
                                "availabilityZone": f"{g}a"}),
        Api("kms.amazonaws.com", "Decrypt", True, "kms.decrypt",
            lambda r, a, g, t: {"encryptionAlgorithm": "SYMMETRIC_DEFAULT",
                                "encryptionContext": {"SecretARN": f"arn:aws:secretsmanager:{g}:{a}:secret:app-db"}}),
        Api("kms.amazonaws.com", "DescribeKey", True, "kms.describe-key",
            lambda r, a, g, t: {"keyId": kms_key_arn(a, g)}),
        Api("kms.amazonaws.com", "ListKeys", True, "kms.list-keys"),
        Api("secretsmanager.amazonaws.com", "GetSecretValue", True, "secretsmanager.get-secret-value",
            lambda r, a, g, t: {"secretId": f"arn:aws:secretsmanager:{g}:{a}:secret:app-db-Ab12Cd"}),
        Api("dynamodb.amazonaws.com", "DescribeTable", True, "dynamodb.describe-table",
            lambda r, a, g, t: {"tableName": pick(r, TABLES, a)}),
        Api("dynamodb.amazonaws.com", "ListTables", True, "dynamodb.list-tables"),
        Api("ecr.amazonaws.com", "GetAuthorizationToken", True, "ecr.get-login-password",
            lambda r, a, g, t: {"registryIds": [a]}),
        Api("ecr.amazonaws.com", "DescribeRepositories", True, "ecr.describe-repositories"),
        Api("ecr.amazonaws.com", "InitiateLayerUpload", False, "ecr.initiate-layer-upload",
            lambda r, a, g, t: {"registryId": a, "repositoryName": "webapp"},
            lambda r, a, g, t, rid: {"uploadId": r.uuid4(), "partSize": 10485760}),
        Api("ecr.amazonaws.com", "PutImage", False, "ecr.put-image",
            lambda r, a, g, t: {"registryId": a, "repositoryName": "webapp", "imageTag": f"sha-{r.hex(7)}"}),
        Api("eks.amazonaws.com", "ListClusters", True, "eks.list-clusters"),
        Api("eks.amazonaws.com", "DescribeCluster", True, "eks.describe-cluster",
            lambda r, a, g, t: {"name": f"{ENV[a]}-eks"}),
        Api("eks.amazonaws.com", "ListNodegroups", True, "eks.list-nodegroups",
            lambda r, a, g, t: {"name": f"{ENV[a]}-eks"}),
        Api("eks.amazonaws.com", "DescribeNodegroup", True, "eks.describe-nodegroup",
            lambda r, a, g, t: {"name": f"{ENV[a]}-eks", "nodegroupName": "general"}),
        Api("rds.amazonaws.com", "DescribeDBInstances", True, "rds.describe-db-instances", protocol=q),
        # Athena and Glue (the data pipeline)
        Api("athena.amazonaws.com", "StartQueryExecution", False, "athena.start-query-execution",
            lambda r, a, g, t: {"queryString": "SELECT order_date, sum(total) FROM orders GROUP BY 1",
                                "queryExecutionContext": {"database": "sales"}, "workGroup": "primary"},
            lambda r, a, g, t, rid: query_id(r, a, g, t)),
        Api("athena.amazonaws.com", "GetQueryExecution", True, "athena.get-query-execution", query_id),
        Api("athena.amazonaws.com", "GetQueryResults", True, "athena.get-query-results", query_id),
        Api("glue.amazonaws.com", "GetTable", True, "glue.get-table",
            lambda r, a, g, t: {"databaseName": "sales", "name": r.choice(["orders", "customers"])}),
        Api("glue.amazonaws.com", "GetDatabase", True, "glue.get-database", lambda r, a, g, t: {"name": "sales"}),
        Api("glue.amazonaws.com", "GetPartitions", True, "glue.get-partitions",
            lambda r, a, g, t: {"databaseName": "sales", "tableName": "orders"}),
        # CloudTrail and Config (what an admin looks at)
        Api("cloudtrail.amazonaws.com", "LookupEvents", True, "cloudtrail.lookup-events",
            lambda r, a, g, t: {"maxResults": 50, "lookupAttributes": [
                {"attributeKey": "EventName", "attributeValue": r.choice(["ConsoleLogin", "AssumeRole"])}]}),
        Api("cloudtrail.amazonaws.com", "DescribeTrails", True, "cloudtrail.describe-trails",
            lambda r, a, g, t: {"includeShadowTrails": True}),
        Api("cloudtrail.amazonaws.com", "StopLogging", False, "cloudtrail.stop-logging",
            lambda r, a, g, t: {"name": f"arn:aws:cloudtrail:us-east-1:999999999999:trail/{TRAIL_NAME}"}),
        Api("config.amazonaws.com", "DescribeConfigRules", True, "configservice.describe-config-rules"),
        Api("config.amazonaws.com", "DescribeComplianceByConfigRule", True,
            "configservice.describe-compliance-by-config-rule",
            lambda r, a, g, t: {"complianceTypes": ["NON_COMPLIANT"]}),
    ]
    catalogue: dict[tuple[str, str], Api] = {}
    for a in apis:
        if (a.source, a.name) in catalogue:
            raise ValueError(f"{a.source} {a.name} twice in the catalogue")
        catalogue[a.source, a.name] = a
    return catalogue


# Keyed by (eventSource, eventName): two services may share an operation name (Athena's and
# CloudWatch Logs' GetQueryResults).
APIS = api_catalogue()


def api_of(name: str) -> Api:
    """The catalogue's API of this eventName, or of "service:eventName" where the name alone is
    ambiguous ("logs:GetQueryResults", "athena:GetQueryResults")."""
    service, _, event_name = name.rpartition(":")
    found = [a for a in APIS.values() if a.name == event_name and (not service or a.service == service)]
    if len(found) != 1:
        raise KeyError(f"{name}: {len(found)} APIs in the catalogue; name the service (service:{event_name})")
    return found[0]


def apis(*names: str) -> list[Api]:
    return [api_of(name) for name in names]


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------

# The order CloudTrail writes top-level keys in (roughly); a fixed order keeps output stable.
RECORD_KEYS = (
    "eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion", "sourceIPAddress",
    "userAgent", "errorCode", "errorMessage", "requestParameters", "responseElements", "additionalEventData",
    "requestID", "eventID", "readOnly", "resources", "eventType", "apiVersion", "managementEvent",
    "recipientAccountId", "sharedEventID", "vpcEndpointId", "serviceEventDetails", "eventCategory",
    "tlsDetails", "sessionCredentialFromConsole", "mcpEventDetails",
)
ALWAYS_PRESENT = ("requestParameters", "responseElements")  # written as null when empty
MIN_VERSION = {  # fields that appeared with a later eventVersion (facts doc, section 2)
    "managementEvent": (1, 6), "eventCategory": (1, 7), "tlsDetails": (1, 8),
    "sessionCredentialFromConsole": (1, 8),
}


@dataclass
class Event:
    """One CloudTrail record before serialisation; `record()` applies the eventVersion rules."""

    identity: dict[str, Any]
    when: datetime
    source: str
    name: str
    region: str
    recipient: str
    event_id: str
    version: str = "1.08"
    ip: str | None = None
    user_agent: str | None = None
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    additional: dict[str, Any] | None = None
    request_id: str | None = None
    read_only: bool = True
    resources: list[dict[str, str]] | None = None
    event_type: str = "AwsApiCall"
    management: bool = True
    category: str = "Management"
    shared_event_id: str | None = None
    service_details: dict[str, Any] | None = None
    error: tuple[str | None, str] | None = None  # (errorCode, errorMessage); a failed sign-in has no code
    tls_host: str | None = None
    from_console: bool = False
    mcp_details: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "eventVersion": self.version,
            "userIdentity": self.identity,
            "eventTime": iso(self.when),
            "eventSource": self.source,
            "eventName": self.name,
            "awsRegion": self.region,
            "sourceIPAddress": self.ip,
            "userAgent": s3_user_agent(self.user_agent) if self.source == "s3.amazonaws.com" else self.user_agent,
            "errorCode": self.error[0] if self.error else None,
            "errorMessage": self.error[1] if self.error else None,
            "requestParameters": self.request,
            "responseElements": self.response,
            "additionalEventData": self.additional,
            "requestID": self.request_id,
            "eventID": self.event_id,
            "readOnly": self.read_only,
            "resources": self.resources,
            "eventType": self.event_type,
            "managementEvent": self.management,
            "recipientAccountId": self.recipient,
            "sharedEventID": self.shared_event_id,
            "serviceEventDetails": self.service_details,
            "eventCategory": self.category,
            "tlsDetails": tls_details(self.tls_host) if self.tls_host else None,
            "sessionCredentialFromConsole": "true" if self.from_console else None,
            "mcpEventDetails": self.mcp_details,
        }
        version = tuple(int(part) for part in self.version.split("."))
        record: dict[str, Any] = {}
        for key in RECORD_KEYS:
            value = values.get(key)
            if key in MIN_VERSION and version < MIN_VERSION[key]:
                continue
            if value is not None or key in ALWAYS_PRESENT:
                record[key] = value
        return record


def s3_user_agent(agent: str | None) -> str | None:
    """S3 writes the user agent of a client in square brackets (`[aws-cli/2.18.5 ...]`); an
    AWS service principal stays as it is."""
    if agent is None or agent.endswith(".amazonaws.com") or agent == "AWS Internal":
        return agent
    return f"[{agent}]"


def tls_details(host: str) -> dict[str, str]:
    return {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": host}


def access_denied(api: Api, caller: Caller, *, explicit_deny: str | None = None) -> tuple[str, str]:
    """The errorCode/errorMessage pair of an AccessDenied, by the API's protocol."""
    who = caller.arn or caller.identity.get("invokedBy", "")
    why = (f"with an explicit deny in a {explicit_deny}" if explicit_deny
           else f"because no identity-based policy allows the {api.iam_action} action")
    message = f"User: {who} is not authorized to perform: {api.iam_action} {why}"
    if api.protocol == "ec2":
        return "Client.UnauthorizedOperation", f"You are not authorized to perform this operation. {message}"
    if api.protocol == "query":
        return "AccessDenied", message
    return "AccessDeniedException", message


@dataclass
class Emitted:
    record: dict[str, Any]
    label: Label
    actor: str


class World:
    """Collects the records of every actor with their labels, and hands out unique keys."""

    def __init__(self) -> None:
        self.emitted: list[Emitted] = []
        self.keys: set[str] = set()
        self.event_ids: set[str] = set()

    def new_key(self, rng: Rand, prefix: str = "ASIA") -> str:
        while True:
            key = prefix + rng.text(KEY_ALPHABET, 16)
            if key not in self.keys:
                self.keys.add(key)
                return key

    def emit(self, event: Event, label: Label, actor: str) -> dict[str, Any]:
        if not (PERIOD_START <= event.when.date() <= PERIOD_END):
            raise ValueError(f"{actor}: event outside the period at {event.when}")
        if event.event_id in self.event_ids:
            raise ValueError(f"duplicate eventID {event.event_id}")
        self.event_ids.add(event.event_id)
        record = event.record()
        self.emitted.append(Emitted(record, label, actor))
        return record


@dataclass
class Actor:
    """Base of every actor: a name (also its random stream) and the world it emits into."""

    world: World
    name: str
    rng: Rand = field(init=False)

    def __post_init__(self) -> None:
        self.rng = Rand(self.name)

    def run(self) -> None:
        """Emit everything this actor does during the period."""
        raise NotImplementedError

    def emit(self, event: Event, label: Label) -> dict[str, Any]:
        return self.world.emit(event, label, self.name)

    def call(
        self,
        caller: Caller,
        api: Api,
        when: datetime,
        region: str,
        *,
        denied: bool = False,
        explicit_deny: str | None = None,
        request_id: str | None = None,
        version: str | None = None,
        request: dict[str, Any] | None = None,
        response: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Emit one API call `caller` makes; `denied` makes it an AccessDenied. `request` and
        `response` replace the catalogue's random parameters and response (a story that names
        its resources)."""
        region = api.home_region or region
        rng = self.rng
        s3 = api.service == "s3"
        error = access_denied(api, caller, explicit_deny=explicit_deny) if denied or explicit_deny else None
        request_id = request_id or (rng.s3_request_id() if s3 else rng.uuid4())
        event = Event(
            identity=caller.identity,
            when=when,
            source=api.source,
            name=api.name,
            region=region,
            recipient=caller.account,
            event_id=rng.uuid4(),
            version=version or rng.version(),
            ip=caller.source_ip,
            user_agent=caller.user_agent,
            request=request if request is not None else api.params(rng, caller.account, region, when),
            response=None if error else (
                response if response is not None else api.response(rng, caller.account, region, when, request_id)),
            request_id=request_id,
            read_only=api.read_only,
            error=error,
            tls_host=None if caller.by_service else api.host(region),
            from_console=caller.from_console,
        )
        if s3:
            event.additional = {"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256",
                                "bytesTransferredIn": 0, "AuthenticationMethod": "AuthHeader",
                                "x-amz-id-2": base64.b64encode(rng.randbytes(48)).decode(),
                                "bytesTransferredOut": 0}
            bucket = (event.request or {}).get("bucketName")
            if bucket:
                event.resources = [{"accountId": caller.account, "type": "AWS::S3::Bucket",
                                    "ARN": f"arn:aws:s3:::{bucket}"}]
        return self.emit(event, caller.label)

    def burst(
        self,
        caller: Caller,
        choices: list[Api],
        start: datetime,
        count: int,
        region: str,
        *,
        denied_rate: float = 0.0,
        gap: tuple[int, int] = (4, 90),
        regions: tuple[str, ...] | None = None,
    ) -> datetime:
        """Emit `count` calls picked from `choices`, a few seconds apart; return the last time."""
        when = start
        for _ in range(count):
            when += self.rng.gap(*gap)
            call_region = self.rng.choice(regions) if regions else region
            self.call(caller, self.rng.choice(choices), when, call_region,
                      denied=self.rng.chance(denied_rate))
        return when


# ---------------------------------------------------------------------------------------------
# STS: the events that issue credentials (the access-key join starts here)
# ---------------------------------------------------------------------------------------------


@dataclass
class Issued:
    """Credentials an STS event issued: the key downstream calls carry in userIdentity.accessKeyId."""

    role: Role
    session_name: str
    key: str
    issued_at: datetime


def credentials(rng: Rand, key: str, when: datetime, duration: int) -> dict[str, str]:
    return {"accessKeyId": key, "sessionToken": rng.session_token(),
            "expiration": human_time(when + timedelta(seconds=duration))}


def assumed_role_user(r: Role, session_name: str) -> dict[str, str]:
    return {"assumedRoleId": f"{r.role_id}:{session_name}", "arn": r.session_arn(session_name)}


def role_resource(r: Role) -> list[dict[str, str]]:
    return [{"accountId": r.account, "type": "AWS::IAM::Role", "ARN": r.arn}]


def assume_role(
    actor: Actor,
    caller: Caller,
    target: Role,
    session_name: str,
    when: datetime,
    *,
    region: str = US,
    tags: dict[str, str] | None = None,
    transitive: list[str] | None = None,
    source_identity: str | None = None,
    incoming_tags: dict[str, str] | None = None,
    duration: int = 3600,
    request_id: str | None = None,
) -> Issued:
    """Emit an AssumeRole; a cross-account call is logged in both accounts with one sharedEventID.

    Session tags are in LIST form here ([{"key", "value"}]); tags a role chain carries on arrive in
    the role's account as the MAP `incomingTransitiveTags`. `request_id`: the requestID a managed
    MCP tool call lists in its downstreamRequests (the server made this call for the tool).
    """
    rng = actor.rng
    key = actor.world.new_key(rng)
    request: dict[str, Any] = {"roleArn": target.arn, "roleSessionName": session_name, "durationSeconds": duration}
    if tags:
        request["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
    if transitive:
        request["transitiveTagKeys"] = transitive
    if source_identity:
        request["sourceIdentity"] = source_identity
    response: dict[str, Any] = {"credentials": credentials(rng, key, when, duration),
                                "assumedRoleUser": assumed_role_user(target, session_name)}
    if tags or incoming_tags:
        response["packedPolicySize"] = rng.randint(3, 9)
    chain_source = source_identity or caller.identity.get("sessionContext", {}).get("sourceIdentity")
    if chain_source:
        response["sourceIdentity"] = chain_source
    cross_account = target.account != caller.account
    # A service's own AssumeRole for a workload is also logged for the service: a sharedEventID. A
    # call a service makes with someone's credentials (the managed MCP server's) is that someone's.
    shared = rng.uuid4() if cross_account or caller.identity.get("type") == "AWSService" else None
    request_id = request_id or rng.uuid4()
    version = "1.08"
    for recipient in (caller.account, target.account) if cross_account else (caller.account,):
        params = dict(request)
        if recipient == target.account and incoming_tags:
            params["incomingTransitiveTags"] = dict(incoming_tags)
        actor.emit(Event(
            identity=caller.identity, when=when, source="sts.amazonaws.com", name="AssumeRole", region=region,
            recipient=recipient, event_id=rng.uuid4(), version=version, ip=caller.source_ip,
            user_agent=caller.user_agent, request=params, response=response, request_id=request_id,
            resources=role_resource(target), shared_event_id=shared,
            tls_host=None if caller.by_service else "sts.amazonaws.com",
        ), caller.label)
    return Issued(target, session_name, key, when)


def failed_assume_role(actor: Actor, caller: Caller, target: Role, when: datetime) -> None:
    """A denied AssumeRole: CloudTrail writes null requestParameters and responseElements."""
    message = (f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on resource: {target.arn}")
    actor.emit(Event(
        identity=caller.identity, when=when, source="sts.amazonaws.com", name="AssumeRole", region=US,
        recipient=caller.account, event_id=actor.rng.uuid4(), ip=caller.source_ip, user_agent=caller.user_agent,
        request=None, response=None, request_id=actor.rng.uuid4(), error=("AccessDenied", message),
        tls_host="sts.amazonaws.com",
    ), caller.label)


def service_assume_role(actor: Actor, service: str, target: Role, session_name: str, *, when: datetime,
                        region: str, duration: int = 21600) -> Issued:
    """An AWS compute service (ec2, lambda, ecs-tasks) obtains a workload's credentials.

    Labelled by its caller, the service: service/service.
    """
    return assume_role(actor, service_caller(service, target.account), target, session_name, when,
                       region=region, duration=duration)


class ServiceCredentials:
    """The credentials an AWS compute service keeps fresh for a running workload: an ECS task's
    role, an EC2 instance profile. The service obtains them when the task or instance starts, for
    six hours, and obtains new ones (a new AssumeRole by the service, a new key) about an hour
    before they expire, for as long as the workload runs, whether or not it uses them. Every
    AssumeRole is emitted up front; `at(when)` gives the credentials the workload holds then.
    """

    DURATION = timedelta(hours=6)
    REFRESH_AFTER = timedelta(hours=5)  # re-issued about an hour before expiry

    def __init__(self, actor: Actor, service: str, target: Role, session_name: str, *, region: str,
                 start: datetime, end: datetime) -> None:
        self.target = target
        self.session_name = session_name
        self.end = end
        self.issued: list[Issued] = []
        when = start
        while when < end:
            self.issued.append(service_assume_role(actor, service, target, session_name, when=when, region=region,
                                                   duration=int(self.DURATION.total_seconds())))
            when += self.REFRESH_AFTER - actor.rng.gap(0, 600)

    def at(self, when: datetime) -> Issued:
        """The credentials in use at `when` (the last issued at or before it, never expired)."""
        held = [i for i in self.issued if i.issued_at <= when]
        if not held or when >= self.end or when >= held[-1].issued_at + self.DURATION:
            raise ValueError(f"{self.target.name}/{self.session_name}: no valid credentials at {when}")
        return held[-1]

    def identity(self, when: datetime, **context: Any) -> dict[str, Any]:
        """userIdentity of a call the workload makes at `when` (sessionContext keyword arguments
        of `session_identity`, such as ec2_role_delivery)."""
        issued = self.at(when)
        return session_identity(self.target, self.session_name, issued.key, issued.issued_at, **context)


def web_identity_user(account: str, provider: str, subject: str) -> dict[str, Any]:
    provider_arn = f"arn:aws:iam::{account}:oidc-provider/{provider}"
    return {"type": "WebIdentityUser", "principalId": f"{provider_arn}:sts.amazonaws.com:{subject}",
            "userName": subject, "identityProvider": provider_arn}


def assume_role_with_web_identity(
    actor: Actor,
    target: Role,
    *,
    provider: str,
    subject: str,
    session_name: str,
    when: datetime,
    ip: str,
    user_agent: str,
    label: Label,
    principal_tags: dict[str, str] | None = None,
) -> Issued:
    """AssumeRoleWithWebIdentity; session tags come as the MAP `principalTags` (from the token)."""
    rng = actor.rng
    key = actor.world.new_key(rng)
    provider_arn = f"arn:aws:iam::{target.account}:oidc-provider/{provider}"
    request: dict[str, Any] = {"roleArn": target.arn, "roleSessionName": session_name, "durationSeconds": 3600}
    if principal_tags:
        request["principalTags"] = dict(principal_tags)
    response = {"credentials": credentials(rng, key, when, 3600), "subjectFromWebIdentityToken": subject,
                "assumedRoleUser": assumed_role_user(target, session_name), "provider": provider_arn,
                "audience": "sts.amazonaws.com"}
    actor.emit(Event(
        identity=web_identity_user(target.account, provider, subject), when=when, source="sts.amazonaws.com",
        name="AssumeRoleWithWebIdentity", region=US, recipient=target.account, event_id=rng.uuid4(),
        ip=ip, user_agent=user_agent, request=request, response=response, request_id=rng.uuid4(),
        resources=role_resource(target), tls_host="sts.amazonaws.com",
    ), label)
    return Issued(target, session_name, key, when)


def web_federation(account: str, provider: str) -> dict[str, Any]:
    return {"federatedProvider": f"arn:aws:iam::{account}:oidc-provider/{provider}", "attributes": {}}


# ---------------------------------------------------------------------------------------------
# User agents (the strings real clients send)
# ---------------------------------------------------------------------------------------------

S3_CONSOLE = (
    "S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.750 Linux/5.10.224-190.876.amzn2int.x86_64"
    " OpenJDK_64-Bit_Server_VM/25.412-b09 java/1.8.0_412 vendor/Oracle_Corporation"
    " cfg/retry-mode/standard"
)
BROWSERS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/138.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:141.0) Gecko/20100101 Firefox/141.0",
)


def cli_agent(api: Api | str, *, os_part: str, extra: str = "") -> str:
    """The AWS CLI's user agent for a call of `api` (or of the CLI command "service.command")."""
    command = api if isinstance(api, str) else api.cli
    return (f"aws-cli/2.28.1 md/awscrt#0.27.2 ua/2.1 {os_part} lang/python#3.13.4 md/pyimpl#CPython {extra}"
            f"m/E,b cfg/retry-mode#standard md/installer#exe md/prompt#off md/command#{command}")


MAC_CLI = "os/macos#24.5.0 md/arch#arm64"
FARGATE_CLI = "os/linux#5.10.240-238.959.amzn2.x86_64 md/arch#x86_64"
EC2_CLI = "os/linux#6.1.147-172.266.amzn2023.x86_64 md/arch#x86_64"
GITHUB_CLI = "os/linux#6.11.0-1018-azure md/arch#x86_64"
BOTO3_LAPTOP = ("Boto3/1.40.21 md/Botocore#1.40.21 ua/2.1 os/linux#6.8.0-79-generic md/arch#x86_64 "
                "lang/python#3.12.3 md/pyimpl#CPython m/Z,b,D cfg/retry-mode#legacy Botocore/1.40.21")
BOTO3_FARGATE = ("Boto3/1.40.30 md/Botocore#1.40.30 ua/2.1 os/linux#5.10.240-238.959.amzn2.x86_64 md/arch#x86_64 "
                 "lang/python#3.12.11 md/pyimpl#CPython exec-env/AWS_ECS_FARGATE m/b,Z cfg/retry-mode#legacy "
                 "Botocore/1.40.30")
BOTO3_EKS = ("Boto3/1.39.4 md/Botocore#1.39.4 ua/2.1 os/linux#6.1.141-155.222.amzn2023.x86_64 md/arch#x86_64 "
             "lang/python#3.12.11 md/pyimpl#CPython m/b cfg/retry-mode#legacy Botocore/1.39.4")
BOTO3_LAMBDA = ("Boto3/1.38.36 md/Botocore#1.38.36 ua/2.1 os/linux#5.10.240-258.955.amzn2.x86_64 md/arch#x86_64 "
                "lang/python#3.12.11 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy "
                "Botocore/1.38.36")
JAVA_SDK = ("aws-sdk-java/2.31.63 Linux/6.1.147-172.266.amzn2023.x86_64 OpenJDK_64-Bit_Server_VM/21.0.8+9-LTS "
            "Java/21.0.8 vendor/Amazon.com_Inc. md/internal io/sync http/Apache cfg/retry-mode/legacy")
SSM_AGENT = "aws-sdk-go/1.55.7 (go1.23.10; linux; amd64) amazon-ssm-agent/3.3.2746.0"
AWSLABS_CLOUDWATCH = ("Boto3/1.40.11 md/Botocore#1.40.11 ua/2.1 os/macos#24.6.0 md/arch#arm64 lang/python#3.12.11 "
                      "md/pyimpl#CPython m/b,D,Z cfg/retry-mode#standard Botocore/1.40.11 "
                      "md/awslabs#mcp#cloudwatch-mcp-server#0.0.5")
AWSLABS_DOCS_LEGACY = ("Boto3/1.38.27 md/Botocore#1.38.27 ua/2.1 os/macos#24.5.0 md/arch#arm64 lang/python#3.12.11 "
                       "md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.38.27 "
                       "awslabs/mcp/aws-documentation-mcp-server/1.0.3")
MCP_CLIENTS = ("claude-code/2.0.14", "mcp-proxy-for-aws/1.1.0")


def terraform_agent(api: Api) -> str:
    return ("APN/1.0 HashiCorp/1.0 Terraform/1.12.2 (+https://www.terraform.io) terraform-provider-aws/6.8.0 "
            "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.37.2 ua/2.1 os/linux "
            f"lang/go#1.24.5 md/GOOS#linux md/GOARCH#amd64 api/{api.service}#1.50.0 m/C,g")


# ---------------------------------------------------------------------------------------------
# Actors: people
# ---------------------------------------------------------------------------------------------

CONSOLE_READS = apis("DescribeInstances", "DescribeSecurityGroups", "DescribeVpcs", "DescribeVolumes",
                     "ListBuckets", "GetBucketPolicy", "GetBucketLocation", "ListRoles", "GetRole",
                     "ListPolicies", "DescribeAlarms", "GetMetricData", "DescribeLogGroups", "GetCostAndUsage",
                     "LookupEvents", "DescribeTrails", "ListFunctions20150331", "DescribeConfigRules",
                     "DescribeStacks", "DescribeDBInstances")
CONSOLE_WRITES = apis("StopInstances", "StartInstances", "CreateTags", "AuthorizeSecurityGroupIngress",
                      "AttachRolePolicy", "PutMetricAlarm", "DeleteSecurityGroup")


@dataclass
class ConsoleUser(Actor):
    """Alice, an Identity Center user, in the console through her SSO admin role (human, console)."""

    email: str = "alice@example.com"
    ip: str = "203.0.113.10"

    def sign_in(self, account: str, when: datetime, *, sign_in_session: str | None = None) -> Caller:
        r = role(account, SSO_ADMIN)
        browser = self.rng.choice(BROWSERS)
        base = session_identity(r, self.email, "", when, sign_in_session=sign_in_session)
        login_identity = {k: v for k, v in base.items() if k != "accessKeyId"}
        self.emit(Event(
            identity=login_identity, when=when, source="signin.amazonaws.com", name="ConsoleLogin", region=US,
            recipient=account, event_id=self.rng.uuid4(), version="1.09", ip=self.ip, user_agent=browser,
            request=None, response={"ConsoleLogin": "Success"}, read_only=False, event_type="AwsConsoleSignIn",
            additional={"LoginTo": "https://console.aws.amazon.com/console/home", "MobileVersion": "No",
                        "MFAUsed": "No"},
            tls_host="signin.aws.amazon.com",
        ), HUMAN_CONSOLE)
        return Caller(base, account, self.ip, browser, HUMAN_CONSOLE, from_console=True)

    def console_call(self, session: Caller, api: Api, when: datetime, region: str, **kwargs: Any) -> None:
        # The console mints a new access key per request; creationDate ties the session together.
        agent = self.rng.choice([session.user_agent, session.user_agent, f"console.{api.service}.amazonaws.com"])
        if api.service == "s3" and agent.startswith("console."):
            # The S3 console calls S3 from its back end, which names itself.
            agent = S3_CONSOLE
        caller = session.with_key(self.world.new_key(self.rng)).but(user_agent=agent)
        self.call(caller, api, when, region, version=self.rng.choice(("1.08", "1.09", "1.10")), **kwargs)

    def session(self, day: date, account: str, *, sign_in_session: str | None = None) -> Caller:
        rng = self.rng
        start = at(day, rng.randint(8, 17), rng.randint(0, 59), rng.randint(0, 59))
        session = self.sign_in(account, start, sign_in_session=sign_in_session)
        region = rng.choice((US, US, EU))
        when = start
        for _ in range(rng.randint(7, 18)):
            when += rng.gap(10, 150)
            api = rng.choice(CONSOLE_WRITES) if rng.chance(0.15) else rng.choice(CONSOLE_READS)
            self.console_call(session, api, when, region)
        if account == PROD and rng.chance(0.1):
            # Prod's service control policy forbids stopping the trail, even for admins.
            self.console_call(session, api_of("StopLogging"), when + rng.gap(20, 60), region,
                              explicit_deny="service control policy")
        return session

    def iam_change(self, session: Caller, name: str, request: dict[str, Any], when: datetime) -> None:
        """An IAM write alice makes in the console (IAM is global: logged in us-east-1)."""
        caller = session.with_key(self.world.new_key(self.rng)).but(user_agent=self.rng.choice(BROWSERS))
        self.emit(Event(
            identity=caller.identity, when=when, source="iam.amazonaws.com", name=name, region=US,
            recipient=session.account, event_id=self.rng.uuid4(), ip=self.ip, user_agent=caller.user_agent,
            request=request, response=None, request_id=self.rng.uuid4(), read_only=False,
            tls_host="iam.amazonaws.com", from_console=True,
        ), HUMAN_CONSOLE)

    def hand_pipeline_to_agent(self, when: datetime) -> None:
        """Q3: alice hands prod's data pipeline to the pipeline agent on the runner pool. In prod
        she tags DataPipelineAgentRole Usage=Agent and makes it trust the runners' instance role
        instead of carol; in dev she lets that instance role assume it."""
        target = role(PROD, "DataPipelineAgentRole")
        session = self.sign_in(PROD, when)
        self.iam_change(session, "TagRole", {"roleName": target.name, "tags": [{"key": "Usage", "value": "Agent"}]},
                        when + TAG_ROLE_DELAY)
        self.iam_change(session, "UpdateAssumeRolePolicy", {
            "roleName": target.name, "policyDocument": json.dumps(PIPELINE_TRUST_AFTER, separators=(",", ":"))},
            when + TAG_ROLE_DELAY + timedelta(seconds=41))
        self.console_call(session, api_of("GetRole"), when + timedelta(seconds=190), US)
        dev = self.sign_in(DEV, when + timedelta(minutes=6, seconds=12))
        self.iam_change(dev, "PutRolePolicy", {
            "roleName": "AgentRunnerInstanceRole", "policyName": "AssumePipelineRole",
            "policyDocument": json.dumps(policy_doc(allow("sts:AssumeRole", target.arn)), separators=(",", ":"))},
            when + timedelta(minutes=7, seconds=3))

    def switch_into_agent_role(self, day: date) -> None:
        """Q3: alice, signed in to prod, switches into the agents' AgentReadOnlyRole in the console
        to see what the cost-explorer agent can see. A person in an agent's role: human, console
        (the SwitchRole sign-in event and every console request she makes in that role)."""
        rng = self.rng
        start = at(day, rng.randint(10, 16), rng.randint(0, 59), rng.randint(0, 59))
        admin = self.sign_in(PROD, start)
        when = start
        for _ in range(rng.randint(1, 3)):
            when += rng.gap(10, 90)
            self.console_call(admin, rng.choice(CONSOLE_READS), when, US)
        when += rng.gap(10, 60)
        target = role(PROD, "AgentReadOnlyRole")
        identity = session_identity(target, self.email, "", when)
        del identity["accessKeyId"]  # the sign-in event has no key
        browser = admin.user_agent
        self.emit(Event(
            identity=identity, when=when, source="signin.amazonaws.com", name="SwitchRole", region=US,
            recipient=PROD, event_id=rng.uuid4(), version="1.09", ip=self.ip, user_agent=browser, request=None,
            response={"SwitchRole": "Success"}, read_only=False, event_type="AwsConsoleSignIn",
            additional={"SwitchFrom": admin.arn, "RedirectTo": "https://console.aws.amazon.com/console/home"},
            tls_host="signin.aws.amazon.com",
        ), HUMAN_CONSOLE)
        switched = Caller(session_identity(target, self.email, "", when), PROD, self.ip, browser, HUMAN_CONSOLE,
                          from_console=True)
        for n in range(rng.randint(5, 9)):
            when += rng.gap(10, 120)
            denied = n == 3  # she tries to stop an instance: the agents' role may not
            self.console_call(switched, api_of("StopInstances") if denied else rng.choice(AGENT_ROLE_CONSOLE_READS),
                              when, rng.choice((US, EU)), denied=denied)

    def run(self) -> None:
        rng = self.rng
        for day in weekdays():
            if rng.chance(0.42):
                self.session(day, DEV if rng.chance(0.6) else PROD)
        # A console session in Q3 that carries a signInSessionArn linked to no MCP grant: still human.
        self.session(date(2026, 8, 20), DEV,
                     sign_in_session=f"arn:aws:signin:us-east-1:{DEV}:session/{rng.uuid4()}")
        self.hand_pipeline_to_agent(TAG_ROLE_TIME)
        for day in (date(2026, 8, 27), date(2026, 9, 10)):
            self.switch_into_agent_role(day)


TAG_ROLE_TIME = datetime(2026, 8, 4, 14, 10, 5, tzinfo=UTC)  # alice signs in
TAG_ROLE_DELAY = timedelta(seconds=95)  # then tags the role: TagRole's eventTime is 14:11:40
# DataPipelineAgentRole's trust policy from alice's UpdateAssumeRolePolicy on: the agent runners.
PIPELINE_TRUST_AFTER = trust({"AWS": f"arn:aws:iam::{DEV}:role/AgentRunnerInstanceRole"})
AGENT_ROLE_CONSOLE_READS = apis("DescribeInstances", "DescribeVolumes", "GetCostAndUsage", "DescribeDBInstances",
                                "GetMetricData", "ListRoles")

BOB_APIS = apis("ListBuckets", "DescribeInstances", "FilterLogEvents", "GetFunction20150331v2",
                "UpdateFunctionCode20150331v2", "DescribeStacks", "GetCallerIdentity", "GetParameter",
                "GetAuthorizationToken", "DescribeLogGroups", "GetBucketPolicy", "ListFunctions20150331")
BOB_DENIED = apis("ListUsers", "DeleteBucket", "CreateUser")


@dataclass
class SsoCliUser(Actor):
    """Bob on the AWS CLI with SSO credentials from the portal (human, direct).

    The portal hands out his keys: no STS event issues them, so they never join (normal for SSO).
    """

    email: str = "bob@example.com"
    ip: str = "198.51.100.23"
    role_name: str = SSO_DEVELOPER

    def caller(self, account: str, created: datetime) -> Caller:
        r = role(account, self.role_name)
        identity = session_identity(r, self.email, self.world.new_key(self.rng), created)
        return Caller(identity, account, self.ip, "", HUMAN_DIRECT)

    def session(self, start: datetime, account: str, calls: int) -> None:
        rng = self.rng
        caller = self.caller(account, start)
        region = rng.choice((US, US, EU))
        when = start
        for _ in range(calls):
            when += rng.gap(5, 240)
            denied = rng.chance(0.06)
            api = rng.choice(BOB_DENIED) if denied else rng.choice(BOB_APIS)
            self.call(caller.but(user_agent=cli_agent(api, os_part=MAC_CLI)), api, when, region, denied=denied)

    def deploy(self, start: datetime) -> None:
        """`aws cloudformation deploy` of a dev stack: bob's change set calls (human, direct), then
        CloudFormation updates the stack's resources with bob's credentials (the stack has no
        service role): bob's doing, made by the service (human, service)."""
        rng = self.rng
        caller = self.caller(DEV, start)
        when = start
        for a in STACK_DEPLOY:
            when += rng.gap(2, 30)
            self.call(caller.but(user_agent=cli_agent(a, os_part=MAC_CLI)), a, when, US)
        stack_update(self, caller, through_service(HUMAN_DIRECT), when, region=US, calls=rng.randint(2, 4))

    def run(self) -> None:
        rng = self.rng
        for day in weekdays():
            if rng.chance(0.45):
                start = at(day, rng.randint(8, 18), rng.randint(0, 59), rng.randint(0, 59))
                self.session(start, DEV if rng.chance(0.8) else PROD, rng.randint(4, 16))
        # Late-night work: these records are delivered in the next day's folder.
        for day in (date(2026, 5, 14), date(2026, 7, 22), date(2026, 9, 9)):
            self.session(at(day, 23, 50, 12), DEV, 4)
        for day in (date(2026, 4, 23), date(2026, 6, 9), date(2026, 7, 28), date(2026, 9, 15)):
            self.deploy(at(day, rng.randint(10, 17), rng.randint(0, 59), rng.randint(0, 59)))


CAROL_BOTO3 = apis("DescribeInstances", "DescribeVolumes", "ListBuckets", "GetBucketVersioning",
                   "GetBucketEncryption", "PutBucketTagging", "CreateTags", "DescribeTable", "GetParameter",
                   "ListStacks", "DescribeSecurityGroups")
TERRAFORM_READS = apis("DescribeVpcs", "DescribeSubnets", "DescribeSecurityGroups", "DescribeInstances",
                       "GetRole", "ListAttachedRolePolicies", "GetBucketPolicy", "GetBucketVersioning",
                       "GetBucketEncryption", "GetBucketAcl", "GetFunction20150331v2", "DescribeKey",
                       "DescribeLogGroups", "GetCallerIdentity")
TERRAFORM_WRITES = apis("AuthorizeSecurityGroupIngress", "CreateTags", "RunInstances", "TerminateInstances",
                        "PutBucketTagging", "AttachRolePolicy")


@dataclass
class AccessKeyUser(Actor):
    """Carol, an IAM user with a long-term access key, from boto3 scripts and terraform (human, direct)."""

    ip: str = "192.0.2.44"

    @property
    def caller(self) -> Caller:
        return Caller(user_identity(CAROL), CAROL.account, self.ip, BOTO3_LAPTOP, HUMAN_DIRECT)

    def script(self, start: datetime) -> None:
        self.burst(self.caller, CAROL_BOTO3, start, self.rng.randint(4, 12), self.rng.choice(REGIONS),
                   denied_rate=0.05, gap=(1, 20))

    def terraform(self, start: datetime, region: str) -> None:
        rng = self.rng
        when = start
        for _ in range(rng.randint(10, 22)):  # plan: refresh every resource
            when += rng.gap(0, 3)
            api = rng.choice(TERRAFORM_READS)
            self.call(self.caller.but(user_agent=terraform_agent(api)), api, when, region)
        if rng.chance(0.5):  # apply
            for _ in range(rng.randint(1, 4)):
                when += rng.gap(5, 40)
                api = rng.choice(TERRAFORM_WRITES)
                self.call(self.caller.but(user_agent=terraform_agent(api)), api, when, region,
                          denied=rng.chance(0.08))

    def create_report_agent_role(self, when: datetime) -> None:
        """Q3: terraform creates ReportAgentRole, tagged Usage=Agent (absent from the snapshot)."""
        r = role(DEV, "ReportAgentRole")
        tags = [{"key": k, "value": v} for k, v in r.tags.items()]
        trust_text = json.dumps(r.trust_policy, separators=(",", ":"))
        caller = self.caller.but(user_agent=terraform_agent(api_of("GetRole")))
        self.emit(Event(
            identity=caller.identity, when=when, source="iam.amazonaws.com", name="CreateRole", region=US,
            recipient=DEV, event_id=self.rng.uuid4(), ip=self.ip, user_agent=caller.user_agent,
            request={"roleName": r.name, "path": r.path, "description": r.description, "maxSessionDuration": 3600,
                     "assumeRolePolicyDocument": trust_text, "tags": tags},
            response={"role": {"path": r.path, "roleName": r.name, "roleId": r.role_id, "arn": r.arn,
                               "createDate": human_time(when), "assumeRolePolicyDocument": trust_text,
                               "tags": tags}},
            request_id=self.rng.uuid4(), read_only=False, tls_host="iam.amazonaws.com",
        ), HUMAN_DIRECT)
        policy = json.dumps(r.inline_policies["CostReport"], separators=(",", ":"))
        self.emit(Event(
            identity=caller.identity, when=when + timedelta(seconds=2), source="iam.amazonaws.com",
            name="PutRolePolicy", region=US, recipient=DEV, event_id=self.rng.uuid4(), ip=self.ip,
            user_agent=caller.user_agent,
            request={"roleName": r.name, "policyName": "CostReport", "policyDocument": policy},
            request_id=self.rng.uuid4(), read_only=False, tls_host="iam.amazonaws.com",
        ), HUMAN_DIRECT)
        self.emit(Event(
            identity=caller.identity, when=when + timedelta(seconds=3), source="iam.amazonaws.com",
            name="AttachRolePolicy", region=US, recipient=DEV, event_id=self.rng.uuid4(), ip=self.ip,
            user_agent=caller.user_agent,
            request={"roleName": r.name, "policyArn": r.managed_policies[0]},
            request_id=self.rng.uuid4(), read_only=False, tls_host="iam.amazonaws.com",
        ), HUMAN_DIRECT)

    def run(self) -> None:
        rng = self.rng
        for day in weekdays():
            if rng.chance(0.25):
                start = at(day, rng.randint(9, 17), rng.randint(0, 59))
                if rng.chance(0.5):
                    self.script(start)
                else:
                    self.terraform(start, rng.choice((US, US, EU)))
        self.create_report_agent_role(REPORT_ROLE_CREATED)


REPORT_ROLE_CREATED = datetime(2026, 7, 15, 10, 2, 11, tzinfo=UTC)


@dataclass
class FailedSignIns(Actor):
    """Failed console sign-ins: CloudTrail cannot say who tried (userIdentity.type Unknown)."""

    def run(self) -> None:
        rng = self.rng
        for day, account in ((date(2026, 4, 18), DEV), (date(2026, 5, 2), PROD), (date(2026, 6, 27), DEV),
                             (date(2026, 7, 30), PROD), (date(2026, 8, 23), DEV), (date(2026, 9, 19), PROD)):
            when = at(day, rng.randint(0, 22), rng.randint(0, 59), rng.randint(0, 59))
            self.emit(Event(
                identity={"type": "Unknown", "principalId": account, "accountId": account, "accessKeyId": "",
                          "userName": "HIDDEN_DUE_TO_SECURITY_REASONS"},
                when=when, source="signin.amazonaws.com", name="ConsoleLogin", region=US, recipient=account,
                event_id=rng.uuid4(), version="1.09", ip=f"198.51.100.{rng.randint(150, 199)}",
                user_agent=rng.choice(BROWSERS), request=None, response={"ConsoleLogin": "Failure"},
                additional={"LoginTo": "https://console.aws.amazon.com/console/home", "MobileVersion": "No",
                            "MFAUsed": "No"},
                read_only=False, event_type="AwsConsoleSignIn", error=(None, "Failed authentication"),
                tls_host="signin.aws.amazon.com",
            ), UNKNOWN)


# ---------------------------------------------------------------------------------------------
# Actors: AWS services
# ---------------------------------------------------------------------------------------------

CONFIG_READS = apis("DescribeInstances", "DescribeSecurityGroups", "DescribeVolumes", "DescribeVpcs",
                    "GetBucketAcl", "GetBucketPolicy", "GetBucketEncryption", "ListFunctions20150331",
                    "DescribeDBInstances")


@dataclass
class AwsServices(Actor):
    """AWS services acting on their own: Config's service-linked role, CloudTrail, service events."""

    def config_recorder(self, account: str, day: date) -> None:
        # AWS Config describes resources through its service-linked role (AWSServiceRoleForConfig).
        r = role(account, "AWSServiceRoleForConfig")
        start = at(day, self.rng.randint(1, 21), self.rng.randint(0, 59))
        identity = session_identity(r, "AWSConfig-Describe", self.world.new_key(self.rng), start,
                                    invoked_by="config.amazonaws.com")
        caller = Caller(identity, account, "config.amazonaws.com", "config.amazonaws.com", SERVICE,
                        by_service=True)
        for region in REGIONS:
            self.burst(caller, CONFIG_READS, start, self.rng.randint(2, 5), region, gap=(1, 30))

    def cloudtrail_delivery(self, day: date) -> None:
        # CloudTrail itself checks the trail bucket's ACL and asks KMS for a data key.
        caller = service_caller("cloudtrail.amazonaws.com", DEV)
        when = at(day, self.rng.randint(0, 22), self.rng.randint(0, 59))
        self.call(caller, api_of("GetBucketAcl"), when, US)
        key_arn = kms_key_arn(DEV, US)
        self.emit(Event(
            identity=caller.identity, when=when + timedelta(seconds=1), source="kms.amazonaws.com",
            name="GenerateDataKey", region=US, recipient=DEV, event_id=self.rng.uuid4(),
            ip="cloudtrail.amazonaws.com", user_agent="cloudtrail.amazonaws.com",
            request={"keyId": key_arn, "keySpec": "AES_256", "encryptionContext": {
                "aws:cloudtrail:arn": f"arn:aws:cloudtrail:us-east-1:999999999999:trail/{TRAIL_NAME}",
                "aws:s3:arn": f"arn:aws:s3:::{TRAIL_BUCKET}/AWSLogs/{ORG_ID}/"}},
            request_id=self.rng.uuid4(), resources=[{"accountId": DEV, "type": "AWS::KMS::Key", "ARN": key_arn}],
            shared_event_id=self.rng.uuid4(),
        ), SERVICE)

    def service_event(self, account: str, region: str, when: datetime, *, source: str, name: str,
                      details: dict[str, Any], version: str = "1.08") -> None:
        # AwsServiceEvent records: userIdentity has no type, only the account and the service.
        self.emit(Event(
            identity={"accountId": account, "invokedBy": source}, when=when, source=source, name=name,
            region=region, recipient=account, event_id=self.rng.uuid4(), version=version, ip=source,
            user_agent=source, read_only=False, event_type="AwsServiceEvent", service_details=details,
        ), SERVICE)

    def run(self) -> None:
        rng = self.rng
        for i, day in enumerate(all_days()):
            if i % 5 == 0:
                self.config_recorder(DEV, day)
            if i % 5 == 2:
                self.config_recorder(PROD, day)
            if i % 6 == 3:
                self.cloudtrail_delivery(day)
        # Yearly KMS key rotation: old-style records (eventVersion 1.05, no managementEvent/category).
        for account, region, day in ((DEV, US, date(2026, 4, 22)), (PROD, EU, date(2026, 6, 3)),
                                     (PROD, US, date(2026, 9, 1))):
            self.service_event(account, region, at(day, 3, rng.randint(0, 59), rng.randint(0, 59)),
                               source="kms.amazonaws.com", name="RotateKey",
                               details={"keyId": kms_key_arn(account, region).split("/")[1]}, version="1.05")
        # Monthly rotation of the prod database secret.
        for month in range(4, 10):
            when = at(date(2026, month, 15), 2, rng.randint(0, 20), rng.randint(0, 59))
            arn = f"arn:aws:secretsmanager:eu-west-1:{PROD}:secret:app-db-Ab12Cd"
            version = "1.05" if month in (4, 5, 6) else "1.08"
            for name, offset in (("RotationStarted", 0), ("RotationSucceeded", rng.randint(20, 90))):
                self.service_event(PROD, EU, when + timedelta(seconds=offset), source="secretsmanager.amazonaws.com",
                                   name=name, details={"secretId": arn}, version=version)


# ---------------------------------------------------------------------------------------------
# Actors: agents through the AWS-managed MCP server
# ---------------------------------------------------------------------------------------------

MCP_READ_CALLS = apis("DescribeInstances", "ListBuckets", "GetMetricData", "DescribeLogGroups",
                      "ListFunctions20150331", "ListRoles", "GetCostAndUsage", "DescribeAlarms",
                      "DescribeStacks", "FilterLogEvents")
MCP_WRITE_CALLS = apis("StopInstances", "CreateTags", "PutMetricAlarm")
DOC_TOOLS = ("aws___search_documentation", "aws___read_documentation", "aws___suggest_aws_commands")
DAN_CLI = apis("ListBuckets", "GetCallerIdentity", "DescribeInstances", "DescribeLogGroups")
# The trail's advanced event selectors log the managed MCP server's data events (the documented
# shape of its tool calls) from this day on; before, such tool calls leave no record.
MCP_DATA_EVENTS_FROM = date(2026, 8, 17)


@dataclass
class ManagedMcpUser(Actor):
    """Dan: his agent (Claude Code) calls AWS through the AWS-managed MCP server, Q3 only.

    The OAuth grant (CreateOAuth2Token with the MCP endpoint as resource) opens a sign-in session;
    every event of that session (grant, tool calls, downstream calls) is agent, mcp_managed. Dan's
    own CLI work, including an `aws login` grant that is NOT for MCP, stays human, direct.
    """

    email: str = "dan@example.com"
    ip: str = "203.0.113.77"

    def identity(self, account: str, key: str, created: datetime, sign_in_session: str | None) -> dict[str, Any]:
        return session_identity(role(account, SSO_DEVELOPER), self.email, key, created,
                                sign_in_session=sign_in_session)

    def oauth_grant(self, when: datetime, sign_in_session: str, user_agent: str, label: Label, *,
                    resource: str | None, refresh: bool = False) -> None:
        identity = self.identity(DEV, "", when, None)  # the grant itself is made without an access key
        request: dict[str, Any] = {"clientId": "arn:aws:signin:::devtools/same-device",
                                   "grantType": "refresh_token" if refresh else "authorization_code"}
        if resource:
            request["resource"] = resource
        self.emit(Event(
            identity=identity, when=when, source="signin.amazonaws.com", name="CreateOAuth2Token", region=US,
            recipient=DEV, event_id=self.rng.uuid4(), version="1.10", ip=self.ip, user_agent=user_agent,
            request=request, response=None, additional={"signInSessionArn": sign_in_session},
            request_id=self.rng.uuid4(), read_only=False, tls_host="signin.aws.amazon.com",
        ), label)

    def tool_call(self, caller: Caller, when: datetime, session_id: str, *, documented: bool,
                  logged: bool = True) -> datetime:
        """One AwsMcpEvent record (`logged`), then the downstream calls it made.

        Observed shape: the tool call is a Management event. Documented shape: the tool call is
        a Data event (logged only where the trail selects it). Downstream calls are the same in
        both shapes (facts doc s.4): dan's identity with invokedBy, sourceIPAddress and userAgent
        = aws-mcp.amazonaws.com (the client's address is not recorded), their requestID listed
        in the tool call's downstreamRequests.
        """
        rng = self.rng
        downstream: list[tuple[Api, str]] = []
        if rng.chance(0.25):
            tool = rng.choice(DOC_TOOLS)  # documentation tools call no AWS API
            arguments: dict[str, Any] = {"search_phrase": rng.choice(
                ["S3 bucket policy examples", "EC2 instance metadata service v2", "Lambda reserved concurrency"])}
        else:
            tool = "aws___call_aws"
            a = rng.choice(MCP_WRITE_CALLS) if rng.chance(0.15) else rng.choice(MCP_READ_CALLS)
            region = a.home_region or rng.choice((US, US, EU))
            pages = 2 if a.read_only and rng.chance(0.2) else 1  # a paginated command: two calls
            downstream = [(a, region)] * pages
            arguments = {"cli_command": f"aws {a.cli.replace('.', ' ', 1)} --region {region}"}
        request_ids = [rng.uuid4() for _ in downstream]
        read_only = all(a.read_only for a, _ in downstream)
        if documented:
            source, name, category, management = "aws-mcp.us-east-1.api.aws", "CallTool", "Data", False
        else:
            source = MCP_PRINCIPAL
            name = "CallReadOnlyTool" if read_only else "CallReadWriteTool"
            category, management = "Management", True
        additional = None
        if downstream:
            additional = {"downstreamRequests": [{"apiName": f"{a.service}:{a.name}", "requestId": rid,
                                                  "awsRegion": a.home_region or region}
                                                 for (a, region), rid in zip(downstream, request_ids, strict=True)]}
        event = Event(
            identity=caller.identity, when=when, source=source, name=name, region=US, recipient=DEV,
            event_id=rng.uuid4(), version="1.10", ip=caller.source_ip, user_agent=caller.user_agent,
            request={"jsonrpc": "2.0", "method": "tools/call", "id": rng.randint(2, 400),
                     "params": {"name": tool, "arguments": arguments}},
            response=None, additional=additional, request_id=rng.uuid4(), read_only=read_only,
            event_type="AwsMcpEvent", management=management, category=category,
            tls_host="aws-mcp.us-east-1.api.aws",
            mcp_details={"sessionId": session_id, "mcpServerName": "aws-mcp"},
        )
        if logged:
            self.emit(event, MANAGED_MCP)
        server = caller.but(identity={**caller.identity, "invokedBy": MCP_PRINCIPAL}, source_ip=MCP_PRINCIPAL,
                            user_agent=MCP_PRINCIPAL, by_service=True)
        for (a, region), rid in zip(downstream, request_ids, strict=True):
            when += rng.gap(0, 2)
            self.call(server, a, when, region, request_id=rid, denied=rng.chance(0.05))
        return when

    def mcp_session(self, start: datetime, *, documented: bool = False) -> None:
        """One OAuth grant for the MCP endpoint, then 4 to 11 tool calls. A documented-shape
        session before MCP_DATA_EVENTS_FROM leaves no tool-call record (a Data event the trail
        did not select yet): its downstream calls still carry invokedBy, and the grant's
        signInSessionArn."""
        rng = self.rng
        sign_in_session = f"arn:aws:signin:us-east-1:{DEV}:session/{rng.uuid4()}"
        client = rng.choice(MCP_CLIENTS)
        self.oauth_grant(start, sign_in_session, client, MANAGED_MCP, resource=MCP_ENDPOINT)
        identity = self.identity(DEV, self.world.new_key(rng), start, sign_in_session)
        caller = Caller(identity, DEV, self.ip, client, MANAGED_MCP)
        session_id = rng.uuid4()
        logged = not documented or start.date() >= MCP_DATA_EVENTS_FROM
        when = start
        calls = rng.randint(4, 11)
        for i in range(calls):
            when = self.tool_call(caller, when + rng.gap(15, 180), session_id, documented=documented, logged=logged)
            if i == calls // 2 and rng.chance(0.4):  # the client refreshes its token mid-session
                when += rng.gap(5, 30)
                self.oauth_grant(when, sign_in_session, client, MANAGED_MCP, resource=MCP_ENDPOINT, refresh=True)

    def cli_session(self, start: datetime, *, aws_login: bool) -> None:
        rng = self.rng
        sign_in_session = None
        agent = cli_agent(api_of("GetCallerIdentity"), os_part=MAC_CLI)
        if aws_login:  # `aws login`: an OAuth grant for the CLI, not for MCP (no resource)
            sign_in_session = f"arn:aws:signin:us-east-1:{DEV}:session/{rng.uuid4()}"
            self.oauth_grant(start, sign_in_session, agent, HUMAN_DIRECT, resource=None)
        identity = self.identity(DEV, self.world.new_key(rng), start, sign_in_session)
        when = start
        for _ in range(rng.randint(2, 6)):
            when += rng.gap(5, 120)
            api = rng.choice(DAN_CLI)
            self.call(Caller(identity, DEV, self.ip, cli_agent(api, os_part=MAC_CLI), HUMAN_DIRECT), api, when,
                      rng.choice(REGIONS))

    def run(self) -> None:
        rng = self.rng
        mcp_days = sorted(rng.sample(Q3_WEEKDAYS, 14))
        for n, day in enumerate(mcp_days):
            # Two sessions in the documented record shape (CallTool, Data, *.api.aws source),
            # one before the trail selected the MCP server's data events, one after.
            self.mcp_session(at(day, rng.randint(9, 17), rng.randint(0, 59)), documented=n in (3, 9))
        for day in weekdays():
            if day not in mcp_days and rng.chance(0.1):
                self.cli_session(at(day, rng.randint(9, 17), rng.randint(0, 59)), aws_login=False)
        for day in (date(2026, 8, 5), date(2026, 9, 16)):
            self.cli_session(at(day, 16, rng.randint(0, 59)), aws_login=True)


# The day dan's agent mints itself credentials through the managed MCP server and leaves it.
MINTED_SESSION_DAY = date(2026, 9, 2)
MINTED_ROLE = "AppDeployRole"  # dan's Identity Center role may assume it (its trust policy)
# What the agent runs from its own shell with the minted key (AppDeployAccess allows the writes,
# not ec2:DescribeInstances: that one is denied), in this order: (call, denied).
MINTED_SHELL_CALLS = (("GetCallerIdentity", False), ("DescribeStacks", False), ("DescribeInstances", True),
                      ("AuthorizeSecurityGroupIngress", False), ("CreateTags", False), ("CreateTags", False),
                      ("DescribeStacks", False))
MCP_SHELL = Label("agent", "direct", MCP_PRINCIPAL)  # the managed-MCP agent, outside MCP


@dataclass
class ManagedMcpMintedSession(ManagedMcpUser):
    """Dan's agent (Claude Code, through the AWS-managed MCP server) gets itself credentials and
    leaves MCP, once, on MINTED_SESSION_DAY.

    An MCP session as in ManagedMcpUser (grant, tool calls in the observed shape): the agent looks
    at the stacks, then runs `aws sts assume-role` on AppDeployRole with aws___call_aws. The
    server makes the AssumeRole with dan's session (invokedBy, sourceIPAddress, userAgent
    aws-mcp.amazonaws.com; its requestID listed in the tool call's downstreamRequests), and the
    tool's result hands the agent the new credentials. The agent exports them in its own shell on
    dan's laptop and calls AWS with the aws CLI, without the MCP server: no invokedBy, no sign-in
    session, dan's address, a CLI user agent like dan's own. The grant, the tool calls and the
    AssumeRole are agent, mcp_managed; the shell calls with the minted key are the same agent,
    direct (agent name aws-mcp.amazonaws.com): the records show it only through the key, which
    the MCP server's AssumeRole issued.

    Its own actor (and random stream) so that dan's other sessions keep their records.
    """

    def mcp_tool_call(self, caller: Caller, when: datetime, session_id: str, command: str, api_name: str, *,
                      read_only: bool) -> str:
        """An observed-shape aws___call_aws record for `command`, which makes one downstream call
        (`api_name`, service:Operation, in us-east-1); returns that call's requestID."""
        rng = self.rng
        request_id = rng.uuid4()
        self.emit(Event(
            identity=caller.identity, when=when, source=MCP_PRINCIPAL,
            name="CallReadOnlyTool" if read_only else "CallReadWriteTool", region=US, recipient=DEV,
            event_id=rng.uuid4(), version="1.10", ip=caller.source_ip, user_agent=caller.user_agent,
            request={"jsonrpc": "2.0", "method": "tools/call", "id": rng.randint(2, 400),
                     "params": {"name": "aws___call_aws", "arguments": {"cli_command": command}}},
            response=None,
            additional={"downstreamRequests": [{"apiName": api_name, "requestId": request_id, "awsRegion": US}]},
            request_id=rng.uuid4(), read_only=read_only, event_type="AwsMcpEvent",
            tls_host="aws-mcp.us-east-1.api.aws", mcp_details={"sessionId": session_id, "mcpServerName": "aws-mcp"},
        ), MANAGED_MCP)
        return request_id

    def run(self) -> None:
        rng = self.rng
        start = at(MINTED_SESSION_DAY, 13, rng.randint(0, 15), rng.randint(0, 59))
        sign_in_session = f"arn:aws:signin:us-east-1:{DEV}:session/{rng.uuid4()}"
        client = MCP_CLIENTS[0]  # claude-code
        self.oauth_grant(start, sign_in_session, client, MANAGED_MCP, resource=MCP_ENDPOINT)
        identity = self.identity(DEV, self.world.new_key(rng), start, sign_in_session)
        caller = Caller(identity, DEV, self.ip, client, MANAGED_MCP)
        server = caller.but(identity={**identity, "invokedBy": MCP_PRINCIPAL}, source_ip=MCP_PRINCIPAL,
                            user_agent=MCP_PRINCIPAL, by_service=True)
        session_id = rng.uuid4()

        when = start + rng.gap(20, 90)  # what is deployed: through MCP
        describe = api_of("DescribeStacks")
        rid = self.mcp_tool_call(caller, when, session_id, "aws cloudformation describe-stacks --region us-east-1",
                                 f"{describe.service}:{describe.name}", read_only=describe.read_only)
        when += rng.gap(0, 2)
        self.call(server, describe, when, US, request_id=rid)

        # The agent asks the MCP server for credentials of the deployment role (minting them is no
        # read for the server, whatever CloudTrail's readOnly of AssumeRole says: CallReadWriteTool).
        target = role(DEV, MINTED_ROLE)
        session_name = f"claude-deploy-{rng.hex(6)}"
        when += rng.gap(30, 120)
        command = (f"aws sts assume-role --role-arn {target.arn} --role-session-name {session_name} "
                   "--region us-east-1")
        rid = self.mcp_tool_call(caller, when, session_id, command, "sts:AssumeRole", read_only=False)
        when += rng.gap(0, 2)
        issued = assume_role(self, server, target, session_name, when, request_id=rid)

        # From its own shell, with the minted key: the aws CLI on dan's laptop, no MCP server.
        minted = session_identity(target, session_name, issued.key, issued.issued_at)
        when += rng.gap(20, 60)
        for name, denied in MINTED_SHELL_CALLS:
            when += rng.gap(5, 90)
            a = api_of(name)
            self.call(Caller(minted, DEV, self.ip, cli_agent(a, os_part=MAC_CLI), MCP_SHELL), a, when, US,
                      denied=denied)
        if when >= issued.issued_at + timedelta(hours=1):
            raise ValueError("the minted credentials expired before the agent's last call")


# ---------------------------------------------------------------------------------------------
# Actors: agents through self-managed MCP servers, and the MCP bypass
# ---------------------------------------------------------------------------------------------

COST_MCP = "cost-explorer-mcp"
COST_CALLS = apis("GetCostAndUsage", "GetCostForecast", "GetDimensionValues", "DescribeInstances",
                  "GetMetricData", "DescribeVolumes", "DescribeDBInstances")
PROD_COST_CALLS = apis("GetCostAndUsage", "DescribeInstances", "DescribeDBInstances", "GetMetricData",
                       "DescribeVolumes")
SHELL_CALLS = apis("DescribeInstances", "ListBuckets", "GetBucketPolicy", "ListRoles", "GetCallerIdentity",
                   "DescribeSecurityGroups", "FilterLogEvents", "DescribeStacks")
SHELL_WRITES = apis("TerminateInstances", "StopInstances", "UpdateFunctionCode20150331v2")


@dataclass
class SelfManagedMcpServer(Actor):
    """The cost-explorer MCP server, an ECS task in dev, restarted every morning.

    ECS obtains the task role's credentials (McpServerTaskRole) and renews them while the task
    runs. The server process holds them as its own workload identity: it reads its configuration
    and, for each agent request, assumes AgentMcpRole with session tags (MCPServer, Usage; both
    transitive) and SourceIdentity = the person the agent works for, sometimes chaining into
    prod's AgentReadOnlyRole. Those AssumeRole calls are the server's, made as the workload it is
    (workload, direct): the agent acts only through the tagged session they open (agent,
    mcp_self_managed). The same task also runs a coding agent whose runtime (boto3 in the task,
    the task role's credentials) opens AgentMcpRole sessions for it WITHOUT session tags; the
    agent then calls AWS from the aws CLI in its shell: the MCP bypass (agent, direct).
    """

    ip: str = "203.0.113.200"  # the VPC's NAT gateway
    person: str = "erin@example.com"
    tags: dict[str, str] = field(default_factory=lambda: {"MCPServer": COST_MCP, "Usage": "Agent"})

    @property
    def label(self) -> Label:
        return self_managed_mcp(COST_MCP)

    def task_caller(self, task: ServiceCredentials, when: datetime) -> Caller:
        """The server process (or the agent runtime beside it) with the task role's credentials."""
        return Caller(task.identity(when), DEV, self.ip, BOTO3_FARGATE, WORKLOAD)

    def start_task(self, day: date) -> ServiceCredentials:
        """ECS starts the task at 7:00 and stops it at 22:00; the server reads its config."""
        start = at(day, 7, self.rng.randint(0, 59), self.rng.randint(0, 59))
        task = ServiceCredentials(self, "ecs-tasks.amazonaws.com", role(DEV, "McpServerTaskRole"), self.rng.hex(32),
                                  region=US, start=start, end=at(day, 22))
        when = start + self.rng.gap(3, 10)
        self.call(self.task_caller(task, when), api_of("GetParameter"), when, US)  # reads its config
        return task

    def agent_request(self, task: ServiceCredentials, start: datetime) -> None:
        rng = self.rng
        session_name = f"{COST_MCP}-{rng.hex(8)}"
        issued = assume_role(self, self.task_caller(task, start), role(DEV, "AgentMcpRole"), session_name, start,
                             tags=self.tags, transitive=list(self.tags), source_identity=self.person)
        identity = session_identity(issued.role, session_name, issued.key, start, source_identity=self.person)
        agent = Caller(identity, DEV, self.ip, BOTO3_FARGATE, self.label)
        when = start
        for _ in range(rng.randint(4, 10)):
            when += rng.gap(2, 40)
            a = rng.choice(COST_CALLS)
            denied = rng.chance(0.05)
            self.call(agent, api_of("GetReservationUtilization") if denied else a, when,
                      rng.choice((US, EU)), denied=denied)
        if rng.chance(0.45):
            self.chain_into_prod(agent, when + rng.gap(5, 30))

    def chain_into_prod(self, agent: Caller, start: datetime) -> None:
        """Role chaining: the tagged session assumes prod's AgentReadOnlyRole. Logged in both
        accounts (one sharedEventID); prod's copy shows the transitive tags as incomingTransitiveTags."""
        rng = self.rng
        session_name = f"{COST_MCP}-prod-{rng.hex(8)}"
        issued = assume_role(self, agent, role(PROD, "AgentReadOnlyRole"), session_name, start,
                             incoming_tags=self.tags)
        identity = session_identity(issued.role, session_name, issued.key, start, source_identity=self.person)
        chained = Caller(identity, PROD, self.ip, BOTO3_FARGATE, self.label)
        self.burst(chained, PROD_COST_CALLS, start, rng.randint(3, 7), EU, gap=(2, 30), regions=(US, EU))

    def shell_harness(self, task: ServiceCredentials, start: datetime) -> None:
        """The bypass: the agent runtime opens an AgentMcpRole session without session tags (its
        AssumeRole: the runtime's, a workload's), and the agent drives `aws` in a shell with it."""
        rng = self.rng
        session_name = f"agent-shell-{rng.hex(8)}"
        issued = assume_role(self, self.task_caller(task, start), role(DEV, "AgentMcpRole"), session_name, start)
        identity = session_identity(issued.role, session_name, issued.key, start)
        label = agent_direct("AgentMcpRole")
        when = start
        for _ in range(rng.randint(4, 9)):
            when += rng.gap(3, 60)
            write = rng.chance(0.12)
            a = rng.choice(SHELL_WRITES) if write else rng.choice(SHELL_CALLS)
            caller = Caller(identity, DEV, self.ip, cli_agent(a, os_part=FARGATE_CLI,
                                                               extra="exec-env/AWS_ECS_FARGATE "), label)
            self.call(caller, a, when, rng.choice((US, US, EU)), denied=write and rng.chance(0.5))

    def run(self) -> None:
        rng = self.rng
        days = sorted(rng.sample(weekdays(), 34))
        bypass_days = set(rng.sample(days, 11))
        for n, day in enumerate(days):
            task = self.start_task(day)
            for _ in range(rng.randint(1, 2)):
                self.agent_request(task, at(day, rng.randint(9, 17), rng.randint(0, 59), rng.randint(0, 59)))
            if day in bypass_days:
                self.shell_harness(task, at(day, rng.randint(18, 21), rng.randint(0, 59)))
            if n == 20:
                # The tagged session tries a role it may not assume: AccessDenied, null parameters.
                session_name = f"{COST_MCP}-{rng.hex(8)}"
                start = at(day, 18, 5, 0)
                issued = assume_role(self, self.task_caller(task, start), role(DEV, "AgentMcpRole"), session_name,
                                     start, tags=self.tags, transitive=list(self.tags), source_identity=self.person)
                agent = Caller(session_identity(issued.role, session_name, issued.key, start,
                                                source_identity=self.person), DEV, self.ip, BOTO3_FARGATE,
                               self.label)
                failed_assume_role(self, agent, role(DEV, "OrganizationAccountAccessRole"),
                                   start + timedelta(seconds=4))


K8S_MCP = "k8s-mcp"
K8S_CALLS = apis("ListClusters", "DescribeCluster", "ListNodegroups", "DescribeNodegroup", "DescribeInstances",
                 "DescribeRepositories", "FilterLogEvents")
K8S_PROD_CALLS = apis("ListClusters", "DescribeCluster", "ListNodegroups", "DescribeNodegroup", "DescribeInstances")


@dataclass
class EksMcpServer(Actor):
    """An MCP server in EKS (IRSA): AssumeRoleWithWebIdentity with principal tags in MAP form.

    The web-identity call itself is made by the pod's service account (a workload); the session it
    opens carries MCPServer=k8s-mcp, so its calls are agent, mcp_self_managed. `Usage` is "agent"
    in lower case on purpose (the tag value match is case-insensitive).

    To look at prod's cluster the server hops into prod's EksReadOnlyRole, a read-only role that
    people and tools share (untagged). Tags that come from a web-identity token are not
    transitive unless the token says so, and this one does not: the prod session carries no tag.
    Its calls are still the k8s-mcp agent's, through its MCP server (agent, mcp_self_managed).
    """

    ip: str = "203.0.113.201"
    subject: str = "system:serviceaccount:mcp:k8s-mcp"

    def run(self) -> None:
        rng = self.rng
        provider = EKS_OIDC
        for day in sorted(rng.sample(weekdays(), 17)):
            start = at(day, rng.randint(8, 19), rng.randint(0, 59), rng.randint(0, 59))
            session_name = f"botocore-session-{int(start.timestamp())}"
            issued = assume_role_with_web_identity(
                self, role(DEV, "K8sMcpServerRole"), provider=provider, subject=self.subject,
                session_name=session_name, when=start, ip=self.ip, user_agent=BOTO3_EKS, label=WORKLOAD,
                principal_tags={"MCPServer": K8S_MCP, "Usage": "agent"})
            identity = session_identity(issued.role, session_name, issued.key, start,
                                        web_identity=web_federation(DEV, provider))
            caller = Caller(identity, DEV, self.ip, BOTO3_EKS, self_managed_mcp(K8S_MCP))
            when = self.burst(caller, K8S_CALLS, start, rng.randint(4, 10), US, denied_rate=0.04, gap=(1, 45))
            if rng.chance(0.4):
                self.look_at_prod(caller, when + rng.gap(5, 60))

    def look_at_prod(self, agent: Caller, start: datetime) -> None:
        """The tagged session assumes prod's untagged EksReadOnlyRole, passing no tags (logged
        in both accounts): the marks drop, the actor stays the agent."""
        session_name = f"{K8S_MCP}-{self.rng.hex(8)}"
        issued = assume_role(self, agent, role(PROD, "EksReadOnlyRole"), session_name, start)
        chained = Caller(session_identity(issued.role, session_name, issued.key, start), PROD, self.ip, BOTO3_EKS,
                         self_managed_mcp(K8S_MCP))
        self.burst(chained, K8S_PROD_CALLS, start, self.rng.randint(3, 6), US, gap=(1, 30), regions=(US, EU))


AWSLABS_CLOUDWATCH_CALLS = apis("DescribeAlarms", "GetMetricData", "ListMetrics", "DescribeLogGroups",
                                "StartQuery", "logs:GetQueryResults", "FilterLogEvents")


@dataclass
class AwslabsMcpUser(Actor):
    """Frank runs awslabs MCP servers locally with his own SSO role: people's roles used through
    MCP. No tags, no managed-MCP marks: only the user agent tells (agent, mcp_self_managed)."""

    email: str = "frank@example.com"
    ip: str = "198.51.100.61"

    def session(self, start: datetime, account: str, *, user_agent: str, server: str, choices: list[Api],
                calls: int) -> None:
        identity = session_identity(role(account, SSO_DEVELOPER), self.email, self.world.new_key(self.rng), start)
        caller = Caller(identity, account, self.ip, user_agent, self_managed_mcp(server))
        self.burst(caller, choices, start, calls, self.rng.choice(REGIONS), denied_rate=0.05, gap=(1, 60))

    def run(self) -> None:
        rng = self.rng
        for day in sorted(rng.sample(weekdays(), 20)):
            self.session(at(day, rng.randint(9, 17), rng.randint(0, 59)), DEV if rng.chance(0.75) else PROD,
                         user_agent=AWSLABS_CLOUDWATCH, server="cloudwatch-mcp-server",
                         choices=AWSLABS_CLOUDWATCH_CALLS, calls=rng.randint(4, 10))
        for day in sorted(rng.sample(Q2_WEEKDAYS, 7)):  # an older server, legacy user-agent form
            self.session(at(day, rng.randint(9, 17), rng.randint(0, 59)), DEV, user_agent=AWSLABS_DOCS_LEGACY,
                         server="aws-documentation-mcp-server", choices=apis("GetCallerIdentity"),
                         calls=rng.randint(1, 3))


# The day grace's coding agent mints itself credentials through her awslabs aws-api-mcp-server.
# Its 8:00-16:00 window of dev, us-east-1 holds no other actor's file, so her records make a file
# of their own; and it comes after MINTED_SESSION_DAY, so they come after dan's in deliver_added.
AWS_API_MCP = "aws-api-mcp-server"
AWSLABS_MINTED_DAY = date(2026, 9, 22)
AWSLABS_MINTED_ROLE = "AppDeployRole"  # dev's Identity Center developers may assume it (its trust policy)
GRACE_MAC = "os/macos#24.6.0 md/arch#arm64"
# What the awslabs aws-api-mcp-server sends: boto3 clients with adaptive retries and its own
# user_agent_extra (the server, the FastMCP name, the MCP client, its configuration flags).
AWSLABS_AWS_API = ("Boto3/1.40.41 md/Botocore#1.40.41 ua/2.1 " + GRACE_MAC + " lang/python#3.13.7 "
                   "md/pyimpl#CPython m/b,F,Z,e cfg/retry-mode#adaptive Botocore/1.40.41 "
                   "md/awslabs#mcp#aws-api-mcp-server#1.2.4 md/via/AWS-API-MCP MCPClient/claude-code#2.0.14 "
                   "cfg/ro#0 cfg/consent#0 cfg/scripts#0")
AWSLABS_FUNCTION = "dev-image-resizer"  # the Lambda function the agent fixes (dev, us-east-1)
AWSLABS_SHELL = Label("agent", "direct", AWS_API_MCP)  # the awslabs server's agent, outside MCP
# What the agent runs from its own shell with the minted key, in this order: (call, request,
# denied). AppDeployAccess lets it update the code and add an alarm, not read the function back.
AWSLABS_SHELL_CALLS: tuple[tuple[str, dict[str, Any] | None, bool], ...] = (
    ("GetCallerIdentity", None, False),
    ("UpdateFunctionCode20150331v2", {"functionName": AWSLABS_FUNCTION, "publish": True, "dryRun": False}, False),
    ("GetFunction20150331v2", {"functionName": AWSLABS_FUNCTION}, True),
    ("PutMetricAlarm", {"alarmName": f"{AWSLABS_FUNCTION}-errors", "metricName": "Errors", "namespace": "AWS/Lambda",
                        "statistic": "Sum", "period": 300, "evaluationPeriods": 1, "threshold": 1.0,
                        "comparisonOperator": "GreaterThanOrEqualToThreshold",
                        "dimensions": [{"name": "FunctionName", "value": AWSLABS_FUNCTION}]}, False),
)


@dataclass
class AwslabsMcpMintedSession(Actor):
    """Grace's coding agent (Claude Code) gets itself credentials through her self-managed awslabs
    aws-api-mcp-server and leaves MCP, once, on AWSLABS_MINTED_DAY.

    Grace, a developer, runs the server on her laptop with her Identity Center profile
    (AWSReservedSSO_DeveloperAccess in dev, session grace@example.com; the SSO portal hands out
    its keys, so no STS event issues them). Through its call_aws tool the agent reads the
    function's errors and its stack, then runs `aws sts assume-role` on AppDeployRole, as the
    repository's deploy notes say: the server makes the AssumeRole with her session and its
    user agent (md/awslabs#mcp#aws-api-mcp-server#...), which is the only mark on these calls
    (no tags, no invokedBy: agent, mcp_self_managed, aws-api-mcp-server). The tool's result
    hands the agent the new credentials; it exports them in its own shell on grace's laptop and
    runs the aws CLI, without the server: a plain CLI user agent, her address. Those calls are
    the same agent, direct (agent name aws-api-mcp-server): only the key, which the server's
    AssumeRole issued, ties them to it. The agent then checks the logs through the server again,
    with grace's session. No further role hop (no role trusts AppDeployRole).

    Its own actor (and random stream), delivered with ADDED_ACTORS.
    """

    email: str = "grace@example.com"
    ip: str = "203.0.113.42"

    def run(self) -> None:
        rng = self.rng
        start = at(AWSLABS_MINTED_DAY, 10, rng.randint(0, 30), rng.randint(0, 59))
        sso = session_identity(role(DEV, SSO_DEVELOPER), self.email, self.world.new_key(rng), start)
        server = Caller(sso, DEV, self.ip, AWSLABS_AWS_API, self_managed_mcp(AWS_API_MCP))
        log_group = f"/aws/lambda/{AWSLABS_FUNCTION}"

        # Through the MCP server, with grace's session: what fails, and where the function lives.
        when = start + rng.gap(20, 90)
        self.call(server, api_of("FilterLogEvents"), when, US, request={
            "logGroupName": log_group, "filterPattern": "ERROR",
            "startTime": epoch_ms(when - timedelta(hours=24)), "interleaved": True})
        when += rng.gap(10, 60)
        self.call(server, api_of("GetFunction20150331v2"), when, US, request={"functionName": AWSLABS_FUNCTION})
        when += rng.gap(10, 60)
        self.call(server, api_of("DescribeStacks"), when, US, request={"stackName": "dev-webapp"})

        # The agent asks the server for the deployment role's credentials.
        target = role(DEV, AWSLABS_MINTED_ROLE)
        session_name = f"claude-code-{rng.hex(8)}"
        when += rng.gap(30, 120)
        issued = assume_role(self, server, target, session_name, when)

        # From its own shell, with the minted key: the aws CLI on grace's laptop, no MCP server.
        minted = session_identity(target, session_name, issued.key, issued.issued_at)
        when += rng.gap(20, 60)
        for name, request, denied in AWSLABS_SHELL_CALLS:
            when += rng.gap(5, 90)
            a = api_of(name)
            response = None
            if name == "UpdateFunctionCode20150331v2":
                response = {"functionName": AWSLABS_FUNCTION, "runtime": "python3.12",
                            "codeSha256": base64.b64encode(rng.randbytes(32)).decode(),
                            "lastModified": when.strftime("%Y-%m-%dT%H:%M:%S.000+0000")}
            self.call(Caller(minted, DEV, self.ip, cli_agent(a, os_part=GRACE_MAC), AWSLABS_SHELL), a, when, US,
                      denied=denied, request=request, response=response)
        if when >= issued.issued_at + timedelta(hours=1):
            raise ValueError("the minted credentials expired before the agent's last call")

        # Back through the MCP server (grace's session): no new errors since the update.
        when += rng.gap(60, 240)
        self.call(server, api_of("FilterLogEvents"), when, US, request={
            "logGroupName": log_group, "filterPattern": "ERROR",
            "startTime": epoch_ms(when - timedelta(minutes=15)), "interleaved": True})


HARNESS_CALLS = apis("ListFunctions20150331", "GetFunction20150331v2", "FilterLogEvents", "DescribeStacks",
                     "DescribeInstances", "ListBuckets", "GetCallerIdentity", "UpdateFunctionCode20150331v2")
STACK_DEPLOY = apis("CreateChangeSet", "DescribeChangeSet", "ExecuteChangeSet")  # `aws cloudformation deploy`
# What CloudFormation does with the deployer's credentials while it updates a stack (no service role).
STACK_RESOURCE_CALLS = apis("CreateTags", "AuthorizeSecurityGroupIngress", "UpdateFunctionCode20150331v2",
                            "PutMetricAlarm", "CreateLogStream")
STACK_RESOURCE_ACTIONS = sorted({a.iam_action for a in STACK_RESOURCE_CALLS})
CLOUDFORMATION = "cloudformation.amazonaws.com"
RUNNER_DAEMON = BOTO3_LAPTOP.replace("6.8.0-79-generic", "6.1.147-172.266.amzn2023.x86_64")  # boto3 on a runner host


def stack_update(actor: Actor, deployer: Caller, label: Label, start: datetime, *, region: str,
                 calls: int) -> datetime:
    """CloudFormation updates a stack's resources with the deployer's own credentials (the stack has
    no service role): the deployer's identity, with invokedBy, sourceIPAddress and userAgent
    cloudformation.amazonaws.com. `label` says who acted: the deployer, through the service."""
    service = deployer.but(identity={**deployer.identity, "invokedBy": CLOUDFORMATION}, source_ip=CLOUDFORMATION,
                           user_agent=CLOUDFORMATION, label=label, by_service=True, from_console=False)
    return actor.burst(service, STACK_RESOURCE_CALLS, start, calls, region, gap=(1, 20))


def through_service(label: Label) -> Label:
    """The same actor, on the service path: an AWS service made the call with its credentials."""
    return dataclasses.replace(label, access_path="service")


@dataclass
class AgentHarness(Actor):
    """A coding-agent harness on an EC2 runner host (instance i-0abc9876fed543210, profile
    AgentRunnerInstanceRole), started at 6:00 and stopped at 20:00; EC2 renews the instance's
    credentials while it runs.

    For each job the runner daemon (boto3 on the host, with the instance's credentials: a
    workload) opens an AgentHarnessRole session tagged Usage=Agent (no MCPServer tag) and hands it
    to the agent; that AssumeRole is the daemon's (workload, direct). The agent calls AWS from the
    aws CLI in its shell (agent, direct). On deploy days the agent itself hops from its shell into
    AppDeployRole, the deployment role people use too (untagged), passing no tags: its marks drop,
    but the calls are still the agent's (agent, direct, AgentHarnessRole). It runs `aws
    cloudformation deploy`, and CloudFormation updates the stack's resources with that session:
    the agent's doing, made by the service (agent, service, AgentHarnessRole)."""

    ip: str = "198.51.100.140"

    def run(self) -> None:
        rng = self.rng
        runner = role(DEV, "AgentRunnerInstanceRole")
        harness = role(DEV, "AgentHarnessRole")
        label = agent_direct(harness.name)
        for n, day in enumerate(sorted(rng.sample(weekdays(), 14))):
            boot = at(day, 6, rng.randint(0, 59), rng.randint(0, 59))
            host = ServiceCredentials(self, "ec2.amazonaws.com", runner, AGENT_RUNNER_INSTANCE, region=US, start=boot,
                                      end=at(day, 20))
            when = boot + rng.gap(20, 90)
            self.call(Caller(host.identity(when, ec2_role_delivery="2.0"), DEV, self.ip, SSM_AGENT, WORKLOAD),
                      api_of("UpdateInstanceInformation"), when, US)
            start = at(day, rng.randint(9, 18), rng.randint(0, 59), rng.randint(0, 59))
            daemon = Caller(host.identity(start, ec2_role_delivery="2.0"), DEV, self.ip, RUNNER_DAEMON, WORKLOAD)
            session_name = f"harness-{rng.hex(6)}"
            issued = assume_role(self, daemon, harness, session_name, start, tags={"Usage": "Agent"})
            identity = session_identity(harness, session_name, issued.key, start)
            when = start
            for _ in range(rng.randint(4, 10)):
                when += rng.gap(3, 70)
                a = rng.choice(HARNESS_CALLS)
                caller = Caller(identity, DEV, self.ip, cli_agent(a, os_part=EC2_CLI), label)
                self.call(caller, a, when, rng.choice((US, EU)), denied=rng.chance(0.05))
            if n % 3 == 1:
                self.deploy(Caller(identity, DEV, self.ip, "", label), when + rng.gap(10, 120))

    def deploy(self, agent: Caller, start: datetime) -> None:
        """The agent's own role hop (from its shell, no tags) and a stack deployment."""
        rng = self.rng
        session_name = f"deploy-{rng.hex(6)}"
        hop = agent.but(user_agent=cli_agent("sts.assume-role", os_part=EC2_CLI))
        issued = assume_role(self, hop, role(DEV, "AppDeployRole"), session_name, start)
        identity = session_identity(issued.role, session_name, issued.key, start)
        when = start
        for a in STACK_DEPLOY:
            when += rng.gap(2, 25)
            self.call(Caller(identity, DEV, self.ip, cli_agent(a, os_part=EC2_CLI), agent.label), a, when, US)
        deployer = Caller(identity, DEV, self.ip, "", agent.label)
        stack_update(self, deployer, through_service(agent.label), when, region=US, calls=rng.randint(2, 4))


# ---------------------------------------------------------------------------------------------
# Actors: roles that become agent roles during the period
# ---------------------------------------------------------------------------------------------

PIPELINE_CALLS = apis("StartQueryExecution", "GetQueryExecution", "athena:GetQueryResults", "GetTable", "GetDatabase",
                      "GetPartitions", "GetBucketLocation")
PIPELINE_RUNNER_INSTANCE = "i-0a1b2c3d4e5f60718"  # dev, us-east-1: the runner pool's second host
CAROL_LAPTOP_CLI = "os/linux#6.8.0-79-generic md/arch#x86_64"


@dataclass
class DataPipeline(Actor):
    """prod's data pipeline (Athena, Glue) on DataPipelineAgentRole, run from dev across accounts.

    The role is untagged in the snapshot. Until alice hands the pipeline to an agent on
    2026-08-04 (TAG_ROLE_TIME: she tags the role Usage=Agent and lets the agent runners assume it
    instead of carol), carol runs it by hand: the aws CLI on her laptop, with a profile that
    assumes the role from her IAM user's key (sessions named botocore-session-EPOCH). Her
    AssumeRole and her calls: human, direct.

    From then on the data team's pipeline agent runs it every night on the runner pool's second
    host (instance i-0a1b2c3d4e5f60718, AgentRunnerInstanceRole). The runner daemon opens the
    agent's session (pipeline-agent-HEX) with the instance's credentials: its AssumeRole is the
    workload's (workload, direct); the agent calls from the aws CLI on the host (agent, direct,
    DataPipelineAgentRole). Nothing but the role's new tag marks the agent's calls: no session
    tag, no MCP. Other user agents, another address and other session names than carol's.
    """

    ip: str = "192.0.2.44"  # carol's laptop
    runner_ip: str = "198.51.100.141"

    def run(self) -> None:
        rng = self.rng
        target = role(PROD, "DataPipelineAgentRole")
        by_hand = [d for d in weekdays() if at(d, 23) < TAG_ROLE_TIME]
        by_agent = [d for d in weekdays() if at(d, 0) > TAG_ROLE_TIME]
        for day in sorted(rng.sample(by_hand, 16)):
            self.carol_runs(target, at(day, rng.randint(8, 18), rng.randint(0, 59), rng.randint(0, 59)))
        for day in sorted(rng.sample(by_agent, 14)):
            self.agent_runs(target, day)

    def carol_runs(self, target: Role, start: datetime) -> None:
        rng = self.rng
        first = PIPELINE_CALLS[0]
        carol = Caller(user_identity(CAROL), DEV, self.ip, cli_agent(first, os_part=CAROL_LAPTOP_CLI), HUMAN_DIRECT)
        session_name = f"botocore-session-{int(start.timestamp())}"
        issued = assume_role(self, carol, target, session_name, start, duration=3600)
        identity = session_identity(target, session_name, issued.key, start)
        when = start
        for n in range(rng.randint(4, 9)):
            when += rng.gap(2, 60)
            a = first if n == 0 else rng.choice(PIPELINE_CALLS)
            caller = Caller(identity, PROD, self.ip, cli_agent(a, os_part=CAROL_LAPTOP_CLI), HUMAN_DIRECT)
            self.call(caller, a, when, EU, denied=rng.chance(0.03))

    def agent_runs(self, target: Role, day: date) -> None:
        rng = self.rng
        boot = at(day, 1, rng.randint(50, 59), rng.randint(0, 59))
        host = ServiceCredentials(self, "ec2.amazonaws.com", role(DEV, "AgentRunnerInstanceRole"),
                                  PIPELINE_RUNNER_INSTANCE, region=US, start=boot, end=at(day, 4, 30))
        when = boot + rng.gap(20, 90)
        self.call(Caller(host.identity(when, ec2_role_delivery="2.0"), DEV, self.runner_ip, SSM_AGENT, WORKLOAD),
                  api_of("UpdateInstanceInformation"), when, US)
        start = at(day, 2, rng.randint(0, 30), rng.randint(0, 59))
        daemon = Caller(host.identity(start, ec2_role_delivery="2.0"), DEV, self.runner_ip, RUNNER_DAEMON, WORKLOAD)
        session_name = f"pipeline-agent-{rng.hex(6)}"
        issued = assume_role(self, daemon, target, session_name, start)  # role chaining: one hour at most
        identity = session_identity(target, session_name, issued.key, start)
        label = agent_direct(target.name)
        when = start
        for _ in range(rng.randint(4, 9)):
            when += rng.gap(2, 60)
            a = rng.choice(PIPELINE_CALLS)
            self.call(Caller(identity, PROD, self.runner_ip, cli_agent(a, os_part=EC2_CLI), label), a, when, EU,
                      denied=rng.chance(0.03))


REPORT_CALLS = apis("GetCostAndUsage", "GetCostForecast", "GetMetricData", "GetDimensionValues")


@dataclass
class ReportAgent(Actor):
    """weekly-cost-report: an LLM agent packaged as a Lambda function on ReportAgentRole, which
    carol's terraform creates (tagged Usage=Agent) in Q3. Each week the model decides which Cost
    Explorer and CloudWatch calls to make for its report: the calls are the agent's, made with its
    SDK, not through MCP (agent, direct). Lambda obtains the role's credentials (its AssumeRole:
    service, service); nothing but the role's tag tells these calls from a workload's."""

    function: str = "weekly-cost-report"
    ip: str = "198.51.100.95"

    def run(self) -> None:
        rng = self.rng
        r = role(DEV, "ReportAgentRole")
        day = date(2026, 7, 20)
        while day <= PERIOD_END:
            start = at(day, 6, 0, rng.randint(1, 30))
            issued = service_assume_role(self, "lambda.amazonaws.com", r, self.function, when=start, region=US,
                                         duration=43200)
            caller = Caller(session_identity(r, self.function, issued.key, start), DEV, self.ip, BOTO3_LAMBDA,
                            agent_direct(r.name))
            self.burst(caller, REPORT_CALLS, start, rng.randint(3, 6), US, gap=(1, 15))
            day += timedelta(days=7)


# ---------------------------------------------------------------------------------------------
# Actors: workloads
# ---------------------------------------------------------------------------------------------

WEBAPP_CALLS = apis("GetParameters", "GetSecretValue", "Decrypt", "DescribeTable", "CreateLogStream")


@dataclass
class Ec2Workload(Actor):
    """Prod web servers on an instance profile (IMDSv2: ec2RoleDelivery "2.0")."""

    ip: str = "198.51.100.150"

    def run(self) -> None:
        rng = self.rng
        r = role(PROD, "WebAppInstanceRole")
        for day in sorted(rng.sample(all_days(), 40)):
            start = at(day, rng.randint(0, 20), rng.randint(0, 59), rng.randint(0, 59))
            issued = service_assume_role(self, "ec2.amazonaws.com", r, WEBAPP_INSTANCE, when=start, region=EU)
            identity = session_identity(r, WEBAPP_INSTANCE, issued.key, start, ec2_role_delivery="2.0")
            self.call(Caller(identity, PROD, self.ip, SSM_AGENT, WORKLOAD), api_of("UpdateInstanceInformation"),
                      start + rng.gap(30, 120), EU)
            app = Caller(identity, PROD, self.ip, JAVA_SDK, WORKLOAD)
            self.burst(app, WEBAPP_CALLS, start + timedelta(minutes=2), rng.randint(3, 7), EU, gap=(5, 300))


LAMBDA_CALLS = apis("Decrypt", "GetParameter", "GetSecretValue", "DescribeTable")


@dataclass
class LambdaWorkload(Actor):
    """Prod's order-processor function (session name = function name)."""

    function: str = "order-processor"
    ip: str = "198.51.100.96"

    def run(self) -> None:
        rng = self.rng
        r = role(PROD, "OrderProcessorLambdaRole")
        days = sorted(rng.sample(all_days(), 38))
        for day in days:
            start = at(day, rng.randint(0, 21), rng.randint(0, 59), rng.randint(0, 59))
            self.invocation(r, start, rng.randint(3, 6))
        self.invocation(r, at(PERIOD_END, 23, 52, 40), 3)  # the last one is delivered on October 1st

    def invocation(self, r: Role, start: datetime, calls: int) -> None:
        issued = service_assume_role(self, "lambda.amazonaws.com", r, self.function, when=start, region=EU,
                                     duration=43200)
        caller = Caller(session_identity(r, self.function, issued.key, start), PROD, self.ip, BOTO3_LAMBDA, WORKLOAD)
        self.burst(caller, LAMBDA_CALLS, start, calls, EU, gap=(0, 4))


DEPLOY_STEPS = apis("GetCallerIdentity", "GetAuthorizationToken", "InitiateLayerUpload", "PutImage",
                    "ValidateTemplate", "DescribeStacks", "CreateChangeSet", "DescribeChangeSet",
                    "ExecuteChangeSet", "DescribeStacks")


@dataclass
class GitHubDeploy(Actor):
    """CI: GitHub Actions assumes GitHubDeployRole through web identity and deploys (workload,
    direct). When a deployment changes the stack's resources, CloudFormation updates them with
    the deployment's credentials (the stack has no service role): workload, service."""

    ip: str = "192.0.2.210"
    subject: str = "repo:example-org/webapp:ref:refs/heads/main"

    def deploy(self, start: datetime) -> None:
        rng = self.rng
        r = role(PROD, "GitHubDeployRole")
        issued = assume_role_with_web_identity(self, r, provider=GITHUB_OIDC, subject=self.subject,
                                               session_name="GitHubActions", when=start, ip=self.ip,
                                               user_agent=cli_agent(api_of("GetCallerIdentity"), os_part=GITHUB_CLI),
                                               label=WORKLOAD)
        identity = session_identity(r, "GitHubActions", issued.key, start,
                                    web_identity=web_federation(PROD, GITHUB_OIDC))
        region = rng.choice((EU, EU, US))
        when = start
        changes_resources = rng.chance(0.35)  # most deployments only push an image
        for a in DEPLOY_STEPS:
            when += rng.gap(2, 40)
            denied = a.name == "ExecuteChangeSet" and rng.chance(0.1)
            self.call(Caller(identity, PROD, self.ip, cli_agent(a, os_part=GITHUB_CLI), WORKLOAD), a, when,
                      region, denied=denied)
            if a.name == "ExecuteChangeSet" and changes_resources and not denied:
                # CloudFormation updates the stack with the deployment's own credentials: the
                # workload's doing, made by the service (workload, service).
                deployer = Caller(identity, PROD, self.ip, "", WORKLOAD)
                when = stack_update(self, deployer, through_service(WORKLOAD), when, region=region,
                                    calls=rng.randint(2, 4))

    def run(self) -> None:
        rng = self.rng
        for day in sorted(rng.sample(weekdays(), 30)):
            self.deploy(at(day, rng.randint(8, 20), rng.randint(0, 59), rng.randint(0, 59)))
        self.deploy(at(date(2026, 6, 11), 23, 50, 31))  # a late run: delivered the next day


# ---------------------------------------------------------------------------------------------
# Delivery: log files in the S3 key layout of an organization trail
# ---------------------------------------------------------------------------------------------


def base_prefix(account: str) -> str:
    return f"AWSLogs/{ORG_ID}/{account}"


@dataclass
class LogFile:
    account: str
    region: str
    delivered: datetime
    unique: str
    records: list[dict[str, Any]]
    late: bool = False
    group: tuple[str, str, date, int] | None = None  # account, region, day, window (-1: late)

    @property
    def key(self) -> str:
        d = self.delivered
        return (f"{base_prefix(self.account)}/CloudTrail/{self.region}/{d:%Y/%m/%d}/"
                f"{self.account}_CloudTrail_{self.region}_{d:%Y%m%dT%H%M}Z_{self.unique}.json.gz")

    def body(self) -> bytes:
        return json.dumps({"Records": self.records}, separators=(",", ":")).encode()


def event_time(record: dict[str, Any]) -> datetime:
    return datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def delivery_group(record: dict[str, Any]) -> tuple[str, str, date, int]:
    """The file a record goes to: account, region, day and 8-hour window (-1: from 23:50 on)."""
    t = event_time(record)
    late = (t.hour, t.minute) >= LATE_FROM
    window = -1 if late else t.hour // DELIVERY_WINDOW_HOURS
    return record["recipientAccountId"], record["awsRegion"], t.date(), window


def delivery_time(group: tuple[str, str, date, int], batch: list[dict[str, Any]], rng: Rand) -> datetime:
    day, window = group[2], group[3]
    if window == -1:
        return at(day + timedelta(days=1), 0, rng.randint(1, 9))
    newest = max(event_time(r) for r in batch)
    return newest.replace(second=0) + timedelta(minutes=rng.randint(2, 9))


def deliver(records: list[dict[str, Any]], rng: Rand) -> list[LogFile]:
    """Batch records into files: one account/region and delivery window per file, records shuffled.

    Records from 23:50 on are delivered just after midnight, in the next day's folder.
    """
    groups: dict[tuple[str, str, date, int], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[delivery_group(record)].append(record)
    files = []
    for group, batch in sorted(groups.items()):
        delivered = delivery_time(group, batch, rng)
        rng.shuffle(batch)  # CloudTrail does not order records inside a file
        files.append(LogFile(group[0], group[1], delivered, rng.text(UNIQUE_ALPHABET, 16), batch,
                             late=group[3] == -1, group=group))
    return sorted(files, key=lambda f: f.key)


def deliver_added(files: list[LogFile], records: list[dict[str, Any]], rng: Rand) -> list[LogFile]:
    """Deliver the records of ADDED_ACTORS with their own random stream: each goes, at a random
    place, into the file of its account, region and window (a new file where there is none, a
    later delivery where it is newer than the file), so that the other files keep their bytes."""
    by_group = {f.group: f for f in files}
    groups: dict[tuple[str, str, date, int], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[delivery_group(record)].append(record)
    added = []
    for group, batch in sorted(groups.items()):
        target = by_group.get(group)
        if target is None:
            delivered = delivery_time(group, batch, rng)
            rng.shuffle(batch)
            added.append(LogFile(group[0], group[1], delivered, rng.text(UNIQUE_ALPHABET, 16), batch,
                                 late=group[3] == -1, group=group))
            continue
        for record in batch:
            target.records.insert(rng.randint(0, len(target.records)), record)
        if group[3] != -1 and max(event_time(r) for r in batch) >= target.delivered:
            target.delivered = delivery_time(group, target.records, rng)
    return sorted(files + added, key=lambda f: f.key)


def deliver_twice(files: list[LogFile], rng: Rand, count: int) -> list[str]:
    """Copy `count` records into a second file of the same account/region (CloudTrail can
    deliver an event twice); return their eventIDs."""
    by_stream: dict[tuple[str, str], list[LogFile]] = defaultdict(list)
    for f in sorted(files, key=lambda f: f.delivered):
        by_stream[(f.account, f.region)].append(f)
    duplicated: list[str] = []
    candidates = [f for f in files if not f.late]
    while len(duplicated) < count:
        source = rng.choice(candidates)
        stream = by_stream[(source.account, source.region)]
        position = stream.index(source)
        if position + 1 >= len(stream):
            continue
        record = rng.choice(source.records)
        if record["eventID"] in duplicated:
            continue
        target = stream[position + 1]
        target.records.insert(rng.randint(0, len(target.records)), record)
        duplicated.append(record["eventID"])
    return sorted(duplicated)


def gzip_bytes(data: bytes) -> bytes:
    """gzip with a fixed header (no file name, mtime 0) so output is byte-identical across runs."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as gz:
        gz.write(data)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# Objects that are not events: digests, an Insights file, a VPC flow log
# ---------------------------------------------------------------------------------------------

FAKE_KEY_FINGERPRINT = "4c3d2b1a0f9e8d7c6b5a4f3e2d1c0b9a"  # fake: no real CloudTrail key


def fake_signature(key: str) -> str:
    """A FAKE digest signature: fixed hex of RSA-2048 length, derived from the key. It will not
    verify against any CloudTrail public key; it exists to exercise the chain fields."""
    return hashlib.sha256(f"FAKE-SIGNATURE|{key}".encode()).hexdigest() * 8


@dataclass
class Digest:
    key: str
    body: bytes
    signature: str


def build_digests(files: list[LogFile], bodies: dict[str, bytes]) -> list[Digest]:
    """One digest per account, region and day of DIGEST_DAYS, chained per account/region."""
    digests: list[Digest] = []
    for account in ACCOUNTS:
        for region in REGIONS:
            previous: Digest | None = None
            for day in DIGEST_DAYS:
                end = at(day, 23, 59, 59)
                key = (f"{base_prefix(account)}/CloudTrail-Digest/{region}/{day:%Y/%m/%d}/"
                       f"{account}_CloudTrail-Digest_{region}_{TRAIL_NAME}_{TRAIL_HOME_REGION}_{end:%Y%m%dT%H%M%S}Z"
                       ".json.gz")
                listed = [f for f in files if f.account == account and f.region == region
                          and f.delivered.date() == day]
                times = [event_time(r) for f in listed for r in f.records]
                content = {
                    "awsAccountId": account,
                    "digestStartTime": iso(at(day, 0)),
                    "digestEndTime": iso(end),
                    "digestS3Bucket": TRAIL_BUCKET,
                    "digestS3Object": key,
                    "digestPublicKeyFingerprint": FAKE_KEY_FINGERPRINT,
                    "digestSignatureAlgorithm": "SHA256withRSA",
                    "newestEventTime": iso(max(times)) if times else None,
                    "oldestEventTime": iso(min(times)) if times else None,
                    "previousDigestS3Bucket": TRAIL_BUCKET if previous else None,
                    "previousDigestS3Object": previous.key if previous else None,
                    "previousDigestHashValue": hashlib.sha256(previous.body).hexdigest() if previous else None,
                    "previousDigestHashAlgorithm": "SHA-256" if previous else None,
                    "previousDigestSignature": previous.signature if previous else None,
                    "logFiles": [{
                        "s3Bucket": TRAIL_BUCKET,
                        "s3Object": f.key,
                        "hashValue": hashlib.sha256(bodies[f.key]).hexdigest(),
                        "hashAlgorithm": "SHA-256",
                        "newestEventTime": iso(max(event_time(r) for r in f.records)),
                        "oldestEventTime": iso(min(event_time(r) for r in f.records)),
                    } for f in listed],
                }
                body = json.dumps(content, separators=(",", ":")).encode()
                previous = Digest(key, body, fake_signature(key))
                digests.append(previous)
    return digests


def insight_object(rng: Rand) -> tuple[str, bytes]:
    """An Insights file: eventType AwsCloudTrailInsight, no userIdentity. Not events: skip it."""
    shared = rng.uuid4()
    records = []
    for state, when in (("Start", at(date(2026, 8, 13), 14, 20)), ("End", at(date(2026, 8, 13), 15, 5))):
        details: dict[str, Any] = {"state": state, "eventSource": "ec2.amazonaws.com",
                                   "eventName": "DescribeInstances", "insightType": "ApiCallRateInsight"}
        if state == "End":
            details["insightContext"] = {"statistics": {
                "baseline": {"average": 0.0419}, "insight": {"average": 2.35}, "insightDuration": 45,
                "baselineDuration": 10035}}
        records.append({"eventVersion": "1.08", "eventTime": iso(when), "awsRegion": US, "eventID": rng.uuid4(),
                        "eventType": "AwsCloudTrailInsight", "recipientAccountId": DEV, "sharedEventID": shared,
                        "insightDetails": details, "eventCategory": "Insight"})
    key = (f"{base_prefix(DEV)}/CloudTrail-Insight/{US}/2026/08/13/"
           f"{DEV}_CloudTrail-Insight_{US}_20260813T1515Z_{rng.text(UNIQUE_ALPHABET, 16)}.json.gz")
    return key, json.dumps({"Records": records}, separators=(",", ":")).encode()


def vpc_flow_log_object(rng: Rand) -> tuple[str, bytes]:
    """Another service's log under the same account prefix (VPC flow logs, text). Not events."""
    lines = ["version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end "
             "action log-status"]
    start = int(at(date(2026, 8, 13), 15, 0).timestamp())
    for i in range(12):
        lines.append(f"2 {DEV} eni-0a1b2c3d4e5f60718 10.0.1.{rng.randint(2, 250)} 10.0.2.{rng.randint(2, 250)} "
                     f"{rng.randint(1024, 65535)} 443 6 {rng.randint(1, 40)} {rng.randint(60, 40000)} "
                     f"{start + 60 * i} {start + 60 * i + 59} ACCEPT OK")
    key = (f"{base_prefix(DEV)}/vpcflowlogs/{US}/2026/08/13/"
           f"{DEV}_vpcflowlogs_{US}_fl-0a1b2c3d4e5f6a7b8_20260813T1505Z_{rng.hex(8)}.log.gz")
    return key, ("\n".join(lines) + "\n").encode()


# ---------------------------------------------------------------------------------------------
# The IAM snapshot (`aws iam get-account-authorization-details`, taken at SNAPSHOT_TAKEN_AT)
# ---------------------------------------------------------------------------------------------

AWS_MANAGED_DOCS: dict[str, dict[str, Any]] = {  # abridged copies of AWS managed policies
    "AdministratorAccess": policy_doc(allow("*")),
    "PowerUserAccess": policy_doc(
        {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"], "Resource": "*"},
        allow(["iam:CreateServiceLinkedRole", "iam:DeleteServiceLinkedRole", "iam:ListRoles",
               "organizations:DescribeOrganization", "account:ListRegions"])),
    "ReadOnlyAccess": policy_doc(allow(["cloudwatch:Describe*", "cloudwatch:Get*", "cloudwatch:List*",
                                        "ce:Get*", "ec2:Describe*", "eks:Describe*", "eks:List*", "iam:Get*",
                                        "iam:List*", "lambda:Get*", "lambda:List*", "logs:Describe*",
                                        "logs:FilterLogEvents", "logs:Get*", "logs:StartQuery", "rds:Describe*",
                                        "s3:Get*", "s3:List*"])),
    "AWSConfigServiceRolePolicy": policy_doc(allow(["ec2:Describe*", "iam:GetRole", "iam:List*",
                                                    "lambda:ListFunctions", "rds:Describe*", "s3:GetBucketAcl",
                                                    "s3:GetBucketPolicy", "s3:GetEncryptionConfiguration"])),
    "AWSSSOServiceRolePolicy": policy_doc(allow(["iam:AttachRolePolicy", "iam:CreateRole", "iam:DeleteRole",
                                                 "iam:ListRoles", "iam:PutRolePolicy"],
                                                "arn:aws:iam::*:role/aws-reserved/sso.amazonaws.com/*")),
    "AmazonSSMManagedInstanceCore": policy_doc(allow(["ssm:DescribeAssociation", "ssm:GetParameter",
                                                      "ssm:GetParameters", "ssm:UpdateInstanceInformation",
                                                      "ssmmessages:*", "ec2messages:*"])),
    "AWSLambdaBasicExecutionRole": policy_doc(allow(["logs:CreateLogGroup", "logs:CreateLogStream",
                                                     "logs:PutLogEvents"])),
    "CloudWatchReadOnlyAccess": policy_doc(allow(["cloudwatch:Describe*", "cloudwatch:Get*", "cloudwatch:List*",
                                                  "logs:Get*", "logs:Describe*", "logs:FilterLogEvents"])),
}


def customer_policies(account: str) -> dict[str, dict[str, Any]]:
    boundary = policy_doc(
        allow(["ce:Get*", "cloudwatch:Get*", "cloudwatch:List*", "cloudwatch:Describe*", "ec2:Describe*",
               "eks:Describe*", "eks:List*", "ecr:Describe*", "iam:Get*", "iam:List*", "lambda:Get*",
               "lambda:List*", "lambda:UpdateFunctionCode", "logs:Describe*", "logs:FilterLogEvents", "rds:Describe*",
               "s3:Get*", "s3:List*", "sts:AssumeRole", "sts:TagSession", "sts:GetCallerIdentity",
               "ec2:StopInstances"]),
        {"Effect": "Deny", "Action": ["iam:Create*", "iam:Delete*", "iam:Put*", "iam:Attach*", "organizations:*",
                                      "ec2:TerminateInstances", "s3:DeleteBucket"], "Resource": "*"})
    if account == DEV:
        return {
            "AgentBoundary": boundary,
            "CostExplorerRead": policy_doc(allow(["ce:GetCostAndUsage", "ce:GetCostForecast", "ce:GetDimensionValues",
                                                  "ce:GetTags"])),
            "DeveloperExtras": policy_doc(allow(["iam:GetRole", "iam:ListRoles", "iam:PassRole"],
                                                f"arn:aws:iam::{DEV}:role/app-*")),
            "EksReadOnly": policy_doc(allow(["eks:Describe*", "eks:List*", "ecr:Describe*", "ec2:DescribeInstances",
                                             "logs:FilterLogEvents"])),
            "AppDeployAccess": policy_doc(allow(["cloudformation:*", *STACK_RESOURCE_ACTIONS]),
                                          allow("iam:PassRole", f"arn:aws:iam::{DEV}:role/app-*")),
            "DevelopersBaseline": policy_doc(
                allow(["ec2:*", "s3:*", "dynamodb:Describe*", "ssm:GetParameter", "cloudformation:Describe*",
                       "cloudformation:List*", "kms:DescribeKey", "logs:Describe*", "lambda:GetFunction"]),
                allow(["iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:TagRole", "iam:GetRole",
                       "iam:ListAttachedRolePolicies"], f"arn:aws:iam::{DEV}:role/*"),
                allow("sts:AssumeRole", f"arn:aws:iam::{PROD}:role/DataPipelineAgentRole")),
        }
    return {
        "AgentBoundary": boundary,
        "DeveloperExtras": policy_doc(allow(["iam:GetRole", "iam:ListRoles"])),
        "DataPipelineAccess": policy_doc(allow(["athena:StartQueryExecution", "athena:GetQueryExecution",
                                                "athena:GetQueryResults", "glue:GetTable", "glue:GetDatabase",
                                                "glue:GetPartitions"]),
                                         allow(["s3:GetBucketLocation", "s3:GetObject", "s3:PutObject"],
                                               [f"arn:aws:s3:::prod-data-lake-{PROD}",
                                                f"arn:aws:s3:::prod-athena-results-{PROD}/*"])),
        "OrderProcessorAccess": policy_doc(allow(["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem",
                                                  "ssm:GetParameter", "secretsmanager:GetSecretValue", "kms:Decrypt"])),
        "WebAppAccess": policy_doc(allow(["secretsmanager:GetSecretValue", "kms:Decrypt", "dynamodb:DescribeTable",
                                          "logs:CreateLogStream", "logs:PutLogEvents"])),
        "GitHubDeployPolicy": policy_doc(allow(["cloudformation:*", "ecr:GetAuthorizationToken",
                                                "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
                                                "ecr:CompleteLayerUpload", "ecr:PutImage", "s3:GetObject"]),
                                         # what CloudFormation does with the deployment's credentials
                                         allow(STACK_RESOURCE_ACTIONS),
                                         allow("iam:PassRole", f"arn:aws:iam::{PROD}:role/service-role/*")),
    }


def managed_policy_entry(arn: str, document: dict[str, Any], attachments: int, boundary_uses: int) -> dict[str, Any]:
    name = arn.rsplit("/", 1)[1]
    path = arn.split(":policy", 1)[1][: -len(name)]
    aws_owned = arn.startswith("arn:aws:iam::aws:")
    created = datetime(2015, 2, 6, 18, 39, 46, tzinfo=UTC) if aws_owned else datetime(2025, 3, 4, 9, 20, tzinfo=UTC)
    updated = datetime(2025, 12, 1, 17, 0, 5, tzinfo=UTC) if aws_owned else datetime(2025, 11, 3, 14, 0, tzinfo=UTC)
    return {
        "PolicyName": name,
        "PolicyId": stable_id("ANPA", arn),
        "Arn": arn,
        "Path": path,
        "DefaultVersionId": "v3" if aws_owned else "v1",
        "AttachmentCount": attachments,
        "PermissionsBoundaryUsageCount": boundary_uses,
        "IsAttachable": True,
        "CreateDate": iam_time(created),
        "UpdateDate": iam_time(updated),
        "PolicyVersionList": [{"Document": document, "VersionId": "v3" if aws_owned else "v1",
                               "IsDefaultVersion": True, "CreateDate": iam_time(updated)}],
    }


def role_last_used(records: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """RoleLastUsed as IAM would report it at snapshot time, from the generated events."""
    last: dict[str, tuple[datetime, str]] = {}
    for record in records:
        issuer = record.get("userIdentity", {}).get("sessionContext", {}).get("sessionIssuer", {})
        arn = issuer.get("arn")
        t = event_time(record)
        if arn and t <= SNAPSHOT_TAKEN_AT and (arn not in last or t > last[arn][0]):
            last[arn] = (t, record["awsRegion"])
    return {arn: {"LastUsedDate": iam_time(t), "Region": region} for arn, (t, region) in last.items()}


def role_entry(r: Role, last_used: dict[str, dict[str, str]]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "Path": r.path,
        "RoleName": r.name,
        "RoleId": r.role_id,
        "Arn": r.arn,
        "CreateDate": iam_time(r.created),
        "AssumeRolePolicyDocument": r.trust_policy,
        "InstanceProfileList": [],
        "RolePolicyList": [{"PolicyName": n, "PolicyDocument": d} for n, d in r.inline_policies.items()],
        "AttachedManagedPolicies": [{"PolicyName": a.rsplit("/", 1)[1], "PolicyArn": a} for a in r.managed_policies],
    }
    if r.instance_profile:
        entry["InstanceProfileList"] = [{
            "Path": "/", "InstanceProfileName": r.instance_profile,
            "InstanceProfileId": stable_id("AIPA", f"{r.account}:{r.instance_profile}"),
            "Arn": f"arn:aws:iam::{r.account}:instance-profile/{r.instance_profile}",
            "CreateDate": iam_time(r.created),
            "Roles": [{"Path": r.path, "RoleName": r.name, "RoleId": r.role_id, "Arn": r.arn,
                       "CreateDate": iam_time(r.created), "AssumeRolePolicyDocument": r.trust_policy}],
        }]
    if r.boundary:
        entry["PermissionsBoundary"] = {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": r.boundary}
    if r.tags:  # IAM leaves Tags out for an untagged role
        entry["Tags"] = [{"Key": k, "Value": v} for k, v in r.tags.items()]
    entry["RoleLastUsed"] = last_used.get(r.arn, {})
    return entry


def iam_snapshot(account: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    last_used = role_last_used(records)
    roles = [r for r in ROLES.values() if r.account == account and r.in_snapshot]
    users = [CAROL] if account == DEV else []
    groups: list[dict[str, Any]] = []
    group_policies: list[str] = []
    if account == DEV:
        group_policies = [local_policy(DEV, "DevelopersBaseline"), aws_policy("CloudWatchReadOnlyAccess")]
        groups.append({"Path": "/", "GroupName": "Developers", "GroupId": stable_id("AGPA", f"{DEV}:Developers"),
                       "Arn": f"arn:aws:iam::{DEV}:group/Developers", "CreateDate": iam_time(CAROL.created),
                       "GroupPolicyList": [],
                       "AttachedManagedPolicies": [{"PolicyName": a.rsplit("/", 1)[1], "PolicyArn": a}
                                                   for a in group_policies]})
    attachments: Counter[str] = Counter(group_policies)
    boundaries: Counter[str] = Counter()
    for r in roles:
        attachments.update(r.managed_policies)
        if r.boundary:
            boundaries[r.boundary] += 1
    policies = []
    for name, document in sorted(customer_policies(account).items()):
        arn = local_policy(account, name)
        policies.append(managed_policy_entry(arn, document, attachments[arn], boundaries[arn]))
    for arn in sorted(a for a in attachments if a.startswith("arn:aws:iam::aws:")):
        policies.append(managed_policy_entry(arn, AWS_MANAGED_DOCS[arn.rsplit("/", 1)[1]], attachments[arn], 0))
    return {
        "UserDetailList": [{
            "Path": "/", "UserName": u.name, "UserId": u.user_id, "Arn": u.arn, "CreateDate": iam_time(u.created),
            "UserPolicyList": [], "GroupList": u.groups, "AttachedManagedPolicies": [],
        } for u in users],
        "GroupDetailList": groups,
        "RoleDetailList": [role_entry(r, last_used) for r in sorted(roles, key=lambda r: (r.path, r.name))],
        "Policies": policies,
    }


# ---------------------------------------------------------------------------------------------
# Putting it together
# ---------------------------------------------------------------------------------------------

ACTORS: tuple[type[Actor], ...] = (
    ConsoleUser, SsoCliUser, AccessKeyUser, FailedSignIns, AwsServices, ManagedMcpUser, SelfManagedMcpServer,
    EksMcpServer, AwslabsMcpUser, AgentHarness, DataPipeline, ReportAgent, Ec2Workload, LambdaWorkload, GitHubDeploy,
    # added later: last, so that they draw no key another actor had drawn
    ManagedMcpMintedSession, AwslabsMcpMintedSession,
)
ACTOR_NAMES = {
    ConsoleUser: "alice-console", SsoCliUser: "bob-sso-cli", AccessKeyUser: "carol-iam-user",
    FailedSignIns: "failed-sign-ins", AwsServices: "aws-services", ManagedMcpUser: "dan-managed-mcp",
    SelfManagedMcpServer: "ecs-cost-explorer-mcp", EksMcpServer: "eks-k8s-mcp", AwslabsMcpUser: "frank-awslabs-mcp",
    AgentHarness: "ec2-agent-harness", DataPipeline: "data-pipeline-role", ReportAgent: "lambda-report-agent",
    Ec2Workload: "ec2-webapp", LambdaWorkload: "lambda-order-processor", GitHubDeploy: "github-deploy",
    ManagedMcpMintedSession: "dan-mcp-minted-session", AwslabsMcpMintedSession: "grace-awslabs-minted-session",
}
# Actors added after the set was first published: delivered by deliver_added, with a random
# stream of their own, so that the other actors' files keep their bytes. They share that stream,
# drawn in the order of their records' account, region, day and window: records of a new actor
# must come after those of the actors added before it, or these would change files.
ADDED_ACTORS = ("dan-mcp-minted-session", "grace-awslabs-minted-session")
GENERATED = ("AWSLogs", "iam", "labels.csv", "scenario.json")


def run_scenario() -> World:
    world = World()
    for actor_class in ACTORS:
        actor_class(world, ACTOR_NAMES[actor_class]).run()
    return world


def write_bytes(out: Path, key: str, data: bytes) -> None:
    path = out / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def write_labels(out: Path, world: World) -> None:
    rows = sorted((e.record["eventID"], e.label) for e in world.emitted)
    with (out / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["event_id", "actor_kind", "access_path", "agent_name"])
        for event_id, label in rows:
            writer.writerow([event_id, label.actor_kind, label.access_path, label.agent_name])


def sorted_counts(values: Iterable[str]) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))


def scenario_summary(world: World, files: list[LogFile], duplicated: list[str], digests: list[Digest],
                     others: list[str]) -> dict[str, Any]:
    emitted = world.emitted
    records = [e.record for e in emitted]
    shared = Counter(r["sharedEventID"] for r in records if "sharedEventID" in r)
    return {
        "description": "Ground truth of the generated sample (sample_logs/README.md explains the scenario).",
        "seed": SEED,
        "organization_id": ORG_ID,
        "accounts": {DEV: "dev", PROD: "prod"},
        "regions": list(REGIONS),
        "period": {"start": PERIOD_START.isoformat(), "end": PERIOD_END.isoformat(),
                   "baseline_quarter": "2026Q2", "analysed_quarter": "2026Q3"},
        "trail": {"name": TRAIL_NAME, "home_region": TRAIL_HOME_REGION, "bucket": TRAIL_BUCKET},
        "iam_snapshot_taken_at": iso(SNAPSHOT_TAKEN_AT),
        "events": {
            "distinct": len(emitted),
            "records_in_files": sum(len(f.records) for f in files),
            "per_account": sorted_counts(r["recipientAccountId"] for r in records),
            "per_region": sorted_counts(r["awsRegion"] for r in records),
            "per_actor_kind": sorted_counts(e.label.actor_kind for e in emitted),
            "per_access_path": sorted_counts(e.label.access_path for e in emitted),
            "per_label": sorted_counts(f"{e.label.actor_kind}/{e.label.access_path}" for e in emitted),
            "per_agent_name": sorted_counts(e.label.agent_name for e in emitted if e.label.agent_name),
            "per_actor": sorted_counts(e.actor for e in emitted),
            "per_event_type": sorted_counts(r["eventType"] for r in records),
            "per_event_version": sorted_counts(r["eventVersion"] for r in records),
        },
        "agent_names": sorted({e.label.agent_name for e in emitted if e.label.agent_name}),
        "mcp_server_tag_values": [COST_MCP, K8S_MCP],
        # The managed MCP server's Data-event tool calls (documented shape) are logged from then on.
        "mcp_data_events_logged_from": MCP_DATA_EVENTS_FROM.isoformat(),
        "duplicated_event_ids": duplicated,
        "cross_account_shared_event_ids": sorted(s for s, n in shared.items() if n == 2),
        "role_tag_changes": [
            {"event": "TagRole", "role_arn": role(PROD, "DataPipelineAgentRole").arn, "time": iso(TAG_ROLE_TIME + TAG_ROLE_DELAY),
             "tags": {"Usage": "Agent"}},
            {"event": "CreateRole", "role_arn": role(DEV, "ReportAgentRole").arn, "time": iso(REPORT_ROLE_CREATED),
             "tags": role(DEV, "ReportAgentRole").tags},
        ],
        "files": {
            "event_files": len(files),
            "late_files": sorted(f.key for f in files if f.late),
            "digest_files": len(digests),
            "other_objects": others,
        },
        "digests": [{"key": d.key, "signature": d.signature, "signature_algorithm": "SHA256withRSA",
                     "note": "fake signature, will not verify"} for d in digests],
    }


def generate(out: Path) -> dict[str, Any]:
    for name in GENERATED:  # delete only what this script writes
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    out.mkdir(parents=True, exist_ok=True)

    world = run_scenario()
    delivery_rng = Rand("delivery")
    files = deliver([e.record for e in world.emitted if e.actor not in ADDED_ACTORS], delivery_rng)
    duplicated = deliver_twice(files, delivery_rng, DUPLICATED_EVENTS)
    files = deliver_added(files, [e.record for e in world.emitted if e.actor in ADDED_ACTORS],
                          Rand("delivery:added"))
    bodies = {f.key: f.body() for f in files}
    for key, body in bodies.items():
        write_bytes(out, key, gzip_bytes(body))
    digests = build_digests(files, bodies)
    for digest in digests:
        write_bytes(out, digest.key, gzip_bytes(digest.body))
    others = []
    for key, body in (insight_object(Rand("insight")), vpc_flow_log_object(Rand("vpcflowlogs"))):
        write_bytes(out, key, gzip_bytes(body))
        others.append(key)

    records = [e.record for e in world.emitted]
    for account in ACCOUNTS:
        text = json.dumps(iam_snapshot(account, records), indent=4) + "\n"
        write_bytes(out, f"iam/{account}.json", text.encode())
    write_labels(out, world)
    summary = scenario_summary(world, files, duplicated, digests, sorted(others))
    write_bytes(out, "scenario.json", (json.dumps(summary, indent=2) + "\n").encode())
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="folder to write into (default: the folder of this script)")
    args = parser.parse_args(argv)
    summary = generate(args.out)
    print(f"{summary['events']['distinct']} events in {summary['files']['event_files']} log files, "
          f"{summary['files']['digest_files']} digests, {len(summary['files']['other_objects'])} other objects "
          f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

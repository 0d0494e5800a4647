#!/usr/bin/env python3
"""Attribution benchmark: classify N events next to scanning them once.

    .venv/bin/python bench/classify.py [--events 1000000] [--out bench/out/classify]
                                       [--repeat 3] [--keep]

1. Generates (deterministically, cached by size and GENERATOR_VERSION) a warehouse whose
   events/ folder is written directly with pyarrow, in the layout, schema and Parquet options
   ingest writes (pipeline/parse/schema.py, pipeline/warehouse/files.py EVENTS_PARQUET: one
   Parquet file per recipient_account_id/event_date partition, row groups of 122,880): 2 accounts over 90 days with tens of thousands of STS sessions and
   role chains (list-form and map-form session tags, transitive tags reaching a second account
   as incomingTransitiveTags, source identities), AWS-managed MCP tool calls with their
   downstream requests and OAuth grants, awslabs MCP user agents, console sessions with a new
   key per request, SSO CLI work, IAM users, workloads (EC2, Lambda, GitHub OIDC), AWS
   services, and roles tagged by CreateRole events. Every event carries its expected label.
2. Measures, each in a fresh process with the peak RSS of its process tree (bench/ingest.py's
   sampler): a single scan of the columns the attribution reads (listed from DuckDB's plans
   of its statements; sums of string lengths and of other values' hashes, so DuckDB reads
   every value), a scan of every column, and `agenttrail attribute` (rebuild_attribution:
   sessions, chains, MCP links, classification and the verdicts it publishes).
3. Checks every event's (actor_kind, access_path, agent_name) against the expected labels and
   prints one markdown table (also written with the details to OUT/results.json).

Target (issue 3): classification under 5x a single scan.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import resource
import shutil
import statistics
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

# 2: events files written with ingest's own Parquet options (warehouse/files.py EVENTS_PARQUET).
# 3: the identity_provider column. 4: the assumed_root column.
GENERATOR_VERSION = 4
SEED = 20260401
A1, A2 = "111122223333", "444455556666"
FIRST_DAY = date(2025, 4, 1)
DAYS = 90
REGIONS = ("us-east-1", "eu-west-1", "us-west-2")
ROW_GROUP_ROWS = 122_880
MCP_ENDPOINT = "https://aws-mcp.us-east-1.api.aws/mcp"
MCP_PRINCIPAL = "aws-mcp.amazonaws.com"
EKS_OIDC = "oidc.eks.us-east-1.amazonaws.com/id/5C1B2E7A9F0D4C3B8A6E1D2F3A4B5C6D"
GITHUB_OIDC = "token.actions.githubusercontent.com"
REQUIRED_RATIO = 5.0

CLI_UA = (
    "aws-cli/2.27.50 md/awscrt#0.26.1 ua/2.1 os/linux#6.8.0 md/arch#x86_64 lang/python#3.13.4 "
    "md/pyimpl#CPython m/E,b cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.24 "
    "md/prompt#off md/command#{cmd}"
)
BOTO_UA = (
    "Boto3/1.40.11 md/Botocore#1.40.11 ua/2.1 os/linux#6.8.0 md/arch#x86_64 lang/python#3.12.9 "
    "md/pyimpl#CPython m/Z,b cfg/retry-mode#legacy Botocore/1.40.11"
)
GO_UA = "aws-sdk-go-v2/1.36.3 ua/2.1 os/linux lang/go#1.24.1 md/GOOS#linux md/GOARCH#amd64"
JAVA_UA = "aws-sdk-java/2.31.9 Linux/6.1 OpenJDK_64-Bit_Server_VM/21.0.6+7-LTS Java/21.0.6"
BROWSER_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/138.0.0.0 Safari/537.36"
)
AWSLABS_UA = (
    BOTO_UA + " md/awslabs#mcp#cloudwatch-mcp-server#0.0.5",
    BOTO_UA + " awslabs/mcp/aws-documentation-mcp-server/1.0.3",
)
AWSLABS_SERVERS = ("cloudwatch-mcp-server", "aws-documentation-mcp-server")
MCP_CLIENTS = ("claude-code/1.0.98", "mcp-proxy-for-aws/1.1.0")

API_CALLS = (
    ("s3.amazonaws.com", "ListBuckets", True),
    ("s3.amazonaws.com", "GetObject", True),
    ("ec2.amazonaws.com", "DescribeInstances", True),
    ("logs.amazonaws.com", "PutLogEvents", False),
    ("dynamodb.amazonaws.com", "Query", True),
    ("monitoring.amazonaws.com", "GetMetricData", True),
    ("ce.amazonaws.com", "GetCostAndUsage", True),
    ("lambda.amazonaws.com", "GetFunction20150331v2", True),
    ("ssm.amazonaws.com", "GetParameter", True),
    ("kms.amazonaws.com", "Decrypt", True),
    ("sts.amazonaws.com", "GetCallerIdentity", True),
    ("cloudformation.amazonaws.com", "DescribeStacks", True),
)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def label(kind: str, path: str, name: str | None = None) -> tuple[str, str, str | None]:
    return (kind, path, name)


class Role:
    def __init__(self, account: str, name: str, path: str = "/") -> None:
        self.account, self.name, self.path = account, name, path
        self.arn = f"arn:aws:iam::{account}:role{path}{name}"
        digest = hashlib.sha256(f"{account}:{name}".encode()).hexdigest().upper()
        self.role_id = "AROA" + digest[:17]

    def issuer(self) -> dict[str, str]:
        return {
            "type": "Role",
            "principalId": self.role_id,
            "arn": self.arn,
            "accountId": self.account,
            "userName": self.name,
        }


class Generator:
    """Builds the events column by column; every event also gets its expected label."""

    def __init__(self, events: int) -> None:
        from pipeline.parse.schema import FILE_SCHEMA

        self.target = events
        self.rng = Random(SEED)
        self.names = [f.name for f in FILE_SCHEMA] + ["recipient_account_id", "event_date"]
        self.cols: dict[str, list[Any]] = {n: [] for n in self.names}
        self.expected: list[tuple[str, str, str, str | None]] = []
        self.n = 0
        self.key_n = 0
        self.sessions = 0
        self.start = datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=UTC)

    # ---------------------------------------------------------------------------- helpers
    def new_key(self, prefix: str = "ASIA") -> str:
        self.key_n += 1
        return f"{prefix}{self.key_n:016d}"

    def uuid(self) -> str:
        self.n += 1
        r = self.rng.getrandbits(48)
        return (
            f"{self.n:08x}-{r >> 32:04x}-4{(r >> 20) & 0xFFF:03x}-8{(r >> 8) & 0xFFF:03x}-{r:012x}"
        )

    def request_uuid(self) -> str:
        r = self.rng.getrandbits(128)
        return f"{r >> 96:08x}-{(r >> 80) & 0xFFFF:04x}-{(r >> 64) & 0xFFFF:04x}-{(r >> 48) & 0xFFFF:04x}-{r & 0xFFFFFFFFFFFF:012x}"

    def moment(self) -> datetime:
        return self.start + timedelta(seconds=self.rng.randrange(DAYS * 86400 - 7200))

    def assumed(
        self,
        role: Role,
        session: str,
        key: str,
        created: datetime,
        *,
        source_identity: str | None = None,
        ec2_role_delivery: str | None = None,
        web_provider: str | None = None,
        sign_in: str | None = None,
        invoked_by: str | None = None,
        from_console: bool = False,
    ) -> dict[str, Any]:
        """userIdentity of an assumed-role session, as JSON text and as the parsed columns."""
        context: dict[str, Any] = {
            "sessionIssuer": role.issuer(),
            "webIdFederationData": {"federatedProvider": web_provider, "attributes": {}}
            if web_provider
            else {},
            "attributes": {
                "creationDate": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "mfaAuthenticated": "false",
            },
        }
        if source_identity:
            context["sourceIdentity"] = source_identity
        if ec2_role_delivery:
            context["ec2RoleDelivery"] = ec2_role_delivery
        if sign_in:
            context["signInSessionArn"] = sign_in
        arn = f"arn:aws:sts::{role.account}:assumed-role/{role.name}/{session}"
        identity: dict[str, Any] = {
            "type": "AssumedRole",
            "principalId": f"{role.role_id}:{session}",
            "arn": arn,
            "accountId": role.account,
            "accessKeyId": key,
            "sessionContext": context,
        }
        if invoked_by:
            identity["invokedBy"] = invoked_by
        return {
            "user_identity": _dumps(identity),
            "principal_type": "AssumedRole",
            "principal_id": identity["principalId"],
            "principal_arn": arn,
            "iam_principal_arn": role.arn,
            "principal_account_id": role.account,
            "access_key_id": key or None,
            "invoked_by": invoked_by,
            "session_issuer_type": "Role",
            "session_issuer_principal_id": role.role_id,
            "session_issuer_arn": role.arn,
            "session_issuer_name": role.name,
            "session_issuer_account_id": role.account,
            "session_creation_date": created,
            "mfa_authenticated": False,
            "source_identity": source_identity,
            "ec2_role_delivery": ec2_role_delivery,
            "web_id_provider": web_provider,
            "sign_in_session_arn": sign_in,
            "session_credential_from_console": True if from_console else None,
        }

    @staticmethod
    def iam_user(account: str, name: str, key: str) -> dict[str, Any]:
        arn = f"arn:aws:iam::{account}:user/{name}"
        identity = {
            "type": "IAMUser",
            "principalId": "AIDA" + name.upper().ljust(17, "X"),
            "arn": arn,
            "accountId": account,
            "accessKeyId": key,
            "userName": name,
        }
        return {
            "user_identity": _dumps(identity),
            "principal_type": "IAMUser",
            "principal_id": identity["principalId"],
            "principal_arn": arn,
            "iam_principal_arn": arn,
            "principal_account_id": account,
            "access_key_id": key,
            "user_name": name,
        }

    @staticmethod
    def service(service: str) -> dict[str, Any]:
        return {
            "user_identity": _dumps({"type": "AWSService", "invokedBy": service}),
            "principal_type": "AWSService",
            "invoked_by": service,
        }

    @staticmethod
    def web_identity_user(account: str, provider: str, subject: str) -> dict[str, Any]:
        provider_arn = f"arn:aws:iam::{account}:oidc-provider/{provider}"
        identity = {
            "type": "WebIdentityUser",
            "principalId": f"{provider_arn}:sts.amazonaws.com:{subject}",
            "userName": subject,
            "identityProvider": provider_arn,
        }
        return {
            "user_identity": _dumps(identity),
            "principal_type": "WebIdentityUser",
            "principal_id": identity["principalId"],
            "user_name": subject,
            "identity_provider": provider_arn,
        }

    def emit(
        self,
        who: dict[str, Any],
        when: datetime,
        source: str,
        name: str,
        account: str,
        expected: tuple[str, str, str | None],
        *,
        user_agent: str,
        source_ip: str = "198.51.100.20",
        region: str = "us-east-1",
        request: Any = None,
        response: Any = None,
        additional: Any = None,
        request_id: str | None = None,
        event_type: str = "AwsApiCall",
        read_only: bool = True,
        shared_event_id: str | None = None,
        error: str | None = None,
        extra: Any = None,
    ) -> str:
        event_id = self.uuid()
        row: dict[str, Any] = {
            **who,
            "event_id": event_id,
            "event_time": when,
            "event_time_source": "eventTime",
            "event_version": "1.08",
            "event_source": source,
            "event_name": name,
            "event_type": event_type,
            "event_category": "Management",
            "read_only": read_only,
            "management_event": True,
            "aws_region": region,
            "source_ip": source_ip,
            "user_agent": user_agent,
            "error_code": error,
            "error_message": f"not authorized to perform {name}" if error else None,
            "request_id": request_id or self.request_uuid(),
            "shared_event_id": shared_event_id,
            "request_parameters": None if request is None else _dumps(request),
            "response_elements": None if response is None else _dumps(response),
            "additional_event_data": None if additional is None else _dumps(additional),
            "tls_details": '{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256",'
            f'"clientProvidedHostHeader":"{source}"}}',
            "extra": None if extra is None else _dumps(extra),
            "source_uri": f"file:///bench/{account}/{when:%Y/%m/%d}.json.gz",
            "source_sha256": "0" * 64,
            "source_record_index": self.n % 1000,
            "ingest_run_id": "bench",
            "recipient_account_id": account,
            "event_date": when.date(),
        }
        for n in self.names:
            self.cols[n].append(row.get(n))
        self.expected.append((event_id, *expected))
        return event_id

    def call(
        self,
        who: dict[str, Any],
        when: datetime,
        account: str,
        expected: tuple[str, str, str | None],
        user_agent: str,
        **kwargs: Any,
    ) -> str:
        source, name, read_only = self.rng.choice(API_CALLS)
        request = {"bucketName": f"bucket-{self.rng.randrange(50)}", "maxKeys": 1000}
        return self.emit(
            who,
            when,
            source,
            name,
            account,
            expected,
            user_agent=user_agent,
            region=self.rng.choice(REGIONS),
            request=request,
            read_only=read_only,
            **kwargs,
        )

    def assume_role(
        self,
        who: dict[str, Any],
        when: datetime,
        caller_account: str,
        target: Role,
        session: str,
        expected: tuple[str, str, str | None],
        *,
        user_agent: str,
        call: str = "AssumeRole",
        tags: dict[str, str] | None = None,
        principal_tags: dict[str, str] | None = None,
        transitive: list[str] | None = None,
        source_identity: str | None = None,
        incoming: dict[str, str] | None = None,
        duration: int = 3600,
    ) -> str:
        """An STS call that issues a key; cross-account calls are logged in both accounts."""
        key = self.new_key()
        self.sessions += 1
        request: dict[str, Any] = {
            "roleArn": target.arn,
            "roleSessionName": session,
            "durationSeconds": duration,
        }
        if tags:
            request["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        if principal_tags:
            request["principalTags"] = principal_tags
        if transitive:
            request["transitiveTagKeys"] = transitive
        if source_identity:
            request["sourceIdentity"] = source_identity
        expiry = when + timedelta(seconds=duration)
        response: dict[str, Any] = {
            "credentials": {
                "accessKeyId": key,
                "sessionToken": "<redacted by agenttrail>",
                "expiration": expiry.strftime("%b %-d, %Y, %-I:%M:%S %p"),
            },
            "assumedRoleUser": {
                "assumedRoleId": f"{target.role_id}:{session}",
                "arn": f"arn:aws:sts::{target.account}:assumed-role/{target.name}/{session}",
            },
        }
        if source_identity:
            response["sourceIdentity"] = source_identity
        cross = target.account != caller_account
        shared = self.request_uuid() if cross or who.get("principal_type") == "AWSService" else None
        request_id = self.request_uuid()
        for account in (caller_account, target.account) if cross else (caller_account,):
            params = dict(request)
            if incoming and account == target.account:
                params["incomingTransitiveTags"] = incoming
            self.emit(
                who,
                when,
                "sts.amazonaws.com",
                call,
                account,
                expected,
                user_agent=user_agent,
                source_ip=who.get("invoked_by") or "198.51.100.20",
                request=params,
                response=response,
                request_id=request_id,
                shared_event_id=shared,
                read_only=True,
            )
        return key

    def burst(
        self,
        who: dict[str, Any],
        start: datetime,
        count: int,
        account: str,
        expected: tuple[str, str, str | None],
        user_agent: str,
        **kwargs: Any,
    ) -> None:
        when = start
        for _ in range(count):
            when += timedelta(seconds=self.rng.randrange(1, 240))
            self.call(who, when, account, expected, user_agent, **kwargs)

    # --------------------------------------------------------------------------- actors
    def run(self) -> None:
        scale = self.target / 1_000_000
        rng = self.rng
        roles = {
            "task": Role(A1, "McpServerTaskRole"),
            "agent_mcp": Role(A1, "AgentMcpRole"),
            "runner": Role(A1, "AgentRunnerInstanceRole"),
            "harness": Role(A1, "AgentHarnessRole"),
            "k8s": Role(A1, "K8sMcpServerRole"),
            "webapp": Role(A2, "WebAppInstanceRole"),
            "lambda": Role(A2, "OrderProcessorLambdaRole", "/service-role/"),
            "github": Role(A2, "GitHubDeployRole"),
            "admin": Role(A2, "AdminRole"),
            "readonly": Role(A2, "AgentReadOnlyRole", "/agents/"),
            "audit": Role(A2, "AgentAuditRole", "/agents/"),
            "config": Role(
                A1, "AWSServiceRoleForConfig", "/aws-service-role/config.amazonaws.com/"
            ),
            "sso_dev": Role(
                A1,
                "AWSReservedSSO_DeveloperAccess_fedcba9876543210",
                "/aws-reserved/sso.amazonaws.com/",
            ),
            "sso_admin": Role(
                A2,
                "AWSReservedSSO_AdministratorAccess_0123456789abcdef",
                "/aws-reserved/sso.amazonaws.com/",
            ),
        }
        carol_key = "AKIA" + "C" * 16
        carol = self.iam_user(A1, "carol", carol_key)
        human_direct = label("human", "direct")
        workload = label("workload", "direct")
        service = label("service", "service")

        # Agent roles known from CreateRole events (no IAM snapshot in the benchmark).
        for r in (roles["agent_mcp"], roles["harness"]):
            self.emit(
                carol,
                self.start + timedelta(seconds=5),
                "iam.amazonaws.com",
                "CreateRole",
                r.account,
                human_direct,
                user_agent=BOTO_UA,
                request={
                    "roleName": r.name,
                    "path": "/",
                    "tags": [{"key": "Usage", "value": "Agent"}],
                },
                read_only=False,
            )

        def n(count: int) -> int:
            return max(1, round(count * scale))

        # a) self-managed MCP server on ECS: task role (workload) -> tagged AgentMcpRole session
        #    -> half chain into A2 (both accounts log it) -> half of those a third hop in A2.
        for i in range(n(4000)):
            when = self.moment()
            server = f"cost-explorer-mcp-{i % 20}"
            person = f"user{i % 300}@example.com"
            ecs = self.service("ecs-tasks.amazonaws.com")
            task_key = self.assume_role(
                ecs,
                when,
                A1,
                roles["task"],
                f"{i:032x}",
                service,
                user_agent="ecs-tasks.amazonaws.com",
            )
            task = self.assumed(roles["task"], f"{i:032x}", task_key, when)
            self.burst(task, when, 3, A1, workload, GO_UA)
            tags = {"MCPServer": server, "Usage": "Agent"}
            agent_key = self.assume_role(
                task,
                when + timedelta(seconds=30),
                A1,
                roles["agent_mcp"],
                f"mcp-{i:08x}",
                workload,
                user_agent=BOTO_UA,
                tags=tags,
                transitive=["MCPServer", "Usage"],
                source_identity=person,
            )
            agent_label = label("agent", "mcp_self_managed", server)
            agent = self.assumed(
                roles["agent_mcp"], f"mcp-{i:08x}", agent_key, when, source_identity=person
            )
            self.burst(agent, when + timedelta(seconds=40), 8, A1, agent_label, BOTO_UA)
            if i % 2:
                continue
            ro_key = self.assume_role(
                agent,
                when + timedelta(seconds=60),
                A1,
                roles["readonly"],
                f"ro-{i:08x}",
                agent_label,
                user_agent=BOTO_UA,
                incoming=tags,
            )
            ro = self.assumed(
                roles["readonly"], f"ro-{i:08x}", ro_key, when, source_identity=person
            )
            self.burst(ro, when + timedelta(seconds=70), 6, A2, agent_label, BOTO_UA)
            if i % 4:
                continue
            audit_key = self.assume_role(
                ro,
                when + timedelta(seconds=90),
                A2,
                roles["audit"],
                f"audit-{i:08x}",
                agent_label,
                user_agent=BOTO_UA,
            )
            audit = self.assumed(
                roles["audit"], f"audit-{i:08x}", audit_key, when, source_identity=person
            )
            self.burst(audit, when + timedelta(seconds=100), 6, A2, agent_label, BOTO_UA)

        # f) the MCP bypass: the same task assumes the agent role without tags, calls from a shell.
        for i in range(n(2000)):
            when = self.moment()
            ecs = self.service("ecs-tasks.amazonaws.com")
            task_key = self.assume_role(
                ecs,
                when,
                A1,
                roles["task"],
                f"b{i:031x}",
                service,
                user_agent="ecs-tasks.amazonaws.com",
            )
            task = self.assumed(roles["task"], f"b{i:031x}", task_key, when)
            key = self.assume_role(
                task,
                when + timedelta(seconds=20),
                A1,
                roles["agent_mcp"],
                f"shell-{i}",
                workload,
                user_agent=CLI_UA.format(cmd="sts.assume-role"),
            )
            who = self.assumed(roles["agent_mcp"], f"shell-{i}", key, when)
            self.burst(
                who,
                when + timedelta(seconds=30),
                5,
                A1,
                label("agent", "direct", "AgentMcpRole"),
                CLI_UA.format(cmd="s3.ls"),
            )

        # b) agent harness on EC2: instance session -> AgentHarnessRole with Usage=Agent only.
        for i in range(n(3000)):
            when = self.moment()
            instance = f"i-{0x0ABC000000000000 + i:017x}"
            ec2 = self.service("ec2.amazonaws.com")
            inst_key = self.assume_role(
                ec2,
                when,
                A1,
                roles["runner"],
                instance,
                service,
                user_agent="ec2.amazonaws.com",
                duration=21600,
            )
            inst = self.assumed(roles["runner"], instance, inst_key, when, ec2_role_delivery="2.0")
            self.burst(inst, when, 2, A1, workload, JAVA_UA)
            key = self.assume_role(
                inst,
                when + timedelta(seconds=50),
                A1,
                roles["harness"],
                f"harness-{i}",
                workload,
                user_agent=CLI_UA.format(cmd="sts.assume-role"),
                tags={"Usage": "Agent"},
            )
            who = self.assumed(roles["harness"], f"harness-{i}", key, when)
            self.burst(
                who,
                when + timedelta(seconds=60),
                8,
                A1,
                label("agent", "direct", "AgentHarnessRole"),
                CLI_UA.format(cmd="ec2.describe-instances"),
            )

        # c) Kubernetes MCP server (IRSA): map-form principalTags, lower-case "agent" value.
        for i in range(n(3000)):
            when = self.moment()
            caller = self.web_identity_user(
                A1, EKS_OIDC, f"system:serviceaccount:mcp:k8s-mcp-{i % 7}"
            )
            key = self.assume_role(
                caller,
                when,
                A1,
                roles["k8s"],
                f"botocore-session-{i}",
                workload,
                call="AssumeRoleWithWebIdentity",
                user_agent=BOTO_UA,
                principal_tags={"MCPServer": "k8s-mcp", "Usage": "agent"},
            )
            who = self.assumed(
                roles["k8s"],
                f"botocore-session-{i}",
                key,
                when,
                web_provider=f"arn:aws:iam::{A1}:oidc-provider/{EKS_OIDC}",
            )
            self.burst(who, when, 6, A1, label("agent", "mcp_self_managed", "k8s-mcp"), BOTO_UA)

        # d) workloads: EC2 instance profile, Lambda, GitHub Actions.
        for i in range(n(8000)):
            when = self.moment()
            instance = f"i-{0x0DEF000000000000 + i:017x}"
            key = self.assume_role(
                self.service("ec2.amazonaws.com"),
                when,
                A2,
                roles["webapp"],
                instance,
                service,
                user_agent="ec2.amazonaws.com",
                duration=21600,
            )
            who = self.assumed(roles["webapp"], instance, key, when, ec2_role_delivery="2.0")
            self.burst(who, when, 10, A2, workload, JAVA_UA)
        for _ in range(n(8000)):
            when = self.moment()
            key = self.assume_role(
                self.service("lambda.amazonaws.com"),
                when,
                A2,
                roles["lambda"],
                "order-processor",
                service,
                user_agent="lambda.amazonaws.com",
                duration=43200,
            )
            who = self.assumed(roles["lambda"], "order-processor", key, when)
            self.burst(who, when, 6, A2, workload, BOTO_UA + " exec-env/AWS_Lambda_python3.12")
        for i in range(n(2000)):
            when = self.moment()
            caller = self.web_identity_user(
                A2, GITHUB_OIDC, f"repo:example/app:ref:refs/heads/main#{i}"
            )
            key = self.assume_role(
                caller,
                when,
                A2,
                roles["github"],
                f"GitHubActions-{i}",
                workload,
                call="AssumeRoleWithWebIdentity",
                user_agent=GO_UA,
            )
            who = self.assumed(
                roles["github"],
                f"GitHubActions-{i}",
                key,
                when,
                web_provider=f"arn:aws:iam::{A2}:oidc-provider/{GITHUB_OIDC}",
            )
            self.burst(who, when, 8, A2, workload, GO_UA)

        # e) people assuming an admin role cross-account from an IAM user (no tags).
        for i in range(n(5000)):
            when = self.moment()
            key = self.assume_role(
                carol, when, A1, roles["admin"], f"carol-{i}", human_direct, user_agent=BOTO_UA
            )
            who = self.assumed(roles["admin"], f"carol-{i}", key, when)
            self.burst(who, when, 8, A2, human_direct, BOTO_UA)

        # AWS-managed MCP: OAuth grant, AwsMcpEvent tool calls, downstream calls.
        managed = label("agent", "mcp_managed", MCP_PRINCIPAL)
        for i in range(n(5000)):
            when = self.moment()
            sign_in = f"arn:aws:signin:us-east-1:{A1}:session/{self.request_uuid()}"
            client = MCP_CLIENTS[i % 2]
            granting = self.assumed(roles["sso_dev"], "dan@example.com", "", when)
            self.emit(
                granting,
                when,
                "signin.amazonaws.com",
                "CreateOAuth2Token",
                A1,
                managed,
                user_agent=client,
                read_only=False,
                request={
                    "clientId": "arn:aws:signin:::devtools/same-device",
                    "grantType": "authorization_code",
                    "resource": MCP_ENDPOINT,
                },
                additional={"signInSessionArn": sign_in},
            )
            key = self.new_key()
            who = self.assumed(roles["sso_dev"], "dan@example.com", key, when, sign_in=sign_in)
            downstream_who = self.assumed(
                roles["sso_dev"],
                "dan@example.com",
                key,
                when,
                sign_in=sign_in,
                invoked_by=MCP_PRINCIPAL,
            )
            session_id = self.request_uuid()
            for _ in range(6):
                when += timedelta(seconds=rng.randrange(10, 120))
                ids = [self.request_uuid() for _ in range(rng.choice((0, 1, 1, 2)))]
                self.emit(
                    who,
                    when,
                    MCP_PRINCIPAL,
                    "CallReadOnlyTool",
                    A1,
                    managed,
                    user_agent=client,
                    event_type="AwsMcpEvent",
                    request={
                        "jsonrpc": "2.0",
                        "method": "tools/call",
                        "params": {
                            "name": "aws___call_aws",
                            "arguments": {"cli_command": "aws s3 ls"},
                        },
                    },
                    additional={
                        "downstreamRequests": [
                            {"apiName": "s3:ListBuckets", "requestId": r, "awsRegion": "us-east-1"}
                            for r in ids
                        ]
                    }
                    if ids
                    else None,
                    extra={
                        "mcpEventDetails": {"sessionId": session_id, "mcpServerName": "aws-mcp"}
                    },
                )
                for r in ids:
                    self.call(
                        downstream_who,
                        when + timedelta(seconds=1),
                        A1,
                        managed,
                        MCP_PRINCIPAL,
                        source_ip=MCP_PRINCIPAL,
                        request_id=r,
                    )

        # awslabs MCP servers on a laptop, through an SSO role (no STS event issues the key).
        for i in range(n(3000)):
            when = self.moment()
            which = i % 2
            who = self.assumed(roles["sso_dev"], "frank@example.com", self.new_key(), when)
            self.burst(
                who,
                when,
                20,
                A1,
                label("agent", "mcp_self_managed", AWSLABS_SERVERS[which]),
                AWSLABS_UA[which],
            )

        # console: a new access key per request.
        for _ in range(n(10000)):
            when = self.moment()
            for _ in range(20):
                when += timedelta(seconds=rng.randrange(1, 60))
                who = self.assumed(
                    roles["sso_admin"], "alice@example.com", self.new_key(), when, from_console=True
                )
                self.call(
                    who,
                    when,
                    A2,
                    label("human", "console"),
                    BROWSER_UA if rng.random() < 0.5 else "console.ec2.amazonaws.com",
                )

        # AWS services: AWSService identities, a service-linked role, service events.
        for i in range(n(60000)):
            when = self.moment()
            self.emit(
                self.service("cloudtrail.amazonaws.com"),
                when,
                "s3.amazonaws.com",
                "GetBucketAcl",
                A1 if i % 2 else A2,
                service,
                user_agent="cloudtrail.amazonaws.com",
                source_ip="cloudtrail.amazonaws.com",
                request={"bucketName": "org-trail", "acl": ""},
            )
        config_key = self.new_key()
        for _ in range(n(20000)):
            when = self.moment()
            who = self.assumed(
                roles["config"],
                "AWSConfig-Describe",
                config_key,
                when,
                invoked_by="config.amazonaws.com",
            )
            self.call(
                who, when, A1, service, "config.amazonaws.com", source_ip="config.amazonaws.com"
            )
        for _ in range(n(20000)):
            when = self.moment()
            who = {
                "user_identity": _dumps({"accountId": A1, "invokedBy": "kms.amazonaws.com"}),
                "principal_account_id": A1,
                "invoked_by": "kms.amazonaws.com",
            }
            self.emit(
                who,
                when,
                "kms.amazonaws.com",
                "RotateKey",
                A1,
                service,
                user_agent="kms.amazonaws.com",
                source_ip="kms.amazonaws.com",
                event_type="AwsServiceEvent",
            )

        # failed console sign-ins: unknown.
        for _ in range(n(3000)):
            when = self.moment()
            who = {
                "user_identity": _dumps(
                    {
                        "type": "Unknown",
                        "principalId": "",
                        "accountId": A2,
                        "userName": "HIDDEN_DUE_TO_SECURITY_REASONS",
                    }
                ),
                "principal_type": "Unknown",
                "user_name": "HIDDEN_DUE_TO_SECURITY_REASONS",
            }
            self.emit(
                who,
                when,
                "signin.amazonaws.com",
                "ConsoleLogin",
                A2,
                label("unknown", "none"),
                user_agent=BROWSER_UA,
                event_type="AwsConsoleSignIn",
                error="Failed authentication",
            )

        # the IAM user's own calls, then SSO CLI work up to the target count.
        for _ in range(n(40000) // 10):
            self.burst(carol, self.moment(), 10, A1, human_direct, BOTO_UA)
        while self.n < self.target:
            when = self.moment()
            who = self.assumed(roles["sso_dev"], "bob@example.com", self.new_key(), when)
            for _ in range(min(20, self.target - self.n)):
                when += timedelta(seconds=rng.randrange(1, 300))
                self.call(who, when, A1, human_direct, CLI_UA.format(cmd="s3.ls"))


# ======================================================================= data set on disk
def ensure_warehouse(out: Path, events: int) -> Path:
    """The benchmark warehouse for `events` (generated once, then reused)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.parse.schema import FILE_SCHEMA, STAGED_SCHEMA
    from pipeline.warehouse.connect import connect
    from pipeline.warehouse.files import EVENTS_PARQUET, write_parquet
    from pipeline.warehouse.layout import Layout

    root = out / f"data-v{GENERATOR_VERSION}-{events}"
    done = root / "GENERATED"
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    print(f"generating {events:,} events into {root} ...", file=sys.stderr, flush=True)
    gen = Generator(events)
    gen.run()
    table = pa.table({n: gen.cols[n] for n in STAGED_SCHEMA.names}, schema=STAGED_SCHEMA)
    del gen.cols
    layout = Layout.at(root / "warehouse")
    keys = pa.table(
        {
            "a": table["recipient_account_id"],
            "d": table["event_date"],
            "i": pa.array(range(table.num_rows)),
        }
    )
    groups = keys.group_by(["a", "d"]).aggregate([("i", "list")])
    for account, day, idx in zip(
        groups["a"].to_pylist(), groups["d"].to_pylist(), groups["i_list"].to_pylist(), strict=True
    ):
        folder = layout.events / f"recipient_account_id={account}" / f"event_date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        part = table.take(pa.array(sorted(idx))).select(FILE_SCHEMA.names).cast(FILE_SCHEMA)
        write_parquet(
            part,
            folder / "part-bench-000000-000.parquet",
            row_group_rows=ROW_GROUP_ROWS,
            options=EVENTS_PARQUET,
        )
    expected = pa.table(
        {
            "event_id": [e[0] for e in gen.expected],
            "actor_kind": [e[1] for e in gen.expected],
            "access_path": [e[2] for e in gen.expected],
            "agent_name": [e[3] for e in gen.expected],
        }
    )
    pq.write_table(expected, root / "expected.parquet", compression="zstd")
    with connect(layout, read_only=False):
        pass  # creates agenttrail.duckdb with its views
    (root / "info.json").write_text(
        json.dumps({"events": table.num_rows, "sts_sessions": gen.sessions}, indent=2)
    )
    done.write_text("ok\n")
    return root


# =============================================================================== the steps
def step_scan(warehouse: str, columns: list[str]) -> dict[str, Any]:
    """One scan that reads every value of every listed column: the sum of the lengths of a
    string column, the sum of the hashes of any other (aggregates DuckDB cannot answer from
    the footers, as it can count(*)). Until 2026-11-29 every column was cast to VARCHAR
    first: formatting the two timestamps cost ~0.06 s of a 0.25 s scan, which made the scan
    look slower and the classification's ratio to it smaller than they are."""
    import time

    import duckdb

    con = duckdb.connect(str(Path(warehouse) / "agenttrail.duckdb"), read_only=True)
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE events)").fetchall())
    strings = [c for c in columns if types[c] == "VARCHAR"]
    others = [c for c in columns if types[c] != "VARCHAR"]
    parts = ["count(*)", *(f"sum(length({c}))" for c in strings)]
    parts += (f"sum(hash({c}))" for c in others)
    started = time.perf_counter()
    row = con.execute(f"SELECT {', '.join(parts)} FROM events").fetchone()
    seconds = time.perf_counter() - started
    assert row is not None
    chars = sum(int(v or 0) for v in row[1 : 1 + len(strings)])
    return {"seconds": seconds, "rows": int(row[0]), "chars": chars}


def step_columns(warehouse: str) -> dict[str, Any]:
    """The events columns the attribution reads: the READ_PARQUET projections of DuckDB's
    plans for every attribution statement and for the per-event pass, explained one by one as
    the statements run (each needs the tables of the ones before)."""
    from pipeline.attribute import classify, source_cache
    from pipeline.config import Settings
    from pipeline.resources import queries_dir
    from pipeline.sqlfile import parse_sql_file
    from pipeline.warehouse.connect import connect_detached
    from pipeline.warehouse.layout import EVENTS_GLOB, Layout

    layout = Layout.at(Path(warehouse))
    cfg = Settings().attribution
    found: set[str] = set()

    def explain(con: Any, sql: str) -> None:
        def walk(node: dict[str, Any]) -> None:
            if node.get("name") == "READ_PARQUET":
                read = node.get("extra_info", {}).get("Projections", [])
                found.update([read] if isinstance(read, str) else read)
            for child in node.get("children", []):
                walk(child)

        for _, plan in con.execute("EXPLAIN (FORMAT json) " + sql).fetchall():
            for node in json.loads(plan):
                walk(node)

    with connect_detached(layout) as con:
        classify._settings_tables(con, cfg)
        classify._ensure_iam_views(con)
        classify._events_with_positions(con, sorted(layout.events.glob(EVENTS_GLOB)))
        # As a rebuild that keeps no source events extracts them: from every file.
        source_cache.bind(con, source_cache.SourceCache(layout.source_cache, [], {}))
        con.execute("CREATE VIEW attribution_extract_events AS SELECT * FROM attribution_events")
        for path in sorted((queries_dir() / "attribute").glob("*.sql")):
            for statement in con.extract_statements(parse_sql_file(path).sql):
                # The others read in-memory tables and the IAM snapshots' files only.
                if re.search(r"\battribution_(extract_)?events\b", statement.query):
                    explain(con, statement.query)
                con.execute(statement.query)
        explain(con, classify._verdicts_query())
        events = {r[0] for r in con.execute("SELECT column_name FROM (DESCRIBE events)").fetchall()}
    found -= {"file_row_number", "file_index", "filename"}  # virtual columns
    if not found <= events:
        raise SystemExit(f"plans read columns that events lacks: {sorted(found - events)}")
    return {"columns": sorted(found)}


def step_check(warehouse: str, expected: str) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect(str(Path(warehouse) / "agenttrail.duckdb"), read_only=True)
    # A full outer join with NULL-safe comparisons: an event missing on either side, or a NULL
    # verdict, is a mismatch (with `<>` a NULL verdict compared as equal to nothing, and was
    # never counted).
    rows = con.execute(
        """
        SELECT x.actor_kind, x.access_path, coalesce(x.agent_name, ''),
               c.actor_kind, c.access_path, coalesce(c.agent_name, ''), c.classified_by, count(*)
        FROM read_parquet($p) AS x
        FULL OUTER JOIN events_classified AS c ON c.event_id = x.event_id
        WHERE c.event_id IS NULL OR x.event_id IS NULL
            OR x.actor_kind IS DISTINCT FROM c.actor_kind
            OR x.access_path IS DISTINCT FROM c.access_path
            OR coalesce(x.agent_name, '') <> coalesce(c.agent_name, '')
        GROUP BY ALL ORDER BY count(*) DESC
        """,
        {"p": expected},
    ).fetchall()
    total = con.execute(
        "SELECT count(*), count(DISTINCT event_id) FROM events_classified"
    ).fetchone()
    sessions = con.execute("SELECT count(*), max(chain_depth) FROM sessions").fetchone()
    assert total is not None
    assert sessions is not None
    duplicated = int(total[0]) - int(total[1])
    return {
        "classified": int(total[0]),
        # Every event_id counts once in `rows`; a duplicated one is a mismatch too.
        "mismatched": sum(int(r[-1]) for r in rows) + duplicated,
        "mismatches": [list(map(str, r)) for r in rows[:20]],
        "sessions": int(sessions[0]),
        "max_chain_depth": int(sessions[1] or 0),
    }


def run_step(name: str, args: dict[str, Any]) -> dict[str, Any]:
    if name == "scan":
        return step_scan(**args)
    if name == "check":
        return step_check(**args)
    if name == "columns":
        return step_columns(**args)
    raise SystemExit(f"unknown step {name!r}")


# ================================================================================ main
@dataclasses.dataclass
class Run:
    seconds: float  # wall time of the whole process
    cpu: float  # user + system seconds of the process and its children
    peak_rss_mb: float
    returncode: int
    output: Any
    stderr_tail: str


def files_count(warehouse: Path) -> int:
    return sum(1 for _ in (warehouse / "events").rglob("*.parquet"))


def agenttrail_command() -> list[str]:
    script = Path(sys.executable).with_name("agenttrail")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "pipeline"]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000, help="events to generate")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "out" / "classify"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (median)")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--step-args", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.step:
        print(json.dumps(run_step(args.step, json.loads(args.step_args))))
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from ingest import machine, measure, step_command  # the sampler and helpers of bench/ingest.py

    def this_step(name: str, step_args: dict[str, Any]) -> list[str]:
        command = step_command(name, step_args)
        command[1] = str(Path(__file__).resolve())
        return command

    out: Path = args.out
    root = ensure_warehouse(out, args.events)
    warehouse = root / "warehouse"
    info = json.loads((root / "info.json").read_text())
    work = out / "runs"
    shutil.rmtree(work, ignore_errors=True)
    from pipeline.parse.schema import FILE_SCHEMA

    all_columns = [*FILE_SCHEMA.names, "recipient_account_id", "event_date"]
    results: dict[str, list[Run]] = {
        "scan_rules": [],
        "scan_all": [],
        "classify": [],
        "classify_kept": [],
    }

    def run(command: list[str], folder: Path) -> Run:
        """measure() plus the CPU time (user + system) of the process and its children."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        m = measure(command, folder)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return Run(m.seconds, cpu, m.peak_rss_mb, m.returncode, m.output, m.stderr_tail)

    # The scan reads exactly the columns the attribution's plans read.
    read = measure(this_step("columns", {"warehouse": str(warehouse)}), work / "columns")
    if read.returncode or not read.output:
        raise SystemExit(f"listing the columns the attribution reads failed: {read.stderr_tail}")
    rule_columns: list[str] = read.output["columns"]
    for i in range(args.repeat):
        for name, columns in (("scan_rules", rule_columns), ("scan_all", all_columns)):
            r = run(
                this_step("scan", {"warehouse": str(warehouse), "columns": columns}),
                work / f"{name}-{i}",
            )
            if r.returncode or not r.output or r.output["rows"] != info["events"]:
                raise SystemExit(f"{name} failed: {r.stderr_tail}")
            results[name].append(r)
        # The classification from scratch: no source events kept from an earlier rebuild
        # (pipeline/attribute/source_cache.py); then again with them all kept, as a rebuild
        # after an edit of the rules, or after an ingest of few new files, runs.
        shutil.rmtree(warehouse / "derived" / "source-cache", ignore_errors=True)
        for name, kept in (("classify", 0), ("classify_kept", files_count(warehouse))):
            r = run(
                [*agenttrail_command(), "attribute", "--warehouse", str(warehouse), "--json"],
                work / f"{name}-{i}",
            )
            if r.returncode or not r.output or r.output["events"] != info["events"]:
                raise SystemExit(f"agenttrail attribute failed: {r.stderr_tail}")
            if r.output["source_files"]["kept"] != kept:
                raise SystemExit(f"{name}: {r.output['source_files']}, expected {kept} kept")
            results[name].append(r)
    check = measure(
        this_step(
            "check", {"warehouse": str(warehouse), "expected": str(root / "expected.parquet")}
        ),
        work / "check",
    ).output

    def median(name: str, what: str) -> float:
        return statistics.median(float(getattr(r, what)) for r in results[name])

    def inner(name: str) -> float:
        """Seconds inside the process: the scan query / rebuild_attribution."""
        return statistics.median(float(r.output["seconds"]) for r in results[name])

    size = sum(p.stat().st_size for p in (warehouse / "events").rglob("*.parquet"))
    files = files_count(warehouse)
    host = machine()
    scan = inner("scan_rules")
    lines = [
        f"{info['events']:,} events ({size / 1e6:,.0f} MB of Parquet in {files} files), "
        f"{check['sessions']:,} STS sessions (chains up to depth {check['max_chain_depth']}); "
        f"median of {args.repeat} runs, each in a fresh process",
        "",
        "| step | in-process s | x scan | process s | process CPU s | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, title in (
        ("scan_rules", f"scan once: the {len(rule_columns)} columns the attribution reads"),
        ("scan_all", f"scan once: all {len(all_columns)} columns"),
        ("classify", "classify: `agenttrail attribute` (rebuild_attribution)"),
        ("classify_kept", "classify again, every file's source events kept"),
    ):
        lines.append(
            f"| {title} | {inner(name):.2f} | {inner(name) / scan:.2f}x | "
            f"{median(name, 'seconds'):.2f} | {median(name, 'cpu'):.2f} | "
            f"{max(r.peak_rss_mb for r in results[name]):,.0f} |"
        )
    ratio = inner("classify") / scan
    lines += [
        "",
        f"classification / one scan of the rule columns: **{ratio:.2f}x** in process "
        f"(target < {REQUIRED_RATIO:.0f}x); whole processes: "
        f"{median('classify', 'seconds') / median('scan_rules', 'seconds'):.2f}x wall, "
        f"{median('classify', 'cpu') / median('scan_rules', 'cpu'):.2f}x CPU; "
        f"vs a scan of all columns: {inner('classify') / inner('scan_all'):.2f}x; "
        f"with the source events kept: **{inner('classify_kept') / scan:.2f}x**",
        "where the classification's seconds go (medians, `attribute --json`): "
        + ", ".join(
            f"{phase} {statistics.median(float(r.output['phases'][phase]) for r in results['classify']):.2f} s"
            for phase in results["classify"][0].output.get("phases", {})
        ),
        (
            f"labels: all {info['events']:,} events as expected; "
            if not check["mismatched"] and check["classified"] == info["events"]
            else f"labels: {check['mismatched']:,} mismatched ({info['events']:,} events generated,"
            f" {check['classified']:,} classified); "
        )
        + f"{info['events'] / inner('classify'):,.0f} events/s classified",
        f"Machine: {host['cores']} cores ({host['cpu']}), Python {host['python']}, "
        f"DuckDB {host['duckdb']}, load average {os.getloadavg()[0]:.1f} at the end",
    ]
    table = "\n".join(lines)
    print(table)
    if check["mismatched"] or check["classified"] != info["events"]:
        print("mismatches (expected..., got..., rule, count):", file=sys.stderr)
        for row in check["mismatches"]:
            print("  ", row, file=sys.stderr)
    (out / "results.json").write_text(
        json.dumps(
            {
                "table": table,
                "ratio": ratio,
                "info": info,
                "columns_read": rule_columns,
                "check": check,
                "machine": host,
                "runs": {k: [dataclasses.asdict(r) for r in v] for k, v in results.items()},
            },
            indent=2,
            default=str,
        )
    )
    return 0 if not check["mismatched"] and check["classified"] == info["events"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""Every attribution rule and edge, on hand-written records (tests/cases/attribute/*.json) that
follow ../shared/docs/cloudtrail-facts.md sections 2-4.

All case files go into one warehouse per module (their accounts, keys and role names do not
overlap), classified with a few configured patterns that only the pattern cases use; a second,
small warehouse holds the pattern cases under the default settings. Each case pins, for EVERY
one of its events, (actor_kind, access_path, agent_name, classified_by, human_id, mcp_tool,
confidence); the sessions table, the MCP link tables and some evidence texts are pinned too.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import AttributionSettings

from .helpers import (
    CASES,
    REPO,
    VERDICT,
    Verdict,
    import_iam,
    ingest,
    rows,
    verdicts,
)

A1, A2, A3, A4 = "111111111111", "222222222222", "333333333333", "444444444444"
QUERIES = REPO / "queries"
ALICE_CONSOLE = (
    f"arn:aws:sts::{A2}:assumed-role/AWSReservedSSO_AdministratorAccess_0123456789abcdef/"
    "alice@example.com"
)
OLGA_CONSOLE = (
    f"arn:aws:sts::{A3}:assumed-role/AWSReservedSSO_ReadOnlyAccess_0f1e2d3c4b5a6978/"
    "olga@example.com"
)
SSO_DEV = "AWSReservedSSO_DeveloperAccess_fedcba9876543210"
MCP = "aws-mcp.amazonaws.com"
MCP_RESOURCE = "https://aws-mcp.us-east-1.api.aws/mcp"
EKS_PROVIDER = (
    f"arn:aws:iam::{A1}:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/"
    "5C1B2E7A9F0D4C3B8A6E1D2F3A4B5C6D"
)
GITHUB_PROVIDER = f"arn:aws:iam::{A2}:oidc-provider/token.actions.githubusercontent.com"

# Patterns for the three pattern cases; no other case has a value they match.
PATTERNS: dict[str, tuple[str, ...]] = {
    "agent_source_identity_patterns": ("agent:%",),
    "mcp_source_identity_patterns": ("mcp:%",),
    "agent_role_patterns": ("%-agent-runner",),
    "workload_role_patterns": ("batch-%",),
    "workload_user_patterns": ("svc-backup",),
}
PATTERN_CASES = (
    "mcp_grant_by_agent_source_identity",
    "workload_pattern_chain_beyond_max_depth",
    "source_identity_pattern",
    "agent_role_pattern",
    "agent_role_pattern_untagged_create",
    "workload_patterns",
    "workload_pattern_chain",
    "role_pattern_without_session_context",
    "workload_role_pattern_federation_broker",
)
SNAPSHOT_FILE = CASES / "snapshot_agent_role.iam.json"
# Account A4's roles, as the same later snapshot shows them: tagged Usage=Agent are
# HopAgentRole, HopLateAgentRole (by a TagRole during the period), McpBeforeTagRole (likewise)
# and SvcAgentRole.
LATE_SNAPSHOT_FILE = CASES / "snapshot_late_tags.iam.json"
# The snapshots are taken after the cases' events: the oldest snapshot after a period applies,
# back to the first observation of each role.
SNAPSHOT_TAKEN_AT = datetime(2026, 10, 15, tzinfo=UTC)
GITHUB_PROVIDER_A4 = f"arn:aws:iam::{A4}:oidc-provider/token.actions.githubusercontent.com"


def agent(path: str, name: str, rule: str, human: str | None = None, tool: str | None = None,
          confidence: str = "high") -> Verdict:  # fmt: skip
    return ("agent", path, name, rule, human, tool, confidence)


def human(path: str, rule: str, who: str | None = None, confidence: str = "high") -> Verdict:
    return ("human", path, None, rule, who, None, confidence)


def workload(rule: str, confidence: str = "high", path: str = "direct") -> Verdict:
    return ("workload", path, None, rule, None, None, confidence)


def service(rule: str) -> Verdict:
    return ("service", "service", None, rule, None, None, "high")


DAN = "dan@example.com"
UNKNOWN: Verdict = ("unknown", "none", None, "unknown", None, None, "low")
OTHER_ROLE = "human.other_role"

EXPECTED: dict[str, dict[str, Verdict]] = {
    "mcp_links_empty_ids": {
        # A grant whose signInSessionArn is empty is still the MCP client's, but links nothing;
        # a tool call's empty downstream requestId links nothing either. Olga's calls, whose
        # requestID or signInSessionArn is empty too, are hers alone.
        "emptyid-grant": agent("mcp_managed", MCP, "mcp_managed.oauth_grant", "eve@example.com"),
        "emptyid-tool": agent(
            "mcp_managed", MCP, "mcp_managed.tool_call", "dan@example.com", "aws___call_aws"
        ),
        "emptyid-user-call": human("direct", "human.iam_user", "olga"),
        "emptyid-user-session": human("direct", "human.iam_user", "olga"),
    },
    "empty_string_fields": {
        # An empty string in a raw field names nothing, as an absent one: an empty MCPServer
        # tag value names no MCP server (nor an agent ''), an empty ec2RoleDelivery no EC2
        # instance, an empty onBehalfOf userId no Identity Center user, an empty sourceIdentity
        # no person; none of them hides the value that follows (the chain root's person or web
        # identity, the role userIdentity.arn names where sessionIssuer's fields are empty, the
        # JSON-RPC method where params.name is empty).
        "empty-mcptag-assume": human("direct", "human.iam_user", "emptytagger"),
        "empty-mcptag-call": human("direct", OTHER_ROLE, "emptytagger", "medium"),
        "empty-ec2-call": human("direct", OTHER_ROLE, None, "medium"),
        "empty-behalf-call": human("direct", OTHER_ROLE, None, "medium"),
        "empty-behalf-assume": human("direct", "human.iam_user", "emptyowner"),
        "empty-behalf-session-call": human("direct", OTHER_ROLE, "emptyowner", "medium"),
        "empty-si-assume": human("direct", "human.iam_user", "emptysi"),
        "empty-si-call": human("direct", OTHER_ROLE, "emptysi", "medium"),
        "empty-web-assume": workload("workload.web_identity"),
        "empty-web-call": workload("workload.web_identity"),
        "empty-create-agent-role": human("direct", "human.iam_user", "emptyadmin"),
        "empty-issuer-call": agent("direct", "EmptyAgentRole", "agent_role.direct"),
        # An empty params.name names no tool, and neither does the protocol method tools/call.
        "empty-tool": agent("mcp_managed", MCP, "mcp_managed.tool_call"),
        "empty-grant": agent("mcp_managed", MCP, "mcp_managed.oauth_grant", "emptygrantee"),
        "empty-grant-call": agent("mcp_managed", MCP, "mcp_managed.oauth_session", "emptygrantee"),
        "empty-idp-assume": human("direct", "human.federated"),
        "empty-idp-call": human("direct", OTHER_ROLE, None, "medium"),
        # Nor does an empty ec2RoleDelivery of the session that opened a chain.
        "empty-ec2-assume": human("direct", OTHER_ROLE, None, "medium"),
        "empty-ec2-child-call": human("direct", OTHER_ROLE, None, "medium"),
        # An empty userIdentity.arn names no grant owner: the IAM user is the person.
        "empty-arn-grant": agent("mcp_managed", MCP, "mcp_managed.oauth_grant", "emptyarnuser"),
    },
    "managed_mcp_observed_shape": {
        "mcpobs-grant": agent("mcp_managed", MCP, "mcp_managed.oauth_grant", "dan@example.com"),
        "mcpobs-tool-1": agent(
            "mcp_managed", MCP, "mcp_managed.tool_call", "dan@example.com", "aws___call_aws"
        ),
        "mcpobs-down-1": agent(
            "mcp_managed", MCP, "mcp_managed.invoked_by", "dan@example.com", "aws___call_aws"
        ),
        "mcpobs-tool-2": agent(
            "mcp_managed",
            MCP,
            "mcp_managed.tool_call",
            "dan@example.com",
            "aws___search_documentation",
        ),
        "mcpobs-refresh": agent("mcp_managed", MCP, "mcp_managed.oauth_grant", "dan@example.com"),
        "mcpobs-session-call": agent(
            "mcp_managed", MCP, "mcp_managed.oauth_session", "dan@example.com"
        ),
    },
    "managed_mcp_documented_shape": {
        "mcpdoc-grant": agent("mcp_managed", MCP, "mcp_managed.oauth_grant", "erik@example.com"),
        "mcpdoc-tool-1": agent(
            "mcp_managed", MCP, "mcp_managed.tool_call", "erik@example.com", "aws___call_aws"
        ),
        # A downstream call without invokedBy (the facts document says they carry it, in both
        # shapes; this one stands for a server that does not): the requestID link alone finds
        # it.
        "mcpdoc-down-1": agent(
            "mcp_managed",
            MCP,
            "mcp_managed.downstream_request",
            "erik@example.com",
            "aws___call_aws",
        ),
        "mcpdoc-tool-2": agent(
            "mcp_managed",
            MCP,
            "mcp_managed.tool_call",
            "erik@example.com",
            "aws___suggest_aws_commands",
        ),
        "mcpdoc-down-other-server": agent(
            "mcp_managed",
            "cloudwatch-mcp.amazonaws.com",
            "mcp_managed.invoked_by",
            "erik@example.com",
        ),
    },
    "session_tags_list_form": {
        "tagsl-assume-mcp": human("direct", "human.iam_user", "builder"),
        "tagsl-call-1": agent(
            "mcp_self_managed", "billing-mcp", "agent_session.mcp", "grace@example.com"
        ),
        "tagsl-call-2": agent(
            "mcp_self_managed", "billing-mcp", "agent_session.mcp", "grace@example.com"
        ),
        "tagsl-assume-harness": human("direct", "human.iam_user", "builder"),
        "tagsl-call-3": agent("direct", "TagsListHarnessRole", "agent_session.direct", "builder"),
    },
    "session_tags_map_form_web_identity": {
        # Labelled by its caller, the pod's service account: a workload (EKS OIDC provider).
        "tagsm-web": workload("workload.web_identity"),
        "tagsm-call-1": agent("mcp_self_managed", "k8s-mcp", "agent_session.mcp"),
    },
    "session_tags_map_form_saml": {
        # The SAML user (userIdentity.userName of AssumeRoleWithSAML) is the person behind
        # its calls and the sessions it opens.
        "tagss-saml-agent": human("console", "human.console", "heidi@example.com"),
        "tagss-call-agent": agent(
            "direct", "SamlAgentRole", "agent_session.direct", "heidi@example.com"
        ),
        "tagss-saml-plain": human("direct", "human.federated", "heidi@example.com"),
        "tagss-call-plain": human("direct", "human.federated", "heidi@example.com"),
    },
    "transitive_tag_keys_other_case": {
        # transitiveTagKeys name the tags in another letter case: tag keys are
        # case-insensitive, so both tags pass to the next session as its own.
        "tkcase-assume-agent": human("direct", "human.iam_user", "mixu"),
        "tkcase-assume-next": agent("mcp_self_managed", "m-mcp", "agent_session.mcp", "mixu"),
        "tkcase-call": agent("mcp_self_managed", "m-mcp", "agent_session.mcp", "mixu"),
    },
    "transitive_tags_second_account": {
        "trans-assume-1": human("direct", "human.iam_user", "ivan"),
        "trans-call-1": agent(
            "mcp_self_managed", "inventory-mcp", "agent_session.mcp", "ivan@example.com"
        ),
        "trans-assume-2-caller-copy": agent(
            "mcp_self_managed", "inventory-mcp", "agent_session.mcp", "ivan@example.com"
        ),
        "trans-assume-2-role-copy": agent(
            "mcp_self_managed", "inventory-mcp", "agent_session.mcp", "ivan@example.com"
        ),
        "trans-call-2": agent(
            "mcp_self_managed", "inventory-mcp", "agent_session.mcp", "ivan@example.com"
        ),
        # Made with a key issued before the logs begin: the only logged session of
        # TransSourceRole named inventory-agent carries the MCP server's tags (role plus
        # session name fallback).
        "trans-assume-4-caller-copy": agent(
            "mcp_self_managed",
            "inventory-mcp",
            "agent_session.mcp_by_name",
            "judy@example.com",
            confidence="medium",
        ),
        "trans-assume-4-role-copy": agent(
            "mcp_self_managed",
            "inventory-mcp",
            "agent_session.mcp_by_name",
            "judy@example.com",
            confidence="medium",
        ),
        # Its session got the tags as incomingTransitiveTags; they stay transitive.
        "trans-assume-5": agent(
            "mcp_self_managed", "inventory-mcp", "agent_session.mcp", "judy@example.com"
        ),
        "trans-call-5": agent(
            "mcp_self_managed", "inventory-mcp", "agent_session.mcp", "judy@example.com"
        ),
    },
    "failed_assume_role_null_params": {
        "failed-assume-ok": human("direct", "human.iam_user", "kim"),
        "failed-assume-denied-by-agent": agent(
            "direct", "FailAgentRole", "agent_session.direct", "kim"
        ),
        "failed-assume-denied-by-user": human("direct", "human.iam_user", "kim"),
    },
    "empty_access_key_id": {
        "emptykey-oauth": human("direct", "human.identity_center", "nina@example.com"),
        "emptykey-console-login": human("console", "human.console", "lee"),
        "emptykey-assume": human("direct", "human.iam_user", "lee"),
        "emptykey-call": human("direct", OTHER_ROLE, None, "medium"),
    },
    "awslabs_user_agent_modern": {
        "awslabs-modern-boto3": agent(
            "mcp_self_managed",
            "cloudwatch-mcp-server",
            "awslabs_user_agent",
            "frank@example.com",
            confidence="medium",
        ),
        "awslabs-modern-cli": agent(
            "mcp_self_managed",
            "cloudwatch-mcp-server",
            "awslabs_user_agent",
            "frank@example.com",
            confidence="medium",
        ),
        "awslabs-modern-iam-user": agent(
            "mcp_self_managed", "ecs-mcp-server", "awslabs_user_agent", "noah", confidence="medium"
        ),
        "awslabs-tagged-assume": human("direct", "human.iam_user", "noah"),
        "awslabs-tagged-call": agent(
            "mcp_self_managed", "cost-explorer-mcp-server", "agent_session.mcp", "noah"
        ),
    },
    "awslabs_user_agent_legacy": {
        "awslabs-legacy-boto3": agent(
            "mcp_self_managed",
            "aws-documentation-mcp-server",
            "awslabs_user_agent",
            "frank@example.com",
            confidence="medium",
        ),
        "awslabs-legacy-cli": agent(
            "mcp_self_managed",
            "aws-api-mcp-server",
            "awslabs_user_agent",
            "frank@example.com",
            confidence="medium",
        ),
    },
    "awslabs_user_agent_agent_tag": {
        "uatag-assume": human("direct", "human.iam_user", "uadev"),
        # The awslabs user agent is an MCP mark for agent sessions: not the bypass.
        "uatag-call-awslabs": agent(
            "mcp_self_managed", "cloudwatch-mcp-server", "agent_session.mcp", "uadev"
        ),
        "uatag-call-awslabs-legacy-cli": agent(
            "mcp_self_managed", "aws-api-mcp-server", "agent_session.mcp", "uadev"
        ),
        "uatag-call-cli": agent("direct", "AgentRuntimeRole", "agent_session.direct", "uadev"),
    },
    "tag_role_during_period": {
        "tagrole-assume-1": human("direct", "human.iam_user", "mia"),
        "tagrole-call-before": human("direct", OTHER_ROLE, "mia", "medium"),
        "tagrole-tag": human("console", "human.console", "alice@example.com"),
        "tagrole-tag-other-key": human("console", "human.console", "alice@example.com"),
        "tagrole-assume-2": human("direct", "human.iam_user", "mia"),
        "tagrole-call-after": agent("direct", "TagLaterRole", "agent_role.direct", "mia"),
        "tagrole-call-other-account": human("direct", OTHER_ROLE, None, "medium"),
        "tagrole-untag": human("console", "human.console", "alice@example.com"),
        "tagrole-assume-3": human("direct", "human.iam_user", "mia"),
        "tagrole-call-untagged": human("direct", OTHER_ROLE, "mia", "medium"),
    },
    "assume_root_sessions": {
        "aroot-create-agent-role": human("direct", "human.iam_user", "rootadmin"),
        "aroot-assume-agent": agent("direct", "RootTaskAgentRole", "agent_role.direct"),
        # A short-term root session (sts:AssumeRoot) the agent obtained: its calls in the member
        # account are the agent's (the AssumeRoot session is chained from the agent role's
        # session), not the root user's.
        "aroot-agent-root-call": agent("direct", "RootTaskAgentRole", "agent_chain.direct"),
        "aroot-assume-person": human("direct", "human.identity_center", "paula@example.com"),
        # A person's root session: the person is the one who started its chain, not "root".
        "aroot-person-root-call": human("direct", "human.iam_user", "paula@example.com"),
        "aroot-assume-denied": agent("direct", "RootTaskAgentRole", "agent_role.direct"),
        "aroot-assume-plain-role": human("direct", OTHER_ROLE, None, "medium"),
        # A root session that a role session with no mark opened, and no person: medium, as
        # that role session's own calls.
        "aroot-plain-role-root-call": human("direct", "human.iam_user", None, "medium"),
        # Its AssumeRoot is not in the logs: a principal of the management account started it,
        # which nothing names (sessionContext.assumedRoot says it is no root user's).
        "aroot-unjoined-root-call": UNKNOWN,
    },
    "reused_issued_keys": {
        "reused-assume-agent": human("direct", "human.iam_user", "docs-reader"),
        "reused-assume-plain": human("direct", "human.iam_user", "docs-reader"),
        # One key that two STS calls issued names no one session: neither call takes the other
        # session's agent tag (merged, both were the agent's).
        "reused-agent-call": human("direct", OTHER_ROLE, None, "medium"),
        "reused-plain-call": human("direct", OTHER_ROLE, None, "medium"),
    },
    "cross_account_copies_without_shared_id": {
        "noshared-1-caller-copy": human("direct", "human.iam_user", "harness-runner"),
        "noshared-1-role-copy": UNKNOWN,
        # The two copies of one cross-account AssumeRole (eventVersion 1.02, before
        # sharedEventID) are one session, not a key two calls issued: its tag decides.
        "noshared-1-call": agent(
            "direct", "NoSharedIdAgentRole", "agent_session.direct", "harness-runner"
        ),
        "noshared-2-caller-copy": human("direct", "human.iam_user", "harness-runner"),
        "noshared-2-role-copy": UNKNOWN,
        # An export that kept sharedEventID on one copy only: still one call.
        "noshared-2-call": agent(
            "direct", "HalfSharedIdAgentRole", "agent_session.direct", "harness-runner"
        ),
    },
    "create_role_with_agent_tag": {
        "createrole-agent": human("direct", "human.iam_user", "carol"),
        "createrole-plain": human("direct", "human.iam_user", "carol"),
        "createrole-lambda-assume-agent": service("service.aws_service"),
        # An agent role is tested before the workload rule.
        "createrole-agent-call": agent("direct", "NightlyReportAgentRole", "agent_role.direct"),
        "createrole-lambda-assume-plain": service("service.aws_service"),
        "createrole-plain-call": workload("workload.service_issued"),
    },
    "sign_in_session_not_mcp": {
        "signin-console-call": human("console", "human.console", "olga@example.com"),
        "signin-aws-login": human("direct", "human.identity_center", "olga@example.com"),
        "signin-cli-call": human("direct", "human.identity_center", "olga@example.com"),
        "signin-other-resource": human("direct", "human.identity_center", "olga@example.com"),
        "signin-other-call": human("direct", "human.identity_center", "olga@example.com"),
    },
    "oauth_grant_links_later_events": {
        "grantlater-before": human("direct", "human.identity_center", "olga@example.com"),
        "grantlater-grant": agent(
            "mcp_managed", MCP, "mcp_managed.oauth_grant", "olga@example.com"
        ),
        "grantlater-after": agent(
            "mcp_managed", MCP, "mcp_managed.oauth_session", "olga@example.com"
        ),
        # The same sign-in session in the browser: a console request is not made with the MCP
        # token (facts doc s.4), it is the person's.
        "grantlater-console": human("console", "human.console", "olga@example.com"),
        # A role she assumes in the browser, in that sign-in session: hers, not the MCP
        # server's, and so are the calls of the session it opened.
        "grantlater-console-assume": human("console", "human.console", "olga@example.com"),
        "grantlater-console-hop-call": human(
            "direct", OTHER_ROLE, "olga@example.com", "medium"
        ),
    },
    "service_linked_role": {
        "slr-config": service("service.service_linked_role"),
        "slr-autoscaling": service("service.service_linked_role"),
    },
    "aws_service_event": {
        "svc-event-kms": service("service.service_event"),
        "svc-event-typed": service("service.aws_service"),
        "svc-event-no-identity": service("service.service_event"),
        "svc-cloudtrail-acl": service("service.aws_service"),
    },
    "ec2_instance_profile": {
        "ec2-assume": service("service.aws_service"),
        "ec2-call-joined": workload("workload.service_issued"),
        "ec2-call-from-laptop": workload("workload.service_issued"),
        "ec2-call-unjoined-delivery": workload("workload.ec2_role_delivery"),
        "ec2-call-unjoined-name": workload("workload.instance_session"),
    },
    "ec2_instance_chain": {
        "ichain-ec2-assume": service("service.aws_service"),
        "ichain-hop": workload("workload.service_issued"),
        "ichain-call": workload("workload.service_issued"),
        # The instance sessions were issued before the logs begin: their own calls show the
        # instance (ec2RoleDelivery, else the instance-id session name), and so does the
        # chain they open.
        "ichain-old-hop": workload("workload.ec2_role_delivery"),
        "ichain-old-call": workload("workload.service_issued"),
        "ichain-name-hop": workload("workload.instance_session"),
        "ichain-name-call": workload("workload.service_issued"),
        # The same role, in a session that is no instance's: nothing marks its chain.
        "ichain-plain-hop": human("direct", OTHER_ROLE, None, "medium"),
        "ichain-plain-call": human("direct", OTHER_ROLE, None, "medium"),
    },
    "lambda_role": {
        "lambda-assume-1": service("service.aws_service"),
        "lambda-call-1": workload("workload.service_issued"),
        "lambda-assume-2": service("service.aws_service"),
        "lambda-call-2": workload("workload.service_issued"),
        "lambda-call-unjoined": workload("workload.service_issued_by_name", "medium"),
    },
    "ci_web_identity": {
        "ci-assume": workload("workload.web_identity"),
        "ci-call": workload("workload.web_identity"),
        "ci-chain-assume": workload("workload.web_identity"),
        "ci-chain-call": workload("workload.web_identity"),
        "web-google-assume": human("direct", "human.federated"),
        "web-google-call": human("direct", OTHER_ROLE, None, "medium"),
    },
    "console_session": {
        "console-login": human("console", "human.console", "alice@example.com"),
        "console-call-flag": human("console", "human.console", "alice@example.com"),
        "console-call-service-ua": human("console", "human.console", "alice@example.com"),
        "console-call-ua-only": human("console", "human.console", "pat"),
        "console-root-login": human("console", "human.console", "root"),
        "console-login-failed": UNKNOWN,
    },
    "s3_bracketed_user_agents": {
        # S3 brackets the user agents it logs: read inside them, the S3 console is the console
        # also where the record shows no sessionCredentialFromConsole.
        "s3ua-boto3": human("direct", "human.iam_user", "ines"),
        "s3ua-go": human("direct", "human.iam_user", "ines"),
        "s3ua-terraform": human("direct", "human.iam_user", "ines"),
        "s3ua-cli": human("direct", "human.iam_user", "ines"),
        "s3ua-console": human("console", "human.console", "ines"),
        "s3ua-console-bare": human("console", "human.console", "ines"),
        "s3ua-other": human("direct", "human.iam_user", "ines"),
        "s3ua-unclosed": human("direct", "human.iam_user", "ines"),
    },
    "sso_cli": {
        "sso-cli-call": human("direct", "human.identity_center", "bob@example.com"),
        "sso-cli-denied": human("direct", "human.identity_center", "bob@example.com"),
        "sso-identity-center-user": human(
            "direct", "human.identity_center", "a1b2c3d4-0000-4000-8000-000000000777"
        ),
    },
    "iam_user_keys": {
        "iamuser-call": human("direct", "human.iam_user", "quinn"),
        "iamuser-get-session-token": human("direct", "human.iam_user", "quinn"),
        "iamuser-session-call": human("direct", "human.iam_user", "quinn"),
        "iamuser-root-call": human("direct", "human.iam_user", "root"),
        "iamuser-get-federation-token": human("direct", "human.iam_user", "svc-broker"),
        # GetFederationToken takes session tags too; the session is no role's. It is named
        # after its federated user, the agent; the IAM user that minted it is a broker, not
        # the person behind it.
        "iamuser-federated-call": agent("direct", "report-bot", "agent_session.direct"),
    },
    "unknown_identity": {
        "unknown-type": UNKNOWN,
        "unknown-aws-account": UNKNOWN,
        "unknown-no-identity": UNKNOWN,
    },
    "source_identity_pattern": {
        # A source identity that matches an agent (or MCP) pattern names the agent, not a
        # person: human_id is the person who started the chain (rita), or none.
        "srcid-assume-agent": human("direct", "human.iam_user", "rita"),
        "srcid-call-agent": agent("direct", "DeployBotRole", "agent_session.direct", "rita"),
        "srcid-chain-assume": agent("direct", "DeployBotRole", "agent_session.direct", "rita"),
        "srcid-chain-call": agent("direct", "DeployTargetRole", "agent_session.direct", "rita"),
        "srcid-assume-mcp": human("direct", "human.iam_user", "rita"),
        "srcid-call-mcp": agent("mcp_self_managed", "JiraMcpRole", "agent_session.mcp", "rita"),
        "srcid-call-unjoined": agent("direct", "DeployBotRole", "agent_session.direct"),
        "srcid-call-person": human("direct", OTHER_ROLE, "sam@example.com", "medium"),
    },
    "agent_role_pattern": {
        "rolepat-assume": human("direct", "human.iam_user", "uma"),
        "rolepat-call": agent("direct", "nightly-agent-runner", "agent_role.direct", "uma"),
        "rolepat-call-other-role": human("direct", OTHER_ROLE, None, "medium"),
    },
    "agent_role_pattern_untagged_create": {
        "rpuntag-create": human("direct", "human.iam_user", "rpadmin"),
        "rpuntag-assume": human("direct", "human.iam_user", "uma"),
        # The pattern decides; the CreateRole without the tag is no evidence of an agent role.
        "rpuntag-call": agent("direct", "cleanup-agent-runner", "agent_role.direct", "uma"),
    },
    "lambda_role_chain": {
        "lchain-assume-1": service("service.aws_service"),
        "lchain-assume-2": workload("workload.service_issued"),
        "lchain-call-2": workload("workload.service_issued"),
    },
    "identity_center_user_bare": {
        "idcbare-call": human("direct", "human.identity_center"),
    },
    "workload_patterns": {
        "workpat-role": workload("workload.configured"),
        "workpat-user": workload("workload.configured"),
        "workpat-user-human": human("direct", "human.iam_user", "victor"),
        # A person in the console on a workload role: the browser's request, the person's.
        "workpat-role-console": human("console", "human.console", "alice"),
    },
    "mcp_minted_session": {
        # The agent ran `aws sts assume-role` through the managed MCP server, then used the
        # credentials from its shell: the agent's bypass, not dan's role session.
        "mint-tool": agent("mcp_managed", MCP, "mcp_managed.tool_call", DAN, "aws___call_aws"),
        "mint-assume": agent(
            "mcp_managed", MCP, "mcp_managed.invoked_by", DAN, "aws___call_aws"
        ),
        "mint-shell-call": agent("direct", MCP, "agent_chain.direct", DAN),
        "mint-hop": agent("direct", MCP, "agent_chain.direct", DAN),
        "mint-hop-call": agent("direct", MCP, "agent_chain.direct", DAN),
        # dan assuming the same role himself is dan's.
        "mint-own-assume": human("direct", "human.identity_center", DAN),
        "mint-own-call": human("direct", OTHER_ROLE, DAN, "medium"),
    },
    "awslabs_minted_session": {
        # The agent's awslabs aws-api-mcp-server ran `aws sts assume-role` with dan's SSO
        # session; the credentials it obtained are the agent's whatever the role, as with the
        # managed server (mcp_minted_session), with the awslabs user agent's medium confidence.
        "awsmint-assume": agent(
            "mcp_self_managed", "aws-api-mcp-server", "awslabs_user_agent", DAN,
            confidence="medium",
        ),
        "awsmint-shell-call": agent(
            "direct", "aws-api-mcp-server", "agent_chain.direct", DAN, confidence="medium"
        ),
        "awsmint-mcp-call": agent(
            "mcp_self_managed", "aws-api-mcp-server", "agent_chain.mcp", DAN, confidence="medium"
        ),
        # dan assuming the same role from his own shell is dan's.
        "awsmint-own-assume": human("direct", "human.identity_center", DAN),
        "awsmint-own-call": human("direct", OTHER_ROLE, DAN, "medium"),
    },
    "awslabs_minted_below_tagged_agent": {
        # The tagged agent session's awslabs server assumed the next role: the session it
        # obtained is a mark, but the tagged session above is a stronger one, which the verdict
        # names, with its high confidence.
        "uachain-assume-3": human("direct", "human.iam_user", "uachaincarol"),
        "uachain-assume-4": agent(
            "mcp_self_managed", "aws-api-mcp-server", "agent_session.mcp", "uachaincarol"
        ),
        "uachain-call-4": agent(
            "direct", "UaChainHarnessRole", "agent_chain.direct", "uachaincarol"
        ),
    },
    "sign_in_session_cli_after_grant": {
        # olga's CLI calls share the browser sign-in session of her MCP grant (aws login's
        # credentials do): not made with the grant's token, which is for the MCP endpoint.
        # Only the managed server's own call (invokedBy) is the agent's.
        "f1-before": human("direct", "human.identity_center", "olga@example.com"),
        "f1-grant": agent("mcp_managed", MCP, "mcp_managed.oauth_grant", "olga@example.com"),
        "f1-mcp-down": agent("mcp_managed", MCP, "mcp_managed.invoked_by", "olga@example.com"),
        "f1-after-cli": human("direct", "human.identity_center", "olga@example.com"),
        "f1-cli-assume": human("direct", "human.identity_center", "olga@example.com"),
        # Nor is the session her CLI opened an MCP-minted one (no agent chain below it).
        "f1-hop-call": human("direct", OTHER_ROLE, "olga@example.com", "medium"),
    },
    "console_switch_role_agent_chain": {
        # alice, switched into an agent role in the console, assumes another role there: a
        # person's browser request (rule 11), and the session it opened carries no agent mark
        # from the agent role above it; its calls are alice's, whom the console session that
        # opened it is named after.
        "f2-create": human("direct", "human.iam_user", "opsadmin"),
        "f2-console-call": human("console", "human.console_agent_role", "alice"),
        "f2-console-assume": human("console", "human.console_agent_role", "alice"),
        "f2-child-call": human("direct", OTHER_ROLE, "alice", "medium"),
    },
    "agent_untags_own_role": {
        # erin's agent harness holds a session of OpsAgentRole (tagged Usage=Agent by its
        # CreateRole) and removes the tag with it. Credentials issued to an agent role stay the
        # agent's until they expire: the UntagRole itself, the session's later calls, the chain
        # it opens afterwards and a session of the role created while it was tagged (whose
        # issuing event is not in the logs: its creationDate says so) are the agent's. A
        # session issued after the untag is a person's.
        "untag-create": human("direct", "human.iam_user", "erin"),
        "untag-assume-1": human("direct", "human.iam_user", "erin"),
        "untag-call-tagged": agent("direct", "OpsAgentRole", "agent_role.direct", "erin"),
        "untag-own-tag": agent("direct", "OpsAgentRole", "agent_role.direct", "erin"),
        "untag-assume-chain": agent("direct", "OpsAgentRole", "agent_role.direct", "erin"),
        "untag-chain-call": agent("direct", "OpsAgentRole", "agent_chain.direct", "erin"),
        "untag-call-after": agent("direct", "OpsAgentRole", "agent_role.direct", "erin"),
        "untag-unjoined-after": agent("direct", "OpsAgentRole", "agent_role.direct"),
        "untag-saml-assume": human("direct", "human.federated", "uma@corp.example"),
        "untag-saml-mcp-call": agent("mcp_self_managed", "cloudwatch-mcp-server", "awslabs_user_agent",
                                     "uma@corp.example", confidence="medium"),
        "untag-assume-2": human("direct", "human.iam_user", "erin"),
        "untag-call-new-session": human("direct", OTHER_ROLE, "erin", "medium"),
    },
    "agent_role_deleted": {
        # frank's agent harness holds a session of DelAgentRole (tagged Usage=Agent by its
        # CreateRole) and deletes the role with it (naming it in another letter case). A session
        # issued to the name afterwards (the role re-created, its CreateRole not in the logs) is
        # not the deleted role's: nothing says the new role is an agent role. The old session
        # stays the agent's (created while the role was tagged). ReplacedAgentRole is deleted
        # and created again untagged within one second, as infrastructure as code replaces a
        # role: the CreateRole holds after that second, and its sessions are a person's.
        "del-create": human("direct", "human.iam_user", "frank"),
        "del-assume-1": human("direct", "human.iam_user", "frank"),
        "del-call-1": agent("direct", "DelAgentRole", "agent_role.direct", "frank"),
        "del-delete-own": agent("direct", "DelAgentRole", "agent_role.direct", "frank"),
        "del-assume-2": human("direct", "human.iam_user", "frank"),
        "del-call-2": human("direct", OTHER_ROLE, "frank", "medium"),
        "del-call-old-session": agent("direct", "DelAgentRole", "agent_role.direct", "frank"),
        "del-replace-create-1": human("direct", "human.iam_user", "frank"),
        "del-replace-delete": human("direct", "human.iam_user", "frank"),
        "del-replace-create-2": human("direct", "human.iam_user", "frank"),
        "del-replace-assume": human("direct", "human.iam_user", "frank"),
        "del-replace-call": human("direct", OTHER_ROLE, "frank", "medium"),
    },
    "agent_untags_role_unlogged_session": {
        # An agent session of RelayAgentRole (tagged Usage=Agent by its CreateRole) whose issuing
        # event is not in the logs (its creationDate, 08:30, says it was created while the role
        # was tagged) removes the tag, then hops into RelayHopRole and re-assumes its own role:
        # the sessions it opens are the agent's, as its own later calls are. Its own issuing
        # event would make it the chain's root and the verdicts the same.
        "relay-create": human("direct", "human.iam_user", "ivan"),
        "relay-own-untag": agent("direct", "RelayAgentRole", "agent_role.direct"),
        "relay-hop-assume": agent("direct", "RelayAgentRole", "agent_role.direct"),
        "relay-hop-call": agent("direct", "RelayAgentRole", "agent_chain.direct"),
        "relay-self-assume": agent("direct", "RelayAgentRole", "agent_role.direct"),
        "relay-self-call": agent("direct", "RelayAgentRole", "agent_chain.direct"),
        "relay-call-after": agent("direct", "RelayAgentRole", "agent_role.direct"),
    },
    "agent_untags_own_role_hidden": {
        # ivan's agent holds a session of HideAgentRole (tagged Usage=Agent by its CreateRole),
        # hops into HideScratchRole and removes its own role's tag from there: the agent's call
        # (agent_chain.direct), not made with a session of the role it untags. LegacyAgentRole,
        # which no snapshot or earlier call shows, loses the agent key to a session of its own:
        # not known to be an agent role, so a person's call on another role.
        "hide-create": human("direct", "human.iam_user", "ivan"),
        "hide-assume-agent": human("direct", "human.iam_user", "ivan"),
        "hide-assume-scratch": agent("direct", "HideAgentRole", "agent_role.direct", "ivan"),
        "hide-untag-chained": agent("direct", "HideAgentRole", "agent_chain.direct", "ivan"),
        "hide-untag-legacy": human("direct", OTHER_ROLE, None, "medium"),
    },
    "agent_role_session_without_creation_date": {
        # pat's agent session of CleanupAgentRole (tagged Usage=Agent by its CreateRole) removes
        # the tag; its later calls' records show no creationDate. The session's issuing event
        # (its key joins it) says when it was created, as it does for the chain below it: its
        # calls stay the agent's, as the session it opens does.
        "nocd-create": human("direct", "human.iam_user", "pat"),
        "nocd-assume": human("direct", "human.iam_user", "pat"),
        "nocd-saml-assume": human("direct", "human.federated", "vic@corp.example"),
        "nocd-untag": agent("direct", "CleanupAgentRole", "agent_role.direct", "pat"),
        "nocd-call": agent("direct", "CleanupAgentRole", "agent_role.direct", "pat"),
        "nocd-hop-assume": agent("direct", "CleanupAgentRole", "agent_role.direct", "pat"),
        "nocd-hop-call": agent("direct", "CleanupAgentRole", "agent_chain.direct", "pat"),
        "nocd-saml-mcp-call": agent("mcp_self_managed", "cloudwatch-mcp-server",
                                    "awslabs_user_agent", "vic@corp.example", confidence="medium"),
        # A creationDate after the call's own eventTime names no creation of its session: the
        # role, tagged only after the call, is no agent role for it.
        "nocd-later-create": human("direct", "human.iam_user", "pat"),
        "nocd-later-tag": human("direct", "human.iam_user", "pat"),
        "nocd-later-call": human("direct", OTHER_ROLE, None, "medium"),
    },
    "agent_role_without_session_context": {
        # Records of AssumedRole sessions without a sessionIssuer (no sessionContext, or one
        # without it): the rules read the role from the session the key joins, else from
        # userIdentity.arn. NoContextAgentRole is tagged Usage=Agent by its CreateRole.
        "noctx-create": human("direct", "human.iam_user", "nora"),
        "noctx-create-plain": human("direct", "human.iam_user", "nora"),
        "noctx-assume": human("direct", "human.iam_user", "nora"),
        "noctx-call-joined": agent("direct", "NoContextAgentRole", "agent_role.direct", "nora"),
        "noctx-call-unjoined": agent("direct", "NoContextAgentRole", "agent_role.direct"),
        "noctx-call-no-issuer": agent("direct", "NoContextAgentRole", "agent_role.direct"),
        # A person who switched into the agent role in the console.
        "noctx-console-call": human("console", "human.console_agent_role", "nora@example.com"),
        "noctx-call-invoked": agent("service", "NoContextAgentRole", "agent.service_invoked"),
        # The untagged role stays a person's.
        "noctx-control": human("direct", OTHER_ROLE, None, "medium"),
        "noctx-plain-assume": human("direct", "human.iam_user", "nora"),
        "noctx-control-joined": human("direct", OTHER_ROLE, "nora", "medium"),
        # The role and session name of a logged agent session (session tag Usage=Agent).
        "noctx-harness-early": agent(
            "direct", "NoContextHarnessRole", "agent_session.direct_by_name", confidence="medium"
        ),
        "noctx-harness-assume": human("direct", "human.iam_user", "nora"),
        "noctx-mcp-untagged": agent(
            "mcp_self_managed", "aws-api-mcp-server", "awslabs_user_agent", confidence="medium"
        ),
        "noctx-saml-assume": human("direct", "human.federated", "sam@corp.example"),
        "noctx-saml-mcp-call": agent(
            "mcp_managed", MCP, "mcp_managed.invoked_by", "sam@corp.example"
        ),
        "noctx-saml-plain-assume": human("direct", "human.federated", "sam@corp.example"),
        "noctx-saml-plain-mcp-call": agent(
            "mcp_managed", MCP, "mcp_managed.invoked_by", "sam@corp.example"
        ),
    },
    # The configured role patterns reach a role that only a record without a sessionIssuer
    # names (its userIdentity.arn).
    "role_pattern_without_session_context": {
        "rpnoctx-agent-call": agent("direct", "noctx-agent-runner", "agent_role.direct"),
        "rpnoctx-batch-call": workload("workload.configured"),
    },
    # A federated user's sessionIssuer is the IAM user that called GetFederationToken, no role:
    # its name, which matches a configured workload ROLE pattern (batch-%), is not the role of
    # the call. The federated user is the person (human.federated).
    "workload_role_pattern_federation_broker": {
        "fedpat-token": human("direct", "human.iam_user", "batch-fed-broker"),
        "fedpat-call": human("direct", "human.federated", "ursula"),
    },
    # Identity Center role sessions whose records show no sessionIssuer: the role is the one
    # userIdentity.arn names, an AWSReservedSSO_ role (its path, aws-reserved/sso.amazonaws.com,
    # which the ARN does not show, is IAM Identity Center's), and the session is named after
    # the person.
    "identity_center_role_without_session_issuer": {
        "ssonoi-call": human("direct", "human.identity_center", "ivy@example.com"),
        "ssonoi-attrs": human("direct", "human.identity_center", "ivy@example.com"),
        "ssonoi-invoked": human("service", "human.service_invoked", "ivy@example.com"),
        "ssonoi-mcp": agent("mcp_managed", MCP, "mcp_managed.invoked_by", "ivy@example.com"),
    },
    # Records without a sessionIssuer whose key joins a session of another role than their
    # userIdentity.arn names: the session the key joins decides (its issuing event names the
    # role the credentials were issued for), and the evidence says what the ARN names.
    "role_without_session_issuer_other_session_role": {
        "mm-create-agent": human("direct", "human.iam_user", "mona"),
        "mm-create-plain": human("direct", "human.iam_user", "mona"),
        "mm-assume-plain": human("direct", "human.iam_user", "mona"),
        "mm-assume-agent": human("direct", "human.iam_user", "mona"),
        "mm-call-arn-agent": human("direct", OTHER_ROLE, "mona", "medium"),
        "mm-mcp-arn-agent": agent("mcp_managed", MCP, "mcp_managed.invoked_by", "mona"),
        "mm-call-arn-plain": agent("direct", "MismatchAgentRole", "agent_role.direct", "mona"),
        "mm-mcp-no-arn": agent("mcp_managed", MCP, "mcp_managed.invoked_by", "mona"),
        "mm-saml-assume": human("direct", "human.federated", "nils@corp.example"),
        "mm-saml-mcp": agent("mcp_managed", MCP, "mcp_managed.invoked_by", "nils@corp.example"),
    },
    # Session ARNs naming the plain role, used with a key of a session of the agent role (which
    # decides) and with one that joins no session (the ARN decides); a sessionIssuer without its
    # ARN and an empty userIdentity.arn (its name decides).
    "role_session_arn_joined_and_unjoined": {
        "lc-create-agent": human("direct", "human.iam_user", "lena"),
        "lc-create-plain": human("direct", "human.iam_user", "lena"),
        "lc-assume-agent-1": human("direct", "human.iam_user", "lena"),
        "lc-assume-agent-2": human("direct", "human.iam_user", "lena"),
        "lc-s1-unjoined": human("direct", OTHER_ROLE, None, "medium"),
        "lc-s1-joined": agent("direct", "LastCallAgentRole", "agent_role.direct", "lena"),
        "lc-s2-joined": agent("direct", "LastCallAgentRole", "agent_role.direct", "lena"),
        "lc-s2-unjoined": human("direct", OTHER_ROLE, None, "medium"),
        "lc-issuer-without-arn": human("direct", OTHER_ROLE, None, "medium"),
    },
    # The agent untags its own role with a session whose records show no sessionIssuer: the
    # session was issued while the role was tagged, so its calls stay the agent's.
    "agent_untags_own_role_without_session_issuer": {
        "untagni-create": human("direct", "human.iam_user", "otto"),
        "untagni-assume": human("direct", "human.iam_user", "otto"),
        "untagni-untag": agent("direct", "HidingNoIssuerRole", "agent_role.direct", "otto"),
        "untagni-call-after": agent("direct", "HidingNoIssuerRole", "agent_role.direct", "otto"),
    },
    # A session of ChainRootAgentRole issued before the logs begin, whose records show no
    # sessionIssuer, hops into ChainHopPlainRole: the hop's calls are the agent's, as where the
    # records show it (chni-call-issuer).
    "agent_chain_root_caller_without_session_issuer": {
        "chni-create-agent": human("direct", "human.iam_user", "una"),
        "chni-create-hop": human("direct", "human.iam_user", "una"),
        "chni-hop": agent("direct", "ChainRootAgentRole", "agent_role.direct"),
        "chni-call": agent("direct", "ChainRootAgentRole", "agent_chain.direct"),
        "chni-hop-issuer": agent("direct", "ChainRootAgentRole", "agent_role.direct"),
        "chni-call-issuer": agent("direct", "ChainRootAgentRole", "agent_chain.direct"),
        "chni-untag": agent("direct", "ChainRootAgentRole", "agent_chain.direct"),
    },
    # A TagRole types the role's name in lower case; only a record without sessionIssuer names
    # the role, in its own spelling (userIdentity.arn): the tag is that role's, as where a
    # sessionIssuer names it (role_arn_other_case).
    "role_other_case_without_session_issuer": {
        "casenoi-tag": human("direct", "human.iam_user", "pia"),
        "casenoi-call": agent("direct", "CaseNoIssuerAgentRole", "agent_role.direct"),
    },
    # Console sign-ins and a console request whose records show an empty userIdentity.arn.
    "console_sign_in_empty_arn": {
        "emptyarn-signin-1": human("console", "human.console"),
        "emptyarn-signin-2": human("console", "human.console"),
        "emptyarn-console-call": human("console", "human.console"),
    },
    "managed_mcp_session_lifecycle": {
        # The managed server logs the MCP session's own JSON-RPC calls as AwsMcpEvent records
        # too (DestroySession, method session/destroy, seen): a protocol method names no tool.
        "mcplife-tool-1": agent(
            "mcp_managed", MCP, "mcp_managed.tool_call", "rosa", "aws___run_script"
        ),
        "mcplife-down-1": agent(
            "mcp_managed", MCP, "mcp_managed.invoked_by", "rosa", "aws___run_script"
        ),
        "mcplife-destroy-1": agent("mcp_managed", MCP, "mcp_managed.tool_call", "rosa"),
    },
    "console_sign_in_hidden_user_name": {
        # A console sign-in that failed for a user name the account does not have: AWS writes
        # HIDDEN_DUE_TO_SECURITY_REASONS in place of what was typed (IAM User Guide, sign-in
        # failure caused by an incorrect user name), which names no person; a failed sign-in
        # of an existing IAM user names that user.
        "hidden-user-signin-1": human("console", "human.console"),
        "hidden-user-signin-2": human("console", "human.console", "quinn"),
    },
    "role_arn_other_case": {
        # erin's harness assumes DeployAgentRole (tagged Usage=Agent) with its roleArn typed in
        # lower case, then a hop role from it: the session is of the role as the issued
        # session's ARN spells it, so the hop below it is the agent's chain.
        "lower-create": human("direct", "human.iam_user", "erin"),
        "lower-assume": human("direct", "human.iam_user", "erin"),
        "lower-call": agent("direct", "DeployAgentRole", "agent_role.direct", "erin"),
        "lower-hop-assume": agent("direct", "DeployAgentRole", "agent_role.direct", "erin"),
        "lower-hop-call": agent("direct", "DeployAgentRole", "agent_chain.direct", "erin"),
    },
    "root_user_mcp_grant": {
        # The root user's MCP grant and the calls of its sign-in session: the owner is "root",
        # as the grant's own verdict says, not the root ARN.
        "rootgrant-grant": agent("mcp_managed", MCP, "mcp_managed.oauth_grant", "root"),
        "rootgrant-call": agent("mcp_managed", MCP, "mcp_managed.oauth_session", "root"),
    },
    "workload_pattern_chain": {
        # A CI job's IAM user (workload user pattern) opens a chain: every hop is the workload's.
        "wlchain-assume-1": workload("workload.configured"),
        "wlchain-restore-call": workload("workload.configured"),
        "wlchain-assume-2": workload("workload.configured"),
        "wlchain-report-call": workload("workload.configured"),
        # A workload role's session, its own issuing event not in the logs, opens a chain.
        "wlchain-assume-3": workload("workload.configured"),
        "wlchain-export-call": workload("workload.configured"),
        # A person in a workload role: the role's calls are the workload's (the pattern names
        # it), and so are those of the sessions it opens.
        "wlchain-assume-4": human("direct", "human.iam_user", "vera"),
        "wlchain-batch-call": workload("workload.configured"),
        "wlchain-assume-5": workload("workload.configured"),
        "wlchain-audit-call": workload("workload.configured"),
        # A person's own chain into the same role as the CI job's stays the person's.
        "wlchain-wendy-assume": human("direct", "human.iam_user", "wendy"),
        "wlchain-wendy-call": human("direct", OTHER_ROLE, "wendy", "medium"),
        # The same user as a federation broker: the federated user it names is the one who
        # acts (GetFederationToken), not the broker's workload.
        "wlchain-fed-token": workload("workload.configured"),
        "wlchain-fed-call": human("direct", "human.federated", "vera"),
    },
    "chain_cycle": {
        # Two sessions, each the other's parent: the walk ends, each inherits the other's
        # transitive tag.
        "cycle-issue-a": agent("direct", "CycleRoleB", "agent_session.direct"),
        "cycle-issue-b": agent("direct", "CycleRoleA", "agent_session.direct"),
        "cycle-call-a": agent("direct", "CycleRoleA", "agent_session.direct"),
        "cycle-call-b": agent("direct", "CycleRoleB", "agent_session.direct"),
    },
    "chain_beyond_max_depth": {
        "deep-assume-1": human("direct", "human.iam_user", "deepdan"),
        # Made with sessions 1 to 11: their chains reach session 1 within 10 hops.
        **{
            f"deep-assume-{i}": agent(
                "direct", f"DeepHop{i - 1}Role", "agent_session.direct", "deepdan"
            )
            for i in range(2, 13)
        },
        # Session 12's walk stops at session 2 (depth 10) while session 1 is its parent: the
        # root is unknown, so is the person; the verdict read the chain, confidence drops.
        "deep-call-12": agent(
            "direct", "DeepHop12Role", "agent_session.direct", None, confidence="medium"
        ),
    },
    "agent_chain": {
        "achain-create": human("direct", "human.iam_user", "chainadmin"),
        "achain-assume-1": human("direct", "human.iam_user", "chaincarol"),
        "achain-assume-2": agent(
            "direct", "ChainReportAgentRole", "agent_role.direct", "chaincarol"
        ),
        # Role tags never pass on; the actor after the hop is still the agent.
        "achain-call-2": agent(
            "direct", "ChainReportAgentRole", "agent_chain.direct", "chaincarol"
        ),
        "achain-call-2-awslabs": agent(
            "mcp_self_managed", "dynamodb-mcp-server", "agent_chain.mcp", "chaincarol"
        ),
        "achain-assume-3": human("direct", "human.iam_user", "chaincarol"),
        "achain-assume-4": agent(
            "direct", "ChainHarnessRole", "agent_session.direct", "chaincarol"
        ),
        # A tag that is not transitive does not reach the next session; the chain does.
        "achain-call-4": agent("direct", "ChainHarnessRole", "agent_chain.direct", "chaincarol"),
        "achain-assume-5": human("direct", "human.iam_user", "chaincarol"),
        "achain-assume-6": agent(
            "mcp_self_managed", "ledger-mcp", "agent_session.mcp", "chaincarol"
        ),
        "achain-call-6": agent("mcp_self_managed", "ledger-mcp", "agent_chain.mcp", "chaincarol"),
        "achain-assume-7": human("direct", "human.iam_user", "chaincarol"),
        "achain-assume-8": human("direct", OTHER_ROLE, "chaincarol", "medium"),
        "achain-call-8": human("direct", OTHER_ROLE, "chaincarol", "medium"),
    },
    # A self-managed MCP server's session makes only its agent tag transitive: the role it
    # chains into inherits Usage=Agent, not MCPServer, and its calls are still the server's.
    # A person assumes a role from the console (the request's key is minted per request) and
    # uses the role's session from the CLI.
    "console_opened_chain": {
        "conopen-assume": human("console", "human.console", "pia@example.com"),
        "conopen-call": human("direct", OTHER_ROLE, "pia@example.com", "medium"),
    },
    "transitive_agent_tag_mcp_server": {
        "tmcp-assume": human("direct", "human.iam_user", "transmcphost"),
        "tmcp-hop": agent("mcp_self_managed", "ledger-mcp", "agent_session.mcp", "transmcphost"),
        "tmcp-call": agent("mcp_self_managed", "ledger-mcp", "agent_session.mcp", "transmcphost"),
    },
    # The role-and-name fallback where only some of the agent sessions carry an MCP server tag:
    # the direct path, with an example session that has none.
    "unjoined_by_name_mixed_mcp_tag": {
        "mixed-assume-1": human("direct", "human.iam_user", "mixedops"),
        "mixed-assume-2": human("direct", "human.iam_user", "mixedops"),
        "mixed-call-old": agent(
            "direct", "MixedNameAgentRole", "agent_session.direct_by_name", confidence="medium"
        ),
    },
    # An agent (source identity agent:ops-bot, a configured pattern) signs in to the managed
    # MCP server: neither its grant nor the calls made with it name a person.
    "mcp_grant_by_agent_source_identity": {
        "agrant-grant": agent("mcp_managed", MCP, "mcp_managed.oauth_grant"),
        "agrant-call": agent("mcp_managed", MCP, "mcp_managed.oauth_session"),
    },
    # A chain of 12 sessions: an agent role's session, then a role matching the workload
    # pattern batch-%, then ten hops. The call's walk stops at depth 10, on the batch role's
    # session: the workload verdict reads a cut chain (an agent above it would decide first).
    "workload_pattern_chain_beyond_max_depth": {
        "dbatch-assume-0": human("direct", "human.iam_user", "deepbatch"),
        "dbatch-assume-1": agent(
            "direct", "DeepBatchAgentRole", "agent_session.direct", "deepbatch"
        ),
        **{
            f"dbatch-assume-{i}": agent(
                "direct", "DeepBatchAgentRole", "agent_chain.direct", "deepbatch"
            )
            for i in range(2, 12)
        },
        "dbatch-call": workload("workload.configured", "medium"),
    },
    "unjoined_agent_session_by_name": {
        # Keys that join no issuing event (issued before the logs begin, or empty): every
        # logged session of the role and session name carries the agent mark.
        "ubn-call-early": agent(
            "mcp_self_managed", "billing-mcp", "agent_session.mcp_by_name", confidence="medium"
        ),
        "ubn-assume-1": human("direct", "human.iam_user", "mcphost"),
        "ubn-call-1": agent("mcp_self_managed", "billing-mcp", "agent_session.mcp", "mcphost"),
        "ubn-assume-2": human("direct", "human.iam_user", "mcphost"),
        "ubn-call-emptykey": agent(
            "mcp_self_managed", "billing-mcp", "agent_session.mcp_by_name", confidence="medium"
        ),
        "ubn-assume-3": human("direct", "human.iam_user", "mcphost"),
        "ubn-call-harness-early": agent(
            "direct", "ByNameHarnessRole", "agent_session.direct_by_name", confidence="medium"
        ),
        "ubn-assume-4": human("direct", "human.iam_user", "mcphost"),
        "ubn-assume-5": human("direct", "human.iam_user", "mcphost"),
        # The sessions of ByNameMixedRole named report disagree: nothing decides.
        "ubn-call-mixed-early": human("direct", OTHER_ROLE, None, "medium"),
    },
    "agent_role_console": {
        "conagent-create": human("direct", "human.iam_user", "opsadmin"),
        # A person who switched into the agent role in the console: not the agent's bypass.
        "conagent-console-call": human("console", "human.console_agent_role", "alice-ops"),
        "conagent-console-ua": human("console", "human.console_agent_role", "alice-ops"),
        "conagent-assume": human("direct", "human.iam_user", "opsrunner"),
        "conagent-cli-call": agent(
            "direct", "ConsoleOpsAgentRole", "agent_role.direct", "opsrunner"
        ),
    },
    "console_session_per_request_keys": {
        "conroot-call-1": human("console", "human.console", "olga@example.com"),
        "conroot-call-2": human("console", "human.console", "olga@example.com"),
        "conroot-call-3": human("console", "human.console", "olga@example.com"),
    },
    "snapshot_agent_role": {
        "snap-assume-agent": human("direct", "human.iam_user", "otto"),
        # Tagged Usage=Agent only in the IAM snapshot (imported below): the MCP bypass.
        "snap-call-agent": agent("direct", "SnapAgentRole", "agent_role.direct", "otto"),
        "snap-assume-human": human("direct", "human.iam_user", "otto"),
        "snap-call-human": human("direct", OTHER_ROLE, "otto", "medium"),
    },
    "root_caller_agent_role": {
        # HopAgentRole's session was issued before the logs begin; the snapshot (its role's
        # first observation) says it is an agent role.
        "rcall-describe": agent("direct", "HopAgentRole", "agent_role.direct"),
        "rcall-hop": agent("direct", "HopAgentRole", "agent_role.direct"),
        # The root of the chain is HopDeployRole's session; the caller that opened it, an
        # agent role when it did, is the agent: not human.other_role.
        "rcall-delete": agent("direct", "HopAgentRole", "agent_chain.direct"),
        "rcall-hop-2": agent("direct", "HopAgentRole", "agent_chain.direct"),
        "rcall-audit": agent("direct", "HopAgentRole", "agent_chain.direct"),
        # HopLateAgentRole is tagged only at 12:00 (TagRole): before, nothing says it is an
        # agent role (a tag event applies from its time), and neither is the chain it opened.
        "rcall-late-call": human("direct", OTHER_ROLE, None, "medium"),
        "rcall-late-hop": human("direct", OTHER_ROLE, None, "medium"),
        "rcall-late-hop-call": human("direct", OTHER_ROLE, None, "medium"),
        "rcall-tag-late": human("direct", "human.iam_user", "hopadmin"),
        "rcall-late-hop-2": agent("direct", "HopLateAgentRole", "agent_role.direct"),
        "rcall-late-hop-2-call": agent("direct", "HopLateAgentRole", "agent_chain.direct"),
        # A GitHub Actions web-identity session issued before the logs begin: its
        # webIdFederationData reaches the session it opens.
        "rcall-ci-put": workload("workload.web_identity"),
        "rcall-ci-hop": workload("workload.web_identity"),
        "rcall-ci-update": workload("workload.web_identity"),
        # The same hop with the agent session's issuing event in the logs: the same verdict,
        # and the person who started it.
        "rcall-logged-assume": human("direct", "human.iam_user", "hopcarol"),
        "rcall-logged-hop": agent("direct", "HopAgentRole", "agent_role.direct", "hopcarol"),
        "rcall-logged-delete": agent("direct", "HopAgentRole", "agent_chain.direct", "hopcarol"),
    },
    "untagged_mcp_before_tag_role": {
        "mcpbt-call-before": agent("mcp_managed", MCP, "mcp_managed.invoked_by"),
        "mcpbt-tag": human("direct", "human.iam_user", "hopadmin"),
        "mcpbt-call-after": agent("mcp_managed", MCP, "mcp_managed.invoked_by"),
        "mcpbt-call-untagged": agent("mcp_managed", MCP, "mcp_managed.invoked_by"),
    },
    "service_invoked_calls": {
        "svcinv-agent-create-stack": agent("mcp_managed", MCP, "mcp_managed.invoked_by"),
        # CloudFormation made it with the agent's credentials (invokedBy): the agent's call on
        # the service path, not the MCP bypass.
        "svcinv-agent-run-instances": agent("service", "SvcAgentRole", "agent.service_invoked"),
        "svcinv-agent-cli": agent("direct", "SvcAgentRole", "agent_role.direct"),
        # invokedBy "AWS Internal": a service made the call inside AWS with the agent's
        # credentials (S3 decrypting an SSE-KMS object): the agent's, on the service path,
        # not its bypass; no console request without the console's flag.
        "svcinv-agent-internal-decrypt": agent(
            "service", "SvcAgentRole", "agent.service_invoked"
        ),
        "svcinv-harness-assume": human("direct", "human.iam_user", "svcdev"),
        "svcinv-harness-create-stack": agent(
            "direct", "SvcHarnessRole", "agent_session.direct", "svcdev"
        ),
        "svcinv-harness-create-bucket": agent(
            "service", "SvcHarnessRole", "agent.service_invoked", "svcdev"
        ),
        "svcinv-lambda-assume": service("service.aws_service"),
        "svcinv-lambda-query": workload("workload.service_issued"),
        "svcinv-athena-get-object": workload("workload.service_invoked", path="service"),
        "svcinv-sso-create-stack": human("direct", "human.identity_center", "sue@example.com"),
        "svcinv-sso-run-instances": human("service", "human.service_invoked", "sue@example.com"),
        # Only the absence of marks says the role is a person's: medium, as human.other_role.
        "svcinv-ops-run-instances": human("service", "human.service_invoked", None, "medium"),
        "svcinv-user-create-bucket": human("service", "human.service_invoked", "svcdev"),
        # Console requests keep the console rule: "AWS Internal" names no service principal,
        # and a console request is the browser's.
        "svcinv-console-internal": human("console", "human.console", "sue@example.com"),
        "svcinv-console-cfn": human("console", "human.console", "sue@example.com"),
    },
    "saml_sessions": {
        # The SAML user is the person behind its calls and behind chains that start there.
        "samlx-okta-assume": human("direct", "human.federated", "olive@corp.example"),
        "samlx-okta-call": human("direct", "human.federated", "olive@corp.example"),
        "samlx-okta-mcp": agent("mcp_managed", MCP, "mcp_managed.invoked_by", "olive@corp.example"),
        "samlx-okta-awslabs": agent(
            "mcp_self_managed",
            "aws-api-mcp-server",
            "awslabs_user_agent",
            "olive@corp.example",
            confidence="medium",
        ),
        "samlx-sso-assume": human("direct", "human.federated", "dave@example.com"),
        "samlx-sso-hop": human("direct", "human.identity_center", "dave@example.com"),
        "samlx-sso-terminate": human("direct", OTHER_ROLE, "dave@example.com", "medium"),
    },
    "cross_account_copies": {
        "xacct-assume-caller-copy": human("direct", "human.iam_user", "xacctuser"),
        # The role account's copy names the caller's account only.
        "xacct-assume-role-copy": UNKNOWN,
        # One session: its caller is the copy that shows it, whichever copy came first.
        "xacct-call": human("direct", OTHER_ROLE, "xacctuser", "medium"),
    },
    "federation_token_sessions": {
        "fedx-token-agent": human("direct", "human.iam_user", "fedbroker"),
        # The session is named after its federated user, the agent; fedbroker only minted it.
        "fedx-call-agent": agent("direct", "claude", "agent_session.direct"),
        "fedx-token-person": human("direct", "human.iam_user", "fedbroker"),
        "fedx-call-person": human("direct", "human.federated", "wendy"),
    },
}

# The pattern cases under the default settings: nothing configured, nothing matches.
EXPECTED_WITHOUT_PATTERNS: dict[str, Verdict] = {
    "srcid-assume-agent": human("direct", "human.iam_user", "rita"),
    "srcid-call-agent": human("direct", OTHER_ROLE, "agent:deploy-bot", "medium"),
    "srcid-chain-assume": human("direct", OTHER_ROLE, "agent:deploy-bot", "medium"),
    "srcid-chain-call": human("direct", OTHER_ROLE, "agent:deploy-bot", "medium"),
    "srcid-assume-mcp": human("direct", "human.iam_user", "rita"),
    "srcid-call-mcp": human("direct", OTHER_ROLE, "mcp:jira-mcp", "medium"),
    "srcid-call-unjoined": human("direct", OTHER_ROLE, "agent:cron", "medium"),
    "srcid-call-person": human("direct", OTHER_ROLE, "sam@example.com", "medium"),
    "rolepat-assume": human("direct", "human.iam_user", "uma"),
    "rolepat-call": human("direct", OTHER_ROLE, "uma", "medium"),
    "rolepat-call-other-role": human("direct", OTHER_ROLE, None, "medium"),
    "rpuntag-create": human("direct", "human.iam_user", "rpadmin"),
    "rpuntag-assume": human("direct", "human.iam_user", "uma"),
    "rpuntag-call": human("direct", OTHER_ROLE, "uma", "medium"),
    "workpat-role": human("direct", OTHER_ROLE, None, "medium"),
    "workpat-user": human("direct", "human.iam_user", "svc-backup"),
    "workpat-user-human": human("direct", "human.iam_user", "victor"),
    "workpat-role-console": human("console", "human.console", "alice"),
    "wlchain-assume-1": human("direct", "human.iam_user", "svc-backup"),
    "wlchain-restore-call": human("direct", OTHER_ROLE, "svc-backup", "medium"),
    "wlchain-assume-2": human("direct", OTHER_ROLE, "svc-backup", "medium"),
    "wlchain-report-call": human("direct", OTHER_ROLE, "svc-backup", "medium"),
    "wlchain-assume-3": human("direct", OTHER_ROLE, None, "medium"),
    "wlchain-export-call": human("direct", OTHER_ROLE, None, "medium"),
    "wlchain-assume-4": human("direct", "human.iam_user", "vera"),
    "wlchain-batch-call": human("direct", OTHER_ROLE, "vera", "medium"),
    "wlchain-assume-5": human("direct", OTHER_ROLE, "vera", "medium"),
    "wlchain-audit-call": human("direct", OTHER_ROLE, "vera", "medium"),
    "wlchain-wendy-assume": human("direct", "human.iam_user", "wendy"),
    "wlchain-wendy-call": human("direct", OTHER_ROLE, "wendy", "medium"),
    "wlchain-fed-token": human("direct", "human.iam_user", "svc-backup"),
    "wlchain-fed-call": human("direct", "human.federated", "vera"),
    # Without the pattern the source identity is a person's name, as any other.
    "agrant-grant": agent("mcp_managed", MCP, "mcp_managed.oauth_grant", "agent:ops-bot"),
    "agrant-call": agent("mcp_managed", MCP, "mcp_managed.oauth_session", "agent:ops-bot"),
    "dbatch-assume-0": human("direct", "human.iam_user", "deepbatch"),
    "dbatch-assume-1": agent("direct", "DeepBatchAgentRole", "agent_session.direct", "deepbatch"),
    **{
        f"dbatch-assume-{i}": agent(
            "direct", "DeepBatchAgentRole", "agent_chain.direct", "deepbatch"
        )
        for i in range(2, 12)
    },
    "dbatch-call": human("direct", OTHER_ROLE, None, "medium"),
    "rpnoctx-agent-call": human("direct", OTHER_ROLE, None, "medium"),
    "rpnoctx-batch-call": human("direct", OTHER_ROLE, None, "medium"),
    "fedpat-token": human("direct", "human.iam_user", "batch-fed-broker"),
    "fedpat-call": human("direct", "human.federated", "ursula"),
}


def case_files() -> list[Path]:
    return sorted(p for p in CASES.glob("*.json") if not p.name.endswith(".iam.json"))


def event_ids(case: str) -> list[str]:
    records = json.loads((CASES / f"{case}.json").read_text())["Records"]
    return [r["eventID"] for r in records]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rules") / "warehouse"
    settings = ingest(case_files(), root, **PATTERNS)
    import_iam([SNAPSHOT_FILE, LATE_SNAPSHOT_FILE], settings, SNAPSHOT_TAKEN_AT)
    return root


@pytest.fixture(scope="module")
def classified(warehouse: Path) -> dict[str, dict[str, Any]]:
    return verdicts(warehouse)


@pytest.fixture(scope="module")
def sessions(warehouse: Path) -> dict[str, dict[str, Any]]:
    return {r["issued_key"]: r for r in rows(warehouse, "SELECT * FROM sessions")}


def test_every_case_file_is_pinned() -> None:
    assert sorted(EXPECTED) == sorted(p.stem for p in case_files())
    for case, expected in EXPECTED.items():
        assert sorted(expected) == sorted(event_ids(case)), case


def test_every_event_is_classified_once(classified: dict[str, dict[str, Any]]) -> None:
    every = [e for case in EXPECTED for e in event_ids(case)]
    assert len(every) == len(set(every)) == len(classified)
    assert set(classified) == set(every)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_case(case: str, classified: dict[str, dict[str, Any]]) -> None:
    got = {e: tuple(classified[e][c] for c in VERDICT) for e in EXPECTED[case]}
    assert got == EXPECTED[case]


def test_pattern_cases_under_default_settings(tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    ingest([CASES / f"{c}.json" for c in PATTERN_CASES], root)
    found = verdicts(root)
    got = {e: tuple(found[e][c] for c in VERDICT) for e in EXPECTED_WITHOUT_PATTERNS}
    assert got == EXPECTED_WITHOUT_PATTERNS
    assert {r["rules_version"] for r in found.values()} == {AttributionSettings().rules_version()}


def test_rules_version(classified: dict[str, dict[str, Any]]) -> None:
    version = AttributionSettings(**PATTERNS).rules_version()
    assert version != AttributionSettings().rules_version()
    assert {r["rules_version"] for r in classified.values()} == {version}


@pytest.mark.parametrize("first_has_its_tool_name", [True, False])
def test_a_request_id_two_tool_calls_list_links_to_one_whatever_the_order(
    tmp_path: Path, first_has_its_tool_name: bool
) -> None:
    """Two tool calls list the same downstream requestID: the call links to the earlier one,
    whole (its id and its tool name, none where its requestParameters were dropped), whichever
    file comes first."""
    records = json.loads((CASES / "managed_mcp_documented_shape.json").read_text())["Records"]
    by_id = {r["eventID"]: r for r in records}
    first, down = by_id["mcpdoc-tool-1"], by_id["mcpdoc-down-1"]
    if not first_has_its_tool_name:
        first = {**first, "requestParameters": None}  # dropped above 100 KB (facts doc s.2)
    second = json.loads(json.dumps(by_id["mcpdoc-tool-1"]))
    second.update(eventID="mcpdoc-tool-later", requestID="req-mcpdoc-tool-later",
                  eventTime="2026-07-21T15:23:30Z")  # fmt: skip
    second["requestParameters"]["params"]["name"] = "aws___run_script"
    found = []
    for files in ([[first, down], [second]], [[second, down], [first]]):
        folder = tmp_path / f"order-{len(found)}"
        folder.mkdir()
        for i, part in enumerate(files):
            (folder / f"{i}.json").write_text(json.dumps({"Records": part}))
        warehouse = tmp_path / f"warehouse-{len(found)}"
        ingest([folder], warehouse)
        row = verdicts(warehouse)["mcpdoc-down-1"]
        found.append((row["mcp_tool"], row["evidence"]))
    tool = "aws___call_aws" if first_has_its_tool_name else None
    evidence = "requestID=mcpdoc-downstream-1 is a downstream request of MCP tool call mcpdoc-tool-1"
    assert found == [(tool, evidence), (tool, evidence)]


def test_arrival_order_does_not_matter(
    tmp_path: Path, classified: dict[str, dict[str, Any]]
) -> None:
    """Calls first, the STS events that issued their keys in a later ingest: same answers."""
    records = json.loads((CASES / "transitive_tags_second_account.json").read_text())["Records"]
    calls = [r for r in records if r["eventSource"] != "sts.amazonaws.com"]
    issuing = [r for r in records if r["eventSource"] == "sts.amazonaws.com"]
    first, second = tmp_path / "calls.json", tmp_path / "issuing.json"
    first.write_text(json.dumps({"Records": calls}))
    second.write_text(json.dumps({"Records": list(reversed(issuing))}))
    root = tmp_path / "warehouse"
    ingest([first], root)
    early = verdicts(root)
    assert {early[r["eventID"]]["classified_by"] for r in calls} == {OTHER_ROLE}
    ingest([second], root)
    late = verdicts(root)
    columns = (*VERDICT, "evidence", "session_joined", "session_root")
    for r in records:
        e = r["eventID"]
        assert tuple(late[e][c] for c in columns) == tuple(classified[e][c] for c in columns), e


# ------------------------------------------------------------------------------- details
def test_clients(classified: dict[str, dict[str, Any]]) -> None:
    expected = {
        "mcpobs-tool-1": "mcp",
        "mcpobs-down-1": "mcp",
        "mcpdoc-down-1": "sdk",
        "awslabs-legacy-boto3": "mcp",
        "awslabs-modern-cli": "mcp",
        "uatag-call-awslabs-legacy-cli": "mcp",
        "uatag-call-cli": "cli",
        "console-call-flag": "console",
        "console-call-ua-only": "console",
        "conagent-console-call": "console",
        "conagent-cli-call": "cli",
        "createrole-agent": "iac",
        "sso-cli-call": "cli",
        "ec2-call-from-laptop": "cli",
        "iamuser-call": "sdk",
        "svc-event-kms": "service",
        "svc-event-no-identity": "service",
        "sso-identity-center-user": "unknown",
        # S3 brackets the user agent; a bracket never closed is read the same way.
        "s3ua-boto3": "sdk",
        "s3ua-go": "sdk",
        "s3ua-terraform": "iac",
        "s3ua-cli": "cli",
        "s3ua-console": "console",
        "s3ua-console-bare": "console",
        "s3ua-other": "unknown",
        "s3ua-unclosed": "sdk",
    }
    assert {e: classified[e]["client"] for e in expected} == expected


def test_session_join_and_root(classified: dict[str, dict[str, Any]]) -> None:
    expected = {
        # The chain's first session: the root an IAM user opened (its access key is no
        # session), and the session (its issuing event not in the logs) that opened the second
        # chain's root.
        "trans-call-2": (True, "ASIATRANS000000000001"),
        "trans-call-5": (True, "ASIATRANS000000000003"),
        "tmcp-call": (True, "ASIATRANSMCPSRV00001"),
        # One broker's key minted both federated sessions: each person's is its own root.
        "fedx-call-agent": (True, "ASIAFEDTOKENS0000001"),
        "fedx-call-person": (True, "ASIAFEDTOKENS0000002"),
        # The agent session whose issuing event is not in the logs is the chain's first: its
        # own calls and those two hops below it have one session_root.
        "rcall-describe": (False, "ASIAROOTCALLERAGENT1"),
        "rcall-delete": (True, "ASIAROOTCALLERAGENT1"),
        "rcall-audit": (True, "ASIAROOTCALLERAGENT1"),
        # Opened by a console request, whose key no other call carries: the session itself.
        "conopen-call": (True, "ASIACONSOLECHILD0001"),
        # Its issuing event in the logs (made by IAM user carol): that session is the root.
        "rcall-logged-delete": (True, "ASIAROOTCALLERAGENT2"),
        # A cut chain: the furthest session reached, never past it.
        "dbatch-call": (True, "ASIADEEPBATCH0000001"),
        "trans-assume-4-role-copy": (False, "ASIATRANS000000000003"),
        "cycle-call-a": (True, "ASIACHAINCYCLE000002"),
        "cycle-call-b": (True, "ASIACHAINCYCLE000001"),
        "ci-chain-call": (True, "ASIACIWEBIDENTITY001"),
        "deep-call-12": (True, "ASIADEEPCHAIN0000002"),
        "lambda-call-unjoined": (False, "ASIALAMBDAOLDKEY0001"),
        "emptykey-call": (False, None),
        "ubn-call-early": (False, "ASIAUNJOINEDOLDKEY01"),
        # Console requests: a key each; the console session is the principal and creationDate.
        # The sign-in that opened it shows both, without a key: the same session.
        "console-login": (False, f"console:{ALICE_CONSOLE}@2026-06-23T09:00:00Z"),
        "console-call-flag": (False, f"console:{ALICE_CONSOLE}@2026-06-23T09:00:00Z"),
        "console-call-service-ua": (False, f"console:{ALICE_CONSOLE}@2026-06-23T09:00:00Z"),
        "conroot-call-1": (False, f"console:{OLGA_CONSOLE}@2026-07-01T09:00:00Z"),
        "conroot-call-2": (False, f"console:{OLGA_CONSOLE}@2026-07-01T09:00:00Z"),
        "conroot-call-3": (False, f"console:{OLGA_CONSOLE}@2026-07-01T13:00:00Z"),
        # A console user agent without a creationDate (an IAM user): the key, as before.
        "console-call-ua-only": (False, "ASIACONSOLEPAT000001"),
        "conagent-console-call": (
            False,
            f"console:arn:aws:sts::{A1}:assumed-role/ConsoleOpsAgentRole/alice-ops"
            "@2026-06-30T09:58:00Z",
        ),
        # An IAM user's sign-in shows no creationDate: no session to name.
        "emptykey-console-login": (False, None),
        # A console sign-in or request whose record shows an empty userIdentity.arn: no
        # principal names the console session (two people signing in at one time would share
        # one), so the sign-in has none and the request its own key.
        "emptyarn-signin-1": (False, None),
        "emptyarn-signin-2": (False, None),
        "emptyarn-console-call": (False, "ASIAEMPTYARNCONSOLE1"),
        "iamuser-call": (False, "AKIAIAMUSERQUINN0001"),
    }
    got = {e: (classified[e]["session_joined"], classified[e]["session_root"]) for e in expected}
    assert got == expected
    assert classified["emptykey-call"]["access_key_id"] is None


def test_evidence(classified: dict[str, dict[str, Any]]) -> None:
    sign_in = f"arn:aws:signin:us-east-1:{A1}:session/6f1c1a52-0c8e-4c52-9d0e-5a1d2a3b4c01"
    expected = {
        # The chain's MCP server tag above the session is its MCP mark, and the evidence says
        # where it is.
        "tmcp-call": (
            "session ASIATRANSMCPHOP00001 tags {Usage=Agent}; MCPServer=ledger-mcp on session "
            "ASIATRANSMCPSRV00001 above it in the chain; chain root ASIATRANSMCPSRV00001"
        ),
        # The example supports the direct verdict: a session without an MCP server tag.
        "mixed-call-old": (
            "key ASIAMIXEDNAMEOLD0001 joins no issuing event; the 2 session(s) of "
            "MixedNameAgentRole named nightly-mixed in the logs all carry the agent mark (e.g. "
            "session ASIAMIXEDNAME0000001 tags {Usage=Agent}); 1 of the 2 carries an MCP server "
            "tag, not all; the call has no MCP mark"
        ),
        "dbatch-call": (
            "session ASIADEEPBATCH0000011 of DeepBatchHop10Role traces back to session "
            "ASIADEEPBATCH0000001 of role batch-deep-etl, which matches configured workload role "
            "pattern batch-%; chain truncated at depth 10"
        ),
        "mcpobs-session-call": (
            f"signInSessionArn={sign_in} granted by mcpobs-grant for {MCP_RESOURCE}"
        ),
        "mcpdoc-down-1": (
            "requestID=mcpdoc-downstream-1 is a downstream request of MCP tool call mcpdoc-tool-1"
        ),
        "mcpdoc-down-other-server": "userIdentity.invokedBy=cloudwatch-mcp.amazonaws.com",
        # The role was an agent role when the session was created, no longer at the call.
        "untag-call-after": (
            "role OpsAgentRole is an agent role (was when session ASIAUNTAGAGENT000001 was created "
            "at 2026-09-01T09:00:00Z: CreateRole untag-create; no longer at the call, since "
            "UntagRole untag-own-tag); no MCP mark on the call"
        ),
        "untag-unjoined-after": (
            "role OpsAgentRole is an agent role (was when session ASIAUNTAGUNJOINED001 was created "
            "at 2026-09-01T08:30:00Z: CreateRole untag-create; no longer at the call, since "
            "UntagRole untag-own-tag); no MCP mark on the call"
        ),
        "untag-chain-call": (
            "session ASIAUNTAGCHAIN000001 of ScratchRole is chained from session "
            "ASIAUNTAGAGENT000001 of OpsAgentRole (an agent role: CreateRole untag-create when the "
            "session was created at 2026-09-01T09:00:00Z, not when it acted (since UntagRole "
            "untag-own-tag)); no MCP mark"
        ),
        # The chain's root was opened by the agent's session, whose own issuing event is not in
        # the logs: its creationDate, on the root's issuing call, says when it was created.
        "relay-hop-call": (
            "session ASIARELAYHOP0000001 of RelayHopRole is chained from session "
            "ASIARELAYAGENT00001 of RelayAgentRole (an agent role: CreateRole relay-create when "
            "the session was created at 2026-09-05T08:30:00Z, not when it acted (since UntagRole "
            "relay-own-untag); its own issuing event is not in the logs); no MCP mark"
        ),
        # The call shows no creationDate: the issuing event of the session its key joins says
        # when the session was created.
        "nocd-call": (
            "role CleanupAgentRole is an agent role (was when session ASIANOCREATEAGENT01 was "
            "issued at 2026-10-01T10:30:00Z (the call shows no creationDate): CreateRole "
            "nocd-create; no longer at the call, since UntagRole nocd-untag); no MCP mark on the "
            "call"
        ),
        # A record without a sessionIssuer: the evidence says where the role was read.
        "noctx-call-joined": (
            "role NoContextAgentRole (from session ASIANOCTXAGENT000001, which its key joins; "
            "the record has no sessionIssuer) is an agent role (CreateRole noctx-create); "
            "no MCP mark on the call"
        ),
        "noctx-call-unjoined": (
            "role NoContextAgentRole (from userIdentity.arn; the record has no sessionIssuer) is "
            "an agent role (CreateRole noctx-create); no MCP mark on the call"
        ),
        "noctx-console-call": (
            "role NoContextAgentRole (from userIdentity.arn; the record has no sessionIssuer) is "
            "an agent role (CreateRole noctx-create) used from the console: "
            "sessionCredentialFromConsole=true"
        ),
        "noctx-call-invoked": (
            "userIdentity.invokedBy=cloudformation.amazonaws.com: a service made the call with "
            "the caller's credentials; the caller by agent_role.direct: role NoContextAgentRole "
            "(from userIdentity.arn; the record has no sessionIssuer) is an agent role "
            "(CreateRole noctx-create)"
        ),
        "noctx-control": (
            "role NoContextPlainRole (from userIdentity.arn; the record has no sessionIssuer) "
            "with no agent, MCP, service or workload mark"
        ),
        "noctx-control-joined": (
            "role NoContextPlainRole (from session ASIANOCTXPLAIN000002, which its key joins; "
            "the record has no sessionIssuer) with no agent, MCP, service or workload mark"
        ),
        "noctx-harness-early": (
            "key ASIANOCTXHARNESSOLD1 joins no issuing event; the 1 session(s) of "
            "NoContextHarnessRole (from userIdentity.arn; the record has no sessionIssuer) named "
            "harness in the logs all carry the agent mark (e.g. session ASIANOCTXHARNESS0001 "
            "tags {Usage=Agent}); no MCP mark"
        ),
        "ssonoi-call": (
            "Identity Center role AWSReservedSSO_ReadOnlyAccess_1a2b3c4d5e6f7a8b (from "
            "userIdentity.arn; the record has no sessionIssuer)"
        ),
        "ssonoi-invoked": (
            "userIdentity.invokedBy=cloudformation.amazonaws.com: a service made the call with "
            "the caller's credentials; the caller by human.identity_center: Identity Center role "
            "AWSReservedSSO_ReadOnlyAccess_1a2b3c4d5e6f7a8b (from userIdentity.arn; the record "
            "has no sessionIssuer)"
        ),
        "mm-call-arn-agent": (
            "role MismatchPlainRole (from session ASIAMISMATCHPLAIN001, which its key joins; the "
            "record has no sessionIssuer; its userIdentity.arn names role MismatchAgentRole) "
            "with no agent, MCP, service or workload mark"
        ),
        "mm-call-arn-plain": (
            "role MismatchAgentRole (from session ASIAMISMATCHAGENT001, which its key joins; the "
            "record has no sessionIssuer; its userIdentity.arn names role MismatchPlainRole) is "
            "an agent role (CreateRole mm-create-agent); no MCP mark on the call"
        ),
        "chni-call": (
            "session ASIACHAINHOP00000001 of ChainHopPlainRole is chained from session "
            "ASIACHAINOLDAGENT001 of ChainRootAgentRole (an agent role: CreateRole "
            "chni-create-agent; its own issuing event is not in the logs; its role from the "
            "userIdentity.arn of the call that opened the chain, which shows no sessionIssuer); "
            "no MCP mark"
        ),
        "rpnoctx-agent-call": (
            "role noctx-agent-runner (from userIdentity.arn; the record has no sessionIssuer) is "
            "an agent role (configured pattern %-agent-runner); no MCP mark on the call"
        ),
        "rpnoctx-batch-call": (
            "role batch-noctx-export (from userIdentity.arn; the record has no sessionIssuer) "
            "matches configured workload role pattern batch-%"
        ),
        "trans-call-2": (
            # ivan's source identity matches no agent pattern: the tags decided, not it.
            "session ASIATRANS000000000002 tags {MCPServer=inventory-mcp, Usage=Agent}; "
            "chain root ASIATRANS000000000001"
        ),
        "tagsl-call-3": "session ASIATAGSLIST00000002 tags {Usage=agent}; no MCP mark",
        "srcid-call-unjoined": "sourceIdentity=agent:cron; no MCP mark",
        "mint-shell-call": (
            "session ASIAMINTDEPLOY000001 of MintDeployRole was issued by AssumeRole mint-assume "
            "with invokedBy=aws-mcp.amazonaws.com; no MCP mark"
        ),
        "awsmint-shell-call": (
            "session ASIAAWSMINTDEPLOY001 of AwsMintDeployRole was issued by AssumeRole "
            "awsmint-assume whose userAgent names awslabs MCP server aws-api-mcp-server; "
            "no MCP mark"
        ),
        "awsmint-mcp-call": (
            "session ASIAAWSMINTDEPLOY001 of AwsMintDeployRole was issued by AssumeRole "
            "awsmint-assume whose userAgent names awslabs MCP server aws-api-mcp-server; "
            "userAgent has md/awslabs#mcp#aws-api-mcp-server"
        ),
        "uachain-call-4": (
            "session ASIAUACHAINMINTED001 of UaChainDeployRole is chained from session "
            "ASIAUACHAINTAGGED001 of UaChainHarnessRole (tags {Usage=Agent}); no MCP mark"
        ),
        "mint-hop-call": (
            "session ASIAMINTAUDIT0000001 of MintAuditRole is chained from session "
            "ASIAMINTDEPLOY000001 of MintDeployRole (issued by AssumeRole mint-assume with "
            "invokedBy=aws-mcp.amazonaws.com); no MCP mark"
        ),
        # Rule 22 names the pattern and what matched it: the call's own role or user, or the
        # nearest workload above its session.
        "workpat-role": "role batch-etl matches configured workload role pattern batch-%",
        "workpat-user": "IAM user svc-backup matches configured workload user pattern svc-backup",
        "wlchain-report-call": (
            "session ASIAWLCHAINREPORT001 of report-writer traces back to IAM user svc-backup "
            "(key AKIAWLCHAINSVCBKUP01), which matches configured workload user pattern "
            "svc-backup"
        ),
        "wlchain-export-call": (
            "session ASIAWLCHAINEXPORT001 of export-reader traces back to session "
            "ASIAWLCHAINBATCHN001 of role batch-nightly, which matches configured workload "
            "role pattern batch-% (its own issuing event is not in the logs)"
        ),
        "wlchain-audit-call": (
            "session ASIAWLCHAINAUDIT0001 of audit-reader traces back to session "
            "ASIAWLCHAINBATCHA001 of role batch-adhoc, which matches configured workload role "
            "pattern batch-%"
        ),
        "uatag-call-awslabs": (
            "session ASIAUATAG00000000001 tags {Usage=Agent}; "
            "userAgent has md/awslabs#mcp#cloudwatch-mcp-server"
        ),
        "uatag-call-awslabs-legacy-cli": (
            "session ASIAUATAG00000000001 tags {Usage=Agent}; "
            "userAgent has awslabs/mcp/aws-api-mcp-server"
        ),
        "uatag-call-cli": "session ASIAUATAG00000000001 tags {Usage=Agent}; no MCP mark",
        "deep-assume-12": "session ASIADEEPCHAIN0000011 tags {Usage=Agent}; no MCP mark",
        "conagent-console-call": (
            "role ConsoleOpsAgentRole is an agent role (CreateRole conagent-create) used from the "
            "console: sessionCredentialFromConsole=true"
        ),
        "conagent-console-ua": (
            "role ConsoleOpsAgentRole is an agent role (CreateRole conagent-create) used from the "
            "console: console userAgent console.ec2.amazonaws.com"
        ),
        "ubn-call-early": (
            "key ASIAUNJOINEDOLDKEY01 joins no issuing event; the 2 session(s) of BillingMcpRole "
            "named billing-mcp in the logs all carry the agent mark (e.g. session "
            "ASIAUNJOINED00000002 tags {MCPServer=billing-mcp, Usage=Agent})"
        ),
        "ubn-call-emptykey": (
            "no accessKeyId; the 2 session(s) of BillingMcpRole named billing-mcp in the logs "
            "all carry the agent mark (e.g. session ASIAUNJOINED00000002 tags "
            "{MCPServer=billing-mcp, Usage=Agent})"
        ),
        "ubn-call-harness-early": (
            "key ASIAUNJOINEDOLDKEY02 joins no issuing event; the 1 session(s) of "
            "ByNameHarnessRole named nightly-harness in the logs all carry the agent mark (e.g. "
            "session ASIAUNJOINED00000003 tags {Usage=Agent}); no MCP mark"
        ),
        "achain-call-2": (
            "session ASIAAGENTCHAIN000002 of ChainAuditReadRole is chained from session "
            "ASIAAGENTCHAIN000001 of ChainReportAgentRole (an agent role: CreateRole "
            "achain-create); no MCP mark"
        ),
        "achain-call-2-awslabs": (
            "session ASIAAGENTCHAIN000002 of ChainAuditReadRole is chained from session "
            "ASIAAGENTCHAIN000001 of ChainReportAgentRole (an agent role: CreateRole "
            "achain-create); userAgent has md/awslabs#mcp#dynamodb-mcp-server"
        ),
        "achain-call-4": (
            "session ASIAAGENTCHAIN000004 of ChainDeployRole is chained from session "
            "ASIAAGENTCHAIN000003 of ChainHarnessRole (tags {Usage=Agent}); no MCP mark"
        ),
        "achain-call-6": (
            "session ASIAAGENTCHAIN000006 of ChainLedgerRole is chained from session "
            "ASIAAGENTCHAIN000005 of ChainMcpRole (tags {MCPServer=ledger-mcp, Usage=Agent}); "
            "MCPServer=ledger-mcp on session ASIAAGENTCHAIN000005"
        ),
        "deep-call-12": (
            "session ASIADEEPCHAIN0000012 tags {Usage=Agent}; no MCP mark; "
            "chain truncated at depth 10"
        ),
        "awslabs-legacy-cli": "userAgent names awslabs MCP server aws-api-mcp-server",
        "tagrole-call-after": (
            "role TagLaterRole is an agent role (TagRole tagrole-tag); no MCP mark on the call"
        ),
        "createrole-agent-call": (
            "role NightlyReportAgentRole is an agent role (CreateRole createrole-agent); "
            "no MCP mark on the call"
        ),
        "rolepat-call": (
            "role nightly-agent-runner is an agent role (configured pattern %-agent-runner); "
            "no MCP mark on the call"
        ),
        "rpuntag-call": (
            "role cleanup-agent-runner is an agent role (configured pattern %-agent-runner); "
            "no MCP mark on the call"
        ),
        "createrole-plain-call": (
            "session ASIACREATEROLE000002 of PlainLambdaRole, whose credentials "
            "lambda.amazonaws.com issued"
        ),
        "lchain-assume-2": (
            "session ASIALAMBDACHAIN00001 of OrderFnRole, whose credentials "
            "lambda.amazonaws.com issued"
        ),
        "lchain-call-2": (
            "session ASIALAMBDACHAIN00002 of LedgerWriterRole, chained from OrderFnRole whose "
            "credentials lambda.amazonaws.com issued (chain root ASIALAMBDACHAIN00001)"
        ),
        "idcbare-call": "userIdentity.type=IdentityCenterUser",
        "lambda-call-unjoined": (
            "key ASIALAMBDAOLDKEY0001 joins no issuing event; the 2 session(s) of "
            "OrderProcessorLambdaRole named order-processor in the logs were all opened by a "
            "workload (e.g. session ASIALAMBDAROLE000002, whose credentials lambda.amazonaws.com "
            "issued)"
        ),
        "ichain-call": (
            "session ASIAICHAINHOP0000001 of ReportReaderRole, chained from WebAppInstanceRole "
            "whose credentials ec2.amazonaws.com issued (chain root ASIAICHAINROOT000001)"
        ),
        "ichain-old-call": (
            "session ASIAICHAINOLDHOP0001 of ReportReaderRole, which EC2 instance session "
            "arn:aws:sts::222222222222:assumed-role/WebAppInstanceRole/i-0abc1234def567892 "
            "assumed (ec2RoleDelivery=2.0)"
        ),
        "ichain-name-call": (
            "session ASIAICHAINNAMEHOP001 of ReportReaderRole, which EC2 instance session "
            "arn:aws:sts::222222222222:assumed-role/WebAppInstanceRole/i-0abc1234def567893 "
            "assumed (session name i-0abc1234def567893 is an instance id)"
        ),
        "ec2-call-unjoined-delivery": "ec2RoleDelivery=1.0",
        "ec2-call-unjoined-name": "session name i-0fedcba9876543210 is an instance id",
        "ci-chain-call": (
            f"web identity provider {GITHUB_PROVIDER} that opened the chain "
            "(root session ASIACIWEBIDENTITY001)"
        ),
        "tagsm-web": f"web identity provider {EKS_PROVIDER}",
        "tagss-call-plain": "userIdentity.type=AssumedRole via AssumeRoleWithSAML",
        "console-call-ua-only": "console userAgent console.ec2.amazonaws.com",
        "unknown-no-identity": "userIdentity.type=absent",
    }
    assert {e: classified[e]["evidence"] for e in expected} == expected


def test_agent_role_from_the_console_in_the_guidance_queries(warehouse: Path) -> None:
    """The console use of an agent role is a person's: agent_bypass lists only the agent's own
    call, and the MCP guidance queries (people's roles through MCP, untagged MCP roles) do not
    list the role."""
    scope = {"since": None, "until": None, "account": None, "principal": None}
    arn = f"arn:aws:iam::{A1}:role/ConsoleOpsAgentRole"

    def named(name: str) -> list[dict[str, Any]]:
        return rows(warehouse, (QUERIES / f"{name}.sql").read_text(), scope)

    bypass = [r for r in named("agent_bypass") if r["principal"] == arn]
    assert [(r["agent_name"], r["calls"], r["sample_event_ids"]) for r in bypass] == [
        ("ConsoleOpsAgentRole", 1, "conagent-cli-call")
    ]
    assert not [r for r in named("human_roles_via_mcp") if r["principal"] == arn]
    assert not [r for r in named("untagged_agent_roles") if r["principal"] == arn]


def named_query(warehouse: Path, name: str) -> list[dict[str, Any]]:
    """A named query of queries/ over the whole warehouse (no period, no scope)."""
    scope = {"since": None, "until": None, "account": None, "principal": None}
    return rows(warehouse, (QUERIES / f"{name}.sql").read_text(), scope)


def snapshot_id(warehouse: Path, account: str) -> str:
    ((found,),) = (
        tuple(r.values())
        for r in rows(
            warehouse,
            "SELECT DISTINCT snapshot_id FROM iam_snapshots WHERE account_id = $a",
            {"a": account},
        )
    )
    return str(found)


def test_evidence_of_root_callers_and_service_calls(
    warehouse: Path, classified: dict[str, dict[str, Any]]
) -> None:
    """The chain's root was opened by a session whose issuing event is not in the logs: the
    evidence names that caller's key, its role and what made it an agent role then. A call a
    service made quotes invokedBy, then the rule that found the actor and its evidence."""
    snap = f"snapshot {snapshot_id(warehouse, A4)}"
    cfn = "userIdentity.invokedBy=cloudformation.amazonaws.com: a service made the call with the"
    expected = {
        "rcall-delete": (
            "session ASIAROOTCALLERHOP001 of HopDeployRole is chained from session "
            f"ASIAROOTCALLERAGENT1 of HopAgentRole (an agent role: {snap}; its own issuing event "
            "is not in the logs); no MCP mark"
        ),
        "rcall-audit": (
            "session ASIAROOTCALLERHOP002 of HopAuditRole is chained from session "
            f"ASIAROOTCALLERAGENT1 of HopAgentRole (an agent role: {snap}; its own issuing event "
            "is not in the logs); no MCP mark"
        ),
        "rcall-late-hop-2-call": (
            "session ASIAROOTCALLERLATE03 of HopDeployRole is chained from session "
            "ASIAROOTCALLERLATE01 of HopLateAgentRole (an agent role: TagRole rcall-tag-late; its "
            "own issuing event is not in the logs); no MCP mark"
        ),
        "rcall-logged-delete": (
            "session ASIAROOTCALLERHOP003 of HopDeployRole is chained from session "
            f"ASIAROOTCALLERAGENT2 of HopAgentRole (an agent role: {snap}); no MCP mark"
        ),
        "rcall-late-hop-call": "role HopDeployRole with no agent, MCP, service or workload mark",
        "rcall-ci-update": (
            f"web identity provider {GITHUB_PROVIDER_A4} that opened the chain "
            "(root session ASIAROOTCALLERCI0002)"
        ),
        "svcinv-agent-run-instances": (
            f"{cfn} caller's credentials; the caller by agent_role.direct: role SvcAgentRole is an "
            f"agent role ({snap})"
        ),
        "svcinv-harness-create-bucket": (
            f"{cfn} caller's credentials; the caller by agent_session.direct: session "
            "ASIASVCINVOKED000002 tags {Usage=Agent}; no MCP mark"
        ),
        "svcinv-athena-get-object": (
            "userIdentity.invokedBy=athena.amazonaws.com: a service made the call with the "
            "caller's credentials; the caller by workload.service_issued: session "
            "ASIASVCINVOKED000003 of SvcFnRole, whose credentials lambda.amazonaws.com issued"
        ),
        "svcinv-sso-run-instances": (
            f"{cfn} caller's credentials; the caller by human.identity_center: Identity Center "
            "role AWSReservedSSO_SvcAdmin_0a1b2c3d4e5f6a7b"
        ),
        "svcinv-ops-run-instances": (
            f"{cfn} caller's credentials; the caller by human.other_role: role SvcOpsRole whose "
            "session has no agent, MCP, service-issued or workload mark"
        ),
        "svcinv-user-create-bucket": (
            f"{cfn} caller's credentials; the caller by human.iam_user: userIdentity.type=IAMUser"
        ),
        "svcinv-console-internal": "sessionCredentialFromConsole=true",
        "fedx-call-agent": "session ASIAFEDTOKENS0000001 tags {Usage=Agent}; no MCP mark",
        "fedx-call-person": "userIdentity.type=FederatedUser via GetFederationToken",
        "samlx-sso-terminate": "role SamlOpsTargetRole with no agent, MCP, service or workload mark",
    }
    assert {e: classified[e]["evidence"] for e in expected} == expected
    clients = {e: classified[e]["client"] for e in expected if e.startswith("svcinv-")}
    assert clients == {
        **{e: "service" for e in clients},
        "svcinv-console-internal": "console",
    }


def test_a_service_call_for_an_agent_is_no_bypass(warehouse: Path) -> None:
    """agent_bypass lists the agent's own CLI call, not what CloudFormation or a service
    inside AWS ("AWS Internal") did for it."""
    bypass = {r["agent_name"]: r for r in named_query(warehouse, "agent_bypass")}
    assert (bypass["SvcAgentRole"]["calls"], bypass["SvcAgentRole"]["sample_event_ids"]) == (
        1,
        "svcinv-agent-cli",
    )
    assert (bypass["SvcHarnessRole"]["calls"], bypass["SvcHarnessRole"]["sample_event_ids"]) == (
        1,
        "svcinv-harness-create-stack",
    )


def test_untagged_agent_roles_on_the_classification_timeline(warehouse: Path) -> None:
    """McpBeforeTagRole was used through MCP at 11:00 and tagged by TagRole at 12:00; the later
    snapshot shows it tagged, but applies backwards only before the first observation (the
    TagRole): at 11:00 its tag state is unknown, and the row says when it was tagged."""
    found = {
        r["role_name"]: r
        for r in named_query(warehouse, "untagged_agent_roles")
        if r["role_account_id"] == A4 and r["role_name"].startswith("Mcp")
    }
    columns = ("tag_state", "observed_by", "calls", "first_seen", "tagged_since")
    assert {name: pick(r, *columns) for name, r in found.items()} == {
        "McpBeforeTagRole": {
            "tag_state": "unknown",
            "observed_by": None,
            "calls": 1,
            "first_seen": at("2026-09-05T11:00:00"),
            "tagged_since": at("2026-09-05T12:00:00"),
        },
        "McpUntaggedRole": {
            "tag_state": "untagged",
            "observed_by": f"snapshot {snapshot_id(warehouse, A4)}",
            "calls": 1,
            "first_seen": at("2026-09-05T11:00:00"),
            "tagged_since": None,
        },
    }


def test_human_roles_via_mcp_lists_saml_people(warehouse: Path) -> None:
    """A SAML user's calls are AssumedRole calls of the session AssumeRoleWithSAML opened."""
    arn = f"arn:aws:iam::{A4}:role/SamlOktaAdminRole"
    found = [r for r in named_query(warehouse, "human_roles_via_mcp") if r["principal"] == arn]
    columns = ("human_id", "access_path", "mcp_server", "identity_kind", "calls")
    assert [pick(r, *columns) for r in found] == [
        {
            "human_id": "olive@corp.example",
            "access_path": "mcp_managed",
            "mcp_server": MCP,
            "identity_kind": "federated",
            "calls": 1,
        },
        {
            "human_id": "olive@corp.example",
            "access_path": "mcp_self_managed",
            "mcp_server": "aws-api-mcp-server",
            "identity_kind": "federated",
            "calls": 1,
        },
    ]


def test_human_roles_via_mcp_leaves_out_a_role_tagged_when_the_session_was_created(
    warehouse: Path,
) -> None:
    """uma's SAML session of OpsAgentRole was created while the role was tagged Usage=Agent: an
    agent role's session, as the classification reads it, though the tag was gone when it was
    used through MCP."""
    arn = "arn:aws:iam::666666666666:role/OpsAgentRole"
    assert [r for r in named_query(warehouse, "human_roles_via_mcp") if r["principal"] == arn] == []
    untagged = [r for r in named_query(warehouse, "untagged_agent_roles") if r["principal"] == arn]
    # The role itself lacked the tag when it was used: a guidance gap all the same.
    assert [pick(r, "role_name", "tag_state", "observed_by", "calls") for r in untagged] == [
        {"role_name": "OpsAgentRole", "tag_state": "untagged",
         "observed_by": "UntagRole untag-own-tag", "calls": 1},
    ]  # fmt: skip


def test_human_roles_via_mcp_reads_a_session_created_without_a_creation_date(
    warehouse: Path,
) -> None:
    """vic's SAML session of CleanupAgentRole was issued while the role was tagged Usage=Agent;
    its call through an awslabs MCP server after the untag shows no creationDate. The
    classification reads the role as an agent role's by the session's issuing event: the query
    leaves the call out, as it leaves out one whose record shows the creationDate."""
    arn = "arn:aws:iam::888888888888:role/CleanupAgentRole"
    assert [r for r in named_query(warehouse, "human_roles_via_mcp") if r["principal"] == arn] == []


def test_agent_tag_changes_show_the_agent_untagging_its_own_role(warehouse: Path) -> None:
    found = [
        r for r in named_query(warehouse, "agent_tag_changes") if r["role_name"] == "OpsAgentRole"
    ]
    columns = ("change", "event", "was", "actor_kind", "agent_name", "human_id",
               "classified_by", "by_the_role_itself", "finding")  # fmt: skip
    assert [pick(r, *columns) for r in found] == [
        {
            "change": "tagged",
            "event": "CreateRole untag-create",
            "was": "unknown",
            "actor_kind": "human",
            "agent_name": None,
            "human_id": "erin",
            "classified_by": "human.iam_user",
            "by_the_role_itself": False,
            "finding": "Role OpsAgentRole in account 666666666666 became an agent role at "
            "2026-09-01T08:00:00Z (CreateRole untag-create), by a human (erin) (access path "
            "direct).",
        },
        {
            "change": "untagged",
            "event": "UntagRole untag-own-tag",
            "was": "tagged",
            "actor_kind": "agent",
            "agent_name": "OpsAgentRole",
            "human_id": "erin",
            "classified_by": "agent_role.direct",
            "by_the_role_itself": True,
            "finding": "Role OpsAgentRole in account 666666666666 stopped being an agent role at "
            "2026-09-01T09:10:00Z (UntagRole untag-own-tag), by the agent OpsAgentRole with a "
            "session of the role itself (access path direct); it was tagged before (CreateRole "
            "untag-create).",
        },
    ]


def test_agent_tag_changes_show_an_agent_untagging_its_own_role_without_session_issuer(
    warehouse: Path,
) -> None:
    """The UntagRole record shows no sessionIssuer: its role, as the rules read it (the session
    its key joins, else its userIdentity.arn), is the role it untagged."""
    found = [
        pick(r, "change", "event", "by_the_role_itself", "finding")
        for r in named_query(warehouse, "agent_tag_changes")
        if r["role_name"] == "HidingNoIssuerRole"
    ]
    assert found[1:] == [
        {
            "change": "untagged",
            "event": "UntagRole untagni-untag",
            "by_the_role_itself": True,
            "finding": "Role HidingNoIssuerRole in account 242424242424 stopped being an agent "
            "role at 2026-12-06T09:10:00Z (UntagRole untagni-untag), by the agent "
            "HidingNoIssuerRole with a session of the role itself (access path direct); it was "
            "tagged before (CreateRole untagni-create).",
        }
    ]


def test_agent_tag_changes_show_an_agent_untagging_its_own_role_through_a_chain_without_issuer(
    warehouse: Path,
) -> None:
    """The hop that untags ChainRootAgentRole was opened by a session of that role whose record
    shows no sessionIssuer: the role its userIdentity.arn names, as the chain rules read it."""
    found = [
        pick(r, "event", "by_the_role_itself", "finding")
        for r in named_query(warehouse, "agent_tag_changes")
        if r["role_name"] == "ChainRootAgentRole" and r["change"] == "untagged"
    ]
    assert found == [
        {
            "event": "UntagRole chni-untag",
            "by_the_role_itself": True,
            "finding": "Role ChainRootAgentRole in account 252525252525 stopped being an agent "
            "role at 2026-12-07T09:20:00Z (UntagRole chni-untag), by the agent "
            "ChainRootAgentRole with a session chained from the role itself (access path "
            "direct); it was tagged before (CreateRole chni-create-agent).",
        }
    ]


def test_agent_tag_changes_show_an_agent_untagging_its_own_role_through_a_chain(
    warehouse: Path,
) -> None:
    """The agent of HideAgentRole removes its role's tag with a session of HideScratchRole that
    it opened with its own: by_the_role_itself, since the chain starts at the role it changed,
    and the finding says so. An agent that untags its role from one hop away still hides."""
    (row,) = [
        r
        for r in named_query(warehouse, "agent_tag_changes")
        if r["event"] == "UntagRole hide-untag-chained"
    ]
    assert pick(row, "change", "was", "agent_name", "by_the_role_itself", "finding") == {
        "change": "untagged",
        "was": "tagged",
        "agent_name": "HideAgentRole",
        "by_the_role_itself": True,
        "finding": "Role HideAgentRole in account 121212121212 stopped being an agent role at "
        "2026-09-02T09:00:00Z (UntagRole hide-untag-chained), by the agent HideAgentRole with "
        "a session chained from the role itself (access path direct); it was tagged before "
        "(CreateRole hide-create).",
    }


def test_agent_tag_changes_show_an_untag_whose_state_before_is_unknown(warehouse: Path) -> None:
    """A session of LegacyAgentRole removes the agent key, and no snapshot or earlier call says
    whether the role carried it: the row is there (was unknown), as a TagRole of the key in the
    same place is, not left out, so that an agent hiding its role before any IAM snapshot was
    imported still shows."""
    found = [
        r for r in named_query(warehouse, "agent_tag_changes") if r["role_name"] == "LegacyAgentRole"
    ]
    columns = ("change", "event", "was", "was_observed_by", "by_the_role_itself", "finding")
    assert [pick(r, *columns) for r in found] == [
        {
            "change": "untagged",
            "event": "UntagRole hide-untag-legacy",
            "was": "unknown",
            "was_observed_by": None,
            "by_the_role_itself": True,
            "finding": "Role LegacyAgentRole in account 121212121212 is no agent role from "
            "2026-09-02T09:10:00Z on (UntagRole hide-untag-legacy), by a session of the role "
            "itself (human) (access path direct); no snapshot or earlier call says whether it was one before.",
        }
    ]


def test_agent_tag_changes_show_an_agent_deleting_its_own_role(warehouse: Path) -> None:
    """The agent of DelAgentRole deletes its role (change 'deleted'). ReplacedAgentRole, deleted
    and created again untagged within one second, stopped being an agent role by that CreateRole
    (the role exists after the second): one row, not a deletion and a creation."""
    found = [
        r
        for r in named_query(warehouse, "agent_tag_changes")
        if r["role_account_id"] == "191919191919"
    ]
    columns = ("role_name", "change", "event", "was", "by_the_role_itself", "finding")
    assert [pick(r, *columns) for r in found] == [
        {
            "role_name": "DelAgentRole",
            "change": "tagged",
            "event": "CreateRole del-create",
            "was": "unknown",
            "by_the_role_itself": False,
            "finding": "Role DelAgentRole in account 191919191919 became an agent role at "
            "2026-09-02T08:00:00Z (CreateRole del-create), by a human (frank) (access path "
            "direct).",
        },
        {
            "role_name": "ReplacedAgentRole",
            "change": "tagged",
            "event": "CreateRole del-replace-create-1",
            "was": "unknown",
            "by_the_role_itself": False,
            "finding": "Role ReplacedAgentRole in account 191919191919 became an agent role at "
            "2026-09-02T08:00:00Z (CreateRole del-replace-create-1), by a human (frank) (access "
            "path direct).",
        },
        {
            "role_name": "DelAgentRole",
            "change": "deleted",
            "event": "DeleteRole del-delete-own",
            "was": "tagged",
            "by_the_role_itself": True,
            "finding": "Role DelAgentRole in account 191919191919, an agent role, was deleted at "
            "2026-09-02T09:10:00Z (DeleteRole del-delete-own), by the agent DelAgentRole with a "
            "session of the role itself (access path direct); it was tagged before (CreateRole "
            "del-create).",
        },
        {
            "role_name": "ReplacedAgentRole",
            "change": "untagged",
            "event": "CreateRole del-replace-create-2",
            "was": "tagged",
            "by_the_role_itself": False,
            "finding": "Role ReplacedAgentRole in account 191919191919 stopped being an agent role "
            "at 2026-09-02T10:00:00Z (CreateRole del-replace-create-2), by a human (frank) "
            "(access path direct); it was tagged before (CreateRole del-replace-create-1).",
        },
    ]


def test_agent_tag_changes_principal_matches_the_session_and_the_changed_roles_arn(
    warehouse: Path,
) -> None:
    """--principal takes what the other role queries take: the session ARN of the caller
    (principal_arn, as principals, untagged_agent_roles and human_roles_via_mcp match it), and
    the changed role by its ARN, the principal that principals lists for it."""
    sql = (QUERIES / "agent_tag_changes.sql").read_text()

    def events(principal: str) -> list[str]:
        scope = {"since": None, "until": None, "account": None, "principal": principal}
        return [r["event"] for r in rows(warehouse, sql, scope)]

    session = "arn:aws:sts::121212121212:assumed-role/HideScratchRole/hide-scratch"
    assert events(session) == ["UntagRole hide-untag-chained"]
    assert events("arn:aws:iam::121212121212:role/HideAgentRole") == [
        "CreateRole hide-create",
        "UntagRole hide-untag-chained",
    ]


def test_unjoined_sessions_count_calls_without_an_access_key(warehouse: Path) -> None:
    """ubn-call-emptykey (agent_session.mcp_by_name, no accessKeyId) joins no issuing event: it
    is counted with the key issued before the logs begin (ubn-call-early)."""
    arn = f"arn:aws:iam::{A1}:role/BillingMcpRole"
    found = [r for r in named_query(warehouse, "unjoined_sessions") if r["role_arn"] == arn]
    columns = ("calls", "agent_calls", "agent_names", "sample_access_key")
    assert [pick(r, *columns) for r in found] == [
        {
            "calls": 2,
            "agent_calls": 2,
            "agent_names": "billing-mcp",
            "sample_access_key": "ASIAUNJOINEDOLDKEY01",
        }
    ]


def test_unjoined_sessions_count_root_sessions_whose_assume_root_is_not_logged(
    warehouse: Path,
) -> None:
    """assume_root_sessions: the short-term root session whose AssumeRoot is not in the logs is
    a blind spot (reason root_session); the joined ones are not listed."""
    found = [
        pick(r, "reason", "role_arn", "sessions", "calls", "actor_kinds", "sample_access_key")
        for r in named_query(warehouse, "unjoined_sessions")
        if "353535353535" in (r["accounts"] or "")
    ]
    assert found == [
        {
            "reason": "root_session",
            "role_arn": "arn:aws:iam::353535353535:root",
            "sessions": 1,
            "calls": 1,
            "actor_kinds": "unknown",
            "sample_access_key": "ASIA3434UNLOGGEDRT01",
        }
    ]


def test_a_key_several_sts_calls_issued_is_no_session(
    warehouse: Path, sessions: dict[str, dict[str, Any]]
) -> None:
    """reused_issued_keys: two AssumeRole calls show one issued key (masked, or an example
    reused). It is listed in session_key_conflicts, not in sessions, and unjoined_sessions
    counts its calls under reason reused_issued_key."""
    key = "ASIA3636EXAMPLEKEY01"
    assert key not in sessions
    conflicts = rows(warehouse, "SELECT * FROM session_key_conflicts ORDER BY issued_key")
    assert conflicts == [
        {"issued_key": key, "issuing_event_ids": ["reused-assume-agent", "reused-assume-plain"]}
    ]
    found = [
        pick(r, "reason", "role_arn", "calls", "sample_access_key")
        for r in named_query(warehouse, "unjoined_sessions")
        if "363636363636" in (r["role_arn"] or "")
    ]
    assert sorted(found, key=lambda r: r["role_arn"]) == [
        {
            "reason": "reused_issued_key",
            "role_arn": f"arn:aws:iam::363636363636:role/{role}",
            "calls": 1,
            "sample_access_key": key,
        }
        for role in ("ReusedKeyAgentRole", "ReusedKeyPlainRole")
    ]


def test_cross_account_copies_without_a_shared_event_id_are_one_session(
    warehouse: Path, sessions: dict[str, dict[str, Any]]
) -> None:
    """cross_account_copies_without_shared_id: the two copies of a cross-account AssumeRole
    where neither, or only one, shows a sharedEventID (records before eventVersion 1.03, an
    export that dropped it) are one call: one session, no key conflict."""
    keys = ("ASIA3838NOSHAREDID01", "ASIA3838NOSHAREDID02")
    for n, key in enumerate(keys, start=1):
        assert sessions[key]["issuing_event_ids"] == [
            f"noshared-{n}-caller-copy",
            f"noshared-{n}-role-copy",
        ]
        assert sessions[key]["caller_type"] == "IAMUser"
    conflicts = rows(
        warehouse,
        "SELECT issued_key FROM session_key_conflicts WHERE issued_key IN $keys",
        {"keys": list(keys)},
    )
    assert conflicts == []


@pytest.mark.parametrize(
    ("case", "issuing", "calls"),
    [
        # Identity Center signs dave in with AssumeRoleWithSAML; his chain stays his.
        ("saml_sessions", ["samlx-sso-assume"], ["samlx-sso-hop", "samlx-sso-terminate"]),
        # The agent session's own issuing event joins the chain: the agent stays the actor.
        (
            "root_caller_agent_role",
            ["rcall-logged-assume"],
            ["rcall-logged-hop", "rcall-logged-delete"],
        ),
    ],
)
def test_an_issuing_event_never_removes_an_answer(
    tmp_path: Path, case: str, issuing: list[str], calls: list[str]
) -> None:
    """The chain's calls first, the STS event that opened its first session in a later ingest:
    every verdict column known before stays, and the person may only be added."""
    records = json.loads((CASES / f"{case}.json").read_text())["Records"]
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_text(json.dumps({"Records": [r for r in records if r["eventID"] not in issuing]}))
    second.write_text(json.dumps({"Records": [r for r in records if r["eventID"] in issuing]}))
    root = tmp_path / "warehouse"
    settings = ingest([first], root)
    import_iam([LATE_SNAPSHOT_FILE], settings, SNAPSHOT_TAKEN_AT)
    before = verdicts(root)
    ingest([second], root)
    after = verdicts(root)
    for e in calls:
        early = tuple(before[e][c] for c in VERDICT if c != "human_id")
        assert early == tuple(after[e][c] for c in VERDICT if c != "human_id"), e
        assert before[e]["human_id"] in (None, after[e]["human_id"]), e
        assert after[e]["human_id"] is not None, e


def test_an_agent_sessions_issuing_event_keeps_the_chain_it_opened_after_an_untag(
    tmp_path: Path,
) -> None:
    """The agent session that removed its role's tag and then opened sessions below it: their
    calls are the agent's whether or not the AssumeRole that issued the agent's own session is in
    the logs (its creationDate is on the calls it made, the AssumeRoles among them). Without it,
    the chain's root caller is known only by the root's issuing event: that event's creationDate
    is when the caller's session was created."""
    case = CASES / "agent_untags_role_unlogged_session.json"
    issuing = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser", "principalId": "AIDA5C7E9A1B3D5F7A9B1",
            "arn": "arn:aws:iam::777777777777:user/ivan", "accountId": "777777777777",
            "accessKeyId": "AKIARELAYIVAN000001", "userName": "ivan",
        },
        "eventTime": "2026-09-05T08:30:00Z",
        "eventSource": "sts.amazonaws.com",
        "eventName": "AssumeRole",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.77",
        "userAgent": "Boto3/1.40.11 md/Botocore#1.40.11 ua/2.1 os/linux#6.8.0",
        "requestParameters": {
            "roleArn": "arn:aws:iam::777777777777:role/RelayAgentRole",
            "roleSessionName": "relay-agent", "durationSeconds": 3600,
        },
        "responseElements": {
            "credentials": {
                "accessKeyId": "ASIARELAYAGENT00001",
                "sessionToken": "IQoJb3JpZ2luX2VjEFAKE//////////TOKEN",
                "expiration": "Sep 5, 2026, 9:30:00 AM",
            },
            "assumedRoleUser": {
                "assumedRoleId": "AROA7F1B3D5E7A9C1E3B5:relay-agent",
                "arn": "arn:aws:sts::777777777777:assumed-role/RelayAgentRole/relay-agent",
            },
        },
        "requestID": "req-relay-assume",
        "eventID": "relay-assume",
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": "777777777777",
        "eventCategory": "Management",
    }  # fmt: skip
    second = tmp_path / "second.json"
    second.write_text(json.dumps({"Records": [issuing]}))
    root = tmp_path / "warehouse"
    ingest([case], root)
    before = verdicts(root)
    ingest([second], root)
    after = verdicts(root)
    for e in ("relay-hop-call", "relay-self-call"):
        assert pick(before[e], "actor_kind", "access_path", "agent_name", "classified_by") == {
            "actor_kind": "agent", "access_path": "direct", "agent_name": "RelayAgentRole",
            "classified_by": "agent_chain.direct",
        }, e  # fmt: skip
        early = tuple(before[e][c] for c in VERDICT if c != "human_id")
        assert early == tuple(after[e][c] for c in VERDICT if c != "human_id"), e
        assert after[e]["human_id"] == "ivan", e


def test_an_instance_sessions_issuing_event_keeps_its_chain_a_workloads(tmp_path: Path) -> None:
    """The chain an EC2 instance's role session opened is a workload's whether or not EC2's
    AssumeRole for that session is in the logs: the same actor, path and rule."""
    records = json.loads((CASES / "ec2_instance_chain.json").read_text())["Records"]
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_text(json.dumps({"Records": records[1:3]}))
    second.write_text(json.dumps({"Records": records[:1]}))
    root = tmp_path / "warehouse"
    ingest([first], root)
    before = verdicts(root)["ichain-call"]
    ingest([second], root)
    after = verdicts(root)["ichain-call"]
    assert pick(before, *VERDICT) == pick(after, *VERDICT)
    assert pick(after, "actor_kind", "classified_by") == {
        "actor_kind": "workload",
        "classified_by": "workload.service_issued",
    }
    assert before["evidence"] == (
        "session ASIAICHAINHOP0000001 of ReportReaderRole, which EC2 instance session "
        "arn:aws:sts::222222222222:assumed-role/WebAppInstanceRole/i-0abc1234def567891 "
        "assumed (ec2RoleDelivery=2.0)"
    )


@pytest.mark.parametrize("first", ["xacct-assume-caller-copy", "xacct-assume-role-copy"])
def test_a_second_copy_of_a_cross_account_assume_role_keeps_the_caller(
    tmp_path: Path, first: str
) -> None:
    """Each copy of a cross-account AssumeRole opens the same session; the caller is the one the
    caller's account logged (the role's account shows an AWSAccount), whichever copy is ingested
    first: a second copy never removes the person."""
    records = json.loads((CASES / "cross_account_copies.json").read_text())["Records"]
    one = [r for r in records if r["eventID"] in (first, "xacct-call")]
    other = [r for r in records if r not in one]
    paths = [tmp_path / "one.json", tmp_path / "other.json"]
    for path, part in zip(paths, (one, other), strict=True):
        path.write_text(json.dumps({"Records": part}))
    root = tmp_path / "warehouse"
    ingest([paths[0]], root)
    ingest([paths[1]], root)
    columns = ("caller_type", "caller", "parent_key", "root_person", "issuing_event_id")
    (session,) = [
        tuple(r.values()) for r in rows(root, f"SELECT {', '.join(columns)} FROM sessions")
    ]
    assert session == (
        "IAMUser",
        f"arn:aws:iam::{A4}:user/xacctuser",
        "AKIAXACCTCOPIESUSER1",
        "xacctuser",
        "xacct-assume-role-copy",
    )
    assert verdicts(root)["xacct-call"]["human_id"] == "xacctuser"


def test_root_person(sessions: dict[str, dict[str, Any]]) -> None:
    """Who started each chain: the SAML user (userName), an Identity Center role session's
    name, an IAM user; never the IAM user that minted a GetFederationToken session."""
    columns = ("root_key", "root_caller_type", "root_person")
    assert {k: pick(sessions[k], *columns) for k in (
        "ASIASAMLSESSIONS0001", "ASIASAMLSESSIONS0003", "ASIAROOTCALLERHOP003",
        "ASIAROOTCALLERHOP002", "ASIAFEDTOKENS0000001", "ASIAIAMUSERSESSION01",
    )} == {
        "ASIASAMLSESSIONS0001": {"root_key": "ASIASAMLSESSIONS0001", "root_caller_type": "SAMLUser",
                                 "root_person": "olive@corp.example"},
        "ASIASAMLSESSIONS0003": {"root_key": "ASIASAMLSESSIONS0002", "root_caller_type": "SAMLUser",
                                 "root_person": "dave@example.com"},
        "ASIAROOTCALLERHOP003": {"root_key": "ASIAROOTCALLERAGENT2",
                                 "root_caller_type": "IAMUser", "root_person": "hopcarol"},
        "ASIAROOTCALLERHOP002": {"root_key": "ASIAROOTCALLERHOP001",
                                 "root_caller_type": "AssumedRole", "root_person": None},
        "ASIAFEDTOKENS0000001": {"root_key": "ASIAFEDTOKENS0000001",
                                 "root_caller_type": "IAMUser", "root_person": None},
        "ASIAIAMUSERSESSION01": {"root_key": "ASIAIAMUSERSESSION01",
                                 "root_caller_type": "IAMUser", "root_person": "quinn"},
    }  # fmt: skip
    # The web identity a role session came from reaches the session it opens.
    assert sessions["ASIAROOTCALLERCI0002"]["web_identity_provider"] == GITHUB_PROVIDER_A4


# ------------------------------------------------------------------------------ sessions
def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


SESSION_KEYS = {
    "ASIA3434AGENTROOT001",
    "ASIA3434ORGOPSROOT01",
    "ASIA3434PAULAROOT001",
    "ASIA3838NOSHAREDID01",
    "ASIA3838NOSHAREDID02",
    "ASIACHAINHOP00000001",
    "ASIACHAINHOP00000002",
    "ASIAUNTAGNOISSUER001",
    "ASIAMISMATCHPLAIN001",
    "ASIAMISMATCHAGENT001",
    "ASIAMISMATCHSAML0001",
    "ASIALASTCALLAGENT001",
    "ASIALASTCALLAGENT002",
    "ASIAFEDBROKERPAT0001",
    "ASIADELROLEAGENT0001",
    "ASIADELROLEAGENT0002",
    "ASIADELROLEREPLACED1",
    "ASIANOCTXAGENT000001",
    "ASIANOCTXPLAIN000002",
    "ASIANOCTXHARNESS0001",
    "ASIANOCTXSAML0000001",
    "ASIANOCTXSAML0000002",
    "ASIAHIDEAGENT0000001",
    "ASIAHIDESCRATCH00001",
    "ASIANOCREATEAGENT01",
    "ASIANOCREATESAML001",
    "ASIANOCREATEHOP0001",
    "ASIARELAYHOP0000001",
    "ASIARELAYSELF000001",
    "ASIAUNTAGAGENT000001",
    "ASIAUNTAGAGENT000002",
    "ASIAUNTAGCHAIN000001",
    "ASIAUNTAGSAML0000001",
    "ASIALOWERAGENT000001",
    "ASIALOWERHOP00000001",
    "ASIACONSOLECHILD0001",
    "ASIATRANSMCPSRV00001",
    "ASIATRANSMCPHOP00001",
    "ASIAMIXEDNAME0000001",
    "ASIAMIXEDNAME0000002",
    *(f"ASIADEEPBATCH{i:07d}" for i in range(12)),
    "ASIAGRANTLATERHOP001",
    "ASIAWLCHAINFEDVERA01",
    "ASIAMINTDEPLOY000001",
    "ASIAMINTAUDIT0000001",
    "ASIAEMPTYMCPTAG00001",
    "ASIAEMPTYBEHALFROOT1",
    "ASIAEMPTYSRCID000001",
    "ASIAEMPTYWEBID000001",
    "ASIAEMPTYIDP00000001",
    "ASIAEMPTYEC2CHILD001",
    "ASIAMINTDANOWN000001",
    "ASIAAWSMINTDEPLOY001",
    "ASIAAWSMINTDEPLOY002",
    "ASIAUACHAINTAGGED001",
    "ASIAUACHAINMINTED001",
    "ASIAF1DATA0000000001",
    "ASIAF2CHILD000000001",
    *(
        f"ASIAWLCHAIN{k}"
        for k in ("BATCHA001", "WENDY0001", "REPORT001", "AUDIT0001", "RESTORE01", "EXPORT001")
    ),
    "ASIATAGSLIST00000001",
    "ASIATAGSLIST00000002",
    "ASIATAGSMAPWEB000001",
    "ASIATAGSMAPSAML00001",
    "ASIATAGSMAPSAML00002",
    "ASIATRANS000000000001",
    "ASIATRANS000000000002",
    "ASIATRANS000000000004",
    "ASIATRANS000000000005",
    "ASIAFAILED0000000001",
    "ASIAAWSLABSTAGGED001",
    "ASIAUATAG00000000001",
    "ASIATAGROLE000000001",
    "ASIATAGROLE000000002",
    "ASIATAGROLE000000003",
    "ASIACREATEROLE000001",
    "ASIACREATEROLE000002",
    "ASIAEC2INSTANCE00001",
    "ASIALAMBDAROLE000001",
    "ASIALAMBDAROLE000002",
    "ASIACIWEBIDENTITY001",
    "ASIACIWEBIDENTITY002",
    "ASIACIWEBIDENTITY003",
    "ASIAIAMUSERSESSION01",
    "ASIAIAMUSERFEDERATE1",
    "ASIASOURCEIDENTITY01",
    "ASIASOURCEIDENTITY02",
    "ASIASOURCEIDENTITY03",
    "ASIAAGENTROLEPATTERN",
    "ASIAROLEPATUNTAGGED1",
    "ASIALAMBDACHAIN00001",
    "ASIALAMBDACHAIN00002",
    "ASIACHAINCYCLE000001",
    "ASIACHAINCYCLE000002",
    "ASIASNAPSHOTAGENT001",
    *(f"ASIADEEPCHAIN{i:07d}" for i in range(1, 13)),
    *(f"ASIAAGENTCHAIN{i:06d}" for i in range(1, 9)),
    *(f"ASIAUNJOINED{i:08d}" for i in range(1, 6)),
    "ASIACONSOLEAGENT0003",
    "ASIASNAPSHOTHUMAN001",
    "ASIAMIX0000000000003",
    "ASIAMIX0000000000004",
    "ASIAROOTCALLERHOP001",
    "ASIAROOTCALLERHOP002",
    "ASIAROOTCALLERHOP003",
    "ASIAROOTCALLERLATE02",
    "ASIAROOTCALLERLATE03",
    "ASIAROOTCALLERCI0002",
    "ASIAROOTCALLERAGENT2",
    "ASIASVCINVOKED000002",
    "ASIASVCINVOKED000003",
    "ASIASAMLSESSIONS0001",
    "ASIASAMLSESSIONS0002",
    "ASIASAMLSESSIONS0003",
    "ASIAFEDTOKENS0000001",
    "ASIAFEDTOKENS0000002",
    "ASIAXACCTCOPIES00001",
    "ASIAICHAINROOT000001",
    "ASIAICHAINHOP0000001",
    "ASIAICHAINOLDHOP0001",
    "ASIAICHAINNAMEHOP001",
    "ASIAICHAINPLAINHOP01",
}


def pick(row: dict[str, Any], *columns: str) -> dict[str, Any]:
    return {c: row[c] for c in columns}


def test_a_session_is_of_its_role_as_the_role_spells_it(
    sessions: dict[str, dict[str, Any]],
) -> None:
    """roleArn spelled the role in lower case; the issued session's ARN spells it as the role
    does, and so do the calls' sessionIssuer."""
    assert pick(sessions["ASIALOWERAGENT000001"], "role_arn", "role_name", "role_account_id") == {
        "role_arn": "arn:aws:iam::666666666666:role/deployagentrole",
        "role_name": "DeployAgentRole",
        "role_account_id": "666666666666",
    }


def test_session_chains_name_a_role_as_it_spells_itself(warehouse: Path) -> None:
    """session_chains names DeployAgentRole as principals, agent_bypass and the calls do, though
    erin's AssumeRole typed it in lower case: the role's own chain is found by the role ARN those
    show (its session is no longer left out), and one role is one chain pattern whatever the
    caller typed. The typed ARN still finds the session it was typed for."""
    scope = {"since": None, "until": None, "account": None}
    query = (QUERIES / "session_chains.sql").read_text()
    canonical = "arn:aws:iam::666666666666:role/DeployAgentRole"
    own = {"root_role_arn": canonical, "chain_depth": 0, "role_arn": canonical, "calls": 2}
    hop = {"root_role_arn": canonical, "chain_depth": 1,
           "role_arn": "arn:aws:iam::666666666666:role/ReleaseHopRole", "calls": 1}  # fmt: skip
    for principal, expected in ((canonical, [own, hop]), (canonical.lower(), [own])):
        found = rows(warehouse, query, {**scope, "principal": principal})
        got = [pick(r, "root_role_arn", "chain_depth", "role_arn", "calls") for r in found]
        assert got == expected, principal


def test_one_session_per_issued_key(sessions: dict[str, dict[str, Any]]) -> None:
    # Failed AssumeRoles (null parameters) and a blank issued key open no session.
    assert set(sessions) == SESSION_KEYS


def test_root_caller_instance_mark(sessions: dict[str, dict[str, Any]]) -> None:
    """What shows that an EC2 instance's role session opened the chain's root: only where that
    session's own issuing event is not in the logs (else it is the root, issued by EC2)."""
    keys = [k for k in sessions if k.startswith("ASIAICHAIN")]
    assert {k: sessions[k]["root_caller_instance_mark"] for k in keys} == {
        "ASIAICHAINROOT000001": None,
        "ASIAICHAINHOP0000001": None,
        "ASIAICHAINOLDHOP0001": "ec2RoleDelivery=2.0",
        "ASIAICHAINNAMEHOP001": "session name i-0abc1234def567893 is an instance id",
        "ASIAICHAINPLAINHOP01": None,
    }


def test_transitive_keys_in_another_case_pass_their_tags(
    sessions: dict[str, dict[str, Any]],
) -> None:
    first, second = sessions["ASIAMIX0000000000003"], sessions["ASIAMIX0000000000004"]
    assert first["transitive_tag_keys"] == ["mcpserver", "usage"]  # as the request spelt them
    assert second["effective_tags"] == {"MCPServer": "m-mcp", "Usage": "agent"}


def test_session_list_form_tags(sessions: dict[str, dict[str, Any]]) -> None:
    assert pick(
        sessions["ASIATAGSLIST00000001"],
        "issuing_event_id",
        "issuing_event_ids",
        "issued_by_call",
        "issued_at",
        "expires_at",
        "role_arn",
        "role_account_id",
        "role_name",
        "session_name",
        "parent_key",
        "caller_type",
        "caller",
        "source_identity",
        "own_tags",
        "transitive_tag_keys",
        "effective_tags",
        "root_key",
        "chain_depth",
    ) == {
        "issuing_event_id": "tagsl-assume-mcp",
        "issuing_event_ids": ["tagsl-assume-mcp"],
        "issued_by_call": "AssumeRole",
        "issued_at": at("2020-09-14T06:01:26"),
        # responseElements.credentials.expiration "Sep 14, 2020, 7:01:26 AM" (UTC).
        "expires_at": at("2020-09-14T07:01:26"),
        "role_arn": f"arn:aws:iam::{A1}:role/TagsListMcpRole",
        "role_account_id": A1,
        "role_name": "TagsListMcpRole",
        "session_name": "billing-mcp-1",
        "parent_key": "AKIATAGSLISTBUILDER1",
        "caller_type": "IAMUser",
        "caller": f"arn:aws:iam::{A1}:user/builder",
        "source_identity": "grace@example.com",
        "own_tags": [
            {"key": "MCPServer", "value": "billing-mcp", "origin": "tags"},
            {"key": "Usage", "value": "AGENT", "origin": "tags"},
        ],
        "transitive_tag_keys": ["MCPServer"],
        "effective_tags": {"MCPServer": "billing-mcp", "Usage": "AGENT"},
        "root_key": "ASIATAGSLIST00000001",
        "chain_depth": 0,
    }
    assert sessions["ASIATAGSLIST00000002"]["expires_at"] == at("2020-09-14T07:15:00")


def test_session_map_form_tags(sessions: dict[str, dict[str, Any]]) -> None:
    columns = (
        "issued_by_call",
        "parent_key",
        "caller_type",
        "web_identity_provider",
        "own_tags",
        "effective_tags",
        "root_caller_type",
        "root_web_identity_provider",
    )
    assert pick(sessions["ASIATAGSMAPWEB000001"], *columns) == {
        "issued_by_call": "AssumeRoleWithWebIdentity",
        "parent_key": None,
        "caller_type": "WebIdentityUser",
        "web_identity_provider": EKS_PROVIDER,
        "own_tags": [
            {"key": "MCPServer", "value": "k8s-mcp", "origin": "principalTags"},
            {"key": "Usage", "value": "agent", "origin": "principalTags"},
        ],
        "effective_tags": {"MCPServer": "k8s-mcp", "Usage": "agent"},
        "root_caller_type": "WebIdentityUser",
        "root_web_identity_provider": EKS_PROVIDER,
    }
    assert pick(sessions["ASIATAGSMAPSAML00001"], "issued_by_call", "caller_type", "own_tags") == {
        "issued_by_call": "AssumeRoleWithSAML",
        "caller_type": "SAMLUser",
        "own_tags": [{"key": "Usage", "value": "Agent", "origin": "principalTags"}],
    }


def test_session_chain_into_a_second_account(sessions: dict[str, dict[str, Any]]) -> None:
    columns = (
        "issuing_event_id",
        "issuing_event_ids",
        "role_arn",
        "role_account_id",
        "parent_key",
        "source_identity",
        "own_tags",
        "transitive_tag_keys",
        "effective_tags",
        "root_key",
        "chain_depth",
        "root_caller_type",
        "root_caller",
    )
    root = pick(sessions["ASIATRANS000000000001"], *columns)
    assert root == {
        "issuing_event_id": "trans-assume-1",
        "issuing_event_ids": ["trans-assume-1"],
        "role_arn": f"arn:aws:iam::{A1}:role/TransSourceRole",
        "role_account_id": A1,
        "parent_key": "AKIATRANSIVAN0000001",
        "source_identity": "ivan@example.com",
        "own_tags": [
            {"key": "MCPServer", "value": "inventory-mcp", "origin": "tags"},
            {"key": "Team", "value": "ops", "origin": "tags"},
            {"key": "Usage", "value": "Agent", "origin": "tags"},
        ],
        "transitive_tag_keys": ["MCPServer", "Usage"],
        "effective_tags": {"MCPServer": "inventory-mcp", "Team": "ops", "Usage": "Agent"},
        "root_key": "ASIATRANS000000000001",
        "chain_depth": 0,
        "root_caller_type": "IAMUser",
        "root_caller": f"arn:aws:iam::{A1}:user/ivan",
    }
    incoming = [
        {"key": "MCPServer", "value": "inventory-mcp", "origin": "incomingTransitiveTags"},
        {"key": "Usage", "value": "Agent", "origin": "incomingTransitiveTags"},
    ]
    # Logged in both accounts (one sharedEventID): one session, the role account's copy first.
    assert pick(sessions["ASIATRANS000000000002"], *columns) == {
        "issuing_event_id": "trans-assume-2-role-copy",
        "issuing_event_ids": ["trans-assume-2-caller-copy", "trans-assume-2-role-copy"],
        "role_arn": f"arn:aws:iam::{A2}:role/agents/TransTargetRole",
        "role_account_id": A2,
        "parent_key": "ASIATRANS000000000001",
        "source_identity": "ivan@example.com",
        "own_tags": incoming,
        "transitive_tag_keys": None,
        # Team was not transitive: it stays behind.
        "effective_tags": {"MCPServer": "inventory-mcp", "Usage": "Agent"},
        "root_key": "ASIATRANS000000000001",
        "chain_depth": 1,
        "root_caller_type": "IAMUser",
        "root_caller": f"arn:aws:iam::{A1}:user/ivan",
    }
    # Its parent's issuing event is not in the logs: the chain starts at it.
    assert pick(
        sessions["ASIATRANS000000000004"], "parent_key", "own_tags", "root_key", "chain_depth"
    ) == {
        "parent_key": "ASIATRANS000000000003",
        "own_tags": incoming,
        "root_key": "ASIATRANS000000000004",
        "chain_depth": 0,
    }
    # One hop further: the incoming tags are inherited, the source identity too.
    assert pick(
        sessions["ASIATRANS000000000005"],
        "parent_key",
        "source_identity",
        "own_tags",
        "effective_tags",
        "root_key",
        "chain_depth",
    ) == {
        "parent_key": "ASIATRANS000000000004",
        "source_identity": "judy@example.com",
        "own_tags": None,
        "effective_tags": {"MCPServer": "inventory-mcp", "Usage": "Agent"},
        "root_key": "ASIATRANS000000000004",
        "chain_depth": 1,
    }


def test_session_source_identity_through_the_chain(sessions: dict[str, dict[str, Any]]) -> None:
    chained = sessions["ASIASOURCEIDENTITY02"]
    assert pick(chained, "parent_key", "source_identity", "root_key", "chain_depth") == {
        "parent_key": "ASIASOURCEIDENTITY01",
        "source_identity": "agent:deploy-bot",
        "root_key": "ASIASOURCEIDENTITY01",
        "chain_depth": 1,
    }


def test_session_chain_cycle_terminates(sessions: dict[str, dict[str, Any]]) -> None:
    a, b = sessions["ASIACHAINCYCLE000001"], sessions["ASIACHAINCYCLE000002"]
    assert pick(a, "parent_key", "root_key", "chain_depth", "effective_tags") == {
        "parent_key": "ASIACHAINCYCLE000002",
        "root_key": "ASIACHAINCYCLE000002",
        "chain_depth": 1,
        "effective_tags": {"Usage": "Agent"},
    }
    assert pick(b, "parent_key", "root_key", "chain_depth", "effective_tags") == {
        "parent_key": "ASIACHAINCYCLE000001",
        "root_key": "ASIACHAINCYCLE000001",
        "chain_depth": 1,
        "effective_tags": {"Usage": "Agent"},
    }


def test_session_chain_beyond_max_depth(sessions: dict[str, dict[str, Any]]) -> None:
    columns = ("parent_key", "root_key", "chain_depth", "chain_truncated", "root_caller_type")
    # Within the bound: the real root, issued to IAM user deepdan.
    assert pick(sessions["ASIADEEPCHAIN0000011"], *columns) == {
        "parent_key": "ASIADEEPCHAIN0000010",
        "root_key": "ASIADEEPCHAIN0000001",
        "chain_depth": 10,
        "chain_truncated": False,
        "root_caller_type": "IAMUser",
    }
    # Cut at the bound: the furthest session reached is no root, and says so.
    assert pick(sessions["ASIADEEPCHAIN0000012"], *columns) == {
        "parent_key": "ASIADEEPCHAIN0000011",
        "root_key": "ASIADEEPCHAIN0000002",
        "chain_depth": 10,
        "chain_truncated": True,
        "root_caller_type": "AssumedRole",
    }
    truncated = {"ASIADEEPCHAIN0000012", "ASIADEEPBATCH0000011"}
    assert not any(s["chain_truncated"] for k, s in sessions.items() if k not in truncated)
    assert all(sessions[k]["chain_truncated"] for k in truncated)


def test_session_of_other_sts_calls(sessions: dict[str, dict[str, Any]]) -> None:
    columns = ("issued_by_call", "role_arn", "role_name", "role_account_id", "session_name")
    assert pick(sessions["ASIAIAMUSERSESSION01"], *columns, "expires_at", "caller_type") == {
        "issued_by_call": "GetSessionToken",
        "role_arn": None,
        "role_name": None,
        "role_account_id": None,
        "session_name": None,
        "expires_at": at("2026-06-25T22:00:00"),
        "caller_type": "IAMUser",
    }
    assert pick(sessions["ASIAIAMUSERFEDERATE1"], *columns, "effective_tags") == {
        "issued_by_call": "GetFederationToken",
        "role_arn": f"arn:aws:sts::{A1}:federated-user/report-bot",
        "role_name": None,
        "role_account_id": None,
        "session_name": "report-bot",
        "effective_tags": {"Usage": "Agent"},
    }
    assert pick(
        sessions["ASIALAMBDAROLE000001"],
        "caller_type",
        "caller",
        "caller_invoked_by",
        "root_caller_invoked_by",
        "role_name",
    ) == {
        "caller_type": "AWSService",
        "caller": "lambda.amazonaws.com",
        "caller_invoked_by": "lambda.amazonaws.com",
        "root_caller_invoked_by": "lambda.amazonaws.com",
        "role_name": "OrderProcessorLambdaRole",
    }


def test_assume_root_sessions(
    sessions: dict[str, dict[str, Any]], classified: dict[str, dict[str, Any]]
) -> None:
    """sts:AssumeRoot issues a short-term root session in a member account: one session per
    issued key, with no role, whose parent is the caller's key; a refused call issues none."""
    columns = ("issued_by_call", "role_arn", "role_name", "session_name", "parent_key", "caller")
    agent_session = "arn:aws:sts::343434343434:assumed-role/RootTaskAgentRole/remediator"
    assert pick(sessions["ASIA3434AGENTROOT001"], *columns, "expires_at", "root_person") == {
        "issued_by_call": "AssumeRoot",
        "role_arn": None,
        "role_name": None,
        "session_name": None,
        "parent_key": "ASIA3434AGENTSESS001",
        "caller": agent_session,
        "expires_at": at("2026-10-06T10:25:00"),
        "root_person": None,
    }
    assert sessions["ASIA3434PAULAROOT001"]["root_person"] == "paula@example.com"
    assert sorted(k for k in sessions if k.startswith("ASIA3434")) == [
        "ASIA3434AGENTROOT001",
        "ASIA3434ORGOPSROOT01",
        "ASIA3434PAULAROOT001",
    ]
    assert classified["aroot-agent-root-call"]["evidence"] == (
        "session ASIA3434AGENTROOT001 of arn:aws:iam::353535353535:root is chained from session"
        " ASIA3434AGENTSESS001 of RootTaskAgentRole (an agent role: CreateRole"
        " aroot-create-agent-role; its own issuing event is not in the logs); no MCP mark"
    )
    assert classified["aroot-person-root-call"]["evidence"] == (
        "userIdentity.type=Root; short-term root session ASIA3434PAULAROOT001 (AssumeRoot)"
    )
    assert classified["aroot-unjoined-root-call"]["evidence"] == (
        "userIdentity.type=Root; sessionContext.assumedRoot=true: a short-term root session whose"
        " AssumeRoot is not in the logs (key ASIA3434UNLOGGEDRT01); who started it is unknown"
    )
    assert classified["aroot-plain-role-root-call"]["evidence"] == (
        "userIdentity.type=Root; short-term root session ASIA3434ORGOPSROOT01 (AssumeRoot) whose"
        " chain no person started and that has no agent, MCP, service or workload mark"
    )
    # The person's root session belongs with the Identity Center session that opened it.
    assert classified["aroot-person-root-call"]["session_root"] == "ASIA3434PAULASSO0001"


# ------------------------------------------------------------------- MCP links, role tags
def test_mcp_tool_calls(warehouse: Path) -> None:
    found = rows(
        warehouse,
        "SELECT tool_event_id, tool_name, mcp_session_id, mcp_server_name, mcp_principal,"
        " mcp_client, downstream_api, downstream_request_id FROM mcp_tool_calls ORDER BY ALL",
    )
    observed = ("90fae5c2-2e73-4ad4-be3c-b25fefc9d7a7", "aws-mcp", MCP)
    documented = ("347f7da5-1bc3-4fea-bd1b-681177c34f31", "aws-mcp", MCP)
    proxy = "mcp-proxy-for-aws/1.1.0"
    life = "python-httpx/0.28.1 mcp-proxy-for-aws/1.7.0 claude-code/2.0.1"
    assert [tuple(r.values()) for r in found] == [
        # An empty params.name names no tool (nor does the method tools/call), an empty
        # sessionId no session.
        ("empty-tool", None, None, "aws-mcp", MCP, "claude-code/1.0.98", None, None),
        # An empty downstream requestId names no request.
        ("emptyid-tool", "aws___call_aws", *observed, "claude-code/1.0.98", "s3:ListBuckets",
         None),
        ("mcpdoc-tool-1", "aws___call_aws", *documented, proxy, "monitoring:DescribeAlarms",
         "mcpdoc-downstream-1"),
        ("mcpdoc-tool-2", "aws___suggest_aws_commands", None, None, MCP, proxy, None, None),
        # The MCP session's own end names no tool.
        ("mcplife-destroy-1", None, None, None, MCP, life, None, None),
        ("mcplife-tool-1", "aws___run_script", None, None, MCP, life, "sts:GetCallerIdentity",
         "mcplife-downstream-1"),
        ("mcpobs-tool-1", "aws___call_aws", *observed, "claude-code/1.0.98", "s3:ListBuckets",
         "mcpobs-downstream-1"),
        ("mcpobs-tool-2", "aws___search_documentation", *observed, "claude-code/1.0.98", None,
         None),
        ("mint-tool", "aws___call_aws", "90fae5c2-2e73-4ad4-be3c-b25fefc9d799", "aws-mcp", MCP,
         "claude-code/1.0.98", "sts:AssumeRole", "mint-req-assume"),
    ]  # fmt: skip


def test_empty_fields_name_nothing_in_the_evidence(classified: dict[str, dict[str, Any]]) -> None:
    """An empty string in a raw field is read as absent by the evidence and the role columns
    too (case empty_string_fields)."""
    issuer = classified["empty-issuer-call"]
    assert (issuer["role_account_id"], issuer["role_name"]) == ("323232323232", "EmptyAgentRole")
    assert issuer["evidence"] == (
        "role EmptyAgentRole (from userIdentity.arn; the record has no sessionIssuer) is an agent"
        " role (CreateRole empty-create-agent-role); no MCP mark on the call"
    )
    assert classified["empty-web-call"]["evidence"] == (
        "web identity provider arn:aws:iam::323232323232:oidc-provider/"
        "token.actions.githubusercontent.com that opened the chain (root session"
        " ASIAEMPTYWEBID000001)"
    )
    for event in ("empty-idp-call", "empty-ec2-child-call"):
        assert classified[event]["evidence"].endswith(
            " with no agent, MCP, service or workload mark"
        ), event
    assert classified["empty-behalf-call"]["evidence"] == (
        "role EmptyPlainRole with no agent, MCP, service or workload mark"
    )
    assert classified["empty-tool"]["evidence"] == (
        "eventType=AwsMcpEvent; method=tools/call (no tool named)"
    )
    # A call of the MCP protocol itself names no tool either.
    assert classified["mcplife-destroy-1"]["evidence"] == (
        "eventType=AwsMcpEvent; method=session/destroy (no tool named)"
    )
    assert classified["mcplife-tool-1"]["evidence"] == (
        "eventType=AwsMcpEvent; tool=aws___run_script"
    )


def test_mcp_grants(warehouse: Path) -> None:
    found = rows(
        warehouse,
        "SELECT grant_event_id, resource, grant_owner, mcp_principal FROM mcp_grants ORDER BY 1",
    )
    assert [tuple(r.values()) for r in found] == [
        # An agent's grant (its source identity matches agent:%) names no person.
        ("agrant-grant", MCP_RESOURCE, None, MCP),
        # Its onBehalfOf userId and sourceIdentity are empty: its owner is the IAM user.
        # Its userIdentity.arn is empty: it names no owner.
        ("empty-arn-grant", MCP_RESOURCE, None, MCP),
        ("empty-grant", MCP_RESOURCE, "emptygrantee", MCP),
        # Its signInSessionArn is empty: a grant all the same, of no sign-in session.
        ("emptyid-grant", MCP_RESOURCE, "eve@example.com", MCP),
        ("f1-grant", MCP_RESOURCE, "olga@example.com", MCP),
        ("grantlater-grant", MCP_RESOURCE, "olga@example.com", MCP),
        ("mcpdoc-grant", MCP_RESOURCE, "erik@example.com", MCP),
        ("mcpobs-grant", MCP_RESOURCE, "dan@example.com", MCP),
        ("mcpobs-refresh", MCP_RESOURCE, "dan@example.com", MCP),
        ("rootgrant-grant", MCP_RESOURCE, "root", MCP),
    ]


def test_role_agent_observations(warehouse: Path) -> None:
    found = rows(
        warehouse,
        "SELECT account_id, role_name, observed_at, observed_by, is_agent, tag_text"
        " FROM role_agent_observations ORDER BY account_id, role_name, observed_at",
    )
    expected = [
        (A1, "ChainReportAgentRole", at("2026-06-28T08:00:00"), "CreateRole achain-create", True,
         "Usage=Agent"),
        (A1, "ConsoleOpsAgentRole", at("2026-06-30T09:00:00"), "CreateRole conagent-create", True,
         "Usage=Agent"),
        (A1, "NightlyReportAgentRole", at("2026-07-15T10:02:11"),
         "CreateRole createrole-agent", True, "Usage=Agent"),
        (A1, "PlainLambdaRole", at("2026-07-15T10:02:12"), "CreateRole createrole-plain", False,
         None),
        (A1, "cleanup-agent-runner", at("2026-09-03T08:00:00"), "CreateRole rpuntag-create",
         False, None),
        ("121212121212", "HideAgentRole", at("2026-09-02T08:00:00"), "CreateRole hide-create",
         True, "Usage=Agent"),
        ("121212121212", "HideAgentRole", at("2026-09-02T09:00:00"),
         "UntagRole hide-untag-chained", False, None),
        ("121212121212", "LegacyAgentRole", at("2026-09-02T09:10:00"),
         "UntagRole hide-untag-legacy", False, None),
        ("181818181818", "NoContextAgentRole", at("2026-11-02T09:00:00"), "CreateRole noctx-create",
         True, "Usage=Agent"),
        ("181818181818", "NoContextPlainRole", at("2026-11-02T09:01:00"),
         "CreateRole noctx-create-plain", False, None),
        ("191919191919", "DelAgentRole", at("2026-09-02T08:00:00"), "CreateRole del-create",
         True, "Usage=Agent"),
        ("191919191919", "DelAgentRole", at("2026-09-02T09:10:00"), "DeleteRole del-delete-own",
         False, None),
        ("191919191919", "ReplacedAgentRole", at("2026-09-02T08:00:00"),
         "CreateRole del-replace-create-1", True, "Usage=Agent"),
        ("191919191919", "ReplacedAgentRole", at("2026-09-02T10:00:00"),
         "CreateRole del-replace-create-2", False, None),
        ("202020202020", "MismatchAgentRole", at("2026-12-05T09:00:00"),
         "CreateRole mm-create-agent", True, "Usage=Agent"),
        ("202020202020", "MismatchPlainRole", at("2026-12-05T09:01:00"),
         "CreateRole mm-create-plain", False, None),
        (A2, "TagLaterRole", at("2026-08-02T09:00:00"), "TagRole tagrole-tag", True,
         "Usage=Agent"),
        (A2, "TagLaterRole", at("2026-08-04T09:00:00"), "UntagRole tagrole-untag", False, None),
        ("242424242424", "HidingNoIssuerRole", at("2026-12-06T09:00:00"),
         "CreateRole untagni-create", True, "Usage=Agent"),
        ("242424242424", "HidingNoIssuerRole", at("2026-12-06T09:10:00"),
         "UntagRole untagni-untag", False, None),
        ("252525252525", "ChainHopPlainRole", at("2026-12-07T07:01:00"),
         "CreateRole chni-create-hop", False, None),
        ("252525252525", "ChainRootAgentRole", at("2026-12-07T07:00:00"),
         "CreateRole chni-create-agent", True, "Usage=Agent"),
        ("252525252525", "ChainRootAgentRole", at("2026-12-07T09:20:00"),
         "UntagRole chni-untag", False, None),
        ("262626262626", "CaseNoIssuerAgentRole", at("2026-12-08T09:00:00"),
         "TagRole casenoi-tag", True, "Usage=Agent"),
        ("292929292929", "LastCallAgentRole", at("2026-12-09T09:00:00"),
         "CreateRole lc-create-agent", True, "Usage=Agent"),
        ("292929292929", "LastCallPlainRole", at("2026-12-09T09:01:00"),
         "CreateRole lc-create-plain", False, None),
        ("323232323232", "EmptyAgentRole", at("2026-07-07T12:10:00"),
         "CreateRole empty-create-agent-role", True, "Usage=Agent"),
        ("343434343434", "RootTaskAgentRole", at("2026-10-06T08:00:00"),
         "CreateRole aroot-create-agent-role", True, "Usage=Agent"),
        (A4, "HopLateAgentRole", at("2026-09-01T12:00:00"), "TagRole rcall-tag-late", True,
         "Usage=Agent"),
        (A4, "McpBeforeTagRole", at("2026-09-05T12:00:00"), "TagRole mcpbt-tag", True,
         "Usage=Agent"),
        ("555555555555", "F2OpsAgentRole", at("2026-09-02T09:00:00"), "CreateRole f2-create",
         True, "Usage=Agent"),
        ("666666666666", "DeployAgentRole", at("2026-09-10T08:00:00"), "CreateRole lower-create",
         True, "Usage=Agent"),
        ("666666666666", "OpsAgentRole", at("2026-09-01T08:00:00"), "CreateRole untag-create",
         True, "Usage=Agent"),
        ("666666666666", "OpsAgentRole", at("2026-09-01T09:10:00"), "UntagRole untag-own-tag",
         False, None),
        ("777777777777", "RelayAgentRole", at("2026-09-05T08:00:00"), "CreateRole relay-create",
         True, "Usage=Agent"),
        ("777777777777", "RelayAgentRole", at("2026-09-05T09:00:00"), "UntagRole relay-own-untag",
         False, None),
        ("888888888888", "CleanupAgentRole", at("2026-10-01T10:00:00"), "CreateRole nocd-create",
         True, "Usage=Agent"),
        ("888888888888", "CleanupAgentRole", at("2026-10-01T10:40:00"), "UntagRole nocd-untag",
         False, None),
        ("888888888888", "CleanupLaterRole", at("2026-10-01T10:00:00"),
         "CreateRole nocd-later-create", False, None),
        ("888888888888", "CleanupLaterRole", at("2026-10-01T12:00:00"), "TagRole nocd-later-tag",
         True, "Usage=Agent"),
    ]  # fmt: skip
    events_only = [tuple(r.values()) for r in found if not r["observed_by"].startswith("snapshot")]
    assert events_only == expected
    snapshots = {
        (r["account_id"], r["role_name"], r["observed_at"], r["is_agent"], r["tag_text"])
        for r in found
        if r["observed_by"].startswith("snapshot")
    }
    tagged_a4 = {"HopAgentRole", "HopLateAgentRole", "McpBeforeTagRole", "SvcAgentRole"}
    roles_a4 = json.loads(LATE_SNAPSHOT_FILE.read_text())["RoleDetailList"]
    assert snapshots == {
        (A3, "SnapAgentRole", SNAPSHOT_TAKEN_AT, True, "Usage=Agent"),
        (A3, "SnapOpsRole", SNAPSHOT_TAKEN_AT, False, None),
        *(
            (A4, name, SNAPSHOT_TAKEN_AT, name in tagged_a4,
             "Usage=Agent" if name in tagged_a4 else None)
            for name in (r["RoleName"] for r in roles_a4)
        ),
    }  # fmt: skip

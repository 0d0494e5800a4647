"""boto3 plumbing for live IAM snapshots: the client, and AWS failures as one actionable line.

Kept apart from snapshot.py so the CLI can build a client without knowing botocore, and so every
failure a user can fix (no credentials, a wrong profile, a missing permission) reaches them as an
IamError naming the fix instead of a botocore traceback. Messages name profiles, hosts and
permissions, never a credential value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOError,
    TokenRetrievalError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.parsers import ResponseParserError

from pipeline import __version__
from pipeline.endpoints import check_endpoint_url, endpoint_shown
from pipeline.errors import IamError

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

PERMISSION = "iam:GetAccountAuthorizationDetails"
IAM_POLICY_DOC = "docs/iam-policy.json"
CREDENTIALS_HINT = (
    "configure the standard chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws, SSO, an "
    "instance or task role) or pass --profile"
)
_ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
_REJECTED = frozenset({"InvalidClientTokenId", "SignatureDoesNotMatch", "InvalidToken"})
_EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
_THROTTLED = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded"})


def make_iam_client(
    profile: str | None,
    endpoint_url: str | None,
    max_attempts: int,
    region: str | None = None,
) -> IAMClient:
    """An IAM client on the standard credential chain (plus `profile`), retrying adaptively.

    IAM throttles GetAccountAuthorizationDetails hard in large accounts; adaptive mode adds
    client-side rate limiting to the backoff so a long pagination slows down instead of
    failing. IAM is global, so `region` only matters for signing against `endpoint_url` (default
    us-east-1) or in other partitions. The user agent carries `agenttrail/<version>`, so the tool's own calls are
    recognisable in CloudTrail.
    """
    check_endpoint_url(endpoint_url)
    config = Config(
        retries={"mode": "adaptive", "max_attempts": max_attempts},
        user_agent_extra=f"agenttrail/{__version__}",
    )
    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
        # Without an endpoint botocore signs for IAM's global endpoint by itself; with one
        # (moto, a proxy) it needs a region, and IAM's signing region is us-east-1.
        signing_region = session.region_name or ("us-east-1" if endpoint_url else None)
        return session.client(
            "iam", endpoint_url=endpoint_url, region_name=signing_region, config=config
        )
    except (BotoCoreError, ClientError) as exc:
        raise translate_error(exc) from exc


def translate_error(exc: Exception, endpoint_url: str | None = None) -> IamError:
    """One IamError for a botocore failure while taking a snapshot; `endpoint_url` is the
    client's (shown as scheme://host[:port] only)."""
    if isinstance(exc, ClientError):
        return _from_client_error(exc)
    if isinstance(exc, ResponseParserError):
        # Not a BotoCoreError: the answer was no IAM XML (an HTML page, another service, a
        # proxy's or a captive portal's). Its text quotes the body, which is not shown.
        host = endpoint_shown(endpoint_url or "", "the IAM endpoint")
        return IamError(
            f"{host} did not answer as IAM: its response to GetAccountAuthorizationDetails is "
            "not IAM's XML",
            hint="check --endpoint-url (it must be an IAM endpoint; without it AWS's is used) "
            "and any proxy settings",
            endpoint=host,
        )
    if isinstance(exc, NoCredentialsError):
        return IamError("no AWS credentials found", hint=CREDENTIALS_HINT)
    if isinstance(exc, PartialCredentialsError):
        # provider and cred_var are names ("env", "AWS_SECRET_ACCESS_KEY"), never values.
        provider = exc.kwargs.get("provider", "?")
        missing = exc.kwargs.get("cred_var", "?")
        return IamError(
            f"incomplete AWS credentials: {provider} is missing {missing}", hint=CREDENTIALS_HINT
        )
    if isinstance(exc, ProfileNotFound):
        profile = exc.kwargs.get("profile", "?")
        return IamError(
            f"AWS profile not found: {profile}",
            hint="check --profile or AWS_PROFILE against `aws configure list-profiles`",
            profile=profile,
        )
    if isinstance(exc, SSOError | TokenRetrievalError):
        return IamError(
            "AWS SSO session missing or expired",
            hint="run `aws sso login --profile NAME` and re-run",
        )
    if isinstance(exc, NoRegionError):
        return IamError(
            "no AWS region configured for the IAM endpoint",
            hint="set AWS_REGION or the profile's region (any region works: IAM is global)",
        )
    if isinstance(exc, BotoConnectionError):
        host = endpoint_shown(str(exc.kwargs.get("endpoint_url", "")), "the IAM endpoint")
        return IamError(
            f"cannot connect to {host}",
            hint="check --endpoint-url, the network and any proxy settings",
            endpoint=host,
        )
    return IamError(
        f"AWS client error while taking the IAM snapshot: {type(exc).__name__}",
        hint="re-run; if it persists, check the AWS configuration",
    )


def _from_client_error(exc: ClientError) -> IamError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    if code in _ACCESS_DENIED:
        return IamError(
            f"access denied: the identity may not call {PERMISSION}",
            hint=f"grant {PERMISSION} (see {IAM_POLICY_DOC}) or pass --profile for one that has it",
            code=code,
        )
    if code in _EXPIRED:
        return IamError(
            "AWS credentials expired while taking the IAM snapshot",
            hint="refresh them (for SSO: aws sso login --profile NAME) and re-run",
            code=code,
        )
    if code in _REJECTED:
        return IamError(
            f"AWS credentials rejected ({code})",
            hint="the access key or secret is wrong or for another partition; " + CREDENTIALS_HINT,
            code=code,
        )
    if code in _THROTTLED:
        return IamError(
            "IAM kept throttling GetAccountAuthorizationDetails",
            hint="retries are exhausted; raise ingest.retry_max_attempts or re-run later",
            code=code,
        )
    message = str(error.get("Message", "")).strip() or "no message"
    return IamError(
        f"IAM error {code or 'unknown'} while taking the snapshot: {message}",
        hint="retry later; if it persists, check the identity and the endpoint",
        code=code,
    )

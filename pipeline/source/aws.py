"""boto3 plumbing for the S3 source: building the client and turning AWS errors into one line.

Why here and not in s3.py: the CLI (which never imports boto3) asks this module for a client and
hands it to `open_source`, and every AWS failure a user can fix (no credentials, a wrong profile,
a bucket policy) must reach them as one actionable line instead of a botocore traceback.
Messages name the bucket, key, profile or host involved, never a credential value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    ResponseStreamingError,
    SSOError,
    TokenRetrievalError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from pipeline import __version__
from pipeline.endpoints import check_endpoint_url, endpoint_shown
from pipeline.errors import SourceError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

IAM_POLICY_DOC = "docs/iam-policy.json"
CREDENTIALS_HINT = (
    "configure the standard chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws, SSO, an "
    "instance or task role) or pass --profile"
)
# Codes S3 uses when the credentials themselves are refused (all HTTP 403), as opposed to a
# policy that denies a valid identity: the fix is different, so the message is too.
_REJECTED_CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "TokenRefreshRequired"}
)
_EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException"})
_THROTTLING_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded"}
)


def make_s3_client(
    *,
    profile: str | None,
    endpoint_url: str | None,
    max_attempts: int,
    max_pool_connections: int = 32,
    region: str | None = None,
) -> S3Client:
    """An S3 client on the standard credential chain (plus `profile`), retrying in adaptive mode.

    Adaptive mode adds client-side rate limiting on top of exponential backoff, so many download
    threads sharing this client back off together when S3 answers SlowDown. The client is
    thread-safe: build one per run and share it; `max_pool_connections` should be at least the
    number of download threads or they queue for sockets. The user agent carries
    `agenttrail/<version>` so the tool's own reads are recognisable in CloudTrail.
    `max_attempts` keeps botocore's meaning for this key: retries after the first attempt.
    """
    check_endpoint_url(endpoint_url)
    config = Config(
        retries={"mode": "adaptive", "max_attempts": max_attempts},
        max_pool_connections=max_pool_connections,
        user_agent_extra=f"agenttrail/{__version__}",
    )
    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
        return session.client("s3", endpoint_url=endpoint_url, config=config)
    except (BotoCoreError, ClientError) as exc:
        raise translate_client_error(exc, bucket=None) from exc


def translate_client_error(
    exc: Exception, *, bucket: str | None, key: str | None = None, action: str | None = None
) -> SourceError:
    """One actionable SourceError for a botocore failure while listing or reading `bucket`.

    `key` is the object key or the listed prefix; `action` ("listing" / "reading") defaults to
    what the failed operation did. Unknown errors keep AWS's code and message, which name no
    secret, so nothing useful is hidden either.
    """
    where = _s3_uri(bucket, key)
    verb = action or _action_of(exc, key)
    inputs = {"bucket": bucket, "key": key}
    if isinstance(exc, ClientError):
        return _from_client_error(exc, where, verb, inputs)
    return _from_botocore_error(exc, where, verb, inputs)


def _from_client_error(
    exc: ClientError, where: str, verb: str, inputs: dict[str, str | None]
) -> SourceError:
    """Map S3's error code (or bare HTTP status, for HEAD requests) to a message and a fix."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    bucket_uri = _s3_uri(inputs["bucket"], None)
    if code == "NoSuchBucket" or (code in {"404", "NotFound"} and not inputs["key"]):
        return SourceError(
            f"bucket not found: {bucket_uri}",
            hint="check the bucket name, and --endpoint-url if you use one",
            code=code,
            **inputs,
        )
    if code in {"NoSuchKey", "404", "NotFound"}:
        return SourceError(
            f"object not found: {where}",
            hint="it was deleted or moved after listing; re-run to list the bucket again",
            code=code,
            **inputs,
        )
    if code in {"PreconditionFailed", "412"}:
        return SourceError(
            f"object changed while ingesting: {where}",
            hint="it was overwritten after listing; re-run to ingest the new version",
            code=code,
            **inputs,
        )
    if code in _EXPIRED_CODES:
        return SourceError(
            f"AWS credentials expired while {verb} {where}",
            hint="refresh them (for SSO: aws sso login --profile NAME) and re-run",
            code=code,
            **inputs,
        )
    if code in _REJECTED_CREDENTIAL_CODES:
        return SourceError(
            f"AWS credentials rejected ({code}) while {verb} {where}",
            hint="the access key or secret is wrong or for another partition or endpoint; "
            + CREDENTIALS_HINT,
            code=code,
            **inputs,
        )
    if code == "RequestTimeTooSkewed":
        # A 403 too, but no policy can fix it: S3 refuses signatures more than 15 minutes off.
        return SourceError(
            f"this machine's clock is too far from AWS's while {verb} {where}",
            hint="set the clock right (e.g. enable NTP: timedatectl set-ntp true) and re-run",
            code=code,
            **inputs,
        )
    if code == "AccessDenied" or status == 403:
        return SourceError(
            f"access denied {verb} {where}", hint=_access_hint(verb), code=code, **inputs
        )
    if code in _THROTTLING_CODES or status == 503:
        return SourceError(
            f"S3 kept throttling while {verb} {where}",
            hint="retries are exhausted; lower the download threads or raise retry_max_attempts",
            code=code,
            **inputs,
        )
    message = str(error.get("Message", "")).strip() or "no message"
    return SourceError(
        f"S3 error {code or status} while {verb} {where}: {message}",
        hint="retry later; if it persists, check the bucket and the identity",
        code=code,
        **inputs,
    )


def _access_hint(verb: str) -> str:
    """Which permission is missing depends on the call: ListBucket for listing, GetObject (and
    kms:Decrypt, since trails are often SSE-KMS encrypted) for reading."""
    if verb == "listing":
        return (
            f"check the bucket policy and that the identity has s3:ListBucket; see {IAM_POLICY_DOC}"
        )
    return (
        "check the bucket policy, that the identity has s3:GetObject and, for SSE-KMS trails, "
        f"kms:Decrypt on the trail's key; see {IAM_POLICY_DOC}"
    )


def _from_botocore_error(
    exc: Exception, where: str, verb: str, inputs: dict[str, str | None]
) -> SourceError:
    """Client-side failures: credentials, profiles, SSO, the network, truncated bodies."""
    if isinstance(exc, NoCredentialsError):
        return SourceError("no AWS credentials found", hint=CREDENTIALS_HINT, **inputs)
    if isinstance(exc, PartialCredentialsError):
        # provider and cred_var are names ("env", "AWS_SECRET_ACCESS_KEY"), never values.
        provider = exc.kwargs.get("provider", "?")
        missing = exc.kwargs.get("cred_var", "?")
        return SourceError(
            f"incomplete AWS credentials: {provider} is missing {missing}",
            hint=CREDENTIALS_HINT,
            **inputs,
        )
    if isinstance(exc, ProfileNotFound):
        profile = exc.kwargs.get("profile", "?")
        return SourceError(
            f"AWS profile not found: {profile}",
            hint="check --profile or AWS_PROFILE against `aws configure list-profiles`",
            profile=profile,
            **inputs,
        )
    if isinstance(exc, (SSOError, TokenRetrievalError)):
        return SourceError(
            "AWS SSO session missing or expired",
            hint="run `aws sso login --profile NAME` and re-run",
            **inputs,
        )
    if isinstance(exc, (ResponseStreamingError, IncompleteReadError, ReadTimeoutError)):
        return SourceError(
            f"connection dropped while {verb} {where}",
            hint="a transient network fault; re-run to fetch it again",
            **inputs,
        )
    if isinstance(exc, BotoConnectionError):
        host = endpoint_shown(str(exc.kwargs.get("endpoint_url", "")), "the S3 endpoint")
        return SourceError(
            f"cannot connect to {host} while {verb} {where}",
            hint="check --endpoint-url or --region, the network and any proxy settings",
            endpoint=host,
            **inputs,
        )
    return SourceError(
        f"AWS client error while {verb} {where}: {type(exc).__name__}",
        hint="re-run; if it persists, check the AWS configuration",
        **inputs,
    )


def _action_of(exc: Exception, key: str | None) -> str:
    """ "listing" or "reading": from the failed operation, else from the key's shape."""
    operation = getattr(exc, "operation_name", "") or ""
    if operation.startswith("List"):
        return "listing"
    if operation in {"GetObject", "HeadObject"}:
        return "reading"
    return "reading" if key and not key.endswith("/") else "listing"


def _s3_uri(bucket: str | None, key: str | None) -> str:
    if not bucket:
        return "S3"
    return f"s3://{bucket}/{key or ''}"

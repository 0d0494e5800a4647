"""Endpoint URLs given with --endpoint-url (S3-compatible stores, moto, proxies): checked once
where a client is built, and shown without what may be secret in them.

An endpoint URL can carry credentials (`http://user:password@host`) or signed query strings;
errors name only scheme://host[:port]."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pipeline.errors import UsageError

_SCHEMES = ("http", "https")
# A URL inside an error's text, up to the quote, bracket or space that ends it, and without
# the punctuation of the sentence around it ("listing s3://b/x/: ...").
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s`'\"<>()\[\]]*[^\s`'\"<>()\[\].,:;!]")


def endpoint_shown(url: str, unknown: str = "the endpoint") -> str:
    """scheme://host[:port] of an endpoint: drops any user:password@, the path and the query
    (`unknown` where nothing is left to show)."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # an unclosed [IPv6 or a port out of range: no host to show
        return unknown
    if not parts.hostname:
        return url.split("?", 1)[0].rpartition("@")[2] or unknown
    return f"{parts.scheme}://{parts.hostname}{port}"


def check_endpoint_url(url: str | None, flag: str = "--endpoint-url") -> None:
    """A usage error unless `url` is None or an http(s) URL with a host (and a valid port),
    and nothing but a path after it: botocore otherwise fails later ("internal error:
    ValueError: Invalid endpoint"; a query string is "not a valid URI"; a fragment swallows the
    bucket and key of every request).

    A user name or password (`http://user:secret@host`) is refused too: botocore never sends
    them (requests are signed with the credentials of --profile or the environment, and the
    address's user part is dropped), so they could only mislead whoever wrote them, and end up
    in botocore's error messages."""
    if url is None:
        return
    try:
        parts = urlsplit(url)
        valid = parts.scheme.lower() in _SCHEMES and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        valid = False
    shown = endpoint_shown(url)
    if not valid:
        raise UsageError(
            f"{flag} is not an http:// or https:// URL with a host: {shown}",
            hint=f"write it whole, e.g. {flag} http://127.0.0.1:9000",
        )
    if "@" in parts.netloc:
        raise UsageError(
            f"{flag} holds a user name or password (user:password@), which the AWS SDK never "
            f"uses: {shown}",
            hint="drop them; requests are signed with the credentials of --profile or of the "
            "environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
        )
    if "?" in url or "#" in url:
        raise UsageError(
            f"{flag} has a query string or a fragment (?... or #...), which an endpoint "
            f"cannot have: {shown}",
            hint=f"write scheme://host[:port][/path], e.g. {flag} http://127.0.0.1:9000",
        )


def check_s3_uri(uri: str, what: str) -> None:
    """A usage error when the s3:// URI `uri` (`what`: a source, a warehouse) holds a user name
    or password, `s3://KEY:SECRET@bucket/...`: agenttrail never sends them (requests are signed
    with the credentials of --profile or of the environment), and error messages would show the
    URI, secret and all. A bucket name has neither `@` nor `:`; a secret key may hold a `/`, so
    a `:` before the first `/` with an `@` after it is one too. The message shows the URI from
    after that `@` (access keys and secret keys have none)."""
    if not uri.lower().startswith("s3://"):
        return
    rest = uri[len("s3://") :]
    bucket = rest.split("/", 1)[0]
    if "@" not in bucket and not (":" in bucket and "@" in rest):
        return
    shown = "s3://" + rest.split("@", 1)[1]
    raise UsageError(
        f"{what} {shown} has a user name or password before the bucket (USER:PASSWORD@),"
        " which agenttrail never uses (not shown here)",
        hint="drop them; S3 requests are signed with the credentials of --profile or of the "
        "environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
    )


def without_secrets_in_urls(text: str) -> str:
    """`text` (a library's error message) with every URL in it cut to scheme://host[:port]."""
    return _URL_IN_TEXT.sub(lambda m: endpoint_shown(m.group(0)), text)

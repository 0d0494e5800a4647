"""Endpoint URLs given with --endpoint-url (S3-compatible stores, moto, proxies): checked once
where a client is built, and shown without what may be secret in them.

An endpoint URL can carry credentials (`http://user:password@host`) or signed query strings;
errors name only scheme://host[:port]."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pipeline.errors import UsageError

_SCHEMES = ("http", "https")
# A URL inside an error's text, up to the quote, bracket or space that ends it.
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s`'\"<>()\[\]]+")


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
    """A usage error unless `url` is None or an http(s) URL with a host (and a valid port):
    botocore otherwise fails later with "internal error: ValueError: Invalid endpoint"."""
    if url is None:
        return
    try:
        parts = urlsplit(url)
        valid = parts.scheme.lower() in _SCHEMES and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        valid = False
    if not valid:
        raise UsageError(
            f"{flag} is not an http:// or https:// URL with a host: {endpoint_shown(url)}",
            hint=f"write it whole, e.g. {flag} http://127.0.0.1:9000",
        )


def without_secrets_in_urls(text: str) -> str:
    """`text` (a library's error message) with every URL in it cut to scheme://host[:port]."""
    return _URL_IN_TEXT.sub(lambda m: endpoint_shown(m.group(0)), text)

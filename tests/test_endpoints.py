"""pipeline/endpoints.py: --endpoint-url checked where clients are built, shown without secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.endpoints import (
    check_endpoint_url,
    check_s3_uri,
    endpoint_shown,
    without_secrets_in_urls,
)
from pipeline.errors import UsageError
from tests.ingest_fixtures import agenttrail


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:hunter2@127.0.0.1:9000/bucket?token=q", "http://127.0.0.1:9000"),
        ("https://s3.eu-west-1.amazonaws.com", "https://s3.eu-west-1.amazonaws.com"),
        ("http://[::1]:9000/?x=1", "http://::1:9000"),
        ("user:hunter2@host:9000?sig=q", "host:9000"),
        ("http://[::1:9", "the endpoint"),
        ("http://h:99999", "the endpoint"),
        ("", "the endpoint"),
    ],
)
def test_endpoint_shown_keeps_no_credentials_path_or_query(url: str, shown: str) -> None:
    assert endpoint_shown(url) == shown


def test_urls_in_a_message_are_cut_to_their_host() -> None:
    text = (
        "Custom endpoint `http://user:hunter2@127.0.0.1:9/?token=qsecret` was not a valid URI;"
        " also (ftp://u:p@files:21/x?sig=s)"
    )
    assert without_secrets_in_urls(text) == (
        "Custom endpoint `http://127.0.0.1:9` was not a valid URI; also (ftp://files:21)"
    )


@pytest.mark.parametrize(
    "url", [None, "http://127.0.0.1:9000", "https://minio.internal/", "HTTP://h:1/p/q"]
)
def test_a_whole_http_url_is_accepted(url: str | None) -> None:
    check_endpoint_url(url)


CREDENTIALS = (
    "--endpoint-url holds a user name or password (user:password@), which the AWS SDK never "
    "uses: {shown} (drop them; requests are signed with the credentials of --profile or of the "
    "environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY))"
)
QUERY = (
    "--endpoint-url has a query string or a fragment (?... or #...), which an endpoint cannot "
    "have: {shown} (write scheme://host[:port][/path], e.g. --endpoint-url "
    "http://127.0.0.1:9000)"
)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://user:hunter2@127.0.0.1:9000", CREDENTIALS.format(shown="http://127.0.0.1:9000")),
        ("https://hunter2@minio.internal/", CREDENTIALS.format(shown="https://minio.internal")),
        ("http://:hunter2@h:1", CREDENTIALS.format(shown="http://h:1")),
        ("http://h:1/?X-Amz-Signature=hunter2", QUERY.format(shown="http://h:1")),
        ("http://h:1?", QUERY.format(shown="http://h:1")),
        ("http://h:1/p#hunter2", QUERY.format(shown="http://h:1")),
    ],
)
def test_an_endpoint_with_credentials_a_query_or_a_fragment_is_a_usage_error(
    url: str, message: str
) -> None:
    """botocore refuses a query string ("internal error: EndpointResolutionError"), sends a
    fragment's requests to the wrong path, and never uses a user name or password: each is
    refused where the flag is read, without the secret."""
    with pytest.raises(UsageError) as caught:
        check_endpoint_url(url)
    assert (caught.value.one_line(), caught.value.exit_code) == (message, 2)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("localhost:9000", "localhost:9000"),
        ("http://[::1:9", "the endpoint"),
        ("http://127.0.0.1:99999", "the endpoint"),
        ("ftp://user:hunter2@files", "ftp://files"),
        ("http://", "http://"),
        ("s3.amazonaws.com", "s3.amazonaws.com"),
    ],
)
def test_an_endpoint_that_is_no_http_url_is_a_usage_error(url: str, shown: str) -> None:
    with pytest.raises(UsageError) as caught:
        check_endpoint_url(url)
    assert caught.value.one_line() == (
        f"--endpoint-url is not an http:// or https:// URL with a host: {shown} "
        "(write it whole, e.g. --endpoint-url http://127.0.0.1:9000)"
    )
    assert "hunter2" not in caught.value.one_line()


@pytest.mark.parametrize(
    "command",
    [
        ["ingest", "s3://trail/prefix", "--warehouse", "wh"],
        ["iam", "snapshot", "--warehouse", "wh"],
        ["sql", "select 1", "--warehouse", "s3://bucket/wh"],
    ],
)
def test_the_commands_refuse_a_malformed_endpoint_with_exit_2(
    tmp_path: Path, command: list[str]
) -> None:
    done = agenttrail(*command, "--endpoint-url", "localhost:9000", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "error: --endpoint-url is not an http:// or https:// URL with a host: localhost:9000 "
        "(write it whole, e.g. --endpoint-url http://127.0.0.1:9000)\n"
    )
    secret = agenttrail(
        *command, "--endpoint-url", "http://user:hunter2pass@127.0.0.1:9/?token=qsecret",
        "--debug", cwd=tmp_path,
    )  # fmt: skip
    assert (secret.returncode, secret.stdout) == (2, "")
    assert secret.stderr.splitlines()[-1] == (
        "error: " + CREDENTIALS.format(shown="http://127.0.0.1:9")
    )
    assert "hunter2pass" not in secret.stderr
    assert "qsecret" not in secret.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_warehouse_in_s3_that_cannot_be_reached_shows_no_endpoint_secret(
    tmp_path: Path,
) -> None:
    """The endpoint comes from the AWS configuration here (AWS_ENDPOINT_URL_S3), which
    --endpoint-url's check never sees: the error names its host alone, and so does --debug's
    traceback."""
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL_S3": "http://user:hunter2pass@127.0.0.1:9/?token=qsecret",
    }
    for debug in ([], ["--debug"]):
        done = agenttrail(
            "sql", "select 1", "--warehouse", "s3://bucket/wh", *debug, cwd=tmp_path, env=env
        )
        assert (done.returncode, done.stdout) == (1, "")
        assert done.stderr.splitlines()[-1] == (
            "error: cannot read s3://bucket/wh: Custom endpoint `http://127.0.0.1:9` was not a "
            "valid URI (check --endpoint-url, the network and the credentials)"
        )
        assert ("Traceback" in done.stderr) == bool(debug)
        assert "hunter2pass" not in done.stderr
        assert "qsecret" not in done.stderr


S3_CREDENTIALS = (
    "{what} {shown} has a user name or password before the bucket (USER:PASSWORD@), which "
    "agenttrail never uses (not shown here) (drop them; S3 requests are signed with the "
    "credentials of --profile or of the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY))"
)


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("s3://AKIAEXAMPLE:hunter2pass@trail/AWSLogs", "s3://trail/AWSLogs"),
        ("S3://AKIAEXAMPLE:hunter2pass@trail", "s3://trail"),
        ("s3://AKIAEXAMPLE@trail/AWSLogs/", "s3://trail/AWSLogs/"),
        # A secret key may hold a "/": the "bucket" is then the key id and part of the secret.
        ("s3://AKIAEXAMPLE:hunter2/pass@trail/AWSLogs", "s3://trail/AWSLogs"),
    ],
)
def test_an_s3_uri_with_credentials_is_a_usage_error_that_shows_none(uri: str, shown: str) -> None:
    with pytest.raises(UsageError) as caught:
        check_s3_uri(uri, "source")
    assert caught.value.one_line() == S3_CREDENTIALS.format(what="source", shown=shown)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    "uri", ["s3://trail/AWSLogs", "s3://trail/exports/a@b:c/", "/logs/user:pw@host", "s3://b"]
)
def test_an_s3_uri_without_credentials_passes(uri: str) -> None:
    """An "@" or ":" in a key is a key's; a local path is no URI."""
    check_s3_uri(uri, "source")


@pytest.mark.parametrize(
    ("command", "what"),
    [
        (["ingest", "s3://AKIAEXAMPLE:hunter2pass@trail/AWSLogs", "-w", "wh"], "source"),
        (["sql", "select 1", "-w", "s3://AKIAEXAMPLE:hunter2pass@trail/AWSLogs"], "--warehouse"),
        (
            ["query", "run", "coverage", "-w", "s3://AKIAEXAMPLE:hunter2pass@trail/AWSLogs"],
            "--warehouse",
        ),
    ],
)
def test_the_commands_refuse_s3_credentials_with_exit_2_and_never_show_them(
    tmp_path: Path, command: list[str], what: str
) -> None:
    """They were echoed back: "error: AWS client error while listing
    s3://AKIA...:SECRET@trail/...", and in --debug's traceback."""
    for debug in ([], ["--debug"]):
        done = agenttrail(*command, *debug, cwd=tmp_path)
        assert (done.returncode, done.stdout) == (2, ""), done.stderr
        assert done.stderr.splitlines()[-1] == "error: " + S3_CREDENTIALS.format(
            what=what, shown="s3://trail/AWSLogs"
        )
        assert "hunter2pass" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # ingest wrote no warehouse

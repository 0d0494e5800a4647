"""Shared fixtures. S3: one moto standalone server per test session (per xdist worker), spoken to
over real HTTP on 127.0.0.1, so the S3 path is tested through botocore's whole stack
(signing, pagination, retries, streaming bodies) rather than through in-process mocks.

moto's server answers about 200 requests/s: keep an S3 test to a few thousand keys at most and
upload with `put_objects` (a thread pool).
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

UPLOAD_THREADS = 8
# Variables that would let a developer's own AWS setup leak into (or be used by) the tests.
_AWS_VARIABLES_TO_UNSET = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start moto's S3-compatible server on a free port; yield its URL.

    Port 0 lets the OS pick a free port with no race. Dummy credentials and empty AWS config
    files are set for the whole session, so no test can reach a real account.
    """
    aws_dir = tmp_path_factory.mktemp("aws")
    (aws_dir / "config").write_text("")
    (aws_dir / "credentials").write_text("")
    with pytest.MonkeyPatch.context() as env:
        for name in _AWS_VARIABLES_TO_UNSET:
            env.delenv(name, raising=False)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_SESSION_TOKEN", "testing")
        env.setenv("AWS_SECURITY_TOKEN", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.setenv("AWS_CONFIG_FILE", str(aws_dir / "config"))
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(aws_dir / "credentials"))
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        # werkzeug logs every request; a failing test's captured log should show ours.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
def s3_endpoint(moto_server: str) -> str:
    """The server's URL, with every bucket of earlier tests gone."""
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    return moto_server


@pytest.fixture
def make_bucket(s3_endpoint: str) -> Callable[[str], S3Client]:
    """`make_bucket(name)`: create a bucket on the server and return a boto3 client for it."""

    def make(name: str) -> S3Client:
        client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
        client.create_bucket(Bucket=name)
        return client

    return make


PutObjects = Callable[..., None]


@pytest.fixture
def put_objects() -> PutObjects:
    """`put_objects(client, bucket, {key: body}, metadata=None)`: upload through a thread pool
    (the server is slow per request, not per byte)."""

    def put(
        client: S3Client,
        bucket: str,
        objects: Mapping[str, bytes],
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        extra: dict[str, Any] = {"Metadata": dict(metadata)} if metadata else {}

        def one(item: tuple[str, bytes]) -> None:
            client.put_object(Bucket=bucket, Key=item[0], Body=item[1], **extra)

        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            list(pool.map(one, objects.items()))

    return put

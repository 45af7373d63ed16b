"""Pure parsing: URIs and credentials."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from slipway.storage import StorageCredentials, parse_uri


@pytest.mark.parametrize(
    ("uri", "scheme", "bucket", "prefix", "account"),
    [
        ("s3://models/penguins/3", "s3", "models", "penguins/3", None),
        ("gs://my-bucket", "gs", "my-bucket", "", None),
        ("az://models@myaccount/penguins/", "az", "models", "penguins/", "myaccount"),
        ("az://models/penguins", "az", "models", "penguins", None),
        ("file:///var/models/x", "file", "", "/var/models/x", None),
    ],
)
def test_parse_uri(uri: str, scheme: str, bucket: str, prefix: str, account: str | None) -> None:
    parsed = parse_uri(uri)
    assert (parsed.scheme, parsed.bucket, parsed.prefix, parsed.account) == (scheme, bucket, prefix, account)
    assert str(parsed) == uri


@pytest.mark.parametrize(
    ("uri", "names"),
    [
        ("models/penguins", "no scheme"),
        ("http://host/x", "unsupported scheme 'http'"),
        ("s3:///prefix", "missing bucket name"),
        ("az:///prefix", "missing container name"),
        ("s3://Bad_Bucket/x", "invalid bucket name"),
        ("gs://bucket/a//b", "empty path segment"),
        ("s3://bucket/a/../b", "'..'"),
        ("file://host/x", "take no host"),
        ("file://relative", "take no host"),
        ("az://cont@Not-An-Account/x", "invalid storage account"),
    ],
)
def test_parse_uri_names_the_bad_part(uri: str, names: str) -> None:
    with pytest.raises(ValueError, match="storage URI") as error:
        parse_uri(uri)
    assert names in str(error.value)


def test_credentials_from_secret_data_decode_and_keep_secrets_out_of_repr() -> None:
    encoded = {
        k: base64.b64encode(v.encode()).decode()
        for k, v in {
            "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "very-secret-value",
            "AWS_ENDPOINT_URL": "http://minio:9000",
            "AZURE_STORAGE_ACCOUNT_NAME": "acct",
        }.items()
    }
    credentials = StorageCredentials.from_secret_data(encoded)
    assert credentials.aws_access_key_id == "AKIAEXAMPLE"
    assert credentials.aws_secret_access_key == "very-secret-value"
    assert credentials.aws_endpoint_url == "http://minio:9000"
    assert credentials.azure_account_name == "acct"
    assert "very-secret-value" not in repr(credentials)
    assert "aws_secret_access_key" in credentials.names()


def test_credentials_reject_bad_base64_naming_the_key_only() -> None:
    with pytest.raises(ValueError, match="'AWS_SECRET_ACCESS_KEY'") as error:
        StorageCredentials.from_secret_data({"AWS_SECRET_ACCESS_KEY": "not base64!!"})
    assert "not base64!!" not in str(error.value)


def test_explicit_credentials_win_over_the_environment() -> None:
    given = StorageCredentials(aws_region="eu-west-1")
    merged = given.merged_over(
        StorageCredentials.from_env({"AWS_REGION": "us-east-2", "AWS_ACCESS_KEY_ID": "x"})
    )
    assert merged.aws_region == "eu-west-1"
    assert merged.aws_access_key_id == "x"


def test_sdk_errors_are_translated_naming_the_uri() -> None:
    """The error mapping for answers the loopback servers do not give (moto does not check signatures)."""
    from botocore.exceptions import ClientError
    from google.api_core import exceptions as google_exceptions

    from slipway.storage import AccessDenied, BucketNotFound, ObjectNotFound, StorageCredentials
    from slipway.storage.gcs import GCSStore
    from slipway.storage.s3 import S3Store

    s3 = S3Store(parse_uri("s3://bucket/models"), StorageCredentials(aws_endpoint_url="http://127.0.0.1:9"))

    def client_error(code: str, status: int) -> ClientError:
        return ClientError(
            {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject"
        )

    uri = "s3://bucket/models/x"
    assert isinstance(s3.translate(client_error("AccessDenied", 403), uri), AccessDenied)
    assert isinstance(s3.translate(client_error("NoSuchBucket", 404), uri), BucketNotFound)
    assert isinstance(s3.translate(client_error("NoSuchKey", 404), uri), ObjectNotFound)
    assert s3.is_transient(client_error("SlowDown", 503))
    assert not s3.is_transient(client_error("AccessDenied", 403))
    denied = s3.translate(client_error("SignatureDoesNotMatch", 403), uri)
    assert denied is not None and str(denied) == f"{uri}: access denied (SignatureDoesNotMatch)"

    gcs = GCSStore(
        parse_uri("gs://bucket/models"), StorageCredentials(storage_emulator_host="http://127.0.0.1:9")
    )
    assert isinstance(gcs.translate(google_exceptions.Forbidden("no"), "gs://bucket/models/x"), AccessDenied)
    assert gcs.is_transient(google_exceptions.TooManyRequests("slow down"))
    assert not gcs.is_transient(google_exceptions.Forbidden("no"))


def test_retry_policy_retries_transient_failures_only() -> None:
    from slipway.storage import RetryPolicy

    calls: list[str] = []

    def failing(times: int, error: Exception) -> Callable[[], str]:
        def operation() -> str:
            calls.append("call")
            if len(calls) <= times:
                raise error
            return "ok"

        return operation

    def transient(error: BaseException) -> bool:
        return isinstance(error, ConnectionError)

    policy = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.01)
    assert policy.call(failing(2, ConnectionResetError("reset by peer")), transient) == "ok"
    assert len(calls) == 3

    calls.clear()
    with pytest.raises(PermissionError):
        policy.call(failing(9, PermissionError("no")), transient)
    assert len(calls) == 1  # not transient: no retry

    calls.clear()
    with pytest.raises(ConnectionResetError):
        policy.call(failing(9, ConnectionResetError()), transient)
    assert len(calls) == 4  # gives up after `attempts`

"""s3://bucket/prefix on boto3: AWS S3 and S3-compatible stores (MinIO, Ceph, moto) at a custom endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from slipway.storage.base import ObjectInfo, ObjectStore, RetryPolicy, is_network_error
from slipway.storage.credentials import StorageCredentials
from slipway.storage.errors import AccessDenied, BucketNotFound, ObjectNotFound, StorageError
from slipway.storage.uri import ParsedUri

_STREAM_CHUNK = 1 << 20
_THROTTLING = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests"}
_SERVER_SIDE = {"InternalError", "ServiceUnavailable", "RequestTimeout", "500", "502", "503", "504"}


def s3_client(credentials: StorageCredentials, max_connections: int = 32) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        max_pool_connections=max_connections,
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=10,
        read_timeout=60,
        # Custom endpoints (MinIO, moto, Ceph) rarely have wildcard DNS for virtual-hosted buckets.
        s3={"addressing_style": "path" if credentials.aws_endpoint_url else "auto"},
    )
    session = boto3.session.Session(
        aws_access_key_id=credentials.aws_access_key_id,
        aws_secret_access_key=credentials.aws_secret_access_key,
        aws_session_token=credentials.aws_session_token,
        region_name=credentials.aws_region or "us-east-1",
    )
    return session.client("s3", endpoint_url=credentials.aws_endpoint_url, config=config)


class S3Store(ObjectStore):
    def __init__(
        self, location: ParsedUri, credentials: StorageCredentials, retry: RetryPolicy | None = None
    ) -> None:
        super().__init__(location, retry)
        self.client = s3_client(credentials)
        self.bucket = location.bucket

    def translate(self, error: Exception, uri: str) -> StorageError | None:
        from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

        if isinstance(error, NoCredentialsError | PartialCredentialsError):
            return AccessDenied(uri, "no S3 credentials found (Secret, environment or IRSA)")
        if not isinstance(error, ClientError):
            return None
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket":
            return BucketNotFound(uri, f"bucket {self.bucket!r} does not exist")
        if code in ("NoSuchKey", "404", "NotFound"):
            return ObjectNotFound(uri, "no such object")
        if code in (
            "AccessDenied",
            "403",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AllAccessDisabled",
        ):
            return AccessDenied(uri, f"access denied ({code})")
        return StorageError(uri, f"S3 error {code or status}")

    def is_transient(self, error: BaseException) -> bool:
        from botocore.exceptions import (
            ClientError,
            ConnectionClosedError,
            EndpointConnectionError,
            IncompleteReadError,
            ReadTimeoutError,
            ResponseStreamingError,
        )
        from urllib3.exceptions import HTTPError, ProtocolError

        if is_network_error(error):
            return True
        if isinstance(
            error,
            ConnectionClosedError
            | EndpointConnectionError
            | IncompleteReadError
            | ReadTimeoutError
            | ResponseStreamingError
            | ProtocolError
            | HTTPError
            | ConnectionError,
        ):
            return True
        if isinstance(error, ClientError):
            code = str(error.response.get("Error", {}).get("Code", ""))
            return code in _THROTTLING or code in _SERVER_SIDE
        return False

    def _info_from(self, key: str, size: int, etag: str, updated: Any) -> ObjectInfo:
        etag = etag.strip('"')
        md5 = etag if len(etag) == 32 and "-" not in etag else None
        return self.info(key, size, etag, md5, updated)

    def _list(self, full_prefix: str) -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
            for item in page.get("Contents", []):
                yield self._info_from(item["Key"], item["Size"], item["ETag"], item.get("LastModified"))

    def _stat(self, full_key: str) -> ObjectInfo | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=full_key)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
                self._check_bucket()
                return None
            raise
        return self._info_from(full_key, head["ContentLength"], head["ETag"], head.get("LastModified"))

    def _check_bucket(self) -> None:
        """HEAD on a missing key answers 404 whether or not the bucket exists; tell the two apart."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in ("404", "NoSuchBucket", "NotFound"):
                raise BucketNotFound(self.location.root, f"bucket {self.bucket!r} does not exist") from error
            raise

    def _read(self, full_key: str) -> bytes:
        body = self.client.get_object(Bucket=self.bucket, Key=full_key)["Body"]
        data: bytes = body.read()
        return data

    def _write(self, full_key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=full_key, Body=data)

    def _upload_file(self, full_key: str, path: str) -> None:
        self.client.upload_file(path, self.bucket, full_key)

    def _download(self, full_key: str, out: BinaryIO, start: int = 0, length: int | None = None) -> None:
        arguments: dict[str, Any] = {"Bucket": self.bucket, "Key": full_key}
        if start or length is not None:
            end = "" if length is None else str(start + length - 1)
            arguments["Range"] = f"bytes={start}-{end}"
        if length == 0:
            return
        body = self.client.get_object(**arguments)["Body"]
        for chunk in body.iter_chunks(_STREAM_CHUNK):
            out.write(chunk)

    def _delete(self, full_key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=full_key)

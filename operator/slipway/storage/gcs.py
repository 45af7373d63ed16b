"""gs://bucket/prefix on the GCS SDK: GCS, or an emulator (fake-gcs-server) at STORAGE_EMULATOR_HOST."""

from __future__ import annotations

import base64
import importlib
import json
from collections.abc import Iterator
from typing import Any, BinaryIO

from slipway.storage.base import ObjectInfo, ObjectStore, RetryPolicy, is_network_error
from slipway.storage.credentials import StorageCredentials
from slipway.storage.errors import AccessDenied, BucketNotFound, ObjectNotFound, StorageError
from slipway.storage.uri import ParsedUri


def gcs_client(credentials: StorageCredentials, max_connections: int = 32) -> Any:
    import requests.adapters
    from google.auth.credentials import AnonymousCredentials

    # Imported by name: whether mypy sees google.cloud as a namespace package depends on what else is
    # installed (the TensorFlow stack adds to it), which made a type: ignore necessary in one venv only.
    storage = importlib.import_module("google.cloud.storage")

    project = credentials.google_project
    if credentials.storage_emulator_host:
        client = storage.Client(
            project=project or "slipway",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": credentials.storage_emulator_host},
        )
    elif credentials.google_credentials:
        from google.oauth2 import service_account

        value = credentials.google_credentials
        if value.lstrip().startswith("{"):
            info = json.loads(value)
            account = service_account.Credentials.from_service_account_info(info)
        else:
            account = service_account.Credentials.from_service_account_file(value)
        client = storage.Client(project=project or account.project_id, credentials=account)
    else:
        client = storage.Client(project=project)  # Application Default Credentials: GKE Workload Identity
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=max_connections)
    client._http.mount("https://", adapter)
    client._http.mount("http://", adapter)
    return client


class GCSStore(ObjectStore):
    def __init__(
        self, location: ParsedUri, credentials: StorageCredentials, retry: RetryPolicy | None = None
    ) -> None:
        super().__init__(location, retry)
        self.client = gcs_client(credentials)
        self.bucket = self.client.bucket(location.bucket)

    def translate(self, error: Exception, uri: str) -> StorageError | None:
        from google.api_core import exceptions
        from google.auth.exceptions import DefaultCredentialsError

        if isinstance(error, DefaultCredentialsError):
            return AccessDenied(uri, "no GCS credentials found (Secret, environment or workload identity)")
        if isinstance(error, exceptions.NotFound):
            text = str(error).lower()
            if (
                "bucket" in text
                and ("not found" in text or "does not exist" in text)
                and "object" not in text
            ):
                return BucketNotFound(uri, f"bucket {self.location.bucket!r} does not exist")
            return ObjectNotFound(uri, "no such object")
        if isinstance(error, exceptions.Forbidden | exceptions.Unauthorized):
            return AccessDenied(uri, f"access denied ({getattr(error, 'code', '403')})")
        if isinstance(error, exceptions.GoogleAPICallError):
            return StorageError(uri, f"GCS error {getattr(error, 'code', '')}".strip())
        return None

    def is_transient(self, error: BaseException) -> bool:
        import requests
        from google.api_core import exceptions
        from google.resumable_media import common as media_common

        if is_network_error(error):
            return True
        if isinstance(
            error,
            exceptions.TooManyRequests
            | exceptions.InternalServerError
            | exceptions.BadGateway
            | exceptions.ServiceUnavailable
            | exceptions.GatewayTimeout
            | requests.ConnectionError
            | requests.Timeout
            | requests.exceptions.ChunkedEncodingError
            | ConnectionError
            | media_common.DataCorruption,
        ):
            return True
        if isinstance(error, media_common.InvalidResponse):
            return getattr(error.response, "status_code", 0) in (408, 429, 500, 502, 503, 504)
        return False

    def _info_from(self, blob: Any) -> ObjectInfo:
        md5 = base64.b64decode(blob.md5_hash).hex() if blob.md5_hash else None
        crc32c = base64.b64decode(blob.crc32c).hex() if blob.crc32c else None
        etag = f"{blob.etag or ''}/{blob.generation}"
        return self.info(blob.name, int(blob.size or 0), etag, md5, blob.updated, crc32c)

    def _list(self, full_prefix: str) -> Iterator[ObjectInfo]:
        for blob in self.client.list_blobs(self.bucket, prefix=full_prefix or None):
            yield self._info_from(blob)

    def _stat(self, full_key: str) -> ObjectInfo | None:
        blob = self.bucket.get_blob(full_key)
        if blob is None:
            if not self.bucket.exists():
                raise BucketNotFound(self.location.root, f"bucket {self.location.bucket!r} does not exist")
            return None
        return self._info_from(blob)

    def _read(self, full_key: str) -> bytes:
        data: bytes = self.bucket.blob(full_key).download_as_bytes(checksum="md5")
        return data

    def _write(self, full_key: str, data: bytes) -> None:
        self.bucket.blob(full_key).upload_from_string(data, content_type="application/octet-stream")

    def _upload_file(self, full_key: str, path: str) -> None:
        self.bucket.blob(full_key).upload_from_filename(path, content_type="application/octet-stream")

    def _download(self, full_key: str, out: BinaryIO, start: int = 0, length: int | None = None) -> None:
        if length == 0:
            return
        # A blob built locally (not fetched) has no mediaLink: the download goes to the client's endpoint.
        blob = self.bucket.blob(full_key)
        ranged = bool(start) or length is not None
        end = None if length is None else start + length - 1
        blob.download_to_file(
            out,
            start=start if ranged else None,
            end=end,
            checksum=None,  # download_tree checks sizes and MD5s itself (once, not twice)
            raw_download=True,
            retry=None,  # a dropped range is retried (from its start) by the store's RetryPolicy
        )

    def _delete(self, full_key: str) -> None:
        self.bucket.blob(full_key).delete()

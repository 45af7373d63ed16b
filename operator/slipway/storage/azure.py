"""az://container/prefix on azure-storage-blob. The account comes from the credentials (connection string,
AZURE_STORAGE_ACCOUNT) or from the URI itself: az://container@account/prefix."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

from slipway.storage.base import ObjectInfo, ObjectStore, RetryPolicy, is_network_error
from slipway.storage.credentials import StorageCredentials
from slipway.storage.errors import AccessDenied, BucketNotFound, ObjectNotFound, StorageError
from slipway.storage.uri import ParsedUri


def blob_service_client(
    credentials: StorageCredentials, account: str | None = None, max_connections: int = 32
) -> Any:
    import requests
    import requests.adapters
    from azure.core.pipeline.transport import RequestsTransport
    from azure.storage.blob import BlobServiceClient, LinearRetry

    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=max_connections)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    options: dict[str, Any] = {
        "transport": RequestsTransport(session=session, session_owner=False),
        # Short SDK-level retries: the callers (RetryPolicy) retry whole operations with their own backoff.
        "retry_policy": LinearRetry(backoff=1, random_jitter_range=1, retry_total=2),
        "max_single_get_size": 8 << 20,
        "max_chunk_get_size": 8 << 20,
    }
    if credentials.azure_connection_string and not account:
        return BlobServiceClient.from_connection_string(credentials.azure_connection_string, **options)
    account = account or credentials.azure_account_name
    if not account:
        raise ValueError(
            "az:// needs a storage account: AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT, "
            "or az://<container>@<account>/<prefix>"
        )
    endpoint = credentials.azure_blob_endpoint or f"https://{account}.blob.core.windows.net"
    credential: Any
    if credentials.azure_account_key:
        credential = {"account_name": account, "account_key": credentials.azure_account_key}
    elif credentials.azure_sas_token:
        credential = credentials.azure_sas_token
    else:
        credential = token_credential(os.environ)
    return BlobServiceClient(account_url=endpoint, credential=credential, **options)


# What Azure Workload Identity's webhook injects into a pod labelled azure.workload.identity/use: "true".
WORKLOAD_IDENTITY_ENV = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE")


def token_credential(environ: Mapping[str, str]) -> Any:
    """Azure AD credentials without a key: the pod's federated workload identity token when the webhook
    injected it (no probing of other sources), else azure-identity's default chain."""
    from azure.identity import DefaultAzureCredential, WorkloadIdentityCredential

    if all(environ.get(name) for name in WORKLOAD_IDENTITY_ENV):
        return WorkloadIdentityCredential(
            tenant_id=environ["AZURE_TENANT_ID"],
            client_id=environ["AZURE_CLIENT_ID"],
            token_file_path=environ["AZURE_FEDERATED_TOKEN_FILE"],
        )
    return DefaultAzureCredential()


class AzureBlobStore(ObjectStore):
    def __init__(
        self, location: ParsedUri, credentials: StorageCredentials, retry: RetryPolicy | None = None
    ) -> None:
        super().__init__(location, retry)
        self.service = blob_service_client(credentials, location.account)
        self.container = self.service.get_container_client(location.bucket)

    def translate(self, error: Exception, uri: str) -> StorageError | None:
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

        code = str(getattr(error, "error_code", "") or "")
        if isinstance(error, ResourceNotFoundError):
            if code == "ContainerNotFound":
                return BucketNotFound(uri, f"container {self.location.bucket!r} does not exist")
            return ObjectNotFound(uri, "no such object")
        if isinstance(error, ClientAuthenticationError) or (
            isinstance(error, HttpResponseError) and error.status_code == 403
        ):
            return AccessDenied(uri, f"access denied ({code or 403})")
        if isinstance(error, HttpResponseError):
            return StorageError(uri, f"Azure Blob error {code or error.status_code}")
        return None

    def is_transient(self, error: BaseException) -> bool:
        from azure.core.exceptions import (
            HttpResponseError,
            IncompleteReadError,
            ServiceRequestError,
            ServiceResponseError,
        )
        from requests.exceptions import ChunkedEncodingError
        from requests.exceptions import ConnectionError as RequestsConnectionError

        if is_network_error(error):
            return True
        if isinstance(
            error,
            ServiceRequestError
            | ServiceResponseError
            | IncompleteReadError
            | ChunkedEncodingError
            | RequestsConnectionError
            | ConnectionError,
        ):
            return True
        return isinstance(error, HttpResponseError) and error.status_code in (408, 429, 500, 502, 503, 504)

    def _info_from(self, props: Any) -> ObjectInfo:
        md5_bytes = props.content_settings.content_md5 if props.content_settings else None
        md5 = bytes(md5_bytes).hex() if md5_bytes else None
        etag = str(props.etag).strip('"')
        return self.info(props.name, int(props.size), etag, md5, props.last_modified)

    def _list(self, full_prefix: str) -> Iterator[ObjectInfo]:
        for props in self.container.list_blobs(name_starts_with=full_prefix or None):
            yield self._info_from(props)

    def _stat(self, full_key: str) -> ObjectInfo | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            props = self.container.get_blob_client(full_key).get_blob_properties()
        except ResourceNotFoundError:
            if not self.container.exists():
                raise BucketNotFound(
                    self.location.root, f"container {self.location.bucket!r} does not exist"
                ) from None
            return None
        return self._info_from(props)

    def _read(self, full_key: str) -> bytes:
        data: bytes = self.container.download_blob(full_key, max_concurrency=1).readall()
        return data

    def _write(self, full_key: str, data: bytes) -> None:
        self.container.upload_blob(full_key, data, overwrite=True)

    def _upload_file(self, full_key: str, path: str) -> None:
        with open(path, "rb") as handle:
            self.container.upload_blob(full_key, handle, overwrite=True, max_concurrency=4)

    def _download(self, full_key: str, out: BinaryIO, start: int = 0, length: int | None = None) -> None:
        if length == 0:
            return
        downloader = self.container.download_blob(
            full_key, offset=start if start or length is not None else None, length=length, max_concurrency=1
        )
        downloader.readinto(out)

    def _delete(self, full_key: str) -> None:
        self.container.delete_blob(full_key)

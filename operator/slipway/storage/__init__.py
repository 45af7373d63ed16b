"""One interface over s3://, gs://, az:// and file:// (see docs/storage.md).

    store = open_store("s3://bucket/models/penguins", credentials)
    store.write_bytes("3/slipway-manifest.json", data)
    [info.key for info in store.list("3/")]
    store.fingerprint()            # changes when anything under the prefix lands or changes

Everything here is blocking: call it from async handlers through `asyncio.to_thread`.
"""

from __future__ import annotations

from slipway.storage.base import ObjectInfo, ObjectStore, RetryPolicy, listing_fingerprint
from slipway.storage.credentials import StorageCredentials
from slipway.storage.errors import (
    AccessDenied,
    BucketNotFound,
    IntegrityError,
    ObjectNotFound,
    StorageError,
    TransientError,
)
from slipway.storage.transfer import copy_tree, download_tree, upload_tree
from slipway.storage.uri import ParsedUri, parse_uri

__all__ = [
    "AccessDenied",
    "BucketNotFound",
    "IntegrityError",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "ParsedUri",
    "RetryPolicy",
    "StorageCredentials",
    "StorageError",
    "TransientError",
    "copy_tree",
    "download_tree",
    "listing_fingerprint",
    "open_store",
    "parse_uri",
    "upload_tree",
]


def open_store(
    uri: str, credentials: StorageCredentials | None = None, retry: RetryPolicy | None = None
) -> ObjectStore:
    """The store for `uri`. Without credentials, the environment's (then the SDK default chain's) are used;
    given credentials are completed from the environment where they leave a field blank."""
    location = parse_uri(uri)
    from_env = StorageCredentials.from_env()
    effective = from_env if credentials is None else credentials.merged_over(from_env)
    if location.scheme == "s3":
        from slipway.storage.s3 import S3Store

        return S3Store(location, effective, retry)
    if location.scheme == "gs":
        from slipway.storage.gcs import GCSStore

        return GCSStore(location, effective, retry)
    if location.scheme == "az":
        from slipway.storage.azure import AzureBlobStore

        return AzureBlobStore(location, effective, retry)
    from slipway.storage.local import FileStore

    return FileStore(location, retry)

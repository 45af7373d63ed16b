"""Credentials for the object stores, from a Kubernetes Secret's data or the environment.

Recognised keys (the same names as environment variables, so a Secret works both through the operator and
as `envFrom` in the puller's init container):

S3      AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION (or AWS_DEFAULT_REGION),
        AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3) for S3-compatible stores (MinIO, Ceph, R2, ...)
GCS     GOOGLE_APPLICATION_CREDENTIALS (the service-account JSON itself, or a path to it),
        GOOGLE_CLOUD_PROJECT, STORAGE_EMULATOR_HOST (a fake-gcs-server / emulator URL)
Azure   AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT (or AZURE_STORAGE_ACCOUNT_NAME) with
        AZURE_STORAGE_KEY (or AZURE_STORAGE_ACCOUNT_KEY) or AZURE_STORAGE_SAS_TOKEN;
        AZURE_STORAGE_BLOB_ENDPOINT overrides https://<account>.blob.core.windows.net

Whatever is absent falls back to the SDK's default chain: IRSA / instance profile for S3, Application
Default Credentials (GKE Workload Identity) for GCS, azure-identity's DefaultAzureCredential (Azure
Workload Identity) for Azure.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

_ALIASES: dict[str, tuple[str, ...]] = {
    "aws_access_key_id": ("AWS_ACCESS_KEY_ID",),
    "aws_secret_access_key": ("AWS_SECRET_ACCESS_KEY",),
    "aws_session_token": ("AWS_SESSION_TOKEN",),
    "aws_region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    "aws_endpoint_url": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    "google_credentials": ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_SERVICE_ACCOUNT_JSON"),
    "google_project": ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"),
    "storage_emulator_host": ("STORAGE_EMULATOR_HOST",),
    "azure_connection_string": ("AZURE_STORAGE_CONNECTION_STRING",),
    "azure_account_name": ("AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_ACCOUNT_NAME"),
    "azure_account_key": ("AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT_KEY"),
    "azure_sas_token": ("AZURE_STORAGE_SAS_TOKEN",),
    "azure_blob_endpoint": ("AZURE_STORAGE_BLOB_ENDPOINT",),
}
# Every variable (and Secret key) read above: what a pipeline step's environment may be given.
ENV_NAMES = frozenset(name for names in _ALIASES.values() for name in names)


@dataclass(frozen=True)
class StorageCredentials:
    """Everything optional; secrets are kept out of repr() so they never reach a log line."""

    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    aws_region: str | None = None
    aws_endpoint_url: str | None = None
    google_credentials: str | None = field(default=None, repr=False)
    google_project: str | None = None
    storage_emulator_host: str | None = None
    azure_connection_string: str | None = field(default=None, repr=False)
    azure_account_name: str | None = None
    azure_account_key: str | None = field(default=None, repr=False)
    azure_sas_token: str | None = field(default=None, repr=False)
    azure_blob_endpoint: str | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, str | bytes]) -> StorageCredentials:
        """From decoded key/value pairs (a Secret's `stringData`, or the environment)."""
        values: dict[str, str] = {}
        for name, keys in _ALIASES.items():
            for key in keys:
                raw = data.get(key)
                if raw is None:
                    continue
                value = raw.decode() if isinstance(raw, bytes) else raw
                if value.strip():
                    values[name] = value.strip()
                    break
        return cls(**values)

    @classmethod
    def from_secret_data(cls, data: Mapping[str, str | bytes]) -> StorageCredentials:
        """From a Kubernetes Secret's `data` (values base64-encoded, as the API returns them)."""
        decoded: dict[str, bytes] = {}
        for key, value in data.items():
            try:
                decoded[key] = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError) as error:
                raise ValueError(f"Secret key {key!r}: value is not valid base64") from error
        return cls.from_mapping(decoded)

    @classmethod
    def for_location(
        cls, secret_data: Mapping[str, str | bytes] | None, endpoint: str | None = None
    ) -> StorageCredentials:
        """What a storage location names itself: its Secret's keys (`data`, base64) and its S3-compatible
        endpoint, which wins over one in the Secret (as `env` wins over `envFrom` in the model puller)."""
        named = cls.from_secret_data(secret_data) if secret_data is not None else cls()
        return cls(aws_endpoint_url=endpoint).merged_over(named)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StorageCredentials:
        return cls.from_mapping(os.environ if environ is None else environ)

    def merged_over(self, fallback: StorageCredentials) -> StorageCredentials:
        """These values, with the blanks filled from `fallback`."""
        return StorageCredentials(
            **{f.name: getattr(self, f.name) or getattr(fallback, f.name) for f in fields(self)}
        )

    def to_env(self) -> dict[str, str]:
        """The environment variables that carry these credentials (the first name of each key above)."""
        return {_ALIASES[f.name][0]: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}

    def names(self) -> list[str]:
        """Which fields are set (names only: safe to log)."""
        return [f.name for f in fields(self) if getattr(self, f.name)]

"""Azure Workload Identity: a pod the webhook set up reads Blob storage with its federated token."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.identity import DefaultAzureCredential, WorkloadIdentityCredential

from slipway.storage.azure import blob_service_client, token_credential
from slipway.storage.credentials import StorageCredentials


@pytest.fixture
def webhook_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What the azure-workload-identity webhook injects into a labelled pod."""
    token = tmp_path / "azure-identity-token"
    token.write_text("eyJhbGciOi.federated.token")
    monkeypatch.setenv("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001")
    monkeypatch.setenv("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000002")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token))
    return token


def test_a_pod_with_workload_identity_uses_its_federated_token(webhook_env: Path) -> None:
    service = blob_service_client(StorageCredentials(), account="models")
    assert isinstance(service.credential, WorkloadIdentityCredential)
    assert service.url.startswith("https://models.blob.core.windows.net")


def test_without_the_webhooks_variables_the_default_chain_is_used() -> None:
    assert isinstance(token_credential({}), DefaultAzureCredential)
    partial = {"AZURE_CLIENT_ID": "x", "AZURE_TENANT_ID": "y"}  # no token file: not workload identity
    assert isinstance(token_credential(partial), DefaultAzureCredential)


def test_a_key_in_the_secret_wins_over_workload_identity(webhook_env: Path) -> None:
    service = blob_service_client(StorageCredentials(azure_account_name="models", azure_account_key="a2V5"))
    assert not isinstance(service.credential, WorkloadIdentityCredential)

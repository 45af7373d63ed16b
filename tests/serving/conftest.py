"""Serving tests' own fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from serving_cluster import Env

from fixtures.crds import install_third_party_crd


@pytest.fixture(scope="session")
def gateway_api(api_client: client.ApiClient) -> None:
    install_third_party_crd(api_client, "gateway-api", "httproutes")


@pytest.fixture
def env(api_client: client.ApiClient, namespace: str, tmp_path: Path) -> Env:
    return Env(api_client, namespace, tmp_path / "models")


@pytest.fixture
def operator(serving_operator: Any) -> Any:
    return serving_operator

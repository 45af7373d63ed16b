"""Serving tests' own fixtures."""

from __future__ import annotations

import pytest
from kubernetes import client

from fixtures.crds import install_third_party_crd


@pytest.fixture(scope="session")
def gateway_api(api_client: client.ApiClient) -> None:
    install_third_party_crd(api_client, "gateway-api", "httproutes")

"""Serving tests' own fixtures: the Gateway API CRDs, fetched by hack/gateway-api-crds.sh."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from kubernetes import client

from slipway.devcluster.install import apply_crds, load_crds

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def gateway_api(api_client: client.ApiClient) -> None:
    directory = subprocess.run(
        ["bash", str(REPO / "hack" / "gateway-api-crds.sh")], capture_output=True, text=True, check=True
    ).stdout.strip()
    crds = [c for c in load_crds(Path(directory)) if c["metadata"]["name"].startswith("httproutes.")]
    apply_crds(api_client, crds)

"""Shared fixtures, and the test tiers.

Each concern keeps its fixtures in tests/fixtures/<concern>.py, registered here. Tiers are marked from what a
test uses: a test whose fixtures reach `cluster` is `cluster` (the embedded control plane with kwok), one that
reaches `real_cluster` is `e2e` (a real node), one that runs Argo CD's binary (`argocd_bin`) and nothing
heavier is `argocd`. The few modules that start a cluster or node of their own, and
those that need TensorFlow, say so with `pytestmark`. `make unit` runs the rest."""

from __future__ import annotations

import pytest

pytest_plugins = [
    "fixtures.cluster",
    "fixtures.operator",
    "fixtures.tfserving",
    "fixtures.images",
    "fixtures.modelserver",
    "fixtures.captures",
    "fixtures.storage",
    "fixtures.kfp_backend",
    "fixtures.prometheus",
    "fixtures.realnode",
    "fixtures.argocd",
]

TIER_FIXTURES = {"real_cluster": "e2e", "slipway_images": "e2e", "cluster": "cluster", "argocd_bin": "argocd"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for fixture, marker in TIER_FIXTURES.items():
            if fixture in used:
                item.add_marker(marker)
                break

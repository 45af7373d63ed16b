"""A reconcile planned from an endpoint body older than the API server's writes nothing: a replica resuming
from a peering pause (or a watch relisting) can reconcile from its body of before the pause, whose status
does not claim the versions deployed since, and it once deleted the stable Deployment (tests/faults)."""

from __future__ import annotations

from typing import Any

import pytest

from slipway import GROUP, VERSION
from slipway.serving import controller
from slipway.serving.children import ChildSummary
from slipway.views import VersionInfo


def endpoint(resource_version: str, stable: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ServingEndpoint",
        "metadata": {"name": "web", "namespace": "ns", "uid": "u-1", "resourceVersion": resource_version},
        "spec": {"modelName": "penguins", "replicas": 2},
        "status": {"stableVersion": stable, "observedGeneration": 1},
    }


def test_a_reconcile_from_a_stale_body_writes_and_deletes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[str] = []
    monkeypatch.setattr(controller.kube, "get", lambda kind, ns, name: endpoint("200", stable=6))
    for verb in ("create_or_patch", "delete", "write_status", "patch_status"):
        monkeypatch.setattr(controller.kube, verb, lambda *a, verb=verb, **k: writes.append(verb))
    remembered: list[dict[str, Any]] = []
    stale = endpoint("100", stable=2)  # its status predates v6's promotion
    versions = [VersionInfo(f"penguins-v{v}", v, "Validated", f"file:///m/{v}") for v in (2, 6)]
    children = [ChildSummary("Deployment", "web-v6", "h", version=6, replicas=2, ready=2)]
    result = controller.reconcile(
        stale,
        versions,
        children,
        lambda *event: writes.append("event"),
        lambda kind, body: remembered.append(body),
    )
    assert writes == []
    assert result is stale and [b["metadata"]["resourceVersion"] for b in remembered] == ["200"]

"""kustomize renders the base and every overlay cleanly, with what each platform needs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from slipway.devcluster.binaries import find_tool

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"


def render(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(find_tool("kubectl")), "kustomize", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def test_base_renders_the_operator_and_its_least_privilege_rbac() -> None:
    docs = render(MANIFESTS / "base")
    crds = {d["metadata"]["name"] for d in by_kind(docs, "CustomResourceDefinition")}
    assert crds == {
        "trainingpipelines.slipway.dev",
        "modelversions.slipway.dev",
        "servingendpoints.slipway.dev",
        "clusterkopfpeerings.kopf.dev",
    }
    (deployment,) = by_kind(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "ghcr.io/slipway-dev/slipway:0.1.0"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    # Found on a real node: the slipway-metrics Service's link variable SLIPWAY_METRICS_PORT=tcp://... crashed
    # the operator's settings.
    assert pod["enableServiceLinks"] is False
    operator_role = next(
        d for d in by_kind(docs, "ClusterRole") if d["metadata"]["name"] == "slipway-operator"
    )
    assert all("secrets" not in rule["resources"] for rule in operator_role["rules"])
    assert all("*" not in rule["verbs"] and "*" not in rule["resources"] for rule in operator_role["rules"])
    roles = {d["metadata"]["name"] for d in by_kind(docs, "ClusterRole")}
    for kind in ("trainingpipeline", "modelversion", "servingendpoint"):
        assert {f"slipway-{kind}-viewer", f"slipway-{kind}-editor"} <= roles


@pytest.mark.parametrize(
    ("overlay", "annotation"),
    [
        ("aws", "eks.amazonaws.com/role-arn"),
        ("gcp", "iam.gke.io/gcp-service-account"),
        ("azure", "azure.workload.identity/client-id"),
    ],
)
def test_overlays_add_workload_identity(overlay: str, annotation: str) -> None:
    """For the operator, and for the serving pods (spec.serviceAccountName: slipway-model-server)."""
    docs = render(MANIFESTS / "overlays" / overlay)
    accounts = {a["metadata"]["name"]: a for a in by_kind(docs, "ServiceAccount")}
    assert accounts.keys() == {"slipway", "slipway-model-server"}
    for account in accounts.values():
        assert annotation in account["metadata"]["annotations"]
    assert accounts["slipway-model-server"]["metadata"]["namespace"] == "ml"
    assert len(by_kind(docs, "Deployment")) == 1


def test_samples_render_as_a_kustomization() -> None:
    docs = render(MANIFESTS / "samples")
    assert {d["kind"] for d in docs} == {"TrainingPipeline", "ModelVersion", "ServingEndpoint"}


def test_monitoring_renders_the_dashboard_and_the_alert_rules() -> None:
    docs = render(MANIFESTS / "monitoring")
    (configmap,) = by_kind(docs, "ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["slipway.json"])["uid"] == "slipway-overview"
    (rule,) = by_kind(docs, "PrometheusRule")
    assert {r["alert"] for r in rule["spec"]["groups"][0]["rules"]} >= {"SlipwayRollback", "SlipwayDataDrift"}

"""The children of an endpoint, built by pure functions."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.rest import ApiException

from slipway.api.serving_endpoint import ServingEndpointSpec
from slipway.serving import builders, controller, traffic
from slipway.serving.children import summarize_child
from slipway.serving.controller import model_credentials, observe, read_sample_request
from slipway.storage.credentials import StorageCredentials
from slipway.views import VersionInfo

OWNER = {
    "apiVersion": "slipway.dev/v1alpha1",
    "kind": "ServingEndpoint",
    "name": "web",
    "uid": "u-1",
    "controller": True,
}


def endpoint(**spec: Any) -> builders.Endpoint:
    body = {"modelName": "penguins", **spec}
    return builders.Endpoint("web", "ml", ServingEndpointSpec.model_validate(body), OWNER, "slipway:1")


def info(version: int, secret: str | None = None) -> VersionInfo:
    return VersionInfo(
        f"penguins-v{version}", version, "Validated", f"s3://models/penguins/{version}", False, secret
    )


def test_deployment_serves_exactly_one_version_with_a_real_readiness_check() -> None:
    deployment = builders.deployment(endpoint(), info(3, secret="s3-creds"), 2)
    assert deployment["metadata"]["name"] == "web-v3"
    assert deployment["metadata"]["ownerReferences"] == [OWNER]
    pod = deployment["spec"]["template"]["spec"]
    server = pod["containers"][0]
    assert server["image"] == "tensorflow/serving:2.19.0"
    assert {p["containerPort"] for p in server["ports"]} == {8500, 8501}
    assert server["readinessProbe"]["httpGet"]["path"] == "/v1/models/penguins/versions/3"
    puller = pod["initContainers"][0]
    assert puller["command"] == ["slipway", "pull", "s3://models/penguins/3", "/models/penguins/3"]
    assert puller["image"] == "slipway:1"
    assert puller["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["selector"]["matchLabels"] == {
        "slipway.dev/endpoint": "web",
        "slipway.dev/version": "3",
    }


def test_pods_meet_the_restricted_pod_security_standard() -> None:
    pod = builders.deployment(endpoint(), info(1), 1)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"] + pod["initContainers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["runAsNonRoot"] is True
    assert all("hostPath" not in volume for volume in pod["volumes"])


def test_model_config_pins_the_version() -> None:
    text = builders.config_map(endpoint(), 7)["data"]["models.config"]
    assert 'name: "penguins"' in text and 'base_path: "/models/penguins"' in text
    assert "model_version_policy { specific { versions: 7 } }" in text


def test_names_are_deterministic_and_bounded() -> None:
    long_name = "e" * 63
    assert builders.version_name("web", 12) == "web-v12"
    bounded = builders.version_name(long_name, 12)
    assert len(bounded) <= 63 and bounded.endswith("-v12")
    assert bounded == builders.version_name(long_name, 12)
    assert builders.version_name(long_name, 12) != builders.version_name("f" * 63, 12)


def test_hash_annotation_changes_only_with_content() -> None:
    first = builders.deployment(endpoint(), info(1), 2)
    again = builders.deployment(endpoint(), info(1), 2)
    scaled = builders.deployment(endpoint(), info(1), 3)
    key = builders.HASH_ANNOTATION
    assert first["metadata"]["annotations"][key] == again["metadata"]["annotations"][key]
    assert first["metadata"]["annotations"][key] != scaled["metadata"]["annotations"][key]


def test_the_endpoint_service_selects_all_versions_one_or_none() -> None:
    every = builders.endpoint_service(endpoint(), traffic.ALL)
    assert every["spec"]["selector"] == {"slipway.dev/endpoint": "web", "slipway.dev/version": None}
    one = builders.endpoint_service(endpoint(), 1)
    assert one["spec"]["selector"] == {"slipway.dev/endpoint": "web", "slipway.dev/version": "1"}
    none = builders.endpoint_service(endpoint(), traffic.NONE)
    assert none["spec"]["selector"] == {"slipway.dev/endpoint": "web", "slipway.dev/version": "none"}


def test_http_route_splits_by_weight_and_hpa_targets_stable() -> None:
    routed = endpoint(
        rollout={
            "trafficRouting": {"httpRoute": {"parentRefs": [{"name": "gw"}], "hostnames": ["m.example"]}}
        },
        autoscaling={"minReplicas": 2, "maxReplicas": 6},
    )
    route = builders.http_route(routed, {1: 75, 2: 25})
    assert route is not None
    assert route["spec"]["rules"][0]["backendRefs"] == [
        {"name": "web-v1", "port": 8501, "weight": 75},
        {"name": "web-v2", "port": 8501, "weight": 25},
    ]
    assert route["spec"]["parentRefs"] == [{"name": "gw"}]
    hpa = builders.autoscaler(routed, 1)
    assert hpa is not None and hpa["spec"]["scaleTargetRef"]["name"] == "web-v1"
    children = builders.children(routed, {1: info(1)}, {1: 2}, 1, 1, {1: 100})
    stable = next(c for c in children if c["kind"] == "Deployment")
    assert "replicas" not in stable["spec"], "the HPA owns the stable replica count"
    assert builders.http_route(endpoint(), {1: 100}) is None


def test_observe_reads_requests_and_sets_duplicate_versions_aside() -> None:
    """A second ModelVersion of one version number (Validated or not) replaces nothing: the number is
    contested, and only the claimant this endpoint already serves stays."""
    body = {
        "metadata": {
            "name": "web",
            "generation": 4,
            "annotations": {"slipway.dev/promote": "x", "other": "y"},
        }
    }
    versions = [
        VersionInfo("a", 1, "Validated", "file:///a", served_by=("web",)),
        VersionInfo("b", 1, "Validated", "file:///b"),
        VersionInfo("c", 2, "Rejected", "file:///c"),
        VersionInfo("d", 2, "Validated", "file:///d"),
    ]
    deployment = {
        "metadata": {"name": "web-v1", "generation": 2, "labels": {"slipway.dev/version": "1"}},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 2, "readyReplicas": 2},
    }
    observed = observe(body, versions, [summarize_child("Deployment", deployment)])
    assert observed.generation == 4 and observed.requests == {"promote": "x"}
    assert observed.versions[1].name == "a" and 2 not in observed.versions
    assert observed.contested == {1: ("a", "b"), 2: ("c", "d")}
    assert observed.ready(1) == 2


def test_tf_serving_exports_prometheus_metrics_per_version_pod() -> None:
    plain = endpoint()
    config = builders.config_map(plain, 1)["data"]["monitoring.config"]
    assert "enable: true" in config and builders.METRICS_PATH in config
    deployment = builders.deployment(plain, info(1), 1)
    template = deployment["spec"]["template"]
    assert "--monitoring_config_file=/config/monitoring.config" in template["spec"]["containers"][0]["args"]
    assert template["metadata"]["annotations"]["prometheus.io/path"] == builders.METRICS_PATH
    assert builders.service_monitor(plain) is None
    monitored = endpoint(runtime={"monitoring": {"serviceMonitor": True}})
    monitor = builders.service_monitor(monitored)
    assert monitor is not None and monitor["spec"]["endpoints"][0]["path"] == builders.METRICS_PATH
    silent = endpoint(runtime={"monitoring": {"prometheus": False}})
    assert "monitoring.config" not in builders.config_map(silent, 1)["data"]


def test_serving_pods_run_as_the_spec_service_account_with_its_workload_identity_label() -> None:
    identity = endpoint(
        serviceAccountName="model-server",
        podMetadata={
            "labels": {"azure.workload.identity/use": "true", "slipway.dev/endpoint": "not-mine"},
            "annotations": {"example.com/owner": "ml"},
        },
    )
    template = builders.deployment(identity, info(1), 1)["spec"]["template"]
    assert template["spec"]["serviceAccountName"] == "model-server"
    labels = template["metadata"]["labels"]
    assert labels["azure.workload.identity/use"] == "true"
    assert labels["slipway.dev/endpoint"] == "web", "the selector's labels are Slipway's"
    assert template["metadata"]["annotations"]["example.com/owner"] == "ml"
    assert "prometheus.io/scrape" in template["metadata"]["annotations"]
    assert "serviceAccountName" not in builders.deployment(endpoint(), info(1), 1)["spec"]["template"]["spec"]


def test_the_puller_reaches_the_store_endpoint_the_model_version_names() -> None:
    located = VersionInfo(
        "penguins-v1", 1, "Validated", "s3://m/p/1", storage_secret="s3", storage_endpoint="http://minio:9000"
    )
    puller = builders.deployment(endpoint(), located, 1)["spec"]["template"]["spec"]["initContainers"][0]
    assert puller["env"] == [{"name": "AWS_ENDPOINT_URL_S3", "value": "http://minio:9000"}]
    assert puller["envFrom"] == [{"secretRef": {"name": "s3"}}]
    assert puller["terminationMessagePolicy"] == "FallbackToLogsOnError"


@pytest.mark.parametrize(
    ("volume", "source"),
    [
        (
            {"persistentVolumeClaim": {"claimName": "models"}},
            {"persistentVolumeClaim": {"claimName": "models", "readOnly": True}},
        ),
        ({"hostPath": "/var/lib/slipway"}, {"hostPath": {"path": "/var/lib/slipway", "type": "Directory"}}),
    ],
)
def test_a_file_store_volume_is_mounted_read_only_into_the_puller_only(
    volume: dict[str, Any], source: dict[str, Any]
) -> None:
    spec = endpoint(modelVolume={"mountPath": "/var/lib/slipway", **volume})
    local = VersionInfo("penguins-v1", 1, "Validated", "file:///var/lib/slipway/models/penguins/1")
    pod = builders.deployment(spec, local, 1)["spec"]["template"]["spec"]
    assert {"name": "model-store", **source} in pod["volumes"]
    mount = {"name": "model-store", "mountPath": "/var/lib/slipway", "readOnly": True}
    assert mount in pod["initContainers"][0]["volumeMounts"]
    assert all(m["name"] != "model-store" for m in pod["containers"][0]["volumeMounts"])


def test_a_pods_fault_is_observed_for_its_version() -> None:
    failing = {
        "metadata": {"name": "web-v2-a", "labels": {"slipway.dev/version": "2"}, "resourceVersion": "7"},
        "status": {
            "containerStatuses": [
                {"name": "tensorflow-serving", "state": {"waiting": {"reason": "ErrImageNeverPull"}}}
            ]
        },
    }
    healthy = {"metadata": {"name": "web-v1-a", "labels": {"slipway.dev/version": "1"}}, "status": {}}
    body: dict[str, Any] = {"metadata": {"name": "web", "generation": 1}}
    children = [summarize_child("Pod", failing), summarize_child("Pod", healthy)]
    observed = observe(body, [], children)
    assert observed.failures.keys() == {2}
    assert observed.failures[2].reason == "ErrImageNeverPull"
    assert observed.deployments == {}


def secret(**values: str) -> dict[str, str]:
    return {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}


def test_the_store_credentials_come_from_the_model_versions_secret_and_endpoint() -> None:
    located = VersionInfo(
        "penguins-v1", 1, "Validated", "s3://m/p/1", storage_secret="s3", storage_endpoint="http://minio:9000"
    )
    found = model_credentials(
        located, {"s3": secret(AWS_ACCESS_KEY_ID="id", AWS_SECRET_ACCESS_KEY="key")}.get
    )
    assert found is not None
    assert (found.aws_access_key_id, found.aws_secret_access_key, found.aws_endpoint_url) == (
        "id",
        "key",
        "http://minio:9000",
    )
    assert model_credentials(VersionInfo("v", 1, "Validated", "s3://m/p/1"), {}.get) is None
    with pytest.raises(ValueError, match="storage Secret 's3' of penguins-v1 not found"):
        model_credentials(located, {}.get)


def test_the_sample_request_is_read_or_the_reason_given(tmp_path: Path) -> None:
    (tmp_path / "slipway-manifest.json").write_text(
        json.dumps({"modelName": "penguins", "version": 1, "sampleRequest": {"instances": [1]}})
    )
    here = VersionInfo("penguins-v1", 1, "Validated", f"file://{tmp_path}")
    assert read_sample_request(here, {}.get) == ({"instances": [1]}, None)
    missing = VersionInfo("penguins-v2", 2, "Validated", f"file://{tmp_path}", storage_secret="gone")
    assert read_sample_request(missing, {}.get) == (
        None,
        "cannot read the model's manifest: storage Secret 'gone' of penguins-v2 not found",
    )


def test_the_model_versions_endpoint_wins_over_one_in_its_secret() -> None:
    """The puller reads both: `env` (the ModelVersion's storageEndpoint) and `envFrom` (the Secret)."""
    found = StorageCredentials.from_env(
        {"AWS_ENDPOINT_URL": "http://from-secret:9000", "AWS_ENDPOINT_URL_S3": "http://minio:9000"}
    )
    assert found.aws_endpoint_url == "http://minio:9000"


def test_the_operator_reads_the_store_as_the_puller_does() -> None:
    located = VersionInfo("penguins-v1", 1, "Validated", "s3://m/p/1", storage_secret="s3")
    located = replace(located, storage_endpoint="http://minio:9000")
    data = {"s3": secret(AWS_ACCESS_KEY_ID="id", AWS_ENDPOINT_URL="http://from-secret:9000")}
    found = model_credentials(located, data.get)
    assert found is not None and found.aws_endpoint_url == "http://minio:9000"
    assert found.aws_access_key_id == "id"


def test_children_are_not_created_in_a_terminating_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(body: dict[str, Any], create_first: bool) -> dict[str, Any]:
        error = ApiException(status=403, reason="Forbidden")
        error.body = '{"reason":"Forbidden","details":{"causes":[{"reason":"NamespaceTerminating"}]}}'
        raise error

    monkeypatch.setattr(controller.kube, "create_or_patch", refuse)
    remembered: list[str] = []
    service = builders.version_service(endpoint(), 1)
    assert controller._apply(service, None, lambda kind, body: remembered.append(kind), set()) is False
    assert remembered == []

    def forbidden(body: dict[str, Any], create_first: bool) -> dict[str, Any]:
        raise ApiException(status=403, reason="Forbidden")

    monkeypatch.setattr(controller.kube, "create_or_patch", forbidden)
    with pytest.raises(ApiException):
        controller._apply(service, None, lambda kind, body: remembered.append(kind), set())

"""The CRDs on a real kube-apiserver: samples accepted, malformed manifests rejected naming the field,
ModelVersion immutability, the status subresource, and a Deployment really rolling out."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from slipway import GROUP, VERSION

SAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "samples"
PLURALS = {
    "TrainingPipeline": "trainingpipelines",
    "ModelVersion": "modelversions",
    "ServingEndpoint": "servingendpoints",
}


def load_sample(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((SAMPLES / name).read_text())
    return doc


def create(
    custom: client.CustomObjectsApi, namespace: str, body: dict[str, Any], **kwargs: Any
) -> dict[str, Any]:
    created: dict[str, Any] = custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURALS[body["kind"]], body, **kwargs
    )
    return created


@pytest.mark.parametrize(
    "sample", sorted(p.name for p in SAMPLES.glob("*.yaml") if p.name != "kustomization.yaml")
)
def test_every_sample_is_accepted(custom: client.CustomObjectsApi, namespace: str, sample: str) -> None:
    body = load_sample(sample)
    created = create(custom, namespace, body, field_validation="Strict")
    assert created["metadata"]["generation"] == 1
    assert created["spec"]["modelName"] == body["spec"]["modelName"]


Mutation = Callable[[dict[str, Any]], None]


def setter(path: str, value: Any) -> Mutation:
    """Sets a dotted path (list indexes as numbers) to value; the value None deletes the key."""

    def mutate(doc: dict[str, Any]) -> None:
        keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
        node: Any = doc
        for key in keys[:-1]:
            node = node[key]
        if value is None:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value

    return mutate


TP, MV, SE = (
    "trainingpipeline-penguins.yaml",
    "modelversion-penguins-v1.yaml",
    "servingendpoint-penguins.yaml",
)
TPK, SEP = "trainingpipeline-kfp.yaml", "servingendpoint-pinned-httproute.yaml"

MALFORMED: list[tuple[str, str, Mutation, list[str]]] = [
    (
        "two pipeline sources",
        TP,
        setter("spec.pipeline.specUri", "s3://b/p.yaml"),
        ["spec.pipeline", "exactly one"],
    ),
    ("no pipeline source", TP, setter("spec.pipeline", {}), ["spec.pipeline", "exactly one"]),
    ("builtin not a name", TP, setter("spec.pipeline.builtin", "Penguins!"), ["spec.pipeline.builtin"]),
    ("specUri scheme", TPK, setter("spec.pipeline.specUri", "ftp://host/p.yaml"), ["spec.pipeline.specUri"]),
    ("modelName upper case", TP, setter("spec.modelName", "Penguins"), ["spec.modelName"]),
    ("modelName missing", TP, setter("spec.modelName", None), ["spec.modelName", "Required"]),
    ("data uri scheme", TP, setter("spec.data.uri", "http://example.com/d.csv"), ["spec.data.uri"]),
    ("modelStore missing", TP, setter("spec.modelStore", None), ["spec.modelStore", "Required"]),
    ("unknown executor", TP, setter("spec.executor", {"type": "airflow"}), ["spec.executor.type"]),
    ("kfp without settings", TPK, setter("spec.executor.kfp", None), ["spec.executor.kfp", "required"]),
    (
        "kfp endpoint scheme",
        TPK,
        setter("spec.executor.kfp.endpoint", "ml-pipeline:8888"),
        ["spec.executor.kfp.endpoint"],
    ),
    (
        "concurrency policy",
        TP,
        setter("spec.schedule.concurrencyPolicy", "Sometimes"),
        ["spec.schedule.concurrencyPolicy"],
    ),
    (
        "negative deadline",
        TP,
        setter("spec.schedule.startingDeadlineSeconds", -1),
        ["spec.schedule.startingDeadlineSeconds"],
    ),
    ("threshold not decimal", TP, setter("spec.gates.metrics.0.min", "high"), ["spec.gates.metrics[0].min"]),
    (
        "threshold without bound",
        TP,
        setter("spec.gates.metrics.0", {"name": "accuracy"}),
        ["spec.gates.metrics[0]", "min or max"],
    ),
    (
        "history limit",
        TP,
        setter("spec.successfulRunsHistoryLimit", 1000),
        ["spec.successfulRunsHistoryLimit"],
    ),
    (
        "parameter not a string",
        TP,
        setter("spec.parameters.epochs", 40),
        ["spec.parameters.epochs", "string"],
    ),
    (
        "modelStore secret name",
        TPK,
        setter("spec.modelStore.secretRef.name", "Bad_Name"),
        ["spec.modelStore.secretRef.name"],
    ),
    ("version zero", MV, setter("spec.version", 0), ["spec.version"]),
    ("version not integer", MV, setter("spec.version", "one"), ["spec.version", "integer"]),
    ("model uri scheme", MV, setter("spec.uri", "https://models.example.com/1"), ["spec.uri"]),
    ("metric as float", MV, setter("spec.metrics.accuracy", 0.97), ["spec.metrics.accuracy", "string"]),
    ("metric not decimal", MV, setter("spec.metrics.accuracy", "97%"), ["spec.metrics.accuracy"]),
    ("model format", MV, setter("spec.format", "onnx"), ["spec.format"]),
    ("model uri missing", MV, setter("spec.uri", None), ["spec.uri", "Required"]),
    (
        "pinned without version",
        SEP,
        setter("spec.versionSelection.version", None),
        ["spec.versionSelection.version", "Pinned"],
    ),
    (
        "version without pin",
        SE,
        setter("spec.versionSelection.version", 3),
        ["spec.versionSelection.version", "Pinned"],
    ),
    (
        "weight over 100",
        SE,
        setter("spec.rollout.steps.0.setWeight", 150),
        ["spec.rollout.steps[0].setWeight"],
    ),
    ("weights falling", SE, setter("spec.rollout.steps.3.setWeight", 10), ["spec.rollout.steps", "rise"]),
    (
        "step with two actions",
        SE,
        setter("spec.rollout.steps.0.pause", {}),
        ["spec.rollout.steps[0]", "exactly one"],
    ),
    (
        "pause duration",
        SE,
        setter("spec.rollout.steps.2.pause.duration", "soon"),
        ["spec.rollout.steps[2].pause.duration"],
    ),
    ("zero replicas", SE, setter("spec.replicas", 0), ["spec.replicas"]),
    ("unknown strategy", SE, setter("spec.rollout.strategy", "Linear"), ["spec.rollout.strategy"]),
    (
        "autoscaling min > max",
        SEP,
        setter("spec.autoscaling.minReplicas", 9),
        ["spec.autoscaling", "maxReplicas"],
    ),
    (
        "no parentRefs",
        SEP,
        setter("spec.rollout.trafficRouting.httpRoute.parentRefs", []),
        ["spec.rollout.trafficRouting.httpRoute.parentRefs"],
    ),
    (
        "prometheus condition",
        SE,
        setter(
            "spec.rollout.analysis.prometheus",
            {
                "address": "http://prom:9090",
                "metrics": [{"name": "errors", "query": "up", "successCondition": "rm -rf"}],
            },
        ),
        ["spec.rollout.analysis.prometheus.metrics[0].successCondition"],
    ),
    ("no spec", SE, setter("spec", None), ["spec", "Required"]),
    ("typo in a field name", TP, setter("spec.modelname", "penguins"), ['unknown field "spec.modelname"']),
]


@pytest.mark.parametrize(("case", "sample", "mutate", "expected"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_manifest_is_rejected_naming_the_field(
    custom: client.CustomObjectsApi,
    namespace: str,
    case: str,
    sample: str,
    mutate: Mutation,
    expected: list[str],
) -> None:
    body = copy.deepcopy(load_sample(sample))
    mutate(body)
    with pytest.raises(ApiException) as raised:
        create(custom, namespace, body, field_validation="Strict")
    assert raised.value.status in (400, 422), raised.value.body
    message = json.loads(raised.value.body)["message"]
    for fragment in expected:
        assert fragment in message, f"{case}: {fragment!r} not in {message}"


def test_malformed_table_is_large_enough() -> None:
    assert len(MALFORMED) >= 25


def test_model_version_spec_is_immutable(custom: client.CustomObjectsApi, namespace: str) -> None:
    body = load_sample(MV)
    create(custom, namespace, body)
    name = body["metadata"]["name"]
    with pytest.raises(ApiException) as raised:
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "modelversions", name, {"spec": {"metrics": {"accuracy": "0.99"}}}
        )
    assert raised.value.status == 422
    assert "immutable" in raised.value.body
    # Labels and status stay writable: only the record itself is frozen.
    patched = custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "modelversions", name, {"metadata": {"labels": {"team": "ml"}}}
    )
    assert patched["spec"]["metrics"]["accuracy"] == "0.97"


def test_status_subresource_does_not_bump_generation(custom: client.CustomObjectsApi, namespace: str) -> None:
    body = load_sample(SE)
    created = create(custom, namespace, body)
    name = created["metadata"]["name"]
    status = {
        "status": {
            "observedGeneration": 1,
            "stableVersion": 1,
            "canaryWeight": 0,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Serving",
                    "message": "v1 serving",
                    "lastTransitionTime": "2026-11-22T12:00:00Z",
                    "observedGeneration": 1,
                }
            ],
        }
    }
    after_status = custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "servingendpoints", name, status
    )
    assert after_status["metadata"]["generation"] == 1
    assert after_status["status"]["stableVersion"] == 1
    # Status sent through the main resource is ignored; spec changes bump the generation.
    after_spec = custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "servingendpoints",
        name,
        {"spec": {"replicas": 3}, "status": {"stableVersion": 9}},
    )
    assert after_spec["metadata"]["generation"] == 2
    assert after_spec["status"]["stableVersion"] == 1


def test_the_api_server_fills_the_executor_default_so_kubectl_shows_it(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    body = load_sample("trainingpipeline-penguins.yaml")
    body["spec"].pop("executor", None)
    assert create(custom, namespace, body)["spec"]["executor"] == {"type": "local"}


def test_kubectl_get_category_lists_all_three_kinds(api_client: client.ApiClient) -> None:
    resources = client.CustomObjectsApi(api_client).get_api_resources(GROUP, VERSION).resources
    assert {r.name: (r.short_names, r.categories) for r in resources if "/" not in r.name} == {
        "trainingpipelines": (["tp"], ["slipway"]),
        "modelversions": (["mv"], ["slipway"]),
        "servingendpoints": (["se"], ["slipway"]),
    }


def test_deployment_reaches_three_ready_replicas(api_client: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api_client)
    labels = {"app": "probe"}
    apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="probe"),
            spec=client.V1DeploymentSpec(
                replicas=3,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(
                        containers=[client.V1Container(name="c", image="example.invalid/app:1")]
                    ),
                ),
            ),
        ),
    )
    deadline = time.monotonic() + 90
    ready = 0
    while time.monotonic() < deadline:
        ready = apps.read_namespaced_deployment_status("probe", namespace).status.ready_replicas or 0
        if ready == 3:
            break
        time.sleep(0.5)
    assert ready == 3
    pods = client.CoreV1Api(api_client).list_namespaced_pod(namespace, label_selector="app=probe").items
    assert len(pods) == 3 and all(p.spec.node_name == "kwok-node-0" for p in pods)

"""Rollouts end to end: the operator process, a real API server with controller-manager, scheduler and
kwok (Deployments really roll out), and a loopback TF Serving REST API for analysis."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from fixtures.cli import slipway
from fixtures.crds import install_third_party_crd
from fixtures.waiting import wait_for
from slipway import GROUP, VERSION

MODEL = "penguins"
SAMPLE = {"instances": [{"island": "Biscoe", "bill_length_mm": 46.1, "body_mass_g": 5200}]}


class Env:
    def __init__(self, api: client.ApiClient, namespace: str, store: Path) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.store = store

    def model_version(
        self, version: int, phase: str = "Validated", gates: dict[str, Any] | None = None
    ) -> None:
        directory = self.store / MODEL / str(version)
        directory.mkdir(parents=True)
        (directory / "saved_model.pb").write_bytes(b"\x08\x01")
        (directory / "slipway-manifest.json").write_text(
            json.dumps({"modelName": MODEL, "version": version, "sampleRequest": SAMPLE})
        )
        name = f"{MODEL}-v{version}"
        spec: dict[str, Any] = {"modelName": MODEL, "version": version, "uri": f"file://{directory}"}
        if gates:
            spec["gates"] = gates
            spec["metrics"] = {"accuracy": "0.5"}
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelVersion",
            "metadata": {"name": name},
            "spec": spec,
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, "modelversions", body)
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, "modelversions", name, {"status": {"phase": phase}}
        )

    def endpoint(self, name: str, **spec: Any) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ServingEndpoint",
            "metadata": {"name": name},
            "spec": {"modelName": MODEL, "replicas": 2, **spec},
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, "servingendpoints", body)

    def get(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "servingendpoints", name
        )
        return result

    def status(self, name: str) -> dict[str, Any]:
        return self.get(name).get("status") or {}

    def annotate(self, name: str, key: str, value: str) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            "servingendpoints",
            name,
            {"metadata": {"annotations": {key: value}}},
        )

    def deployments(self, endpoint: str) -> dict[str, Any]:
        items = self.apps.list_namespaced_deployment(
            self.namespace, label_selector=f"slipway.dev/endpoint={endpoint}"
        )
        return {d.metadata.name: d for d in items.items}

    def ready(self, deployment: str) -> int:
        try:
            return (
                self.apps.read_namespaced_deployment_status(deployment, self.namespace).status.ready_replicas
                or 0
            )
        except ApiException as error:
            if error.status == 404:
                return 0
            raise

    def _events(self, name: str) -> list[Any]:
        selector = f"involvedObject.name={name}"
        items = self.core.list_namespaced_event(self.namespace, field_selector=selector).items
        return sorted(items, key=lambda e: e.metadata.creation_timestamp)

    def events(self, name: str) -> list[tuple[str, str]]:
        return [(e.type, e.reason) for e in self._events(name)]

    def event_messages(self, name: str) -> list[tuple[str, str]]:
        return [(e.reason, e.message) for e in self._events(name)]


def condition(status: dict[str, Any], type_: str) -> str | None:
    return next((c["status"] for c in status.get("conditions", []) if c["type"] == type_), None)


@pytest.fixture
def env(api_client: client.ApiClient, namespace: str, tmp_path: Path) -> Env:
    return Env(api_client, namespace, tmp_path / "models")


@pytest.fixture
def operator(operator_process: Any, fake_tfserving: Any) -> Iterator[Any]:
    operator_process.env.update(
        {
            "SLIPWAY_TFSERVING_URL_TEMPLATE": fake_tfserving.url_template,
            "SLIPWAY_RECONCILE_INTERVAL_SECONDS": "1",
            "SLIPWAY_IMAGE": "slipway:test",
        }
    )
    operator_process.start()
    yield operator_process


class ReadyWatcher:
    """Samples, in the background, the ready replicas of `version`'s Deployment for as long as the
    endpoint's status names it stable ('never below the minimum' needs every look, not the last one)."""

    def __init__(self, env: Env, endpoint: str, version: int) -> None:
        self.env, self.endpoint, self.version = env, endpoint, version
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            # Ready first, then status: a sample counts only if the version was still stable afterwards.
            ready = self.env.ready(f"{self.endpoint}-v{self.version}")
            if self.env.status(self.endpoint).get("stableVersion") == self.version:
                self.samples.append(ready)
            time.sleep(0.1)

    def __enter__(self) -> ReadyWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


CANARY_STEPS = [
    {"setWeight": 25},
    {"analysis": {}},
    {"setWeight": 50},
    {"pause": {"duration": "1s"}},
    {"setWeight": 75},
    {"analysis": {}},
]


def test_first_rollout_then_canary_through_steps_to_promotion(
    env: Env, operator: Any, fake_tfserving: Any, capture: Any
) -> None:
    env.model_version(1)
    env.endpoint("web", rollout={"steps": CANARY_STEPS})
    status = wait_for(lambda: (s := env.status("web")).get("stableVersion") == 1 and s, "v1 stable")
    assert condition(status, "Ready") == "True"
    assert env.ready("web-v1") == 2
    assert status["url"] == f"http://web.{env.namespace}.svc.cluster.local:8501/v1/models/{MODEL}"
    capture("servingendpoint-healthy", env.get("web"))

    with ReadyWatcher(env, "web", 1) as stable_watch:
        env.model_version(2)
        canary = wait_for(
            lambda: (b := env.get("web")).get("status", {}).get("canaryVersion") == 2 and b, "canary"
        )
        capture("servingendpoint-progressing", canary)
        status = wait_for(lambda: (s := env.status("web")).get("stableVersion") == 2 and s, "v2 promoted", 90)
    # Events are posted asynchronously by kopf: the last ones may land just after the status.
    steps = wait_for(
        lambda: (
            len(m := sorted(msg for why, msg in env.event_messages("web") if why == "StepCompleted")) >= 6
            and m
        ),
        "six StepCompleted events",
        timeout=15,
    )
    assert [m.split(": ")[1] for m in steps] == [
        "canary at 25% of traffic",
        "analysis passed",
        "canary at 50% of traffic",
        "pause over",
        "canary at 75% of traffic",
        "analysis passed",
    ]
    assert min(stable_watch.samples) == 2, "stable v1 lost ready replicas during the canary"
    assert status["previousVersion"] == 1 and "canaryVersion" not in status
    assert status["history"][-1]["outcome"] == "Promoted"
    assert ("predict", MODEL, 2) in fake_tfserving.requests
    wait_for(lambda: set(env.deployments("web")) == {"web-v2"}, "v1 deployment removed")
    wanted = {"RolloutStarted", "AnalysisPassed", "Promoted"}
    wait_for(lambda: wanted <= {reason for _, reason in env.events("web")}, f"events {wanted}", timeout=20)
    served_by = env.custom.get_namespaced_custom_object(
        GROUP, VERSION, env.namespace, "modelversions", "penguins-v2"
    )
    assert served_by["status"]["servedBy"] == ["web"]
    metrics = operator.metrics()
    promoted = f'slipway_rollouts_total{{endpoint="web",namespace="{env.namespace}",outcome="Promoted"}} 2.0'
    assert promoted in metrics  # v1's first rollout, then v2
    assert "slipway_rollout_duration_seconds_count" in metrics


def test_failing_canary_rolls_back_and_stable_keeps_serving(
    env: Env, operator: Any, fake_tfserving: Any, capture: Any
) -> None:
    env.model_version(2)
    env.endpoint("web", rollout={"steps": CANARY_STEPS})
    wait_for(lambda: env.status("web").get("stableVersion") == 2, "v2 stable")
    fake_tfserving.broken_versions.add(3)
    with ReadyWatcher(env, "web", 2) as stable_watch:
        env.model_version(3)
        status = wait_for(
            lambda: (s := env.status("web")).get("failedVersions") == [3] and s, "v3 rolled back"
        )
    assert status["stableVersion"] == 2 and "canaryVersion" not in status
    capture("servingendpoint-degraded", env.get("web"))
    assert min(stable_watch.samples) == 2
    assert condition(status, "Degraded") == "True"
    assert status["history"][-1]["outcome"] == "RolledBack"
    assert "AnalysisFailed" in status["history"][-1]["message"]
    wait_for(lambda: set(env.deployments("web")) == {"web-v2"}, "canary deployment removed")
    wait_for(lambda: ("Warning", "RolledBack") in env.events("web"), "a RolledBack Warning", timeout=20)
    time.sleep(3)
    assert "canaryVersion" not in env.status("web"), "a failed version must not be retried by itself"
    # A retry request tries it again; this time it is healthy and goes through.
    fake_tfserving.broken_versions.clear()
    env.annotate("web", "slipway.dev/retry", "1")
    status = wait_for(
        lambda: (s := env.status("web")).get("stableVersion") == 3 and s, "v3 promoted", timeout=90
    )
    assert condition(status, "Degraded") == "False"


def test_operator_killed_mid_step_resumes_from_the_same_step(env: Env, operator: Any, capture: Any) -> None:
    env.model_version(1)
    env.endpoint("web", rollout={"steps": [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]})
    wait_for(lambda: env.status("web").get("stableVersion") == 1, "v1 stable")
    env.model_version(2)
    paused = wait_for(lambda: (s := env.status("web")).get("phase") == "Paused" and s, "paused at step 1")
    assert paused["currentStep"] == 1 and paused["canaryVersion"] == 2
    capture("servingendpoint-paused", env.get("web"))
    operator.restart(kill=True)
    time.sleep(3)
    resumed = env.status("web")
    assert (resumed["currentStep"], resumed["canaryVersion"], resumed["stepStartedAt"]) == (
        1,
        2,
        paused["stepStartedAt"],
    )
    assert env.ready("web-v2") == 2 and env.ready("web-v1") == 2  # 50% by replica ratio: 2 next to 2
    promote = slipway(operator.kubeconfig, "promote", "web", "-n", env.namespace)
    token = promote.strip().rsplit("(", 1)[1].rstrip(")")
    status = wait_for(lambda: (s := env.status("web")).get("stableVersion") == 2 and s, "v2 promoted")
    assert status["handledRequests"]["promote"] == token


def test_pinned_version_and_unvalidated_versions_never_get_a_pod(env: Env, operator: Any) -> None:
    env.model_version(1)
    env.model_version(2)
    env.model_version(3, phase="Rejected", gates={"metrics": [{"name": "accuracy", "min": "0.9"}]})
    env.endpoint("pinned", versionSelection={"policy": "Pinned", "version": 1}, replicas=1)
    env.endpoint("latest", replicas=1)
    wait_for(lambda: env.status("pinned").get("stableVersion") == 1, "pinned v1")
    wait_for(lambda: env.status("latest").get("stableVersion") == 2, "latest validated v2")
    time.sleep(2)
    assert env.status("pinned").get("canaryVersion") is None
    pods = env.core.list_namespaced_pod(env.namespace, label_selector="slipway.dev/version=3").items
    assert pods == []
    assert set(env.deployments("latest")) == {"latest-v2"}
    # Re-pinning is a spec change: the endpoint moves to the newly pinned version.
    env.custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        env.namespace,
        "servingendpoints",
        "pinned",
        {"spec": {"versionSelection": {"version": 2}}},
    )
    wait_for(lambda: env.status("pinned").get("stableVersion") == 2, "pinned v2", timeout=90)


def test_http_route_weights_and_autoscaler_follow_the_rollout(
    env: Env, operator: Any, gateway_api: None
) -> None:
    routing = {
        "httpRoute": {"parentRefs": [{"name": "gw", "namespace": "gateway"}], "hostnames": ["m.example"]}
    }
    env.model_version(1)
    env.endpoint(
        "routed",
        autoscaling={"minReplicas": 2, "maxReplicas": 4},
        rollout={"steps": [{"setWeight": 30}, {"pause": {}}], "trafficRouting": routing},
    )
    wait_for(lambda: env.status("routed").get("stableVersion") == 1, "v1 stable")

    def route() -> dict[str, Any]:
        body: dict[str, Any] = env.custom.get_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", env.namespace, "httproutes", "routed"
        )
        return body

    def weights() -> dict[str, int]:
        return {b["name"]: b["weight"] for b in route()["spec"]["rules"][0]["backendRefs"]}

    assert weights() == {"routed-v1": 100}
    assert route()["spec"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw", "namespace": "gateway"}
    ]
    scaling = client.AutoscalingV2Api(env.custom.api_client)
    assert (
        scaling.read_namespaced_horizontal_pod_autoscaler("routed", env.namespace).spec.scale_target_ref.name
        == "routed-v1"
    )
    env.model_version(2)
    wait_for(lambda: env.status("routed").get("phase") == "Paused", "paused at 30%")
    assert weights() == {"routed-v1": 70, "routed-v2": 30}
    assert env.ready("routed-v2") == 1  # ceil(2 x 30%) behind weighted routing
    env.annotate("routed", "slipway.dev/promote", "1")
    wait_for(lambda: env.status("routed").get("stableVersion") == 2, "v2 promoted")
    wait_for(lambda: weights() == {"routed-v2": 100}, "all traffic on v2")
    target = scaling.read_namespaced_horizontal_pod_autoscaler(
        "routed", env.namespace
    ).spec.scale_target_ref.name
    assert target == "routed-v2"


def test_service_monitor_waits_for_its_crd_then_is_created(env: Env, operator: Any) -> None:
    env.model_version(1)
    env.endpoint("monitored", runtime={"monitoring": {"serviceMonitor": True}})
    wait_for(lambda: env.status("monitored").get("stableVersion") == 1, "v1 stable without the CRD")
    assert condition(env.status("monitored"), "Ready") == "True"
    time.sleep(3)  # three resyncs: the missing CRD is still reported once
    assert operator.logs().count("ServiceMonitor is not served by this cluster") == 1

    install_third_party_crd(env.custom.api_client, "prometheus-operator", "servicemonitors")

    def monitor() -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = env.custom.get_namespaced_custom_object(
                "monitoring.coreos.com", "v1", env.namespace, "servicemonitors", "monitored"
            )
            return body
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    body = wait_for(monitor, "the ServiceMonitor, once its CRD is served")
    assert body["metadata"]["ownerReferences"][0]["name"] == "monitored"
    selector = ",".join(f"{k}={v}" for k, v in body["spec"]["selector"]["matchLabels"].items())
    selected = client.CoreV1Api(env.custom.api_client).list_namespaced_service(
        env.namespace, label_selector=selector
    )
    port = body["spec"]["endpoints"][0]["port"]
    assert selected.items, f"the ServiceMonitor selects no Service ({selector})"
    assert all(port in [p.name for p in s.spec.ports] for s in selected.items)

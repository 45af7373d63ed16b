"""Rollouts end to end: the operator process, a real API server with controller-manager, scheduler and
kwok (Deployments really roll out), and a loopback TF Serving REST API for analysis."""

from __future__ import annotations

import time
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException
from serving_cluster import MODEL, Env, ReadyWatcher, condition

from fixtures.cli import slipway
from fixtures.crds import install_third_party_crd
from fixtures.waiting import wait_for
from slipway import GROUP, VERSION

CANARY_STEPS = [
    {"setWeight": 25},
    {"analysis": {}},
    {"setWeight": 50},
    {"pause": {"duration": "1s"}},
    {"setWeight": 75},
    {"analysis": {}},
]
# 75% next to 2 stable replicas needs more canary pods than the endpoint's 2: allowed up to 8 in all.
CANARY = {"steps": CANARY_STEPS, "maxReplicasForWeight": 8}


def test_first_rollout_then_canary_through_steps_to_promotion(
    env: Env, operator: Any, fake_tfserving: Any, capture: Any
) -> None:
    env.model_version(1)
    env.endpoint("web", rollout=CANARY)
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
        "canary at 25% of traffic (33% by replica ratio)",
        "analysis passed",
        "canary at 50% of traffic",
        "pause over",
        "canary at 75% of traffic (67% by replica ratio)",
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
    env.endpoint("web", rollout=CANARY)
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
    # One replica next to one: the only canary weight a replica ratio gives is 50%.
    halves = {"steps": [{"setWeight": 50}, {"setWeight": 100}]}
    env.endpoint("pinned", versionSelection={"policy": "Pinned", "version": 1}, replicas=1, rollout=halves)
    env.endpoint("latest", replicas=1)
    wait_for(lambda: env.status("pinned").get("stableVersion") == 1, "pinned v1")
    wait_for(lambda: env.status("latest").get("stableVersion") == 2, "latest validated v2")
    time.sleep(2)
    assert env.status("pinned").get("canaryVersion") is None
    pods = env.core.list_namespaced_pod(env.namespace, label_selector="slipway.dev/version=3").items
    assert pods == []
    assert set(env.deployments("latest")) == {"latest-v2"}
    # Re-pinning is a spec change: the endpoint moves to the newly pinned version.
    env.patch("pinned", {"spec": {"versionSelection": {"version": 2}}})
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

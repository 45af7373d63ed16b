"""What serving refuses, on the real API server with the operator process: a second ModelVersion claiming a
served version, a stable version whose ModelVersion is deleted, a pin to nothing, a model with no versions,
and a reconcile the API server refuses. What is served is never touched; each refusal is a condition and a
Warning Event."""

from __future__ import annotations

import time
from typing import Any

from kubernetes import client
from serving_cluster import MODEL, Env, condition

from fixtures.waiting import wait_for
from slipway import GROUP, VERSION


def conditions(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (body.get("status") or {}).get("conditions", [])}


def model_version(env: Env, name: str) -> dict[str, Any]:
    body: dict[str, Any] = env.custom.get_namespaced_custom_object(
        GROUP, VERSION, env.namespace, "modelversions", name
    )
    return body


def second_claim(env: Env, name: str, version: int) -> None:
    """Another ModelVersion of the same (model, version), at another URI, already Validated."""
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {"modelName": MODEL, "version": version, "uri": f"file://{env.store}/elsewhere/{version}"},
    }
    env.custom.create_namespaced_custom_object(GROUP, VERSION, env.namespace, "modelversions", body)
    env.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, env.namespace, "modelversions", name, {"status": {"phase": "Validated"}}
    )


def deployment_state(env: Env, name: str) -> tuple[str, int, str]:
    """What would change if the Deployment were re-pointed: its resourceVersion, generation, and spec."""
    found = env.apps.read_namespaced_deployment(name, env.namespace)
    spec = client.ApiClient().sanitize_for_serialization(found.spec)
    return found.metadata.resource_version, found.metadata.generation, str(spec)


def test_a_second_claim_on_a_served_version_changes_nothing_served_and_marks_both(
    env: Env, operator: Any
) -> None:
    env.model_version(1)
    env.endpoint("web")
    wait_for(lambda: env.status("web").get("stableVersion") == 1 and env.ready("web-v1") == 2, "v1 stable")
    wait_for(lambda: model_version(env, f"{MODEL}-v1").get("status", {}).get("servedBy"), "servedBy")
    before = deployment_state(env, "web-v1")

    second_claim(env, "impostor", 1)
    for name, other in ((f"{MODEL}-v1", "impostor"), ("impostor", f"{MODEL}-v1")):
        unique = wait_for(lambda n=name: conditions(model_version(env, n)).get("Unique"), f"{name} marked")
        assert (unique["status"], unique["reason"]) == ("False", "VersionCollision")
        assert f"also claimed by ModelVersion {other}" in unique["message"]
        wait_for(lambda n=name: ("Warning", "VersionCollision") in env.events(n), f"an Event on {name}")

    env.model_version(2)  # a newer version, claimed twice: never served
    second_claim(env, "impostor-2", 2)
    wait_for(lambda: conditions(model_version(env, "impostor-2")).get("Unique"), "v2 marked")
    time.sleep(4)  # several resyncs, 1 s apart
    status = env.status("web")
    assert status["stableVersion"] == 1 and "canaryVersion" not in status
    assert set(env.deployments("web")) == {"web-v1"}
    assert deployment_state(env, "web-v1") == before, "the served Deployment was touched"
    # The first claim is validated (and its rollout may start) before the second exists: a started rollout
    # of the contested version is aborted, and what was served stays as it was (above).
    reasons = {reason for _, reason in env.events("web")}
    assert "RolloutStarted" not in reasons or "Aborted" in reasons

    env.custom.delete_namespaced_custom_object(GROUP, VERSION, env.namespace, "modelversions", "impostor")
    unique = wait_for(
        lambda: (
            (c := conditions(model_version(env, f"{MODEL}-v1")).get("Unique")) and c["status"] == "True" and c
        ),
        "the collision resolved",
    )
    assert unique["reason"] == "Unique"


def test_a_stable_version_whose_model_version_is_deleted_keeps_serving(env: Env, operator: Any) -> None:
    env.model_version(3)
    env.endpoint("web")
    wait_for(lambda: env.status("web").get("stableVersion") == 3 and env.ready("web-v3") == 2, "v3 stable")
    before = deployment_state(env, "web-v3")
    env.custom.delete_namespaced_custom_object(GROUP, VERSION, env.namespace, "modelversions", f"{MODEL}-v3")
    degraded = wait_for(
        lambda: (c := conditions(env.get("web")).get("Degraded")) and c["status"] == "True" and c, "Degraded"
    )
    assert degraded["reason"] == "StableVersionMissing"
    wait_for(lambda: ("Warning", "StableVersionMissing") in env.events("web"), "a Warning Event")
    assert env.status("web")["stableVersion"] == 3 and condition(env.status("web"), "Ready") == "True"
    assert deployment_state(env, "web-v3")[2] == before[2] and env.ready("web-v3") == 2


def test_a_pin_to_nothing_and_a_model_with_no_versions_are_named(env: Env, operator: Any) -> None:
    env.endpoint("empty")
    ready = wait_for(lambda: conditions(env.get("empty")).get("Ready"), "Ready on the empty endpoint")
    assert (ready["status"], ready["reason"]) == ("False", "NoModelVersion")
    wait_for(lambda: ("Warning", "NoModelVersion") in env.events("empty"), "a Warning Event")

    env.model_version(1)
    wait_for(lambda: env.status("empty").get("stableVersion") == 1, "v1 stable")
    env.patch("empty", {"spec": {"versionSelection": {"policy": "Pinned", "version": 7}}})
    progressing = wait_for(
        lambda: (c := conditions(env.get("empty")).get("Progressing")) and c["reason"] != "Idle" and c,
        "the pin refused",
    )
    assert progressing["reason"] == "PinnedVersionNotFound"
    assert (
        progressing["message"] == f"spec.versionSelection.version: no ModelVersion of {MODEL} has version 7"
    )
    wait_for(lambda: ("Warning", "PinnedVersionNotFound") in env.events("empty"), "a Warning Event")
    assert env.status("empty")["stableVersion"] == 1 and set(env.deployments("empty")) == {"empty-v1"}


def test_a_reconcile_the_api_server_refuses_is_a_condition_retried_with_backoff(
    env: Env, operator: Any
) -> None:
    """A quota that allows no Deployment: the create is refused (403), the endpoint says so, and once the
    quota is gone a retry creates what was refused."""
    quota = client.V1ResourceQuota(
        metadata=client.V1ObjectMeta(name="no-deployments"),
        spec=client.V1ResourceQuotaSpec(hard={"count/deployments.apps": "0"}),
    )
    env.core.create_namespaced_resource_quota(env.namespace, quota)
    env.model_version(1)
    env.endpoint("web")
    failed = wait_for(
        lambda: (c := conditions(env.get("web")).get("Reconciled")) and c["status"] == "False" and c,
        "Reconciled=False",
    )
    assert failed["reason"] == "ApiError" and "403" in failed["message"] and "quota" in failed["message"]
    events = wait_for(
        lambda: [m for why, m in env.event_messages("web") if why == "ApiError"],
        "a Warning Event",
        timeout=20,
    )
    assert events[0].startswith(f"ServingEndpoint {env.namespace}/web: the API server answered 403")
    assert "Traceback" not in operator.logs()
    env.core.delete_namespaced_resource_quota("no-deployments", env.namespace)
    wait_for(lambda: env.ready("web-v1") == 2, "the Deployment created by a retry", timeout=120)
    recovered = wait_for(
        lambda: (c := conditions(env.get("web")).get("Reconciled")) and c["status"] == "True" and c,
        "Reconciled=True",
    )
    assert recovered["reason"] == "Reconciled"
    refused = [m for why, m in env.event_messages("web") if why == "ApiError"]
    assert len(refused) <= 2, "one Event per distinct failure, not one per retry"

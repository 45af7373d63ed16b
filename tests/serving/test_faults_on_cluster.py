"""What the endpoint does when the world is not as the spec hopes, on the real control plane: a canary pod
whose container fails, a weight the replicas cannot give, a model store only a Secret opens.

kwok turns every pod on its node Ready at once, before a test could patch a failure in. The faulty pods run
on a node kwok does not manage (no kubelet either): the scheduler places them there (kwok's node is
cordoned meanwhile), nothing else writes their status, and the test writes what a kubelet would."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from serving_cluster import MODEL, Env, ReadyWatcher, condition, manifest

from fixtures.waiting import wait_for
from slipway import GROUP, VERSION
from slipway.devcluster.cluster import FAKE_NODE
from slipway.storage import open_store

NO_KUBELET = "node-without-kubelet"
PULLER_LOG = (
    "slipway pull: 2 files, 0.0 MiB so far\n"
    "slipway pull: s3://models/penguins/2: failed, /models/penguins/2 left unchanged: access denied "
    "(AccessDenied) AWS_SECRET_ACCESS_KEY=leaked\n"
)


def stamp(ago: float = 0) -> str:
    return (datetime.now(UTC) - timedelta(seconds=ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


class NodeWithoutKubelet:
    """A Node object no kubelet and no kwok keeps: pods scheduled to it stay as the test writes them."""

    def __init__(self, core: client.CoreV1Api) -> None:
        self.core = core

    def only_schedulable_node(self) -> None:
        capacity = {"cpu": "100", "memory": "100Gi", "pods": "110"}
        labels = {"kubernetes.io/hostname": NO_KUBELET, "kubernetes.io/os": "linux"}
        self.core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name=NO_KUBELET, labels=labels)))
        ready = {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "lastHeartbeatTime": stamp(),
            "lastTransitionTime": stamp(),
        }
        self.core.patch_node_status(
            NO_KUBELET, {"status": {"capacity": capacity, "allocatable": capacity, "conditions": [ready]}}
        )
        self.core.patch_node(FAKE_NODE, {"spec": {"unschedulable": True}})

    def cleanup(self) -> None:
        self.core.patch_node(FAKE_NODE, {"spec": {"unschedulable": False}})
        pods = self.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={NO_KUBELET}").items
        for pod in pods:  # no kubelet will ever confirm their termination
            try:
                self.core.delete_namespaced_pod(
                    pod.metadata.name, pod.metadata.namespace, grace_period_seconds=0
                )
            except ApiException as error:
                if error.status != 404:
                    raise
        try:
            self.core.delete_node(NO_KUBELET)
        except ApiException as error:
            if error.status != 404:
                raise


@pytest.fixture
def no_kubelet(api_client: client.ApiClient) -> Iterator[NodeWithoutKubelet]:
    node = NodeWithoutKubelet(client.CoreV1Api(api_client))
    yield node
    node.cleanup()


def container(name: str, **state: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "ready": False, "restartCount": 0, "image": "x", "imageID": "", "state": state}


def waiting(name: str, reason: str, message: str) -> dict[str, Any]:
    return container(name, waiting={"reason": reason, "message": message})


def terminated(name: str, code: int, reason: str, message: str) -> dict[str, Any]:
    return container(name, terminated={"exitCode": code, "reason": reason, "message": message})


SERVER_INIT = waiting("tensorflow-serving", "PodInitializing", "")
DONE_INIT = terminated("pull-model", 0, "Completed", "")
CRASHED_SERVER = {
    **waiting("tensorflow-serving", "CrashLoopBackOff", "back-off 20s restarting failed container"),
    "restartCount": 2,
    "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "message": ""}},
}
# What the kubelet writes for each fault: (init container statuses, container statuses), and what the
# operator must report: the Degraded reason and the container's own words. A pull error fails the canary
# only once it has lasted 60 s: that pod "started" 90 s ago.
FAULTS = {
    "puller-access-denied": (
        [terminated("pull-model", 1, "Error", PULLER_LOG)],
        [SERVER_INIT],
        "ModelPullFailed",
        "pull-model: Terminated: Error (exit code 1): slipway pull: s3://models/penguins/2: failed, "
        "/models/penguins/2 left unchanged: access denied (AccessDenied) AWS_SECRET_ACCESS_KEY=***",
    ),
    "image-never-pulled": (
        [DONE_INIT],
        [
            waiting(
                "tensorflow-serving",
                "ErrImageNeverPull",
                'Container image "tensorflow/serving:2.19.0" is not present with pull policy of Never',
            )
        ],
        "ImagePullFailed",
        'tensorflow-serving: ErrImageNeverPull: Container image "tensorflow/serving:2.19.0" is not present',
    ),
    "pull-error-lasting": (
        [DONE_INIT],
        [
            waiting(
                "tensorflow-serving", "ImagePullBackOff", 'Back-off pulling image "tensorflow/serving:2.19.0"'
            )
        ],
        "ImagePullFailed",
        'tensorflow-serving: ImagePullBackOff: Back-off pulling image "tensorflow/serving:2.19.0"',
    ),
    "server-oom-killed": (
        [DONE_INIT],
        [CRASHED_SERVER],
        "ModelServerFailed",
        "tensorflow-serving: OOMKilled: OOMKilled (exit code 137)",
    ),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failing_canary_pod_aborts_at_once_with_its_containers_error(
    fault: str, env: Env, operator: Any, no_kubelet: NodeWithoutKubelet
) -> None:
    init, main, reason, words = FAULTS[fault]
    env.model_version(1)
    env.endpoint("web", rollout={"steps": [{"setWeight": 50}, {"analysis": {}}, {"setWeight": 100}]})
    wait_for(lambda: env.status("web").get("stableVersion") == 1, "v1 stable")
    no_kubelet.only_schedulable_node()
    with ReadyWatcher(env, "web", 1) as stable_watch:
        env.model_version(2)

        def canary_pod() -> Any:
            pods = env.core.list_namespaced_pod(env.namespace, label_selector="slipway.dev/version=2").items
            return next((p for p in pods if p.spec.node_name == NO_KUBELET), None)

        pod = wait_for(canary_pod, "a canary pod on the node without kubelet")
        assert env.status("web").get("canaryVersion") == 2
        assert env.status("web").get("effectiveCanaryWeight", 0) == 0, "a pod not ready gets no traffic"
        env.core.patch_namespaced_pod_status(
            pod.metadata.name,
            env.namespace,
            {
                "status": {
                    "phase": "Pending",
                    "startTime": stamp(ago=90 if fault == "pull-error-lasting" else 0),
                    "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
                    "initContainerStatuses": init,
                    "containerStatuses": main,
                }
            },
        )
        patched = time.monotonic()
        status = wait_for(lambda: (s := env.status("web")).get("failedVersions") == [2] and s, "v2 aborted")
        took = time.monotonic() - patched
    assert took < 15, f"took {took:.1f} s: the abort waited for something (the deadline is 600 s)"
    assert status["stableVersion"] == 1 and "canaryVersion" not in status
    assert min(stable_watch.samples) == 2
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", reason)
    assert f"pod {pod.metadata.name} container {words}" in degraded["message"]
    assert "leaked" not in degraded["message"]
    record = status["history"][-1]
    assert record["outcome"] == "Aborted", "the canary never had a ready pod: it never had traffic"
    assert record["message"].startswith(reason)
    warnings = wait_for(
        lambda: [m for why, m in env.event_messages("web") if why == "Aborted"], "an Aborted Event", 20
    )
    assert words in warnings[-1]
    assert ("Warning", "Aborted") in env.events("web")
    wait_for(lambda: set(env.deployments("web")) == {"web-v1"}, "the canary Deployment removed")
    assert condition(env.status("web"), "Ready") == "True"


def test_a_weight_the_replicas_cannot_give_is_refused_then_met_by_scaling(env: Env, operator: Any) -> None:
    env.model_version(1)
    env.endpoint("web", rollout={"steps": [{"setWeight": 10}, {"pause": {}}, {"setWeight": 100}]})
    wait_for(lambda: env.status("web").get("stableVersion") == 1, "v1 stable")
    env.model_version(2)
    status = wait_for(
        lambda: (s := env.status("web")).get("phase") == "Degraded" and s, "the rollout refused"
    )
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "WeightNotAchievable"
    assert (
        "rollout.steps[0].setWeight 10%: with 2 stable replicas the nearest replica ratio is 33%"
        in (degraded["message"])
    )
    assert condition(status, "Ready") == "True" and "canaryVersion" not in status
    assert set(env.deployments("web")) == {"web-v1"}
    wait_for(lambda: ("Warning", "WeightNotAchievable") in env.events("web"), "a Warning Event", 20)

    env.patch("web", {"spec": {"rollout": {"maxReplicasForWeight": 10, "weightTolerance": 0}}})
    status = wait_for(
        lambda: (s := env.status("web")).get("phase") == "Paused" and s, "paused at 10% by scaling", 60
    )
    assert (status["canaryWeight"], status["effectiveCanaryWeight"]) == (10, 10)
    assert (env.ready("web-v1"), env.ready("web-v2")) == (9, 1)
    assert condition(status, "Degraded") == "False"
    env.annotate("web", "slipway.dev/promote", "1")
    wait_for(lambda: env.status("web").get("stableVersion") == 2, "v2 promoted")
    wait_for(lambda: set(env.deployments("web")) == {"web-v2"}, "v1 removed")
    assert env.deployments("web")["web-v2"].spec.replicas == 2


def test_a_secret_only_s3_store_is_read_with_its_secret_for_the_smoke_test(
    env: Env, operator: Any, fake_tfserving: Any, s3_server: Any
) -> None:
    bucket = s3_server.new_bucket()
    store = open_store(f"s3://{bucket}/{MODEL}", s3_server.credentials)
    store.write_bytes("2/slipway-manifest.json", json.dumps(manifest(2)).encode())
    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
    env.core.create_namespaced_secret(
        env.namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="s3-models"), string_data=keys)
    )
    env.model_version(1)
    env.endpoint("web", rollout={"steps": [{"setWeight": 50}, {"analysis": {}}, {"setWeight": 100}]})
    wait_for(lambda: env.status("web").get("stableVersion") == 1, "v1 stable")
    s3 = {"storageSecretRef": {"name": "s3-models"}, "storageEndpoint": s3_server.endpoint}
    env.model_version(2, location={"uri": f"s3://{bucket}/{MODEL}/2", **s3})
    canary = wait_for(lambda: env.deployments("web").get("web-v2"), "the v2 Deployment")
    puller = canary.spec.template.spec.init_containers[0]
    assert [(e.name, e.value) for e in puller.env] == [("AWS_ENDPOINT_URL_S3", s3_server.endpoint)]
    assert puller.env_from[0].secret_ref.name == "s3-models"
    status = wait_for(lambda: (s := env.status("web")).get("stableVersion") == 2 and s, "v2 promoted", 60)
    assert ("predict", MODEL, 2) in fake_tfserving.requests, "the smoke test ran with the sample request"
    assert status["history"][-1]["outcome"] == "Promoted"

    # A Secret that is not there: the manifest cannot be read, and the smoke test says so.
    store.write_bytes("3/slipway-manifest.json", json.dumps(manifest(3)).encode())
    gone = {"storageSecretRef": {"name": "not-there"}, "storageEndpoint": s3_server.endpoint}
    env.model_version(3, location={"uri": f"s3://{bucket}/{MODEL}/3", **gone})
    status = wait_for(lambda: (s := env.status("web")).get("failedVersions") == [3] and s, "v3 rolled back")
    assert "storage Secret 'not-there' of penguins-v3 not found" in status["history"][-1]["message"]


def test_a_file_store_needs_the_volume_the_spec_names(env: Env, operator: Any) -> None:
    env.model_version(1)
    env.endpoint("web", modelVolume=None)
    status = wait_for(lambda: (s := env.status("web")).get("phase") == "Degraded" and s, "refused")
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ModelNotReachable" and "set spec.modelVolume" in ready["message"]
    assert env.deployments("web") == {}
    env.patch("web", {"spec": {"modelVolume": {"mountPath": str(env.store), "hostPath": str(env.store)}}})
    wait_for(lambda: env.status("web").get("stableVersion") == 1, "v1 served once the volume is named")
    pod = env.deployments("web")["web-v1"].spec.template.spec
    mounts = {(m.name, m.mount_path, m.read_only) for m in pod.init_containers[0].volume_mounts}
    assert ("model-store", str(env.store), True) in mounts
    assert next(v for v in pod.volumes if v.name == "model-store").host_path.path == str(env.store)


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        (
            {
                "modelVolume": {
                    "mountPath": "/srv",
                    "hostPath": "/srv",
                    "persistentVolumeClaim": {"claimName": "m"},
                }
            },
            "spec.modelVolume",
            "exactly one of persistentVolumeClaim, hostPath",
        ),
        (
            {"modelVolume": {"mountPath": "/models/x", "hostPath": "/srv"}},
            "spec.modelVolume.mountPath",
            "/models",
        ),
        ({"podMetadata": {"labels": {"not a key": "x"}}}, "spec.podMetadata.labels", "label keys"),
        ({"serviceAccountName": "Not_A_Name"}, "spec.serviceAccountName", "should match"),
        (
            {"rollout": {"maxReplicasForWeight": 1}},
            "spec.rollout.maxReplicasForWeight",
            "greater than or equal",
        ),
    ],
)
def test_admission_names_the_field_of_a_bad_serving_spec(
    env: Env, spec: dict[str, Any], field: str, message: str
) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ServingEndpoint",
        "metadata": {"name": "bad"},
        "spec": {"modelName": MODEL, **spec},
    }
    with pytest.raises(ApiException) as refused:
        env.custom.create_namespaced_custom_object(GROUP, VERSION, env.namespace, "servingendpoints", body)
    assert refused.value.status == 422
    assert field in refused.value.body and message in refused.value.body


def test_pods_pod_security_refuses_fail_the_rollout_with_the_admission_message(
    env: Env, operator: Any
) -> None:
    """A hostPath model volume in a namespace that enforces `restricted`: the ReplicaSet cannot create a
    single pod, and the Deployment says why."""
    env.model_version(1)
    env.endpoint("web", rollout={"steps": [{"setWeight": 50}, {"setWeight": 100}]})
    wait_for(lambda: env.status("web").get("stableVersion") == 1, "v1 stable")
    labels = {"pod-security.kubernetes.io/enforce": "restricted"}
    env.core.patch_namespace(env.namespace, {"metadata": {"labels": labels}})
    env.model_version(2)
    status = wait_for(
        lambda: (s := env.status("web")).get("failedVersions") == [2] and s, "v2 aborted", timeout=120
    )
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "PodCreationFailed"
    assert "Deployment web-v2: FailedCreate: " in degraded["message"]
    assert 'violates PodSecurity "restricted:latest"' in degraded["message"]
    assert 'restricted volume type "hostPath"' in degraded["message"]
    assert status["stableVersion"] == 1 and env.ready("web-v1") == 2

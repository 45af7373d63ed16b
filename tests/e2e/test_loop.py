"""The whole loop on real pods: the operator runs in-cluster from its image under its own ServiceAccount;
a TrainingPipeline trains the built-in penguins pipeline as a Kubernetes Job in the pipelines image with
data, artifacts and models on S3; the pushed model becomes a Validated ModelVersion; a ServingEndpoint's
pods pull it with the puller init container and serve it with the model-server image; a canary at 50%
really splits requests sent to the endpoint's ClusterIP; a version whose model cannot be pulled rolls
back with the container's own error; and no request fails during any rollout."""

from __future__ import annotations

import collections
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from fixtures.cli import slipway
from fixtures.realnode import NAMESPACE, OPERATOR_NAMESPACE
from fixtures.storage import StorageServer
from fixtures.waiting import wait_for
from slipway import GROUP, VERSION
from slipway.demo import PENGUIN
from slipway.storage.s3 import s3_client

MODEL = "penguins"
REST_PORT = 8501


def custom_object(api: client.ApiClient, plural: str, name: str) -> dict[str, Any] | None:
    try:
        body: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, plural, name
        )
        return body
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def status(api: client.ApiClient, plural: str, name: str) -> dict[str, Any]:
    return (custom_object(api, plural, name) or {}).get("status") or {}


@dataclass
class Store:
    server: StorageServer
    bucket: str
    secret: str

    def location(self, prefix: str) -> dict[str, Any]:
        return {
            "uri": f"s3://{self.bucket}/{prefix}",
            "secretRef": {"name": self.secret},
            "endpoint": self.server.endpoint,
        }

    def copy_prefix(self, source: str, target: str, skip: tuple[str, ...] = ()) -> int:
        s3 = s3_client(self.server.credentials)
        keys = [
            o["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=source)
            for o in page.get("Contents", [])
        ]
        for key in keys:
            if not key.endswith(skip):
                s3.copy_object(
                    Bucket=self.bucket,
                    Key=target + key[len(source) :],
                    CopySource={"Bucket": self.bucket, "Key": key},
                )
        return len(keys)


@pytest.fixture(scope="module")
def store(node_s3: StorageServer, s3_secret: str) -> Store:
    bucket = node_s3.new_bucket()
    csv = resources.files("palmerpenguins") / "data" / "penguins.csv"
    s3_client(node_s3.credentials).put_object(Bucket=bucket, Key="data/penguins.csv", Body=csv.read_bytes())
    return Store(node_s3, bucket, s3_secret)


@pytest.fixture(scope="module")
def trained(real_api: client.ApiClient, operator_in_cluster: dict[str, Any], store: Store) -> dict[str, Any]:
    """One run of the built-in pipeline as a Job in the pipelines image; returns ModelVersion penguins-v1."""
    pipeline = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingPipeline",
        "metadata": {"name": MODEL, "annotations": {f"{GROUP}/run": "e2e-1"}},
        "spec": {
            "pipeline": {"builtin": {"name": "penguins"}},
            "modelName": MODEL,
            "executor": {"type": "job"},
            "data": store.location("data/penguins.csv"),
            "artifactRoot": store.location("artifacts"),
            "modelStore": store.location("models"),
            "gates": {"metrics": [{"name": "accuracy", "min": "0.8"}]},
        },
    }
    client.CustomObjectsApi(real_api).create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, "trainingpipelines", pipeline
    )

    def registered() -> dict[str, Any] | None:
        last = status(real_api, "trainingpipelines", MODEL).get("lastRun") or {}
        assert last.get("phase") != "Failed", f"the training run failed: {last.get('message')}"
        version = custom_object(real_api, "modelversions", f"{MODEL}-v1")
        return version if (version or {}).get("status", {}).get("phase") == "Validated" else None

    return wait_for(registered, "penguins-v1 trained in a Job and Validated", timeout=900)


def test_the_operator_runs_in_cluster_under_its_own_service_account(
    real_api: client.ApiClient, operator_in_cluster: dict[str, Any]
) -> None:
    assert operator_in_cluster["spec"]["serviceAccountName"] == "slipway"
    assert operator_in_cluster["spec"]["containers"][0]["image"] == "localhost/slipway:dev"
    log = client.CoreV1Api(real_api).read_namespaced_pod_log(
        operator_in_cluster["metadata"]["name"], OPERATOR_NAMESPACE
    )
    assert "Traceback" not in log and "Forbidden" not in log, log[-3000:]


def test_training_runs_as_a_job_in_the_pipelines_image(
    real_api: client.ApiClient, trained: dict[str, Any], store: Store
) -> None:
    spec = trained["spec"]
    assert spec["uri"] == f"s3://{store.bucket}/models/{MODEL}/1"
    assert spec["storageEndpoint"] == store.server.endpoint
    assert float(spec["metrics"]["accuracy"]) >= 0.8
    jobs = client.BatchV1Api(real_api).list_namespaced_job(NAMESPACE).items
    assert jobs and all(
        j.spec.template.spec.containers[0].image == "localhost/slipway-pipelines:dev" for j in jobs
    )
    assert any((j.status.succeeded or 0) == 1 for j in jobs)


@dataclass
class Traffic:
    """A bounded client loop against the endpoint's ClusterIP: which version answered, and every failure."""

    url: str
    interval: float = 0.05
    limit: int = 20_000
    answered: collections.Counter[str] = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def ask(self) -> str:
        with urllib.request.urlopen(f"{self.url}/v1/models/{MODEL}", timeout=5) as response:
            statuses = json.load(response)["model_version_status"]
        return ",".join(s["version"] for s in statuses)

    def _loop(self) -> None:
        for _ in range(self.limit):
            if self._stop.is_set():
                return
            try:
                self.answered[self.ask()] += 1
            except Exception as error:  # every kind of failure counts
                self.failures.append(f"{type(error).__name__}: {error}")
            time.sleep(self.interval)

    def __enter__(self) -> Traffic:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)

    def split(self, requests: int) -> collections.Counter[str]:
        return collections.Counter(self.ask() for _ in range(requests))


@pytest.fixture(scope="module")
def endpoint(real_api: client.ApiClient, trained: dict[str, Any]) -> Iterator[str]:
    core = client.CoreV1Api(real_api)
    core.create_namespaced_service_account(NAMESPACE, {"metadata": {"name": "penguins-serving"}})
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ServingEndpoint",
        "metadata": {"name": MODEL},
        "spec": {
            "modelName": MODEL,
            "replicas": 2,
            "serviceAccountName": "penguins-serving",
            "runtime": {
                "image": "localhost/slipway-model-server",
                "version": "dev",
                "resources": {"requests": {"cpu": "20m", "memory": "256Mi"}},
            },
            "rollout": {
                "steps": [{"setWeight": 50}, {"analysis": {}}, {"pause": {}}, {"setWeight": 100}],
                "progressDeadlineSeconds": 300,
                # The smoke test judges answers here, not speed. With its default 2 s bound on a predict, v2
                # was rolled back 35 s after its pods turned ready while the 2-core machine ran at load 30.
                "analysis": {"smokeTest": {"maxLatencyMs": 30000}},
            },
        },
    }
    client.CustomObjectsApi(real_api).create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, "servingendpoints", body
    )
    wait_for(lambda: status(real_api, "servingendpoints", MODEL).get("stableVersion") == 1, "v1 served", 300)
    service = core.read_namespaced_service(MODEL, NAMESPACE)
    url = f"http://{service.spec.cluster_ip}:{REST_PORT}"
    # kube-proxy programs the new Service's endpoints a moment after they turn ready, as on any cluster.
    wait_for(lambda: _answers(url), "the endpoint's ClusterIP to answer", timeout=60)
    yield url


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v1/models/{MODEL}", timeout=5):
            return True
    except OSError:
        return False


def endpoint_slices(api: client.ApiClient) -> list[tuple[str, bool]]:
    """(pod, ready) behind the endpoint's Service, as kube-proxy sees them."""
    slices = client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(
        NAMESPACE, label_selector=f"kubernetes.io/service-name={MODEL}"
    )
    return [
        (e.target_ref.name if e.target_ref else "?", bool(e.conditions and e.conditions.ready))
        for s in slices.items
        for e in s.endpoints or []
    ]


def new_version(real_api: client.ApiClient, trained: dict[str, Any], version: int, uri: str) -> None:
    spec = {**trained["spec"], "version": version, "uri": uri}
    spec["lineage"] = {**spec.get("lineage", {}), "runId": f"e2e-copy-{version}"}
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": f"{MODEL}-v{version}", "labels": {f"{GROUP}/model": MODEL}},
        "spec": spec,
    }
    client.CustomObjectsApi(real_api).create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, "modelversions", body
    )


def test_serving_pods_pull_the_model_and_answer_predictions(
    real_api: client.ApiClient, endpoint: str, trained: dict[str, Any]
) -> None:
    pods = (
        client.CoreV1Api(real_api).list_namespaced_pod(NAMESPACE, label_selector=f"{GROUP}/version=1").items
    )
    assert pods and all(p.spec.service_account_name == "penguins-serving" for p in pods)
    assert all(p.spec.init_containers[0].image == "localhost/slipway:dev" for p in pods)
    sample = {"instances": [PENGUIN]}
    request = urllib.request.Request(
        f"{endpoint}/v1/models/{MODEL}:predict", data=json.dumps(sample).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        predictions = json.load(response)["predictions"]
    assert len(predictions) == 1, predictions


def test_a_canary_splits_real_requests_then_promotes_without_a_failed_request(
    real_api: client.ApiClient, kubeconfig_path: Path, endpoint: str, trained: dict[str, Any], store: Store
) -> None:
    assert store.copy_prefix(f"models/{MODEL}/1/", f"models/{MODEL}/2/") > 0
    with Traffic(endpoint) as traffic:
        new_version(real_api, trained, 2, f"s3://{store.bucket}/models/{MODEL}/2")
        try:
            wait_for(
                lambda: status(real_api, "servingendpoints", MODEL).get("phase") == "Paused",
                "v2's canary to reach the pause at 50%",
                timeout=300,
            )
        except AssertionError as error:
            observed = status(real_api, "servingendpoints", MODEL)
            raise AssertionError(f"{error}; history: {observed.get('history', [])[-3:]}") from None
        observed = status(real_api, "servingendpoints", MODEL)
        assert observed["canaryWeight"] == 50 and observed["effectiveCanaryWeight"] == 50, observed
        paused = time.monotonic()
        try:
            wait_for(lambda: "2" in traffic.split(10), "v2 to answer through the ClusterIP", timeout=60)
        except AssertionError as error:
            raise AssertionError(f"{error}; endpoints: {endpoint_slices(real_api)}") from None
        print(f"kube-proxy reached v2 {time.monotonic() - paused:.1f} s after the pause began")
        split = traffic.split(200)
        slipway(kubeconfig_path, "promote", MODEL, "-n", NAMESPACE)
        wait_for(
            lambda: status(real_api, "servingendpoints", MODEL).get("stableVersion") == 2, "v2 promoted", 300
        )
        time.sleep(3)  # requests keep flowing while v1's pods go away
    print(f"split at 50%: {dict(split)}; during the rollout: {dict(traffic.answered)}")
    assert set(split) == {"1", "2"} and min(split.values()) >= 60, split
    assert traffic.failures == [], traffic.failures[:5]
    assert sum(traffic.answered.values()) > 50


def test_a_version_that_cannot_be_pulled_rolls_back_with_the_pullers_error(
    real_api: client.ApiClient, endpoint: str, trained: dict[str, Any], store: Store
) -> None:
    with Traffic(endpoint) as traffic:
        new_version(real_api, trained, 3, f"s3://{store.bucket}/models/{MODEL}/3")

        def rolled_back() -> dict[str, Any] | None:
            observed = status(real_api, "servingendpoints", MODEL)
            return observed if 3 in observed.get("failedVersions", []) else None

        observed = wait_for(rolled_back, "v3 to roll back", timeout=300)
        time.sleep(2)
    assert observed["stableVersion"] == 2
    degraded = {c["type"]: c for c in observed["conditions"]}
    message = json.dumps(observed["history"][-1]) + json.dumps(degraded)
    assert "models/penguins/3" in message, message  # the puller's own words name what it could not read
    assert traffic.failures == [], traffic.failures[:5]
    assert set(traffic.answered) == {"2"}, traffic.answered

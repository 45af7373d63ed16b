"""The e2e tier: a real node (containerd, kubelet, kube-proxy, CoreDNS) beside the embedded control plane,
Slipway's own images imported into it, the operator installed in-cluster with `kubectl apply -k` of
manifests/base (through tests/e2e/overlay), and an S3 server on the node's bridge address, where pods
reach it. Every container in this tier runs.

It needs root on a Linux VM (see slipway.devcluster.realnode); where that is missing the fixture fails
with the reason rather than skipping, so a green run always means the tier ran."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from fixtures.storage import StorageServer, moto_server
from fixtures.waiting import wait_for
from slipway.devcluster import DevCluster
from slipway.devcluster.binaries import find_tool
from slipway.devcluster.realnode import NODE_IP, unavailable_reason

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "ml"  # the namespace manifests/base lets the operator read Secrets in
OPERATOR_NAMESPACE = "slipway-system"
IMAGES = ("operator", "pipelines", "model-server")


def built_images() -> dict[str, Path]:
    """Runs hack/images.sh (instant when nothing changed) and returns image name -> OCI archive."""
    result = subprocess.run(["bash", str(REPO / "hack" / "images.sh")], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"hack/images.sh failed:\n{result.stderr[-4000:]}")
    archives = dict(line.split(maxsplit=1) for line in result.stdout.splitlines() if line.strip())
    missing = [name for name in IMAGES if name not in archives]
    assert not missing, f"hack/images.sh built no {missing}: {result.stdout}"
    return {name: Path(archives[name]) for name in IMAGES}


@pytest.fixture(scope="session")
def real_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.fail(f"the e2e tier needs a real node, and this machine cannot run one: {reason}")
    archives = built_images()
    cluster = DevCluster(
        workdir=tmp_path_factory.mktemp("realnode"),
        node="real",
        images=list(archives.values()),
        log=lambda message: print(f"[real node] {message}"),
    )
    with cluster:
        yield cluster


@pytest.fixture(scope="session")
def real_api(real_cluster: DevCluster) -> client.ApiClient:
    return config.new_client_from_config(str(real_cluster.kubeconfig))


def kubectl(cluster: DevCluster, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(find_tool("kubectl")), "--kubeconfig", str(cluster.kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def operator_in_cluster(real_cluster: DevCluster, real_api: client.ApiClient) -> dict[str, Any]:
    """manifests/base applied as a user would (`kubectl apply -k`), through the test overlay; returns the
    operator's running pod once its Deployment is available."""
    kubectl(real_cluster, "apply", "--server-side", "-k", str(Path(__file__).parent / "overlay"))
    apps = client.AppsV1Api(real_api)

    def available() -> bool:
        deployment = apps.read_namespaced_deployment("slipway-operator", OPERATOR_NAMESPACE)
        return (deployment.status.available_replicas or 0) >= 1

    wait_for(available, "the operator's Deployment to become available", timeout=180)
    pods = client.CoreV1Api(real_api).list_namespaced_pod(
        OPERATOR_NAMESPACE, label_selector="app.kubernetes.io/component=operator"
    )
    running = [p for p in pods.items if p.status.phase == "Running"]
    assert running, "no operator pod is running"
    return real_api.sanitize_for_serialization(running[0])  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def node_s3(tmp_path_factory: pytest.TempPathFactory, real_cluster: DevCluster) -> Iterator[StorageServer]:
    """moto's S3 server on the node's bridge address: reachable from the host and from pods."""
    server = moto_server(tmp_path_factory.mktemp("node-s3"), host=NODE_IP)
    yield server
    server.process.stop()


@pytest.fixture(scope="session")
def s3_secret(real_api: client.ApiClient, node_s3: StorageServer, operator_in_cluster: dict[str, Any]) -> str:
    """A Secret in the served namespace holding the test S3 server's keys, as a user would create it."""
    name = "e2e-s3"
    credentials = node_s3.credentials
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "stringData": {
            "AWS_ACCESS_KEY_ID": credentials.aws_access_key_id,
            "AWS_SECRET_ACCESS_KEY": credentials.aws_secret_access_key,
            "AWS_REGION": credentials.aws_region,
        },
    }
    client.CoreV1Api(real_api).create_namespaced_secret(NAMESPACE, body)
    return name


def manifests(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]

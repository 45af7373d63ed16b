"""Slipway installed in a cluster as a user installs it: `kubectl apply --server-side -k` of a kustomize
overlay of manifests/base (on the dev cluster's real node: manifests/overlays/dev, the images `make images`
builds), then waiting for the operator's Deployment; and a namespace made servable the way
manifests/base/serve-namespace.yaml describes (a RoleBinding that lets the operator read Secrets there).

Shared by `make demo` on a real node and the e2e tier."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from slipway.devcluster.binaries import find_tool
from slipway.storage.credentials import StorageCredentials

OPERATOR_NAMESPACE = "slipway-system"
OPERATOR_DEPLOYMENT = "slipway-operator"
OPERATOR_SERVICE_ACCOUNT = "slipway"
SECRET_READER = "slipway-secret-reader"  # the ClusterRole manifests/base/serve-namespace.yaml defines
OPERATOR_POD_SELECTOR = "app.kubernetes.io/name=slipway,app.kubernetes.io/component=operator"


class InstallError(RuntimeError):
    pass


def dev_overlay() -> Path:
    """manifests/overlays/dev of the source checkout this package runs from."""
    overlay = Path(__file__).resolve().parents[3] / "manifests" / "overlays" / "dev"
    if not (overlay / "kustomization.yaml").is_file():
        raise InstallError(f"{overlay} not found: installing in-cluster needs Slipway's source checkout")
    return overlay


def split_crds(docs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(CustomResourceDefinitions, everything else): one apply cannot create a CRD and an object of its kind
    (kubectl maps every kind before it creates anything), so the CRDs go first."""
    crds = [doc for doc in docs if doc.get("kind") == "CustomResourceDefinition"]
    return crds, [doc for doc in docs if doc.get("kind") != "CustomResourceDefinition"]


def _kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(find_tool("kubectl")), "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise InstallError(f"kubectl {' '.join(args[:3])}: {done.stderr.strip()[-3000:]}")
    return done.stdout


def apply_overlay(kubeconfig: Path, overlay: Path, timeout: float = 60) -> str:
    """`kubectl apply --server-side` of `kubectl kustomize overlay` (what `apply -k` does), the CRDs first
    and established before the objects of their kinds; returns kubectl's output. `--force-conflicts`: the
    dev cluster installs Slipway's CRDs itself first, and the overlay's copy is the one to keep."""
    crds, rest = split_crds(
        [doc for doc in yaml.safe_load_all(_kubectl(kubeconfig, "kustomize", str(overlay))) if doc]
    )
    apply = ("apply", "--server-side", "--force-conflicts", "-f", "-")
    output = ""
    if crds:
        output += _kubectl(kubeconfig, *apply, stdin=yaml.safe_dump_all(crds))
        names = [f"crd/{crd['metadata']['name']}" for crd in crds]
        _kubectl(kubeconfig, "wait", "--for=condition=Established", f"--timeout={timeout:.0f}s", *names)
    return output + _kubectl(kubeconfig, *apply, stdin=yaml.safe_dump_all(rest))


def running_operator_pod(api: client.ApiClient) -> dict[str, Any] | None:
    """The operator's running pod once its Deployment is available, else None."""
    deployment = client.AppsV1Api(api).read_namespaced_deployment(OPERATOR_DEPLOYMENT, OPERATOR_NAMESPACE)
    if (deployment.status.available_replicas or 0) < 1:
        return None
    pods = client.CoreV1Api(api).list_namespaced_pod(OPERATOR_NAMESPACE, label_selector=OPERATOR_POD_SELECTOR)
    running = [pod for pod in pods.items if pod.status.phase == "Running"]
    if not running:
        return None
    pod: dict[str, Any] = api.sanitize_for_serialization(running[0])
    return pod


def wait_for_operator(api: client.ApiClient, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pod = running_operator_pod(api)
        except ApiException as error:
            if error.status != 404:  # the Deployment not created yet is the only expected answer
                raise
            pod = None
        if pod is not None:
            return pod
        time.sleep(1)
    raise InstallError(
        f"the operator's Deployment {OPERATOR_NAMESPACE}/{OPERATOR_DEPLOYMENT} was not available within "
        f"{timeout:.0f} s:\n{pod_report(api, OPERATOR_NAMESPACE)}"
    )


def pod_report(api: client.ApiClient, namespace: str, log_lines: int = 30) -> str:
    """What a person would look at when pods do not come up: each pod's container states and log tail,
    and the namespace's last events."""
    core = client.CoreV1Api(api)
    lines = []
    for pod in core.list_namespaced_pod(namespace).items:
        lines.append(f"pod {pod.metadata.name}: {pod.status.phase}")
        for status in [*(pod.status.init_container_statuses or []), *(pod.status.container_statuses or [])]:
            lines.append(f"  {status.name}: ready={status.ready} state={status.state.to_dict()}")
            try:
                log = core.read_namespaced_pod_log(
                    pod.metadata.name, namespace, container=status.name, tail_lines=log_lines
                )
                lines.extend(f"    | {line}" for line in log.splitlines())
            except ApiException as error:
                lines.append(f"    (no log: {error.reason})")
    events = core.list_namespaced_event(namespace).items
    lines.extend(f"event {event.reason}: {event.message}" for event in events[-15:])
    return "\n".join(lines)


def install_operator(kubeconfig: Path, overlay: Path | None = None, timeout: float = 180) -> dict[str, Any]:
    """Apply the overlay (default: manifests/overlays/dev) and return the operator's running pod."""
    apply_overlay(kubeconfig, overlay or dev_overlay())
    return wait_for_operator(config.new_client_from_config(str(kubeconfig)), timeout)


def secret_reader_binding(namespace: str) -> dict[str, Any]:
    """manifests/base/serve-namespace.yaml's RoleBinding, in another namespace."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": SECRET_READER,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "slipway"},
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": SECRET_READER},
        "subjects": [
            {"kind": "ServiceAccount", "name": OPERATOR_SERVICE_ACCOUNT, "namespace": OPERATOR_NAMESPACE}
        ],
    }


def serve_namespace(api: client.ApiClient, namespace: str) -> None:
    """Create the namespace (if missing) and let the in-cluster operator read Secrets in it."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    for create in (
        lambda: core.create_namespace({"metadata": {"name": namespace}}),
        lambda: rbac.create_namespaced_role_binding(namespace, secret_reader_binding(namespace)),
    ):
        try:
            create()
        except ApiException as error:
            if error.status != 409:  # already there: serving a namespace twice is serving it
                raise


def s3_secret(namespace: str, name: str, credentials: StorageCredentials) -> dict[str, Any]:
    """A Secret holding an S3 store's keys under the names StorageCredentials reads, as a user creates it."""
    keys = {
        "AWS_ACCESS_KEY_ID": credentials.aws_access_key_id,
        "AWS_SECRET_ACCESS_KEY": credentials.aws_secret_access_key,
        "AWS_REGION": credentials.aws_region,
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": {key: value for key, value in keys.items() if value},
    }

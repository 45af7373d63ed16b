"""The log tail of a failed KFP step, read from its pod through the Kubernetes API.

KFP runs each step as a pod of the run's Argo Workflow, in the Workflow's namespace. Argo labels it with
the Workflow's name and annotates it with the node's name (and, since Argo 3.4, its id); with Argo's v1 pod
names (KFP 2.0.x's Argo 3.3) the pod is named after the node id. The step's own output is the `main`
container's log. Where the pods are not in the operator's cluster, or already gone (Argo's pod GC), there
is nothing to read and the failure message stays as KFP's Workflow gives it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

WORKFLOW_LABEL = "workflows.argoproj.io/workflow"
NODE_NAME = "workflows.argoproj.io/node-name"
NODE_ID = "workflows.argoproj.io/node-id"
CONTAINER = "main"
MAX_LINE = 300

# (namespace, workflow name, failed node of the Workflow's status) -> what to add to the failure message
StepLogs = Callable[[str, str, Mapping[str, Any]], str]


def pod_for_node(pods: Sequence[Mapping[str, Any]], node: Mapping[str, Any]) -> str | None:
    """The name of the pod that ran this Workflow node (pods as metadata dicts), if it is there."""
    for metadata in pods:
        annotations = metadata.get("annotations") or {}
        if annotations.get(NODE_ID) == node.get("id") or annotations.get(NODE_NAME) == node.get("name"):
            return str(metadata["name"])
    return next((str(m["name"]) for m in pods if m.get("name") == node.get("id")), None)


def tail(text: str, lines: int) -> str:
    """The last `lines` non-blank lines, each cut to a readable length."""
    kept = [line.rstrip()[:MAX_LINE] for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(kept)


def step_log_suffix(pod: str | None, namespace: str, text: str | None, error: str | None) -> str:
    if pod is None:
        return ""
    if text:
        return f"\nlast lines of pod {namespace}/{pod}:\n{text}"
    if error:
        return f" (pod {namespace}/{pod}; its log cannot be read: {error})"
    return f" (pod {namespace}/{pod}; its log is empty)"


def kubernetes_step_logs(api_client: Callable[[], Any], lines: int = 5) -> StepLogs:
    """Reads the failed step's pod and log with the operator's own Kubernetes client."""

    def read(namespace: str, workflow: str, node: Mapping[str, Any]) -> str:
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        core = client.CoreV1Api(api_client())
        try:
            listed = core.list_namespaced_pod(namespace, label_selector=f"{WORKFLOW_LABEL}={workflow}")
        except ApiException as error:
            log.info("cannot list the pods of Workflow %s/%s: %s", namespace, workflow, error.reason)
            return ""
        pods = [
            {"name": pod.metadata.name, "annotations": pod.metadata.annotations or {}} for pod in listed.items
        ]
        pod = pod_for_node(pods, node)
        if pod is None:
            return ""
        try:
            text = core.read_namespaced_pod_log(
                pod, namespace, container=CONTAINER, tail_lines=lines * 4, limit_bytes=64 * 1024
            )
        except ApiException as error:
            said = (
                (error.body or b"").decode(errors="replace") if isinstance(error.body, bytes) else error.body
            )
            return step_log_suffix(pod, namespace, None, f"HTTP {error.status}: {_message(said)}")
        return step_log_suffix(pod, namespace, tail(str(text or ""), lines), None)

    return read


def _message(body: Any) -> str:
    import json

    try:
        return str(json.loads(body).get("message") or body)[:300]
    except (TypeError, ValueError, AttributeError):
        return str(body or "")[:300]

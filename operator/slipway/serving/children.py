"""What serving knows of each endpoint's children (Deployments, Services, ConfigMaps, HPAs, routes,
monitors) and its pods, kept by the watches: summaries only, for the plan and the apply."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from slipway import cache, kube
from slipway.serving import builders, faults

# The kinds of an endpoint's children (see kube.KINDS): watched, listed at start-up, and written.
CHILD_KINDS = (
    "Deployment",
    "Service",
    "ConfigMap",
    "HorizontalPodAutoscaler",
    "HTTPRoute",
    "ServiceMonitor",
    # Not a child the operator writes: watched so a canary pod's fault ends its rollout at once.
    "Pod",
)
# One per version: deleted when the plan no longer wants them (the others live as long as the endpoint).
PER_VERSION_KINDS = ("Deployment", "Service", "ConfigMap")


@dataclass(frozen=True)
class ChildSummary:
    """What the deployment/service/configmap indexes keep about one child."""

    kind: str
    name: str
    applied_hash: str | None
    version: int | None = None
    replicas: int = 0
    ready: int = 0
    up_to_date: bool = True
    resource_version: int = 0
    failure: faults.PodFailure | None = None  # pods and Deployments


def summarize_child(kind: str, body: Mapping[str, Any]) -> ChildSummary:
    meta = body.get("metadata", {})
    version_label = (meta.get("labels") or {}).get(builders.VERSION_LABEL)
    if kind == "Pod":
        return ChildSummary(
            kind=kind,
            name=meta.get("name", ""),
            applied_hash=None,
            version=int(version_label) if version_label and version_label.isdigit() else None,
            resource_version=cache.resource_version(meta),
            failure=faults.pod_failure(body),
        )
    spec, status = body.get("spec") or {}, body.get("status") or {}
    up_to_date = status.get("observedGeneration", 0) >= meta.get("generation", 0)
    return ChildSummary(
        kind=kind,
        name=meta.get("name", ""),
        applied_hash=(meta.get("annotations") or {}).get(builders.HASH_ANNOTATION),
        version=int(version_label) if version_label and version_label.isdigit() else None,
        replicas=int(spec.get("replicas") or 0),
        ready=int(status.get("readyReplicas") or 0),
        up_to_date=up_to_date,
        resource_version=cache.resource_version(meta),
        failure=faults.deployment_failure(body) if kind == "Deployment" else None,
    )


class Children:
    """Children by (namespace, endpoint); and the optional kinds last found without their CRD (warned
    about once, not at every resync of every endpoint)."""

    def __init__(self) -> None:
        self.view: cache.View[ChildSummary] = cache.View()
        self.unserved: set[str] = set()

    def of(self, namespace: str, endpoint: str) -> list[ChildSummary]:
        return self.view.get((namespace, endpoint))

    def observe(self, kind: str, event: str | None, body: dict[str, Any]) -> bool:
        """Updates the view; True when the change gives the endpoint's reconcile something to do."""
        meta = body["metadata"]
        if event == "DELETED":
            removed = self.view.delete(meta["uid"])
            return removed is not None and (kind != "Pod" or removed.failure is not None)
        summary = summarize_child(kind, body)
        endpoint = (meta.get("labels") or {}).get(builders.ENDPOINT_LABEL, "")
        previous = self.view.put_newer(
            (meta["namespace"], endpoint), meta["uid"], summary, summary.resource_version
        )
        if kind == "Pod":  # only a fault (or its end) gives a reconcile something to do
            return (previous.failure if previous is not None else None) != summary.failure
        # A new resourceVersion alone (a status condition's timestamp, say) gives a reconcile nothing to do.
        return previous is None or replace(previous, resource_version=summary.resource_version) != summary

    def prime(self, namespaces: list[str]) -> int:
        """One LIST per child kind (Slipway's own, by label), before any handler runs."""
        for kind in CHILD_KINDS:
            for body in kube.list_items(kind, namespaces, label_selector=builders.ENDPOINT_LABEL):
                self.observe(kind, None, body)
        return len(self.view)

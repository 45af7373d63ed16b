"""Invariant watchers: a thread that samples a namespace every ~100 ms straight from the API server (not
through the fault proxy) and records every violation of what Slipway promises, whatever fails:

- stable below replicas: the Deployment of the version status names stable has fewer ready replicas than
  the endpoint's `replicas`;
- an unvalidated version with pods: a serving pod of a version whose ModelVersion is not Validated;
- traffic against status: the endpoint's Service selects a live pod of a version status claims neither
  as stable nor as canary;
- duplicates: two ModelVersions with one (model, version).

A sample is one consistent snapshot of the cluster: the endpoints are listed first, and every other list
is read at exactly the resourceVersion that list answered with (`resourceVersionMatch=Exact`: etcd's state
at that revision, whatever was written since). Lists read one after another at "now" are not a snapshot:
under load they are tens of milliseconds apart, and a pod deleted and a Service widened between the pod
list and the Service list read as a Service selecting a live pod that, at no moment, it did select (what
the long form once reported as a violation; docs/serving.md, "Guarantees under failure").
Samples that fail (the API server or etcd is down) are counted as gaps, not violations."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from slipway import GROUP, VERSION

ENDPOINT_LABEL = f"{GROUP}/endpoint"
VERSION_LABEL = f"{GROUP}/version"
TIMEOUT = 3  # seconds: a sample must not hang while etcd is down


@dataclass
class Violation:
    at: float
    kind: str
    detail: str
    revision: str = ""


@dataclass(frozen=True)
class Snapshot:
    """The namespace at one revision."""

    revision: str
    endpoints: list[dict[str, Any]]
    pods: list[Any]
    deployments: dict[str, Any]
    services: dict[str, Any]
    versions: list[dict[str, Any]]


def judge(snapshot: Snapshot) -> list[tuple[str, str]]:
    """Every (kind, detail) the snapshot breaks."""
    found: list[tuple[str, str]] = []
    keys = [(v["spec"]["modelName"], int(v["spec"]["version"])) for v in snapshot.versions]
    phases = {
        (v["spec"]["modelName"], int(v["spec"]["version"])): (v.get("status") or {}).get("phase")
        for v in snapshot.versions
    }
    for key, count in Counter(keys).items():
        if count > 1:
            found.append(("duplicate-model-version", f"{key} recorded {count} times"))
    live = [p for p in snapshot.pods if p.metadata.deletion_timestamp is None]
    for pod in live:
        labels = pod.metadata.labels or {}
        model, version = labels.get(f"{GROUP}/model"), labels.get(VERSION_LABEL)
        if version is not None and phases.get((model, int(version))) != "Validated":
            found.append(("unvalidated-version-with-pods", f"pod {pod.metadata.name}: v{version}"))
    for endpoint in snapshot.endpoints:
        name, status = endpoint["metadata"]["name"], endpoint.get("status") or {}
        stable = status.get("stableVersion")
        if stable is not None:
            deployment = snapshot.deployments.get(f"{name}-v{stable}")
            ready = (deployment.status.ready_replicas or 0) if deployment is not None else 0
            wanted = int(endpoint["spec"].get("replicas", 1))
            if ready < wanted:
                found.append(("stable-below-replicas", f"{name}: v{stable} {ready}/{wanted} ready"))
        found += _unclaimed_traffic(name, status, snapshot.services.get(name), live)
    return found


def _unclaimed_traffic(
    name: str, status: Mapping[str, Any], service: Any, live: list[Any]
) -> list[tuple[str, str]]:
    if service is None or not service.spec.selector:
        return []
    claimed = {v for v in (status.get("stableVersion"), status.get("canaryVersion")) if v is not None}
    found = []
    for pod in live:
        labels = pod.metadata.labels or {}
        if all(labels.get(k) == v for k, v in service.spec.selector.items()):
            version = int(labels.get(VERSION_LABEL, "-1"))
            if version not in claimed:
                found.append(
                    (
                        "service-selects-unclaimed-version",
                        f"{name}: Service selects pod {pod.metadata.name} of v{version}; status claims "
                        f"{sorted(claimed)}",
                    )
                )
    return found


@dataclass
class InvariantWatcher:
    api: client.ApiClient
    namespace: str
    interval: float = 0.1
    violations: list[Violation] = field(default_factory=list)
    samples: int = 0
    gaps: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)

    def __enter__(self) -> InvariantWatcher:
        self._thread = threading.Thread(target=self._run, daemon=True, name="invariants")
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.sample()
                self.samples += 1
            except Exception:
                self.gaps += 1
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def snapshot(self) -> Snapshot:
        endpoints = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "servingendpoints", _request_timeout=TIMEOUT
        )
        revision = endpoints["metadata"]["resourceVersion"]
        at: dict[str, Any] = {
            "resource_version": revision,
            "resource_version_match": "Exact",
            "_request_timeout": TIMEOUT,
        }
        ours = {"label_selector": ENDPOINT_LABEL, **at}
        return Snapshot(
            revision=revision,
            endpoints=endpoints["items"],
            pods=self.core.list_namespaced_pod(self.namespace, **ours).items,
            deployments={
                d.metadata.name: d for d in self.apps.list_namespaced_deployment(self.namespace, **ours).items
            },
            services={
                s.metadata.name: s for s in self.core.list_namespaced_service(self.namespace, **ours).items
            },
            versions=self.custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "modelversions", **at
            )["items"],
        )

    def sample(self) -> None:
        now = time.monotonic()
        snapshot = self.snapshot()
        for kind, detail in judge(snapshot):
            self._violate(Violation(now, kind, detail, snapshot.revision))

    def _violate(self, violation: Violation) -> None:
        """Records a violation once while it lasts (consecutive samples showing it count once)."""
        last = self.violations[-1] if self.violations else None
        if last is None or (last.kind, last.detail) != (violation.kind, violation.detail):
            self.violations.append(violation)

    def summary(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "gaps": self.gaps,
            "violations": len(self.violations),
            "by_kind": dict(Counter(v.kind for v in self.violations)),
        }

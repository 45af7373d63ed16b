"""Invariant watchers: a thread that samples a namespace every ~100 ms straight from the API server (not
through the fault proxy) and records every violation of what Slipway promises, whatever fails:

- stable below replicas: the Deployment of the version status names stable has fewer ready replicas than
  the endpoint's `replicas`;
- an unvalidated version with pods: a serving pod of a version whose ModelVersion is not Validated;
- traffic against status: the endpoint's Service selects a live pod of a version status claims neither
  as stable nor as canary;
- duplicates: two ModelVersions with one (model, version). (Pipeline runs are not watched yet.)

A sample brackets its reads between two reads of the endpoints and only judges what both agree on, so a
status write landing mid-sample is never mistaken for a violation. Samples that fail (the API server or
etcd is down) are counted as gaps, not violations."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from slipway import GROUP, VERSION

ENDPOINT_LABEL = f"{GROUP}/endpoint"
VERSION_LABEL = f"{GROUP}/version"


@dataclass
class Violation:
    at: float
    kind: str
    detail: str


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
        # A short timeout: a sample must not hang for a minute while etcd is down.
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

    def _list(self, plural: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, _request_timeout=3
        )["items"]
        return items

    def sample(self) -> None:
        now = time.monotonic()
        before = {e["metadata"]["name"]: e for e in self._list("servingendpoints")}
        pods = self.core.list_namespaced_pod(
            self.namespace, label_selector=ENDPOINT_LABEL, _request_timeout=3
        ).items
        deployments = {
            d.metadata.name: d
            for d in self.apps.list_namespaced_deployment(
                self.namespace, label_selector=ENDPOINT_LABEL, _request_timeout=3
            ).items
        }
        services = {
            s.metadata.name: s
            for s in self.core.list_namespaced_service(
                self.namespace, label_selector=ENDPOINT_LABEL, _request_timeout=3
            ).items
        }
        versions = self._list("modelversions")
        after = {e["metadata"]["name"]: e for e in self._list("servingendpoints")}

        phases = {
            (v["spec"]["modelName"], int(v["spec"]["version"])): (v.get("status") or {}).get("phase")
            for v in versions
        }
        for key, count in Counter(
            (v["spec"]["modelName"], int(v["spec"]["version"])) for v in versions
        ).items():
            if count > 1:
                self._violate(now, "duplicate-model-version", f"{key} recorded {count} times")
        live = [p for p in pods if p.metadata.deletion_timestamp is None]
        for pod in live:
            labels = pod.metadata.labels or {}
            model, version = labels.get(f"{GROUP}/model"), labels.get(VERSION_LABEL)
            if version is not None and phases.get((model, int(version))) != "Validated":
                self._violate(now, "unvalidated-version-with-pods", f"pod {pod.metadata.name}: v{version}")

        for name, endpoint in after.items():
            earlier = before.get(name)
            if earlier is None:
                continue
            status, status_before = endpoint.get("status") or {}, earlier.get("status") or {}
            stable = status.get("stableVersion")
            if stable is not None and stable == status_before.get("stableVersion"):
                deployment = deployments.get(f"{name}-v{stable}")
                ready = (deployment.status.ready_replicas or 0) if deployment is not None else 0
                wanted = int(endpoint["spec"].get("replicas", 1))
                if ready < wanted:
                    self._violate(now, "stable-below-replicas", f"{name}: v{stable} {ready}/{wanted} ready")
            claimed = {
                v
                for s in (status, status_before)
                for v in (s.get("stableVersion"), s.get("canaryVersion"))
                if v is not None
            }
            service = services.get(name)
            if service is None or not service.spec.selector:
                continue
            selector = service.spec.selector
            for pod in live:
                labels = pod.metadata.labels or {}
                if all(labels.get(k) == v for k, v in selector.items()):
                    version = int(labels.get(VERSION_LABEL, "-1"))
                    if version not in claimed:
                        self._violate(
                            now,
                            "service-selects-unclaimed-version",
                            f"{name}: Service selects pod {pod.metadata.name} of v{version}; status claims "
                            f"{sorted(claimed)}",
                        )

    def _violate(self, at: float, kind: str, detail: str) -> None:
        if not self.violations or (self.violations[-1].kind, self.violations[-1].detail) != (kind, detail):
            self.violations.append(Violation(at, kind, detail))

    def summary(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "gaps": self.gaps,
            "violations": len(self.violations),
            "by_kind": dict(Counter(v.kind for v in self.violations)),
        }

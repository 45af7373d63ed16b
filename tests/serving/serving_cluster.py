"""The serving cluster tests' helpers: an endpoint's world on the test control plane (ModelVersions with
a model on disk, endpoints, their Deployments, pods, Events) and a watcher of stable's ready replicas."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from slipway import GROUP, VERSION

MODEL = "penguins"
SAMPLE = {"instances": [{"island": "Biscoe", "bill_length_mm": 46.1, "body_mass_g": 5200}]}


def manifest(version: int) -> dict[str, Any]:
    return {"modelName": MODEL, "version": version, "sampleRequest": SAMPLE}


class Env:
    def __init__(self, api: client.ApiClient, namespace: str, store: Path) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.store = store

    def model_version(
        self,
        version: int,
        phase: str = "Validated",
        gates: dict[str, Any] | None = None,
        location: dict[str, Any] | None = None,
    ) -> None:
        """A ModelVersion of a model written to the file:// store, or (`location`: uri, storageSecretRef,
        storageEndpoint) of one somewhere else."""
        directory = self.store / MODEL / str(version)
        directory.mkdir(parents=True)
        (directory / "saved_model.pb").write_bytes(b"\x08\x01")
        (directory / "slipway-manifest.json").write_text(json.dumps(manifest(version)))
        name = f"{MODEL}-v{version}"
        spec: dict[str, Any] = {"modelName": MODEL, "version": version, "uri": f"file://{directory}"}
        spec.update(location or {})
        if gates:
            spec["gates"] = gates
            spec["metrics"] = {"accuracy": "0.5"}
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelVersion",
            "metadata": {"name": name},
            "spec": spec,
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, "modelversions", body)
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, "modelversions", name, {"status": {"phase": phase}}
        )

    def endpoint(self, name: str, **spec: Any) -> None:
        """An endpoint of 2 replicas reading the file:// store through a volume (`field=None` drops one)."""
        defaults = {
            "modelName": MODEL,
            "replicas": 2,
            "modelVolume": {"mountPath": str(self.store), "hostPath": str(self.store)},
        }
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ServingEndpoint",
            "metadata": {"name": name},
            "spec": {key: value for key, value in {**defaults, **spec}.items() if value is not None},
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, "servingendpoints", body)

    def get(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "servingendpoints", name
        )
        return result

    def status(self, name: str) -> dict[str, Any]:
        return self.get(name).get("status") or {}

    def patch(self, name: str, body: dict[str, Any]) -> None:
        plural = "servingendpoints"
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name, body)

    def annotate(self, name: str, key: str, value: str) -> None:
        self.patch(name, {"metadata": {"annotations": {key: value}}})

    def deployments(self, endpoint: str) -> dict[str, Any]:
        items = self.apps.list_namespaced_deployment(
            self.namespace, label_selector=f"slipway.dev/endpoint={endpoint}"
        )
        return {d.metadata.name: d for d in items.items}

    def ready(self, deployment: str) -> int:
        try:
            return (
                self.apps.read_namespaced_deployment_status(deployment, self.namespace).status.ready_replicas
                or 0
            )
        except ApiException as error:
            if error.status == 404:
                return 0
            raise

    def _events(self, name: str) -> list[Any]:
        selector = f"involvedObject.name={name}"
        items = self.core.list_namespaced_event(self.namespace, field_selector=selector).items
        return sorted(items, key=lambda e: e.metadata.creation_timestamp)

    def events(self, name: str) -> list[tuple[str, str]]:
        return [(e.type, e.reason) for e in self._events(name)]

    def event_messages(self, name: str) -> list[tuple[str, str]]:
        return [(e.reason, e.message) for e in self._events(name)]


def condition(status: dict[str, Any], type_: str) -> str | None:
    return next((c["status"] for c in status.get("conditions", []) if c["type"] == type_), None)


class ReadyWatcher:
    """Samples, in the background, the ready replicas of `version`'s Deployment for as long as the
    endpoint's status names it stable ('never below the minimum' needs every look, not the last one)."""

    def __init__(self, env: Env, endpoint: str, version: int) -> None:
        self.env, self.endpoint, self.version = env, endpoint, version
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            # Ready first, then status: a sample counts only if the version was still stable afterwards.
            ready = self.env.ready(f"{self.endpoint}-v{self.version}")
            if self.env.status(self.endpoint).get("stableVersion") == self.version:
                self.samples.append(ready)
            time.sleep(0.1)

    def __enter__(self) -> ReadyWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

"""One endpoint's rollouts, driven as a user would, and what must hold when they are done: every rollout
ended as asked (promoted, or rolled back on an abort request), every ModelVersion exists once, and every
outcome in the endpoint's history was announced by an Event."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.rest import ApiException

from slipway import GROUP, VERSION

MODEL = "penguins"
ENDPOINT = "web"
# A pause without a duration holds each rollout at 50% until the test promotes or aborts it.
STEPS = [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]
T = TypeVar("T")
# The long form (`make faults`) sets this to 100: rollouts per scenario.
ROLLOUTS = int(os.environ.get("SLIPWAY_FAULT_ROLLOUTS", "0"))


def rollouts(short: int) -> int:
    return ROLLOUTS or short


def operator_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "SLIPWAY_RECONCILE_INTERVAL_SECONDS": "1",
        "SLIPWAY_IMAGE": "slipway:test",
        "SLIPWAY_TFSERVING_URL_TEMPLATE": "http://127.0.0.1:9/{service}",  # no analysis step runs
        **(extra or {}),
    }


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 90.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if result := check():
                return result
        except (ApiException, OSError):  # the control plane is down for now
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Scenario:
    def __init__(self, api: client.ApiClient, namespace: str, store: Path) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.namespace, self.store = namespace, store
        self.version = 0
        self.expected: dict[int, str] = {}  # version -> the outcome asked for
        self.wrong: list[str] = []  # rollouts that did not end as asked

    def model_version(self, version: int) -> None:
        directory = self.store / MODEL / str(version)
        directory.mkdir(parents=True)
        (directory / "saved_model.pb").write_bytes(b"\x08\x01")
        name = f"{MODEL}-v{version}"
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelVersion",
            "metadata": {"name": name},
            "spec": {"modelName": MODEL, "version": version, "uri": f"file://{directory}"},
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, "modelversions", body)
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, "modelversions", name, {"status": {"phase": "Validated"}}
        )

    def endpoint(self) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ServingEndpoint",
            "metadata": {"name": ENDPOINT},
            "spec": {
                "modelName": MODEL,
                "replicas": 2,
                "modelVolume": {"mountPath": str(self.store), "hostPath": str(self.store)},
                "rollout": {"steps": STEPS},
            },
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, "servingendpoints", body)

    def status(self) -> dict[str, Any]:
        body = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "servingendpoints", ENDPOINT
        )
        return dict(body.get("status") or {})

    def annotate(self, key: str, value: str) -> None:
        patch = {"metadata": {"annotations": {f"{GROUP}/{key}": value}}}
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "servingendpoints", ENDPOINT, patch
        )

    # --- rollouts -------------------------------------------------------------------------------------

    def first_version(self, timeout: float = 90.0) -> None:
        self.version = 1
        self.model_version(1)
        self.endpoint()
        self.expected[1] = "Promoted"
        wait_for(lambda: self.status().get("stableVersion") == 1, "v1 stable", timeout)

    def start_rollout(self) -> int:
        self.version += 1
        self.model_version(self.version)
        return self.version

    def paused(self, version: int, timeout: float = 90.0) -> None:
        def at_pause() -> bool:
            status = self.status()
            progressing = next((c for c in status.get("conditions", []) if c["type"] == "Progressing"), {})
            # Not `phase`: after a rollback it says Degraded until the next promotion.
            return status.get("canaryVersion") == version and progressing.get("reason") == "Paused"

        wait_for(at_pause, f"v{version} paused at 50%", timeout)

    def decide(self, version: int, promote: bool) -> None:
        self.expected[version] = "Promoted" if promote else "RolledBack"
        self.annotate("promote" if promote else "abort", str(version))

    def finished(self, version: int, timeout: float = 90.0) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            status = self.status()
            if status.get("canaryVersion") is not None:
                return None
            if any(r["version"] == version for r in status.get("history", [])):
                return status
            return None

        status = wait_for(done, f"v{version}'s rollout finished", timeout)
        records = [r["outcome"] for r in status["history"] if r["version"] == version]
        if len(records) != 1:  # an abort and a restart would still end as asked: not good enough
            self.wrong.append(f"v{version}: rolled out {len(records)} times: {records}")
        return status

    def rollout(
        self, promote: bool, during: Callable[[], None] | None = None, timeout: float = 90.0
    ) -> float:
        """One rollout to its end; `during` runs while it is paused at 50% (the fault). Returns seconds."""
        started = time.monotonic()
        version = self.start_rollout()
        self.paused(version, timeout)
        if during is not None:
            during()
        self.decide(version, promote)
        status = self.finished(version, timeout)
        outcome = next(r["outcome"] for r in reversed(status["history"]) if r["version"] == version)
        if outcome != self.expected[version] or (promote and status.get("stableVersion") != version):
            self.wrong.append(f"v{version}: asked {self.expected[version]}, got {outcome}")
        return time.monotonic() - started

    # --- what must hold at the end ----------------------------------------------------------------------

    def model_versions(self) -> list[tuple[str, int]]:
        items = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, "modelversions")
        return sorted((i["spec"]["modelName"], int(i["spec"]["version"])) for i in items["items"])

    def events(self) -> list[tuple[str, str]]:
        selector = f"involvedObject.name={ENDPOINT},involvedObject.kind=ServingEndpoint"
        items = self.core.list_namespaced_event(self.namespace, field_selector=selector).items
        return [(e.reason, e.message) for e in items]

    def unannounced(self) -> list[str]:
        """History records with no Event of their outcome naming their version."""
        events = self.events()
        missing = []
        for record in self.status().get("history", []):
            version, outcome = record["version"], record["outcome"]
            if not any(reason == outcome and f"v{version}" in message for reason, message in events):
                missing.append(f"v{version} {outcome}")
        return missing

    def duplicate_announcements(self) -> list[str]:
        counts: dict[tuple[str, str], int] = {}
        for reason, message in self.events():
            if reason in ("Promoted", "RolledBack", "Aborted"):
                counts[(reason, message)] = counts.get((reason, message), 0) + 1
        return [f"{reason} x{n}: {message}" for (reason, message), n in counts.items() if n > 1]


_started = time.monotonic()


def start_clock() -> None:
    """A scenario starts (conftest.py calls it before each test): `seconds` in its figures count from here."""
    global _started
    _started = time.monotonic()


def write_results(path: Path, scenario: str, figures: dict[str, Any]) -> None:
    """Merges one scenario's figures, and how long it took, into bench/results/faults.json (the long
    form's record)."""
    results = json.loads(path.read_text()) if path.exists() else {"scenarios": {}}
    results["scenarios"][scenario] = {**figures, "seconds": round(time.monotonic() - _started)}
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")

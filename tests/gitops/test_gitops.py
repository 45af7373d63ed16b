"""The GitOps loop for real: Argo CD v3.6.1's application controller and repo server (with Redis and a Git
repository on loopback) sync Slipway's manifests into the embedded control plane (kwok) and judge their
health with Slipway's checks, while the operator runs as a process, as a platform engineer would drive it:
each step is a Git commit, then the refresh Argo CD's Git webhook would ask for.

It checks the health Argo CD gives the Application at each stage (Progressing → Healthy on a rollout,
Suspended on a paused canary, Degraded on a rollback), that Argo CD never fights the operator (each commit
synced once, Synced while the operator writes status and the CLI annotates) and that Argo CD shows the API
server's refusal of a change to a ModelVersion's immutable spec."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from gitops_repo import OVERLAY, PV, GitOpsRepo
from kubernetes import client
from kubernetes.client.rest import ApiException

from fixtures.argocd import ArgoCD
from fixtures.cli import slipway
from fixtures.waiting import wait_for
from slipway import GROUP, VERSION

APP = "slipway"
# A canary step at half the traffic with analysis, then a pause until someone promotes.
STEPS = [{"setWeight": 50}, {"analysis": {}}, {"pause": {}}, {"setWeight": 100}]


@dataclass(frozen=True)
class Seen:
    revision: str
    sync: str
    health: str


class Watcher:
    """Samples the Application's sync status and health every 0.2 s in the background: an OutOfSync flash
    or a health stage that lasts one second is seen, not only the state at the end."""

    def __init__(self, argocd: ArgoCD) -> None:
        self.argocd = argocd
        self.seen: list[Seen] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            status = self.argocd.application(APP).get("status", {})
            sync = status.get("sync", {})
            self.seen.append(
                Seen(
                    sync.get("revision", ""),
                    sync.get("status", ""),
                    status.get("health", {}).get("status", ""),
                )
            )
            time.sleep(0.2)

    def since(self, index: int) -> list[Seen]:
        return self.seen[index:]

    def healths(self, revision: str, wait_seconds: float = 10.0) -> list[str]:
        """The health stages the Application went through at `revision`, repeats collapsed. Waits (bounded)
        for the sampler to have seen the revision Synced: the caller may have seen it first."""
        deadline = time.monotonic() + wait_seconds
        while True:
            stages: list[str] = []
            for seen in list(self.seen):
                if (
                    seen.revision == revision
                    and seen.sync == "Synced"
                    and (not stages or stages[-1] != seen.health)
                ):
                    stages.append(seen.health)
            if stages or time.monotonic() > deadline:
                return stages
            time.sleep(0.2)

    def out_of_sync_after_synced(self, revision: str) -> list[Seen]:
        """Samples OutOfSync at `revision` after it had been Synced: Argo CD and the operator fighting."""
        at = [seen for seen in self.seen if seen.revision == revision]
        first = next((i for i, seen in enumerate(at) if seen.sync == "Synced"), len(at))
        return [seen for seen in at[first:] if seen.sync != "Synced"]

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def synced_objects(api_client: Any) -> Iterator[None]:
    """Removes afterwards what the Application synced outside Argo CD's namespace, but the CRDs (shared with
    the session's other tests): the namespaces (so later operators find nothing left in `ml`) and the
    store's PersistentVolume."""
    yield
    core = client.CoreV1Api(api_client)
    for delete, name in (
        (core.delete_namespace, "ml"),
        (core.delete_namespace, "slipway-system"),
        (core.delete_persistent_volume, PV),
    ):
        try:
            delete(name)
        except ApiException as error:
            if error.status != 404:
                raise


def _app(argocd: ArgoCD) -> dict[str, Any]:
    return argocd.application(APP).get("status", {})


def _synced_at(
    argocd: ArgoCD, revision: str, health: str | None = None, timeout: float = 120
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        status = _app(argocd)
        if status.get("sync", {}).get("revision") != revision or status["sync"].get("status") != "Synced":
            return None
        if health is not None and status.get("health", {}).get("status") != health:
            return None
        return status

    try:
        return wait_for(
            check, f"{APP} Synced at {revision[:8]}" + (f" and {health}" if health else ""), timeout
        )
    except AssertionError as error:
        raise AssertionError(f"{error}; the Application's status: {_app(argocd)}\n{argocd.logs()}") from None


def _resource_health(status: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    return next(r for r in status["resources"] if r["kind"] == kind and r["name"] == name).get("health", {})


def _commit(repo: GitOpsRepo, argocd: ArgoCD, message: str) -> str:
    revision = repo.commit(message)
    argocd.refresh(APP)
    return revision


def test_argocd_syncs_slipway_and_judges_its_health(
    synced_objects: None,  # first: removed after Argo CD and the operator have stopped
    argocd: ArgoCD,
    serving_operator: Any,
    fake_tfserving: Any,
    cluster: Any,
    custom: Any,
    tmp_path: Path,
) -> None:
    repo = GitOpsRepo(tmp_path / "git", tmp_path / "models")
    repo.install_slipway()
    installed = repo.commit("Install Slipway")
    argocd.create_application(APP, repo.url, OVERLAY)
    status = _synced_at(argocd, installed, "Healthy", timeout=180)
    assert {r["kind"] for r in status["resources"]} >= {"CustomResourceDefinition", "Deployment", "Namespace"}

    with Watcher(argocd) as watcher:
        # An endpoint of the samples with no version yet: Progressing for as long as that lasts (a rollout
        # of a first version on kwok is over before Argo CD has always assessed the synced revision).
        repo.serve_penguins(STEPS)
        no_version = _commit(repo, argocd, "Serve penguins")
        status = _synced_at(argocd, no_version, "Progressing")
        waiting = _resource_health(status, "ServingEndpoint", "penguins")
        assert waiting["status"] == "Progressing", waiting
        # Its first model: rolled out at once (nothing to canary against).
        repo.push_first_version()
        serving = _commit(repo, argocd, "penguins v1")
        status = _synced_at(argocd, serving, "Healthy")
        assert _resource_health(status, "ServingEndpoint", "penguins") == {
            "status": "Healthy",
            "message": "v1 serving",
        }

        # v2: a canary through analysis to the pause, which Argo CD shows as Suspended; then promoted.
        repo.push_model_version(2)
        v2 = _commit(repo, argocd, "penguins v2")
        status = _synced_at(argocd, v2, "Suspended")
        health = _resource_health(status, "ServingEndpoint", "penguins")
        assert health["status"] == "Suspended" and "paused until `slipway promote`" in health["message"]
        wait_for(lambda: "Suspended" in watcher.healths(v2), "the watcher to see Suspended", timeout=10)
        assert "Degraded" not in watcher.healths(v2), watcher.healths(v2)
        slipway(cluster.kubeconfig, "promote", "penguins", "-n", "ml")
        status = _synced_at(argocd, v2, "Healthy")
        assert _resource_health(status, "ServingEndpoint", "penguins")["message"] == "v2 serving"

        # Argo CD does not fight the operator: status written all along, the CLI's annotation, kopf's.
        quiet_from = len(watcher.seen)
        argocd.refresh(APP)
        time.sleep(5)
        assert {(s.sync, s.health) for s in watcher.since(quiet_from)} == {("Synced", "Healthy")}
        endpoint = custom.get_namespaced_custom_object(GROUP, VERSION, "ml", "servingendpoints", "penguins")
        assert "slipway.dev/promote" in endpoint["metadata"].get("annotations", {})
        assert endpoint["status"]["stableVersion"] == 2

        # v3 fails its smoke test: rolled back, the endpoint (and so the Application) Degraded.
        fake_tfserving.broken_versions.add(3)
        repo.push_model_version(3)
        v3 = _commit(repo, argocd, "penguins v3")
        status = _synced_at(argocd, v3, "Degraded")
        health = _resource_health(status, "ServingEndpoint", "penguins")
        assert health["status"] == "Degraded" and "v3 rolled back" in health["message"], health
        assert _resource_health(status, "ModelVersion", "penguins-v3")["status"] == "Healthy"

    # Each commit synced once: no OutOfSync loop on what the operator writes.
    revisions = [entry["revision"] for entry in _app(argocd)["history"]]
    assert revisions == [installed, no_version, serving, v2, v3], revisions
    for revision in (serving, v2, v3):
        assert not watcher.out_of_sync_after_synced(revision), f"OutOfSync again at {revision[:8]}"

    # A ModelVersion's spec is immutable: the sync is refused, with the CEL rule's message in Argo CD.
    repo.edit_v1_accuracy("0.99")
    edited = _commit(repo, argocd, "Edit penguins v1's metrics")

    def refused() -> dict[str, Any] | None:
        operation = _app(argocd).get("operationState", {})
        revision = operation.get("operation", {}).get("sync", {}).get("revision")
        if revision != edited or operation.get("phase") == "Running":
            return None
        return operation

    operation = wait_for(refused, "the sync of the edited ModelVersion to finish", timeout=120)
    assert operation["phase"] in ("Failed", "Error"), operation
    assert "spec is immutable: a ModelVersion records one pushed model" in operation["message"], operation
    assert _app(argocd)["sync"]["status"] == "OutOfSync"
    v1 = custom.get_namespaced_custom_object(GROUP, VERSION, "ml", "modelversions", "penguins-v1")
    assert v1["spec"]["metrics"]["accuracy"] == "0.97"

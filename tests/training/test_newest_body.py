"""The training controller plans a pipeline from its newest body known (its watch events, its own writes)
with no read of its own, and writes status only onto that revision: a body someone wrote since is read and
planned again, so a stale body never overwrites another writer's status."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from fixtures.cluster import recorded_requests, status_of
from fixtures.pipelines import local_pipeline
from slipway import GROUP, VERSION
from slipway.training import controller
from slipway.training.observe import Memory

PIPELINES = Path(__file__).resolve().parent / "pipelines"


@pytest.fixture
def requests(api_client: client.ApiClient, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("SLIPWAY_PIPELINES_DIR", str(PIPELINES))
    return recorded_requests(api_client, monkeypatch)


def reconcile(namespace: str, memory: Memory, events: list[str]) -> None:
    controller.reconcile(
        namespace, "tiny", [], None, None, lambda body, type_, reason, message: events.append(reason), memory
    )


def created(api_client: client.ApiClient, namespace: str, root: Path) -> dict[str, Any]:
    (root / "data").mkdir(parents=True)
    (root / "data" / "a.csv").write_text("x,y\n1,2\n")
    custom = client.CustomObjectsApi(api_client)
    body: dict[str, Any] = custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "trainingpipelines", local_pipeline(root, "tiny")
    )
    return body


def pipeline_status(api_client: client.ApiClient, namespace: str) -> dict[str, Any]:
    return status_of(api_client, namespace, "trainingpipelines", "tiny")


def test_the_newest_body_known_is_planned_without_a_read(
    api_client: client.ApiClient, namespace: str, tmp_path: Path, requests: list[str]
) -> None:
    memory = Memory()
    memory.bodies.put((namespace, "tiny"), created(api_client, namespace, tmp_path))

    reconcile(namespace, memory, [])

    assert [r for r in requests if r.startswith("GET")] == []
    written = pipeline_status(api_client, namespace)
    assert written["observedGeneration"] == 1
    known = memory.bodies.get((namespace, "tiny"))
    assert known is not None and known["status"]["observedGeneration"] == 1  # its own write, remembered
    requests.clear()
    reconcile(namespace, memory, [])  # nothing changed: nothing read, nothing written
    assert requests == []


def test_a_stale_body_is_read_and_planned_again(
    api_client: client.ApiClient, namespace: str, tmp_path: Path, requests: list[str]
) -> None:
    memory = Memory()
    stale = created(api_client, namespace, tmp_path)
    memory.bodies.put((namespace, "tiny"), stale)
    custom = client.CustomObjectsApi(api_client)
    custom.patch_namespaced_custom_object(  # another writer: the body known is now stale
        GROUP, VERSION, namespace, "trainingpipelines", "tiny", {"metadata": {"labels": {"team": "a"}}}
    )

    reconcile(namespace, memory, [])

    assert requests[:3] == ["PATCH status", "GET tiny", "PATCH status"]  # refused, read, written
    assert pipeline_status(api_client, namespace)["observedGeneration"] == 1
    known = memory.bodies.get((namespace, "tiny"))
    assert known is not None and known["metadata"]["labels"] == {"team": "a"}


def test_a_run_starts_only_on_the_body_the_api_server_has(
    api_client: client.ApiClient, namespace: str, tmp_path: Path, requests: list[str]
) -> None:
    memory = Memory()
    created(api_client, namespace, tmp_path)
    custom = client.CustomObjectsApi(api_client)
    asked = {"metadata": {"annotations": {f"{GROUP}/run": "r1"}}}
    memory.bodies.put(  # a run asked for, as a watch event brought it ...
        (namespace, "tiny"),
        custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "trainingpipelines", "tiny", asked),
    )
    withdrawn = {"metadata": {"annotations": {f"{GROUP}/run": None}}}
    custom.patch_namespaced_custom_object(  # ... and withdrawn before the operator acted on it
        GROUP, VERSION, namespace, "trainingpipelines", "tiny", withdrawn
    )

    reconcile(namespace, memory, [])

    assert "GET tiny" in requests
    assert pipeline_status(api_client, namespace).get("runs", []) == []
    runs = tmp_path / "artifacts" / namespace / "tiny" / "runs"
    assert not runs.exists() or not any(runs.iterdir())


def test_a_plan_set_aside_gives_back_the_polls_it_took() -> None:
    memory = Memory()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert memory.poll_due(("ns", "a"), "NewData", 60, at)
    before = memory.polls_of(("ns", "a"))
    assert memory.poll_due(("ns", "b"), "NewData", 60, at)
    assert memory.poll_due(("ns", "a"), "Drift", 60, at)

    memory.restore_polls(("ns", "a"), before)

    assert not memory.poll_due(("ns", "a"), "NewData", 60, at)
    assert memory.poll_due(("ns", "a"), "Drift", 60, at)  # taken by the plan set aside: due again
    assert not memory.poll_due(("ns", "b"), "NewData", 60, at)  # another pipeline's: untouched

"""The Argo CD health checks, run in a real Lua interpreter (lupa) against objects captured from the
integration tests (tests/data/status/), as Argo CD runs them: `obj` is the resource, the script returns
{status, message}."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import LuaRuntime

from slipway.argocd import render_config_map

ARGOCD = Path(__file__).resolve().parents[2] / "manifests" / "argocd"
CAPTURES = Path(__file__).resolve().parents[1] / "data" / "status"


def health(kind: str, obj: dict[str, Any]) -> tuple[str, str]:
    lua = LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute((ARGOCD / "health" / f"{kind}.lua").read_text())
    return result["status"], result["message"] or ""


def captured(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((CAPTURES / f"{name}.json").read_text())
    return body


@pytest.mark.parametrize(
    ("capture", "expected", "message_part"),
    [
        ("servingendpoint-healthy", "Healthy", "v1 serving"),
        ("servingendpoint-progressing", "Progressing", "v2 at step"),
        ("servingendpoint-paused", "Suspended", "v2 at step 1"),
        ("servingendpoint-degraded", "Degraded", "v3 rolled back: smoke test: predict answered HTTP"),
    ],
)
def test_serving_endpoint_health(capture: str, expected: str, message_part: str) -> None:
    status, message = health("servingendpoint", captured(capture))
    assert status == expected
    assert message_part in message


def test_an_unobserved_generation_is_progressing() -> None:
    obj = copy.deepcopy(captured("servingendpoint-healthy"))
    obj["metadata"]["generation"] = obj["status"]["observedGeneration"] + 1
    assert health("servingendpoint", obj)[0] == "Progressing"
    assert health("servingendpoint", {"metadata": {"generation": 1}, "spec": {}})[0] == "Progressing"


def test_model_version_health() -> None:
    assert health("modelversion", captured("modelversion-validated")) == ("Healthy", "Validated")
    status, message = health("modelversion", captured("modelversion-rejected"))
    assert status == "Degraded" and message == "Rejected: metric:accuracy: 0.6 < min 0.9"
    pending = copy.deepcopy(captured("modelversion-validated"))
    del pending["status"]
    assert health("modelversion", pending)[0] == "Progressing"


def test_training_pipeline_health() -> None:
    assert health("trainingpipeline", captured("trainingpipeline-succeeded")) == (
        "Healthy",
        "Last run Succeeded",
    )
    status, message = health("trainingpipeline", captured("trainingpipeline-failed"))
    assert status == "Degraded" and message.startswith("Last run failed:")
    running = copy.deepcopy(captured("trainingpipeline-succeeded"))
    for condition in running["status"]["conditions"]:
        if condition["type"] == "Running":
            condition.update(status="True", message="run tiny-manual-1 running")
    assert health("trainingpipeline", running) == ("Progressing", "run tiny-manual-1 running")
    invalid = copy.deepcopy(captured("trainingpipeline-succeeded"))
    for condition in invalid["status"]["conditions"]:
        if condition["type"] == "Ready":
            condition.update(status="False", reason="InvalidSchedule", message="spec.schedule.cron: bad")
    assert health("trainingpipeline", invalid) == ("Degraded", "spec.schedule.cron: bad")
    suspended = copy.deepcopy(captured("trainingpipeline-succeeded"))
    suspended["spec"]["schedule"] = {"cron": "0 3 * * *", "suspend": True}
    assert health("trainingpipeline", suspended)[0] == "Suspended"
    stale = copy.deepcopy(captured("trainingpipeline-succeeded"))
    stale["metadata"]["generation"] += 1
    assert health("trainingpipeline", stale)[0] == "Progressing"


def test_config_map_snippet_matches_the_lua_files() -> None:
    on_disk = (ARGOCD / "argocd-cm.yaml").read_text()
    assert on_disk == render_config_map(ARGOCD), "run `make argocd`"
    data = yaml.safe_load(on_disk)["data"]
    assert (
        data["resource.customizations.health.slipway.dev_ServingEndpoint"]
        == (ARGOCD / "health" / "servingendpoint.lua").read_text()
    )

"""The objects the Argo CD health checks are judged on, with the health each must get: the objects captured
from the integration tests (tests/data/status/) and edge objects derived from them (no status, a stale
observedGeneration, conditions of status Unknown, being deleted, every phase of every kind).

Both tiers use them: test_argocd_health.py runs each through Argo CD itself, test_lua51_health.py through
Lua 5.1 with only the libraries Argo CD opens."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ARGOCD = Path(__file__).resolve().parents[2] / "manifests" / "argocd"
CAPTURES = Path(__file__).resolve().parents[1] / "data" / "status"
DELETED_AT = "2026-11-30T12:00:00Z"

Object = dict[str, Any]


def captured(name: str) -> Object:
    body: Object = json.loads((CAPTURES / f"{name}.json").read_text())
    return body


@dataclass(frozen=True)
class Case:
    id: str
    capture: str
    edit: Callable[[Object], None] | None
    status: str
    message: str
    exact: bool = True  # else `message` need only be part of the message

    @property
    def kind(self) -> str:
        return self.capture.split("-", 1)[0]

    def object(self) -> Object:
        obj = copy.deepcopy(captured(self.capture))
        if self.edit is not None:
            self.edit(obj)
        return obj


def _set_condition(type_: str, **fields: Any) -> Callable[[Object], None]:
    def edit(obj: Object) -> None:
        conditions = obj["status"].setdefault("conditions", [])
        found = next((c for c in conditions if c["type"] == type_), None)
        if found is None:
            conditions.append({"type": type_, **fields})
        else:
            found.update(fields)

    return edit


def _all(*edits: Callable[[Object], None]) -> Callable[[Object], None]:
    def edit(obj: Object) -> None:
        for one in edits:
            one(obj)

    return edit


def _no_status(obj: Object) -> None:
    del obj["status"]


def _stale(obj: Object) -> None:
    obj["metadata"]["generation"] = obj["status"]["observedGeneration"] + 1


def _status(**fields: Any) -> Callable[[Object], None]:
    def edit(obj: Object) -> None:
        for key, value in fields.items():
            if value is None:
                obj["status"].pop(key, None)
            else:
                obj["status"][key] = value

    return edit


def _deleting(obj: Object) -> None:
    obj["metadata"]["deletionTimestamp"] = DELETED_AT
    obj["metadata"]["finalizers"] = ["slipway.dev/finalizer"]


def _suspended(obj: Object) -> None:
    obj["spec"]["schedule"] = {"cron": "0 3 * * *", "suspend": True}


def _last_run(**fields: Any) -> Callable[[Object], None]:
    def edit(obj: Object) -> None:
        obj["status"]["lastRun"].update(fields)

    return edit


WAITING = "Waiting for the operator to observe generation "
SE_DELETING = "Being deleted: its Deployments and Services go with it"

CASES = [
    # ServingEndpoint: phases Pending, Progressing, Paused, Healthy, Degraded
    Case("se-healthy", "servingendpoint-healthy", None, "Healthy", "v1 serving"),
    Case("se-progressing", "servingendpoint-progressing", None, "Progressing", "v2 at step 2/6, weight 50%"),
    Case(
        "se-paused",
        "servingendpoint-paused",
        None,
        "Suspended",
        "v2 at step 1/3, weight 50%: paused until `slipway promote`",
    ),
    Case(
        "se-degraded",
        "servingendpoint-degraded",
        None,
        "Degraded",
        "v3 rolled back: smoke test: predict answered HTTP 500: Input to reshape",
        exact=False,
    ),
    Case(
        "se-pending",
        "servingendpoint-healthy",
        _all(
            _status(phase="Pending", stableVersion=None),
            _set_condition(
                "Ready",
                status="False",
                reason="NoValidatedVersion",
                message="no Validated ModelVersion of this model yet",
            ),
        ),
        "Progressing",
        "no Validated ModelVersion of this model yet",
    ),
    Case(
        "se-stable-unavailable",
        "servingendpoint-healthy",
        _all(
            _status(phase="Degraded"),
            _set_condition(
                "Ready", status="False", reason="StableUnavailable", message="no ready replica of v1"
            ),
            _set_condition("Degraded", status="True", reason="StableUnavailable", message=""),
        ),
        "Degraded",
        "StableUnavailable",
    ),
    Case("se-no-status", "servingendpoint-healthy", _no_status, "Progressing", WAITING + "1"),
    Case("se-stale", "servingendpoint-healthy", _stale, "Progressing", WAITING + "2"),
    Case(
        "se-unknown",
        "servingendpoint-healthy",
        _all(
            _set_condition("Ready", status="Unknown", reason="Observing", message="stable not observed yet"),
            _set_condition("Degraded", status="Unknown", reason="Observing", message=""),
        ),
        "Progressing",
        "stable not observed yet",
    ),
    Case("se-deleting", "servingendpoint-healthy", _deleting, "Progressing", SE_DELETING),
    Case("se-deleting-degraded", "servingendpoint-degraded", _deleting, "Progressing", SE_DELETING),
    # ModelVersion: phases Pending, Validated, Rejected
    Case("mv-validated", "modelversion-validated", None, "Healthy", "Validated"),
    Case(
        "mv-rejected", "modelversion-rejected", None, "Degraded", "Rejected: metric:accuracy: 0.6 < min 0.9"
    ),
    Case(
        "mv-rejected-without-checks",
        "modelversion-rejected",
        _status(checks=[]),
        "Degraded",
        "Rejected: metric:accuracy: 0.6 < min 0.9",
    ),
    Case(
        "mv-pending",
        "modelversion-validated",
        _all(
            _status(phase="Pending"),
            _set_condition(
                "Validated", status="Unknown", reason="Evaluating", message="waiting for champion"
            ),
        ),
        "Progressing",
        "waiting for champion",
    ),
    Case("mv-no-status", "modelversion-validated", _no_status, "Progressing", WAITING + "1"),
    Case("mv-stale", "modelversion-validated", _stale, "Progressing", WAITING + "2"),
    Case(
        "mv-phase-without-generation",
        "modelversion-validated",
        _status(observedGeneration=None),
        "Progressing",
        WAITING + "1",
    ),
    Case(
        "mv-deleting",
        "modelversion-rejected",
        _deleting,
        "Progressing",
        "Being deleted: v2 of tiny leaves the registry",
    ),
    # TrainingPipeline: no run yet, a run Pending/Running, last run Succeeded/Failed/Cancelled, bad spec,
    # suspended
    Case("tp-succeeded", "trainingpipeline-succeeded", None, "Healthy", "Last run Succeeded"),
    Case(
        "tp-failed",
        "trainingpipeline-failed",
        None,
        "Degraded",
        "Last run failed: RuntimeError:",
        exact=False,
    ),
    Case("tp-no-run", "trainingpipeline-succeeded", _status(lastRun=None), "Healthy", "No run yet"),
    Case(
        "tp-running",
        "trainingpipeline-succeeded",
        _set_condition("Running", status="True", message="run tiny-manual-1 running"),
        "Progressing",
        "run tiny-manual-1 running",
    ),
    Case(
        "tp-last-run-pending",
        "trainingpipeline-succeeded",
        _last_run(id="tiny-manual-2", phase="Pending"),
        "Progressing",
        "Run tiny-manual-2 Pending",
    ),
    Case(
        "tp-cancelled",
        "trainingpipeline-succeeded",
        _last_run(phase="Cancelled"),
        "Healthy",
        "Last run Cancelled",
    ),
    Case(
        "tp-invalid",
        "trainingpipeline-succeeded",
        _set_condition("Ready", status="False", reason="InvalidSchedule", message="spec.schedule.cron: bad"),
        "Degraded",
        "spec.schedule.cron: bad",
    ),
    Case(
        "tp-ready-unknown",
        "trainingpipeline-succeeded",
        _set_condition("Ready", status="Unknown", reason="Validating", message=""),
        "Progressing",
        "Waiting for the operator to validate the spec",
    ),
    Case("tp-suspended", "trainingpipeline-succeeded", _suspended, "Suspended", "Schedule suspended"),
    Case("tp-no-status", "trainingpipeline-succeeded", _no_status, "Progressing", WAITING + "1"),
    Case("tp-stale", "trainingpipeline-failed", _stale, "Progressing", WAITING + "3"),
    Case(
        "tp-deleting",
        "trainingpipeline-succeeded",
        _all(_deleting, _suspended),
        "Progressing",
        "Being deleted: the operator terminates its runs first",
    ),
]

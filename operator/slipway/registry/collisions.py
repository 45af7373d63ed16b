"""A (model, version) pair names one ModelVersion. The API server cannot refuse a second claim (uniqueness
across objects is beyond a CRD's schema), so the registry marks every claimant with the condition
`Unique=False` naming the others, and serving never starts serving a contested version (what it already
serves stays as deployed: `slipway.serving.rollout.by_number`). The decisions are pure; `mark` writes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from slipway import kube
from slipway.api.common import Condition, set_condition
from slipway.api.model_version import ModelVersionStatus

KIND = "ModelVersion"
CONDITION = "Unique"
COLLISION = "VersionCollision"


def colliding(claims: Iterable[tuple[str, int]]) -> dict[str, list[str]]:
    """(object name, version) claims of one model -> for each object that shares its version with
    another, the others' names (sorted)."""
    by_version: dict[int, set[str]] = defaultdict(set)
    for name, version in claims:
        by_version[version].add(name)
    return {name: sorted(names - {name}) for names in by_version.values() if len(names) > 1 for name in names}


def message(model: str, version: int, others: list[str]) -> str:
    listed = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
    return (
        f"{model} v{version} is also claimed by ModelVersion {listed}: no endpoint starts serving v{version} "
        "while more than one object claims it; delete all but one"
    )


def unique_conditions(
    conditions: list[Condition], model: str, version: int, others: list[str], generation: int | None
) -> list[Condition] | None:
    """The conditions with `Unique` as the claims say (False naming the others; True once it was False and
    the others are gone); None when nothing changes (an object never contested carries no condition)."""
    current = next((c for c in conditions if c.type == CONDITION), None)
    if others:
        new = set_condition(
            conditions, CONDITION, "False", COLLISION, message(model, version, others), generation
        )
    elif current is not None and current.status == "False":
        new = set_condition(
            conditions, CONDITION, "True", "Unique", f"{model} v{version} has one claimant", generation
        )
    else:
        return None
    updated = next(c for c in new if c.type == CONDITION)
    if current is not None and (current.status, current.reason, current.message) == (
        updated.status,
        updated.reason,
        updated.message,
    ):
        return None
    return new


def mark(namespace: str, name: str, others: list[str], post_event: kube.EventSink) -> None:
    """Brings one ModelVersion's `Unique` condition in line with the other claimants of its version, with
    a Warning Event when it becomes contested."""
    body = kube.get(KIND, namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return
    spec = body.get("spec") or {}
    status = ModelVersionStatus.model_validate(body.get("status") or {})
    generation = body["metadata"].get("generation")
    model, version = str(spec.get("modelName")), int(spec.get("version", 0))
    conditions = unique_conditions(status.conditions, model, version, others, generation)
    if conditions is None:
        return
    written = kube.patch_status(KIND, namespace, name, {"conditions": [c.to_wire() for c in conditions]})
    if others:
        post_event(written, "Warning", COLLISION, message(model, version, others))
    else:
        post_event(written, "Normal", "CollisionResolved", f"{model} v{version} has one claimant again")

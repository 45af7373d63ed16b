"""ModelVersion reconcile: evaluate the gates once, record one result per gate, post the verdict.

A verdict is final for a generation (the spec is immutable), so later reconciles make no write."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from slipway import announce, kube
from slipway.api.common import now, reconciled, set_condition
from slipway.api.model_version import ModelVersionSpec, ModelVersionStatus
from slipway.metrics import GATE_FAILURES, MODEL_VERSIONS_VALIDATED
from slipway.registry.gates import Champion, evaluate, headline

KIND = "ModelVersion"
FINAL = ("Validated", "Rejected")


def needs_verdict(body: dict[str, Any]) -> bool:
    """False when the object already carries the final verdict for its generation (no GET needed)."""
    status = body.get("status") or {}
    generation = body.get("metadata", {}).get("generation", 1)
    final = status.get("phase") in FINAL and status.get("observedGeneration") == generation
    return not final or bool(status.get("pendingEvents"))


def champion_for(
    namespace: str,
    version: int,
    stable_versions: Iterable[int],
    version_names: dict[int, str],
    with_metrics: bool = True,
) -> Champion | None:
    """The newest version stable on any endpoint of this model, other than the candidate itself. Its
    metrics are read only `with_metrics` (a must-beat-champion gate); otherwise the views name it."""
    candidates = sorted({v for v in stable_versions if v != version}, reverse=True)
    for stable in candidates:
        name = version_names.get(stable)
        if name and not with_metrics:
            return Champion(name=name, version=stable, metrics={})
        body = kube.get(KIND, namespace, name) if name else None
        if body is not None:
            return Champion(
                name=body["metadata"]["name"], version=stable, metrics=body["spec"].get("metrics") or {}
            )
    return None


def reconcile(
    namespace: str,
    name: str,
    stable_versions: Iterable[int],
    version_names: dict[int, str],
    decided: Callable[[dict[str, Any]], object] = lambda body: None,
    seen: dict[str, Any] | None = None,
    announced: Callable[[dict[str, Any]], object] = lambda body: None,
    awaited: bool = True,
) -> None:
    """`decided` gets the body the verdict was written in, before its Event is posted: the endpoints that
    may roll it out should not wait for the Event and the status write that clears it. `announced` gets
    the body once its pending Events are posted and cleared: the watch event of the verdict's own write,
    which still lists them, comes later and must not post them again. `awaited`: an endpoint may roll
    the version out; when none can, nothing waits on the verdict, and its Event is posted before it under
    a name derived from the verdict instead (see announce), which saves the write that clears it. `seen`:
    the body the watch event brought, judged without reading the object again; the verdict is written only
    onto that very revision, and judged afresh from a read when anyone wrote the object since."""
    body = seen if seen is not None else kube.get(KIND, namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return
    generation = int(body["metadata"].get("generation", 1))
    status = ModelVersionStatus.model_validate(body.get("status") or {})
    if status.phase in FINAL and status.observed_generation == generation:
        announced(announce.announce(body))  # what a stopped operator decided and did not post
        return
    spec = ModelVersionSpec.model_validate(body["spec"])
    rival = spec.gates is not None and spec.gates.must_beat_champion is not None
    champion = champion_for(namespace, spec.version, stable_versions, version_names, with_metrics=rival)
    passed, checks = evaluate(spec, champion)
    phase = "Validated" if passed else "Rejected"
    failed = [f"{c.gate}: {c.message}" for c in checks if not c.passed]
    message = f"{len(checks)} gate(s) passed" if passed else "; ".join(failed)
    conditions = set_condition(
        status.conditions,
        "Validated",
        "True" if passed else "False",
        "GatesPassed" if passed else "GatesFailed",
        message,
        generation,
    )
    conditions = set_condition(
        conditions, "Ready", "True", "Evaluated", f"v{spec.version} {phase}", generation
    )
    conditions = reconciled(conditions, generation)
    said = f"v{spec.version}: {message}"
    verdict = ("Normal" if passed else "Warning", phase, said)
    new = ModelVersionStatus(
        observed_generation=generation,
        phase=phase,
        headline=headline(spec),
        checks=checks,
        champion=champion.name if champion else None,
        served_by=status.served_by,
        validated_at=now(),
        pending_events=announce.with_pending(status.pending_events, [verdict] if awaited else []),
        conditions=conditions,
    ).to_wire()
    if not awaited:  # judged again after a crash or a refused write: the same verdict, the same Event
        announce.post_named(body, *verdict, outcome=f"{generation}/{said}")
    written = kube.write_status_if_unchanged(body, new)
    if written is None:  # written since this body: judge it as it is now
        reconcile(
            namespace, name, stable_versions, version_names, decided, announced=announced, awaited=awaited
        )
        return
    if written is body:
        return
    body = written
    MODEL_VERSIONS_VALIDATED.labels(phase).inc()
    for check in checks:
        if not check.passed:
            GATE_FAILURES.labels(namespace, spec.model_name, check.gate).inc()
    decided(body)
    announced(announce.announce(body))

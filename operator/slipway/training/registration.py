"""What a finished run pushed, and the ModelVersion that records it: pure functions from the run's outputs
and the pushed `slipway-manifest.json` to a ModelVersion body. Reading the store is observe's job, creating
the object the applier's."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from slipway import GROUP, VERSION, blobs, manifest
from slipway.api.model_version import Blessings, DataInput, Lineage, ModelVersionSpec, SecretRef
from slipway.api.training_pipeline import RunRecord, TrainingPipelineSpec, TrainingPipelineStatus
from slipway.training.local_executor import RunState


@dataclass(frozen=True)
class Pushed:
    """What the model store holds for a run: the manifest and SavedModel (`found`), or why not."""

    version: int
    uri: str
    found: manifest.Manifest | None = None
    missing: str | None = None  # nothing (usable) was pushed: the reason
    unreadable: str | None = None  # the store could not be read: try again on the next reconcile


MAX_ATTEMPTS = 5  # reads of a pushed model's manifest before its registration fails for good
ATTEMPTS = "registrationAttempts"  # the run record's detail that counts them


def attempts(record: RunRecord) -> int:
    value = record.details.get(ATTEMPTS, "0")
    return int(value) if value.isdigit() else 0


def mismatch(spec: TrainingPipelineSpec, pushed: Pushed) -> str | None:
    """Why a manifest cannot register the run's model (it names another model, or a version other than
    the directory it was pushed to); None when it can."""
    found = pushed.found
    if found is None:
        return None
    if found.model_name != spec.model_name:
        return f"{pushed.uri}: the manifest names model {found.model_name[:64]!r}, not {spec.model_name!r}"
    if found.version != pushed.version:
        return f"{pushed.uri}: the manifest names version {found.version}, not {pushed.version}"
    return None


def push_result(state: RunState) -> dict[str, Any] | None:
    """The pusher's `push_result` output, when the executor reports outputs (the local executor does)."""
    value = (state.outputs or {}).get("push_result") or (state.outputs or {}).get("Output")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def not_pushed_reason(state: RunState) -> str | None:
    """The run says it pushed nothing (not blessed, ...): no need to look in the store."""
    result = push_result(state)
    if result is not None and not result.get("pushed"):
        return f"not pushed: {result.get('reason') or 'not blessed'}"
    return None


def missing_reason(record: manifest.PushResult | None, uri: str) -> str:
    """Why a run without a push_result output pushed nothing: its pusher's record, else the empty store."""
    if record is not None and not record.pushed:
        return f"not pushed: {record.reason or 'not blessed'}"
    return f"not pushed: no {manifest.MANIFEST} under {uri}"


def pushed_version(record: RunRecord, state: RunState) -> int:
    return int((push_result(state) or {}).get("version") or record.details.get("version") or 0)


def model_dir(spec: TrainingPipelineSpec, version: int) -> str:
    return blobs.join(spec.model_store.uri, spec.model_name, str(version))


def next_version(existing: list[int], status: TrainingPipelineStatus) -> int:
    """One more than any version registered or claimed by a run in status (a run claims it at start)."""
    claimed = [int(r.details["version"]) for r in status.runs if r.details.get("version", "").isdigit()]
    return max([0, *existing, *claimed]) + 1


def model_version_name(spec: TrainingPipelineSpec, found: manifest.Manifest) -> str:
    return f"{spec.model_name}-v{found.version}"


def headline_metric(spec: TrainingPipelineSpec, found: manifest.Manifest) -> str | None:
    if spec.gates and spec.gates.metrics:
        return spec.gates.metrics[0].name
    return "accuracy" if "accuracy" in found.metrics else next(iter(found.metrics), None)


def model_version_body(
    namespace: str,
    name: str,
    spec: TrainingPipelineSpec,
    record: RunRecord,
    found: manifest.Manifest,
    uri: str,
) -> dict[str, Any]:
    """The ModelVersion a run's push becomes. No owner reference: deleting a pipeline keeps its registry."""
    lineage = found.lineage
    mv_spec = ModelVersionSpec(
        model_name=spec.model_name,
        version=found.version,
        uri=uri,
        storage_secret_ref=SecretRef(name=spec.model_store.secret_ref.name)
        if spec.model_store.secret_ref
        else None,
        # S3-compatible stores: the puller in the serving pod must reach the same endpoint the run pushed to.
        storage_endpoint=spec.model_store.endpoint,
        metrics={key: manifest.decimal_string(value) for key, value in found.metrics.items()},
        headline_metric=headline_metric(spec, found),
        blessings=Blessings(
            evaluator=found.blessings.evaluator, infra_validator=found.blessings.infra_validator
        ),
        gates=spec.gates,
        lineage=Lineage(
            pipeline=lineage.pipeline or name,
            run_id=record.id,
            pipeline_digest=record.pipeline_digest,
            trigger=record.trigger,
            parameters=dict(lineage.parameters) or dict(spec.parameters),
            data=[DataInput(uri=d.uri, fingerprint=d.fingerprint) for d in lineage.data][:64],
            schema_uri=lineage.schema_uri,
            statistics_uri=lineage.statistics_uri,
        ),
    )
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {
            "name": model_version_name(spec, found),
            "namespace": namespace,
            "labels": {
                f"{GROUP}/model": spec.model_name,
                f"{GROUP}/pipeline": name,
                f"{GROUP}/run": record.id[:63],
                "app.kubernetes.io/managed-by": "slipway",
            },
        },
        "spec": mv_spec.to_wire(),
    }

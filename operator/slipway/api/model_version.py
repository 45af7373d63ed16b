"""ModelVersion: an immutable record of one pushed model, and the verdict of its validation gates."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from slipway.api.common import (
    PENDING_EVENTS_DESCRIPTION,
    Condition,
    Decimal,
    HttpUrl,
    KubeModel,
    MetricName,
    ModelName,
    ObjectName,
    PendingEvent,
    SecretRef,
    StorageObjectUri,
    ValidationGates,
)
from slipway.formats import MAX_VERSION


class DataInput(KubeModel):
    uri: Annotated[str, Field(max_length=2048)]
    fingerprint: Annotated[str, Field(max_length=128)] = ""


class Lineage(KubeModel):
    pipeline: Annotated[str, Field(max_length=253)] = ""
    run_id: Annotated[str, Field(max_length=253)] = ""
    pipeline_digest: Annotated[str, Field(max_length=128)] = ""
    trigger: Annotated[str, Field(max_length=32)] = ""
    parameters: Annotated[
        dict[Annotated[str, Field(max_length=128)], Annotated[str, Field(max_length=4096)]],
        Field(max_length=64),
    ] = Field(default_factory=dict)
    data: Annotated[list[DataInput], Field(max_length=64)] = Field(default_factory=list)
    schema_uri: Annotated[str, Field(max_length=2048)] = ""
    statistics_uri: Annotated[str, Field(max_length=2048)] = ""
    module_file: Annotated[str, Field(max_length=2048)] = Field(
        default="", description="The module file the model was trained with (TFX's module-file contract)."
    )
    module_digest: Annotated[str, Field(max_length=128)] = ""
    hyperparameters: Annotated[
        dict[Annotated[str, Field(max_length=128)], Annotated[str, Field(max_length=256)]],
        Field(max_length=64),
    ] = Field(
        default_factory=dict, description="The Tuner's best hyperparameters, which the model trained with."
    )
    tuner_trials: Annotated[int, Field(ge=0)] = Field(
        default=0, description="Trials the Tuner ran (0: not tuned)."
    )


class Blessings(KubeModel):
    evaluator: bool | None = None
    infra_validator: bool | None = None


class ModelVersionSpec(KubeModel):
    cel_rules = (("self == oldSelf", "spec is immutable: a ModelVersion records one pushed model", None),)

    model_name: ModelName
    version: Annotated[int, Field(ge=1, le=MAX_VERSION, description="TF Serving's integer version.")]
    uri: Annotated[StorageObjectUri, Field(description="Directory holding saved_model.pb.")]
    storage_secret_ref: SecretRef | None = None
    storage_endpoint: HttpUrl | None = Field(
        default=None,
        description="The endpoint of the S3-compatible store holding uri (its model store's endpoint).",
    )
    metrics: Annotated[dict[MetricName, Decimal], Field(max_length=64)] = Field(default_factory=dict)
    slice_metrics: Annotated[
        dict[
            Annotated[str, Field(max_length=256)], Annotated[dict[MetricName, Decimal], Field(max_length=64)]
        ],
        Field(max_length=256),
    ] = Field(
        default_factory=dict,
        description="Metrics per evaluation slice, e.g. {'island=Biscoe': {'accuracy': '0.97'}}.",
    )
    headline_metric: MetricName | None = Field(
        default=None, description="The metric shown by `kubectl get mv`."
    )
    blessings: Blessings = Field(default_factory=Blessings)
    gates: ValidationGates | None = Field(
        default=None, description="The gates this version must pass (copied from its pipeline)."
    )
    lineage: Lineage = Field(default_factory=Lineage)


# No phase until the gates are evaluated (at once, on creation).
ModelVersionPhase = Literal["Validated", "Rejected"]


class GateResult(KubeModel):
    gate: Annotated[str, Field(max_length=128)]
    passed: bool
    observed: Annotated[str, Field(max_length=256)] = ""
    threshold: Annotated[str, Field(max_length=256)] = ""
    message: Annotated[str, Field(max_length=1024)] = ""


class ModelVersionStatus(KubeModel):
    observed_generation: int | None = None
    phase: ModelVersionPhase | None = None
    headline: Annotated[str, Field(max_length=128)] | None = None
    checks: list[GateResult] = Field(default_factory=list)
    champion: ObjectName | None = None
    served_by: list[ObjectName] = Field(default_factory=list)
    validated_at: datetime | None = None
    pending_events: Annotated[list[PendingEvent], Field(max_length=20)] = Field(
        default_factory=list, description=PENDING_EVENTS_DESCRIPTION
    )
    conditions: list[Condition] = Field(default_factory=list)


class ModelVersion(KubeModel):
    spec: ModelVersionSpec
    status: ModelVersionStatus = Field(default_factory=ModelVersionStatus)

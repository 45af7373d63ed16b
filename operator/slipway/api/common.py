"""Types shared by the three kinds: the base model, conditions, references, storage locations, gates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

# A decimal written as a string: specs carry no floats (Kubernetes API conventions).
DECIMAL_PATTERN = r"^[-+]?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"
Decimal = Annotated[str, Field(pattern=DECIMAL_PATTERN, max_length=64)]
STORAGE_URI_PATTERN = r"^(s3|gs|az|file)://.+"
StorageUri = Annotated[str, Field(pattern=STORAGE_URI_PATTERN, max_length=2048)]
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
ObjectName = Annotated[str, Field(pattern=DNS_LABEL_PATTERN, min_length=1, max_length=63)]
ModelName = Annotated[str, Field(pattern=DNS_LABEL_PATTERN, min_length=1, max_length=50)]


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class KubeModel(BaseModel):
    """Fields are snake_case in Python and camelCase on the wire."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    # CEL rules attached to this object's schema: (rule, message, fieldPath or None).
    cel_rules: ClassVar[tuple[tuple[str, str, str | None], ...]] = ()

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(KubeModel):
    type: Annotated[str, Field(max_length=64)]
    status: ConditionStatus
    reason: Annotated[str, Field(pattern=r"^[A-Za-z]([A-Za-z0-9]*)$", max_length=128)]
    message: Annotated[str, Field(max_length=4096)] = ""
    last_transition_time: datetime
    observed_generation: int | None = None


class PendingEvent(KubeModel):
    """An Event that matters (an outcome), recorded with the status that decided it and removed once
    posted: an operator that stops in between posts it when it starts again."""

    type: Literal["Normal", "Warning"]
    reason: Annotated[str, Field(pattern=r"^[A-Za-z]([A-Za-z0-9]*)$", max_length=128)]
    message: Annotated[str, Field(max_length=1024)] = ""


PENDING_EVENTS_DESCRIPTION = (
    "Outcome Events decided and not yet posted (at least once: posted, then removed from here)."
)


class SecretRef(KubeModel):
    """A Secret in the resource's own namespace; its keys are read by the operator, never copied."""

    name: ObjectName


class StorageLocation(KubeModel):
    uri: Annotated[
        StorageUri,
        Field(
            description="s3://bucket/prefix, gs://bucket/prefix, az://account/container/prefix or file:///path"
        ),
    ]
    secret_ref: SecretRef | None = Field(
        default=None, description="Secret with the store's credentials; omit to use workload identity."
    )
    endpoint: Annotated[str, Field(pattern=r"^https?://.+", max_length=512)] | None = Field(
        default=None, description="Custom endpoint of an S3-compatible store (MinIO, Ceph, ...)."
    )


class MetricThreshold(KubeModel):
    cel_rules = (("has(self.min) || has(self.max)", "a metric threshold needs min or max", None),)

    name: Annotated[str, Field(min_length=1, max_length=128)]
    min: Decimal | None = None
    max: Decimal | None = None


class ChampionGate(KubeModel):
    metric: Annotated[str, Field(min_length=1, max_length=128)]
    min_delta: Decimal = "0"
    higher_is_better: bool = True


class BlessingGate(KubeModel):
    evaluator: bool = True
    infra_validator: bool = True


class ValidationGates(KubeModel):
    """Gates a ModelVersion must pass to become Validated."""

    metrics: Annotated[list[MetricThreshold], Field(max_length=32)] = Field(default_factory=list)
    must_beat_champion: ChampionGate | None = None
    require_blessings: BlessingGate | None = Field(
        default=None, description="Require the evaluator and infra-validator blessings from the manifest."
    )


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int | None,
    at: datetime | None = None,
) -> list[Condition]:
    """Returns the conditions with `type_` set; lastTransitionTime moves only when the status changes."""
    current = next((c for c in conditions if c.type == type_), None)
    unchanged = current is not None and current.status == status
    condition = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=current.last_transition_time if unchanged and current else (at or now()),
        observed_generation=generation,
    )
    if current is None:
        return [*conditions, condition]
    return [condition if c.type == type_ else c for c in conditions]

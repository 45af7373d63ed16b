"""Types shared by the three kinds: the base model, conditions, references, storage locations, gates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from slipway import formats
from slipway.formats import Check
from slipway.messages import sanitize


def checked(checks: Sequence[Check]) -> tuple[Any, AfterValidator]:
    """The same checks twice: as CEL rules on the field in the CRD and as this model's validator.
    Use as `Annotated[str, *checked(...)]`."""

    def validate(value: str) -> str:
        problem = formats.first_problem(value, checks)
        if problem is not None:
            raise ValueError(problem)
        return value

    extra: dict[str, Any] = {"x-kubernetes-validations": [c.rule() for c in checks]}
    return Field(json_schema_extra=extra), AfterValidator(validate)


def unique_by(key: str) -> tuple[Any, AfterValidator]:
    """A list of objects keyed by `key` (`x-kubernetes-list-type: map` in the CRD)."""

    def validate(items: list[Any]) -> list[Any]:
        seen: set[Any] = set()
        for item in items:
            value = getattr(item, key)
            if value in seen:
                raise ValueError(f"duplicate entry with {key} {value!r}")
            seen.add(value)
        return items

    extra: dict[str, Any] = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [key]}
    return Field(json_schema_extra=extra), AfterValidator(validate)


def duration_bound(max_seconds: int, min_seconds: int = 0) -> tuple[Any, AfterValidator]:
    """A duration like 30s, 5m or 2h, from `min_seconds` to `max_seconds`; use as
    `Annotated[str, *duration_bound(...)]`."""
    message = f"must be from {min_seconds}s to {max_seconds}s"

    def validate(value: str) -> str:
        if not min_seconds <= formats.duration_seconds(value) <= max_seconds:
            raise ValueError(message)
        return value

    rule = {
        "rule": f"!self.matches({formats.cel_string(formats.DURATION)}) || "
        f"(duration(self) >= duration('{min_seconds}s') && duration(self) <= duration('{max_seconds}s'))",
        "message": message,
    }
    extra: dict[str, Any] = {"x-kubernetes-validations": [rule]}
    return Field(pattern=formats.DURATION, max_length=8, json_schema_extra=extra), AfterValidator(validate)


# A decimal written as a string: specs carry no floats (Kubernetes API conventions); bounded, never NaN.
DECIMAL_PATTERN = formats.DECIMAL
Decimal = Annotated[str, Field(pattern=DECIMAL_PATTERN, max_length=formats.DECIMAL_MAX_LENGTH)]
StorageUri = Annotated[str, Field(max_length=formats.URI_MAX_LENGTH), *checked(formats.uri_checks())]
# A URI that must name an object (a file or a model directory), not a bucket's root.
StorageObjectUri = Annotated[
    str, Field(max_length=formats.URI_MAX_LENGTH), *checked(formats.uri_checks(needs_key=True))
]
HttpUrl = Annotated[str, Field(pattern=formats.HTTP_URL, max_length=512)]
DNS_LABEL_PATTERN = formats.DNS_LABEL
ObjectName = Annotated[str, Field(pattern=DNS_LABEL_PATTERN, min_length=1, max_length=formats.NAME_MAX)]
ModelName = Annotated[str, Field(pattern=DNS_LABEL_PATTERN, min_length=1, max_length=formats.MODEL_NAME_MAX)]
MetricName = Annotated[
    str, Field(pattern=formats.METRIC_NAME, min_length=1, max_length=formats.METRIC_NAME_MAX)
]


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
            description="s3://bucket/prefix, gs://bucket/prefix, az://container[@account]/prefix or "
            "file:///path"
        ),
    ]
    secret_ref: SecretRef | None = Field(
        default=None, description="Secret with the store's credentials; omit to use workload identity."
    )
    endpoint: HttpUrl | None = Field(
        default=None, description="Custom endpoint of an S3-compatible store (MinIO, Ceph, ...)."
    )


class MetricThreshold(KubeModel):
    cel_rules = (
        ("has(self.min) || has(self.max)", "a metric threshold needs min or max", None),
        (
            "!has(self.min) || !has(self.max) || double(self.min) <= double(self.max)",
            "min must not exceed max: no version could pass",
            ".min",
        ),
    )

    name: MetricName
    min: Decimal | None = None
    max: Decimal | None = None
    every_slice: bool = Field(
        default=False,
        description="The bounds must hold on every slice of the evaluation as well (the fairness check): "
        "one gate result per slice; a version with no slice metrics fails it.",
    )

    @model_validator(mode="after")
    def _satisfiable(self) -> MetricThreshold:
        if self.min is None and self.max is None:
            raise ValueError("a metric threshold needs min or max")
        if self.min is not None and self.max is not None and float(self.min) > float(self.max):
            raise ValueError("min must not exceed max: no version could pass")
        return self


class ChampionGate(KubeModel):
    metric: MetricName
    min_delta: Decimal = "0"
    higher_is_better: bool = True


class BlessingGate(KubeModel):
    evaluator: bool = True
    infra_validator: bool = True


class ValidationGates(KubeModel):
    """Gates a ModelVersion must pass to become Validated."""

    metrics: Annotated[list[MetricThreshold], Field(max_length=32), *unique_by("name")] = Field(
        default_factory=list
    )
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
    """Returns the conditions with `type_` set; lastTransitionTime moves only when the status changes.
    The message is sanitized here, for every condition of every kind."""
    current = next((c for c in conditions if c.type == type_), None)
    unchanged = current is not None and current.status == status
    condition = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=sanitize(message),
        last_transition_time=current.last_transition_time if unchanged and current else (at or now()),
        observed_generation=generation,
    )
    if current is None:
        return [*conditions, condition]
    return [condition if c.type == type_ else c for c in conditions]


RECONCILED = "Reconciled"  # False (with the error's reason) while reconciles of the object fail


def reconciled(
    conditions: list[Condition], generation: int | None, at: datetime | None = None
) -> list[Condition]:
    """After a reconcile that succeeded: `Reconciled` back to True if a failure had set it False (an object
    that never failed carries no such condition, and a successful reconcile writes nothing for it)."""
    current = next((c for c in conditions if c.type == RECONCILED), None)
    if current is None or current.status == "True":
        return conditions
    return set_condition(
        conditions, RECONCILED, "True", "Reconciled", "the last reconcile succeeded", generation, at
    )

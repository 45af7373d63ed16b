"""ServingEndpoint: which model version TF Serving serves, and how a new version rolls forward."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, model_validator

from slipway import formats
from slipway.api.common import (
    PENDING_EVENTS_DESCRIPTION,
    Condition,
    HttpUrl,
    KubeModel,
    ModelName,
    ObjectName,
    PendingEvent,
    duration_bound,
    unique_by,
)

PauseDuration = Annotated[str, *duration_bound(7 * 86_400)]
IntervalDuration = Annotated[str, *duration_bound(3_600, min_seconds=1)]
# A label or annotation key: an optional DNS-subdomain prefix and a name (Kubernetes' qualified name).
QUALIFIED_NAME = r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
LABEL_VALUE = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"
QuantityMap = Annotated[
    dict[
        Annotated[str, Field(pattern=QUALIFIED_NAME, max_length=63)],
        Annotated[str, Field(pattern=formats.QUANTITY, max_length=32)],
    ],
    Field(max_length=16),
]
DNS_SUBDOMAIN = formats.DNS_SUBDOMAIN
ABSOLUTE_PATH = formats.ABSOLUTE_PATH
Image = Annotated[str, Field(pattern=formats.PRINTABLE, min_length=1, max_length=512)]
# The puller's and the model server's own mounts: a model volume may not shadow them (nor anything in
# /models, where the puller swaps model directories into place).
RESERVED_MOUNTS = ("/", "/models", "/tmp", "/config")


class VersionSelection(KubeModel):
    cel_rules = (
        (
            "self.policy != 'Pinned' || has(self.version)",
            "version is required when policy is Pinned",
            ".version",
        ),
        (
            "self.policy == 'Pinned' || !has(self.version)",
            "version may only be set when policy is Pinned",
            ".version",
        ),
    )

    policy: Literal["LatestValidated", "Pinned"] = "LatestValidated"
    version: Annotated[int, Field(ge=1, le=formats.MAX_VERSION)] | None = None


class ResourceRequirements(KubeModel):
    cel_rules = (
        (
            "!has(self.requests) || !has(self.limits) || self.limits.all(k, !(k in self.requests) || "
            "!isQuantity(self.requests[k]) || !isQuantity(self.limits[k]) || "
            "quantity(self.requests[k]).compareTo(quantity(self.limits[k])) <= 0)",
            "a request must not exceed its limit",
            ".requests",
        ),
    )

    requests: QuantityMap = Field(default_factory=dict)
    limits: QuantityMap = Field(default_factory=dict)

    @model_validator(mode="after")
    def _requests_within_limits(self) -> ResourceRequirements:
        for name, limit in self.limits.items():
            if name in self.requests and formats.quantity_value(self.requests[name]) > formats.quantity_value(
                limit
            ):
                raise ValueError("a request must not exceed its limit")
        return self


class Monitoring(KubeModel):
    prometheus: bool = Field(
        default=True, description="TF Serving exports Prometheus metrics on its REST port."
    )
    service_monitor: bool = Field(
        default=False, description="Also create a prometheus-operator ServiceMonitor."
    )


class TFServingRuntime(KubeModel):
    image: Image = "tensorflow/serving"
    version: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")] = "2.19.0"
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    batching: bool = False
    monitoring: Monitoring = Field(default_factory=Monitoring)


class Autoscaling(KubeModel):
    cel_rules = (("self.minReplicas <= self.maxReplicas", "minReplicas must not exceed maxReplicas", None),)

    min_replicas: Annotated[int, Field(ge=1, le=1000)] = 1
    max_replicas: Annotated[int, Field(ge=1, le=1000)]
    target_cpu_utilization_percentage: Annotated[int, Field(ge=1, le=100)] = 80


class PodMetadata(KubeModel):
    cel_rules = (
        (
            f"self.labels.all(k, k.matches('{QUALIFIED_NAME}') && self.labels[k].matches('{LABEL_VALUE}'))",
            "labels must be Kubernetes label keys and values",
            ".labels",
        ),
        (
            f"self.annotations.all(k, k.matches('{QUALIFIED_NAME}'))",
            "annotation keys must be Kubernetes qualified names",
            ".annotations",
        ),
    )

    labels: Annotated[
        dict[Annotated[str, Field(max_length=317)], Annotated[str, Field(max_length=63)]],
        Field(
            max_length=32,
            description='Added to the serving pods (e.g. azure.workload.identity/use: "true"); '
            "Slipway's own labels take precedence.",
        ),
    ] = Field(default_factory=dict)
    annotations: Annotated[
        dict[Annotated[str, Field(max_length=317)], Annotated[str, Field(max_length=4096)]],
        Field(max_length=32, description="Added to the serving pods; Slipway's own take precedence."),
    ] = Field(default_factory=dict)


class PersistentVolumeClaimSource(KubeModel):
    claim_name: Annotated[str, Field(pattern=DNS_SUBDOMAIN, min_length=1, max_length=253)]


class ModelVolume(KubeModel):
    """The volume behind a file:// model store, mounted read-only into the model puller."""

    cel_rules = (
        (
            "[has(self.persistentVolumeClaim), has(self.hostPath)].filter(x, x).size() == 1",
            "a model volume is exactly one of persistentVolumeClaim, hostPath",
            None,
        ),
        (
            f"!(self.mountPath in {list(RESERVED_MOUNTS)} || self.mountPath.startsWith('/models/'))",
            f"mountPath may not be {', '.join(RESERVED_MOUNTS)} or below /models (the pods' own mounts)",
            ".mountPath",
        ),
    )

    mount_path: Annotated[
        str,
        Field(
            pattern=ABSOLUTE_PATH,
            max_length=1024,
            description="Where the volume appears in the puller: file:// model URIs must lie below it.",
        ),
    ]
    persistent_volume_claim: PersistentVolumeClaimSource | None = None
    host_path: Annotated[str, Field(pattern=ABSOLUTE_PATH, max_length=1024)] | None = Field(
        default=None, description="A directory on the node (single-node and development clusters)."
    )


class Pause(KubeModel):
    duration: PauseDuration | None = Field(default=None, description="Omit to pause until promoted by hand.")


class AnalysisStep(KubeModel):
    smoke_test: bool = True
    prometheus: bool = True


class RolloutStep(KubeModel):
    cel_rules = (
        (
            "[has(self.setWeight), has(self.pause), has(self.analysis)].filter(x, x).size() == 1",
            "each step sets exactly one of setWeight, pause, analysis",
            None,
        ),
    )

    set_weight: Annotated[int, Field(ge=0, le=100)] | None = None
    pause: Pause | None = None
    analysis: AnalysisStep | None = None


class ParentRef(KubeModel):
    name: ObjectName
    namespace: ObjectName | None = None
    section_name: Annotated[str, Field(pattern=DNS_SUBDOMAIN, max_length=253)] | None = None


class HTTPRouteRouting(KubeModel):
    parent_refs: Annotated[list[ParentRef], Field(min_length=1, max_length=16)]
    hostnames: Annotated[
        list[Annotated[str, Field(pattern=formats.HOSTNAME, max_length=253)]], Field(max_length=16)
    ] = Field(default_factory=list)


class TrafficRouting(KubeModel):
    http_route: HTTPRouteRouting | None = Field(
        default=None, description="Shift traffic with Gateway API HTTPRoute weights instead of replica ratio."
    )


class SmokeTest(KubeModel):
    requests: Annotated[int, Field(ge=1, le=1000)] = 3
    expected_output_key: Annotated[str, Field(max_length=128)] | None = Field(
        default=None, description="A key each prediction must contain (for dict outputs)."
    )
    max_latency_ms: Annotated[int, Field(ge=1, le=600_000)] = 2000


class PrometheusMetric(KubeModel):
    name: Annotated[str, Field(pattern=formats.METRIC_NAME, min_length=1, max_length=63)]
    query: Annotated[str, Field(min_length=1, max_length=4096)]
    success_condition: Annotated[
        str,
        Field(
            pattern=r"^result\s*(<|<=|>|>=|==|!=)\s*[-+]?[0-9]+(\.[0-9]+)?$",
            max_length=128,
            description="e.g. 'result < 0.05'",
        ),
    ]
    failure_limit: Annotated[int, Field(ge=0, le=100)] = 0
    count: Annotated[int, Field(ge=1, le=100)] = 1
    interval: IntervalDuration = "30s"


class Prometheus(KubeModel):
    address: HttpUrl
    metrics: Annotated[list[PrometheusMetric], Field(min_length=1, max_length=16), *unique_by("name")]


class Analysis(KubeModel):
    smoke_test: SmokeTest | None = Field(default_factory=SmokeTest)
    prometheus: Prometheus | None = None


class BlueGreen(KubeModel):
    auto_promotion_seconds: Annotated[int, Field(ge=0, le=86_400)] | None = Field(
        default=None,
        description="Seconds the preview stays up before promotion; omit to wait for `slipway promote`.",
    )


def _default_steps() -> list[RolloutStep]:
    return [
        RolloutStep(set_weight=25),
        RolloutStep(analysis=AnalysisStep()),
        RolloutStep(set_weight=50),
        RolloutStep(analysis=AnalysisStep()),
        RolloutStep(set_weight=100),
    ]


class Rollout(KubeModel):
    cel_rules = (
        (
            "!has(self.steps) || self.steps.filter(s, has(s.setWeight)).map(s, s.setWeight).isSorted()",
            "setWeight values must rise from step to step",
            ".steps",
        ),
    )

    strategy: Literal["Canary", "BlueGreen"] = "Canary"
    steps: Annotated[list[RolloutStep], Field(max_length=32)] = Field(default_factory=_default_steps)
    blue_green: BlueGreen | None = None
    traffic_routing: TrafficRouting | None = None
    analysis: Analysis = Field(default_factory=Analysis)
    progress_deadline_seconds: Annotated[int, Field(ge=10, le=86_400)] = 600
    weight_tolerance: Annotated[int, Field(ge=0, le=100)] = Field(
        default=10,
        description="Percentage points the canary's replica ratio may differ from a step's setWeight "
        "(replica-ratio routing only; HTTPRoute weights are exact).",
    )
    max_replicas_for_weight: Annotated[int, Field(ge=2, le=1000)] | None = Field(
        default=None,
        description="To meet a setWeight within weightTolerance, run up to this many pods in all (stable "
        "scaled up next to the canary for the step). Omit to refuse such a rollout with a condition.",
    )


class ServingEndpointSpec(KubeModel):
    model_name: ModelName
    version_selection: VersionSelection = Field(default_factory=VersionSelection)
    runtime: TFServingRuntime = Field(default_factory=TFServingRuntime)
    replicas: Annotated[int, Field(ge=1, le=1000)] = 2
    autoscaling: Autoscaling | None = None
    rollout: Rollout = Field(default_factory=Rollout)
    service_account_name: Annotated[str, Field(pattern=DNS_SUBDOMAIN, max_length=253)] | None = Field(
        default=None,
        description="The ServiceAccount of the serving pods: the model puller reads the store with its "
        "workload identity (IRSA, GKE Workload Identity, Azure Workload Identity). Default: the namespace's.",
    )
    pod_metadata: PodMetadata = Field(default_factory=PodMetadata)
    model_volume: ModelVolume | None = Field(
        default=None, description="Required to serve ModelVersions from a file:// store."
    )


class RolloutRecord(KubeModel):
    version: int
    from_version: int | None = None
    outcome: Literal["Promoted", "Aborted", "RolledBack"]
    reason: Annotated[
        str,
        Field(
            max_length=128,
            description="Why it ended, CamelCase: Promoted, or the failure (AnalysisFailed, ...).",
        ),
    ] = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    message: Annotated[str, Field(max_length=1024)] = ""


class AnalysisProgress(KubeModel):
    step: int
    measurements: int = 0
    ready_checked: bool = Field(default=False, description="Model status and smoke test have passed.")
    failures: dict[str, int] = Field(default_factory=dict)
    last_measured_at: datetime | None = None
    message: Annotated[str, Field(max_length=1024)] = ""


class ServingEndpointStatus(KubeModel):
    observed_generation: int | None = None
    phase: Literal["Pending", "Progressing", "Paused", "Healthy", "Degraded"] | None = None
    stable_version: int | None = None
    canary_version: int | None = None
    previous_version: int | None = None
    current_step: int | None = None
    canary_weight: int = Field(default=0, description="The weight the current step asks for.")
    effective_canary_weight: int = Field(
        default=0,
        description="The share of traffic the canary gets now: its ready replicas' ratio, or the HTTPRoute "
        "weight.",
    )
    step_started_at: datetime | None = None
    rollout_started_at: datetime | None = None
    url: str | None = None
    failed_versions: list[int] = Field(default_factory=list)
    analysis: AnalysisProgress | None = None
    handled_requests: dict[str, str] = Field(
        default_factory=dict, description="The last promote/abort/retry annotation value acted on."
    )
    history: Annotated[list[RolloutRecord], Field(max_length=20)] = Field(default_factory=list)
    pending_events: Annotated[list[PendingEvent], Field(max_length=20)] = Field(
        default_factory=list, description=PENDING_EVENTS_DESCRIPTION
    )
    conditions: list[Condition] = Field(default_factory=list)


class ServingEndpoint(KubeModel):
    spec: ServingEndpointSpec
    status: ServingEndpointStatus = Field(default_factory=ServingEndpointStatus)

"""TrainingPipeline: a pipeline, where its data and models live, and when it runs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from slipway import formats
from slipway.api.common import (
    PENDING_EVENTS_DESCRIPTION,
    Condition,
    HttpUrl,
    KubeModel,
    ModelName,
    ObjectName,
    PendingEvent,
    StorageLocation,
    StorageUri,
    ValidationGates,
    checked,
)
from slipway.api.serving_endpoint import Image, ResourceRequirements
from slipway.timezones import TIME_ZONES

BUILTIN_PIPELINE_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


class ConfigMapKeyRef(KubeModel):
    name: ObjectName
    key: Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)] = "pipeline.yaml"


class ModuleConfigMapKeyRef(KubeModel):
    name: ObjectName
    key: Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)] = "module.py"


class SecretKeyRef(KubeModel):
    name: ObjectName
    key: Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)] = "token"


class ModuleFile(KubeModel):
    cel_rules = (
        (
            "[has(self.uri), has(self.configMapRef)].filter(x, x).size() == 1",
            "set exactly one module file source: uri or configMapRef",
            None,
        ),
    )

    uri: StorageUri | None = Field(
        default=None,
        description="A Python file, read by the run's steps with the run's storage credentials (those of "
        "data, artifactRoot and modelStore).",
    )
    config_map_ref: ModuleConfigMapKeyRef | None = Field(
        default=None, description="A ConfigMap key holding the module's source."
    )


class Tuner(KubeModel):
    max_trials: Annotated[int, Field(ge=0, le=1000)] = Field(
        default=10,
        description="Trials the Tuner runs when the module file defines tuner_fn; 0 trains without tuning.",
    )


class BuiltinPipeline(KubeModel):
    name: Annotated[str, Field(pattern=BUILTIN_PIPELINE_PATTERN)] = Field(
        description="A pipeline shipped with Slipway, e.g. 'penguins'."
    )
    module_file: ModuleFile | None = Field(
        default=None,
        description="The model's code with TFX's module-file contract: preprocessing_fn(inputs), "
        "run_fn(fn_args), optionally tuner_fn(fn_args); default: the pipeline's own module "
        "(pipelines/<name>/model.py).",
    )
    tuner: Tuner = Field(default_factory=Tuner, json_schema_extra={"default": {}})


class PipelineSource(KubeModel):
    cel_rules = (
        (
            "[has(self.builtin), has(self.specUri), has(self.configMapRef)].filter(x, x).size() == 1",
            "set exactly one pipeline source: builtin, specUri or configMapRef",
            None,
        ),
    )

    builtin: BuiltinPipeline | None = Field(
        default=None, description="A pipeline shipped with Slipway, and the model code it trains."
    )
    spec_uri: (
        Annotated[
            str,
            Field(max_length=formats.URI_MAX_LENGTH),
            *checked(formats.uri_checks(needs_key=True, https=True)),
        ]
        | None
    ) = Field(default=None, description="Compiled KFP IR YAML (e.g. from TFX's KubeflowV2DagRunner).")
    config_map_ref: ConfigMapKeyRef | None = None


class KfpExecutor(KubeModel):
    endpoint: HttpUrl
    token_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Bearer token for the KFP API; omit to use the in-cluster service account."
    )
    experiment: Annotated[str, Field(min_length=1, max_length=128)] = "slipway"
    namespace: ObjectName | None = Field(default=None, description="KFP multi-user namespace.")
    service_account: ObjectName | None = Field(default=None, description="Service account the run uses.")
    ui_url: HttpUrl | None = None


def _default_job_resources() -> ResourceRequirements:
    return ResourceRequirements(requests={"cpu": "500m", "memory": "1Gi"}, limits={"memory": "4Gi"})


class JobExecutor(KubeModel):
    image: Image | None = Field(
        default=None,
        description="Image holding the TF stack and the pipeline steps; default: the operator's "
        "SLIPWAY_PIPELINES_IMAGE.",
    )
    service_account_name: ObjectName | None = Field(
        default=None, description="The run pod's ServiceAccount (workload identity for the stores)."
    )
    resources: ResourceRequirements = Field(
        default_factory=_default_job_resources,
        description="The run pod's requests and limits; default requests cpu 500m, memory 1Gi, "
        "limits memory 4Gi.",
    )
    active_deadline_seconds: Annotated[int, Field(ge=1, le=604_800)] | None = Field(
        default=None,
        description="Kubernetes fails the Job after this long, even while the operator is down; "
        "default: spec.runTimeoutSeconds.",
    )
    backoff_limit: Annotated[int, Field(ge=0, le=10)] = Field(
        default=0, description="Pod retries before the run fails (a retry starts the pipeline over)."
    )


class Executor(KubeModel):
    cel_rules = (
        ("self.type != 'kfp' || has(self.kfp)", "kfp settings are required when type is kfp", ".kfp"),
        ("self.type == 'job' || !has(self.job)", "job settings are allowed only when type is job", ".job"),
    )

    type: Literal["local", "kfp", "job"] = "local"
    kfp: KfpExecutor | None = None
    job: JobExecutor | None = Field(
        default=None, description="The job executor: the run as a Kubernetes Job in the pipelines image."
    )


def _known_time_zone(name: str) -> str:
    if name not in TIME_ZONES:
        raise ValueError(f"{name[:64]!r} is not an IANA time zone (e.g. Europe/Paris, UTC)")
    return name


class Schedule(KubeModel):
    cron: Annotated[
        str,
        Field(
            min_length=1,
            max_length=formats.CRON_MAX_LENGTH,
            description="Five-field cron expression as a CronJob takes it, e.g. '0 3 * * *'.",
        ),
        *checked(formats.CRON_CHECKS),
    ]
    time_zone: (
        Annotated[
            str,
            Field(max_length=64, json_schema_extra={"enum": list(TIME_ZONES)}),
            AfterValidator(_known_time_zone),
        ]
        | None
    ) = Field(default=None, description="An IANA time zone; default UTC.")
    suspend: bool = False
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] = "Forbid"
    starting_deadline_seconds: Annotated[int, Field(ge=0, le=31_536_000)] | None = None


class OnNewData(KubeModel):
    poll_interval_seconds: Annotated[int, Field(ge=5, le=86_400)] = 60


# Both distances lie in [0, 1]; a decimal string like every figure in a spec.
DriftThreshold = Annotated[str, Field(pattern=r"^(0(\.[0-9]+)?|1(\.0+)?)$", max_length=32)]


class OnDrift(KubeModel):
    batches: StorageLocation = Field(
        description="Prefix where new batches of data land: one CSV file per batch, spec.data's columns."
    )
    poll_interval_seconds: Annotated[int, Field(ge=5, le=86_400)] = 300
    categorical_threshold: DriftThreshold = Field(
        default="0.1", description="L-infinity distance of a categorical feature's frequencies."
    )
    numeric_threshold: DriftThreshold = Field(
        default="0.1", description="Jensen-Shannon divergence (base 2) of a numeric feature's histogram."
    )
    feature_thresholds: Annotated[
        dict[Annotated[str, Field(max_length=128)], DriftThreshold], Field(max_length=256)
    ] = Field(default_factory=dict, description="Per-feature thresholds, over the two above.")
    block_on_anomalies: bool = Field(
        default=False,
        description="A batch with schema anomalies (missing column, unknown category...) starts no run.",
    )


class Triggers(KubeModel):
    on_new_data: OnNewData | None = Field(
        default=None, description="Run when the listing of spec.data changes."
    )
    on_drift: OnDrift | None = None


FeatureName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$", max_length=128)]


class SlicingSpec(KubeModel):
    feature_keys: Annotated[list[FeatureName], Field(min_length=1, max_length=4)] = Field(
        description="Slice by the values of these features (several: by their crossed values), as TFMA's "
        "SlicingSpec.feature_keys."
    )


class Evaluation(KubeModel):
    slicing_specs: Annotated[list[SlicingSpec], Field(max_length=16)] = Field(
        default_factory=list,
        description="The Evaluator's metrics per slice, besides the whole eval split (built-in pipeline's "
        "slicing_specs parameter).",
    )


class Beam(KubeModel):
    pipeline_args: Annotated[list[Annotated[str, Field(max_length=1024)]], Field(max_length=64)] = Field(
        default_factory=list,
        description="Options of the Beam steps (Transform, Evaluator), e.g. ['--runner=PortableRunner', "
        "'--job_endpoint=flink-jobserver:8099', '--environment_type=PROCESS', ...] (built-in "
        "pipeline's beam_pipeline_args parameter); empty: the pipeline's in-process runner.",
    )


class TrainingPipelineSpec(KubeModel):
    cel_rules = (
        *(
            (
                f"self.executor.type != 'job' || !self.{field}.uri.startsWith('file://')",
                f"the job executor's pod cannot reach the operator's file:// paths: use s3://, gs:// or "
                f"az:// for {field}",
                f".{field}.uri",
            )
            for field in ("data", "artifactRoot", "modelStore")
        ),
        (
            "self.executor.type == 'local' || !has(self.pipeline.builtin) || "
            "!has(self.pipeline.builtin.moduleFile) || !has(self.pipeline.builtin.moduleFile.uri) || "
            "!self.pipeline.builtin.moduleFile.uri.startsWith('file://')",
            "only the local executor reads file:// module files: use s3://, gs://, az:// or a configMapRef",
            ".pipeline.builtin.moduleFile.uri",
        ),
    )

    pipeline: PipelineSource
    model_name: ModelName
    data: StorageLocation = Field(description="The training data (a CSV file or a prefix).")
    artifact_root: StorageLocation = Field(description="Pipeline root: where run artifacts and state live.")
    model_store: StorageLocation = Field(description="Models are pushed to <uri>/<modelName>/<version>/.")
    parameters: Annotated[
        dict[Annotated[str, Field(max_length=128)], Annotated[str, Field(max_length=4096)]],
        Field(max_length=64),
    ] = Field(default_factory=dict, description="Pipeline parameters, as strings.")
    executor: Executor = Field(default_factory=Executor, json_schema_extra={"default": {"type": "local"}})
    schedule: Schedule | None = None
    triggers: Triggers = Field(default_factory=Triggers)
    gates: ValidationGates | None = None
    evaluation: Evaluation | None = None
    beam: Beam | None = None
    successful_runs_history_limit: Annotated[int, Field(ge=0, le=100)] = 5
    failed_runs_history_limit: Annotated[int, Field(ge=0, le=100)] = 3
    run_timeout_seconds: Annotated[int, Field(ge=60, le=604_800)] = 21_600


RunTrigger = Literal["Manual", "Schedule", "NewData", "Drift"]
RunPhase = Literal["Pending", "Running", "Succeeded", "Failed", "Cancelled"]


class RunRecord(KubeModel):
    id: Annotated[str, Field(max_length=253)]
    trigger: RunTrigger
    phase: RunPhase
    start_time: datetime | None = None
    finish_time: datetime | None = None
    url: Annotated[str, Field(max_length=2048)] | None = None
    message: Annotated[str, Field(max_length=2048)] = ""
    pipeline_digest: Annotated[str, Field(max_length=128)] = ""
    model_version: ObjectName | None = None
    pushed: bool | None = None
    details: dict[str, Annotated[str, Field(max_length=256)]] = Field(
        default_factory=dict, description="What decided the run, e.g. drift per feature."
    )


DriftOutcome = Literal["Baseline", "NoDrift", "Drifted", "Anomalous", "Blocked", "Unjudgeable"]


class CheckedBatch(KubeModel):
    batch: Annotated[str, Field(max_length=1024, description="Key under spec.triggers.onDrift.batches.")]
    etag: Annotated[str, Field(max_length=256)] = ""
    updated: datetime | None = None
    checked_time: datetime | None = None
    outcome: DriftOutcome
    baseline_version: int | None = None
    summary: Annotated[str, Field(max_length=1024)] = Field(
        default="", description="The largest drift figures and any anomalies."
    )
    run: Annotated[str, Field(max_length=253)] | None = None


class DriftStatus(KubeModel):
    baseline: Annotated[str, Field(max_length=2048)] = Field(
        default="", description="Training statistics the batches are compared with (the stable model's)."
    )
    baseline_version: int | None = None
    watermark: datetime | None = Field(
        default=None, description="Batches last modified before this were seen already."
    )
    last_check_time: datetime | None = None
    batches: Annotated[list[CheckedBatch], Field(max_length=100)] = Field(default_factory=list)


class TrainingPipelineStatus(KubeModel):
    observed_generation: int | None = None
    pipeline_digest: Annotated[str, Field(max_length=128)] | None = None
    last_run: RunRecord | None = None
    runs: Annotated[list[RunRecord], Field(max_length=200)] = Field(default_factory=list)
    last_schedule_time: datetime | None = None
    next_schedule_time: datetime | None = None
    handled_run_request: Annotated[str, Field(max_length=253)] | None = Field(
        default=None, description="The last slipway.dev/run annotation value acted on."
    )
    data_fingerprint: Annotated[str, Field(max_length=128)] | None = None
    drift: DriftStatus | None = None
    pending_events: Annotated[list[PendingEvent], Field(max_length=20)] = Field(
        default_factory=list, description=PENDING_EVENTS_DESCRIPTION
    )
    conditions: list[Condition] = Field(default_factory=list)


class TrainingPipeline(KubeModel):
    spec: TrainingPipelineSpec
    status: TrainingPipelineStatus = Field(default_factory=TrainingPipelineStatus)

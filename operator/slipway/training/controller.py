"""TrainingPipeline reconcile: validate the spec, follow active runs, register what they pushed, start
the runs that triggers ask for (manual request, schedule, new data) under the concurrency policy, and
record it all in status, conditions and Events. Run ids are deterministic, so nothing runs twice."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from slipway import GROUP, VERSION, manifest, objects
from slipway.api.common import ConditionStatus, StorageLocation, now, set_condition
from slipway.api.model_version import Blessings, DataInput, Lineage, ModelVersionSpec, SecretRef
from slipway.api.training_pipeline import OnDrift, RunRecord, TrainingPipelineSpec, TrainingPipelineStatus
from slipway.kube import api_client, get_custom, is_subset, patch_custom_status
from slipway.metrics import API_WRITES, DRIFT_BATCHES, DRIFT_SCORE, RUN_SECONDS, RUNS
from slipway.serving.rollout import VersionInfo
from slipway.settings import settings
from slipway.training import drift
from slipway.training import schedule as cron
from slipway.training.kfp_executor import KfpError, KfpExecutor, KfpTarget
from slipway.training.kfp_platform import storage_secrets
from slipway.training.local_executor import LocalExecutor, RunState
from slipway.training.source import PipelineSpec, SourceError, arguments, resolve

log = logging.getLogger(__name__)
PLURAL = "trainingpipelines"
RUN_ANNOTATION = f"{GROUP}/run"
ACTIVE = ("Pending", "Running")
EventSink = Callable[[dict[str, Any], str, str, str], None]
SecretReader = Callable[[str], dict[str, str] | None]
Executor = LocalExecutor | KfpExecutor
Request = tuple[str, str, dict[str, str]]  # (trigger, key that names the run, figures behind it)
_last_poll: dict[tuple[str, str, str], datetime] = {}
_baselines: dict[str, drift.Baseline] = {}  # by statistics URI: training artifacts never change


@dataclass
class Outcome:
    status: TrainingPipelineStatus
    events: list[tuple[str, str, str]] = field(default_factory=list)


def run_id(pipeline: str, trigger: str, key: str) -> str:
    """Deterministic, DNS-safe: the same trigger always names the same run."""
    digest = hashlib.sha256(f"{pipeline}/{trigger}/{key}".encode()).hexdigest()[:10]
    return f"{pipeline[:40]}-{trigger.lower()}-{digest}"


def kfp_token(namespace: str, spec: TrainingPipelineSpec, secrets: SecretReader) -> str | None:
    """The bearer token from the Secret the spec names; None means the projected ServiceAccount token for
    KFP (audience pipelines.kubeflow.org), which the kfp executor reads itself when it is mounted."""
    assert spec.executor.kfp is not None
    ref = spec.executor.kfp.token_secret_ref
    if ref is None:
        return None
    data = secrets(ref.name)
    if data is None:
        raise SourceError(
            "spec.executor.kfp.tokenSecretRef",
            "SecretNotFound",
            f"Secret {ref.name} not found in {namespace}",
        )
    if ref.key not in data:
        raise SourceError(
            "spec.executor.kfp.tokenSecretRef.key",
            "SecretKeyMissing",
            f"Secret {ref.name} has no key {ref.key!r}",
        )
    return base64.b64decode(data[ref.key]).decode().strip()


def own_credentials(location: StorageLocation, field: str, secrets: SecretReader) -> Any:
    """What one storage location names itself: its Secret's keys and its endpoint (None when neither)."""
    if location.secret_ref is None and location.endpoint is None:
        return None
    from slipway.storage.credentials import StorageCredentials

    own = StorageCredentials(aws_endpoint_url=location.endpoint)
    if location.secret_ref is not None:
        data = secrets(location.secret_ref.name)
        if data is None:
            raise SourceError(
                f"{field}.secretRef", "SecretNotFound", f"Secret {location.secret_ref.name} not found"
            )
        try:
            own = StorageCredentials.from_secret_data(data).merged_over(own)
        except ValueError as error:
            raise SourceError(f"{field}.secretRef", "InvalidSecret", str(error)) from error
    return own


def storage_credentials(location: StorageLocation, field: str, secrets: SecretReader) -> Any:
    """Credentials for one storage location: its Secret (if named) and endpoint, over the environment's.
    None when neither is set (the store's default chain: workload identity, env)."""
    own = own_credentials(location, field, secrets)
    if own is None:
        return None
    from slipway.storage.credentials import StorageCredentials

    return own.merged_over(StorageCredentials.from_env())


def run_environment(spec: TrainingPipelineSpec, secrets: SecretReader) -> dict[str, str]:
    """The storage credentials a local run's steps need, as environment variables for its process. The
    steps open every URI with one environment, so two locations may not name different values for a key."""
    environment: dict[str, str] = {}
    named_by: dict[str, str] = {}
    for path, location in (
        ("spec.data", spec.data),
        ("spec.artifactRoot", spec.artifact_root),
        ("spec.modelStore", spec.model_store),
    ):
        own = own_credentials(location, path, secrets)
        for key, value in (own.to_env() if own is not None else {}).items():
            if environment.setdefault(key, value) != value:
                raise SourceError(
                    f"{path}.secretRef",
                    "ConflictingCredentials",
                    f"{path} and {named_by[key]} give different {key}; the local executor runs every step "
                    "with one set of credentials (use one Secret, or the kfp executor)",
                )
            named_by.setdefault(key, path)
    return environment


def executor_for(
    namespace: str,
    name: str,
    spec: TrainingPipelineSpec,
    secrets: SecretReader | None = None,
    on_run_exit: Callable[[], None] | None = None,
) -> tuple[Executor, str]:
    """(executor, pipeline root). Local run state lives next to the artifacts when the artifact root is
    local, else in the state dir; KFP keeps its own and the pipeline root is the artifact root itself."""
    if spec.executor.type == "kfp":
        kfp = spec.executor.kfp
        assert kfp is not None
        reader = secrets or secret_reader(namespace)
        target = KfpTarget(
            endpoint=kfp.endpoint,
            token=kfp_token(namespace, spec, reader),
            experiment=kfp.experiment,
            namespace=kfp.namespace,
            service_account=kfp.service_account,
            ui_url=kfp.ui_url,
            pipeline_name=f"{namespace}-{name}",
            # Only to submit runs: terminating one (secrets None) must not hang on a deleted storage Secret.
            secrets_as_env=storage_secrets(spec, secrets) if secrets is not None else (),
        )
        root_uri = objects.join(spec.artifact_root.uri, namespace, name)
        return KfpExecutor(target), root_uri
    if spec.artifact_root.uri.startswith("file://"):
        root = objects.local_path(spec.artifact_root.uri)
    else:
        root = Path(settings().artifact_state_dir)
    base = root / namespace / name
    environment = run_environment(spec, secrets) if secrets is not None else {}
    return LocalExecutor(base / "runs", environment, on_run_exit), str(base / "pipeline-root")


def validate(
    namespace: str,
    spec: TrainingPipelineSpec,
    config_maps: Callable[[str], dict[str, str] | None],
    secrets: SecretReader,
) -> PipelineSpec:
    if spec.executor.type == "kfp":
        if not spec.artifact_root.uri.startswith(("s3://", "gs://")):
            scheme = spec.artifact_root.uri.split("://", 1)[0]
            raise SourceError(
                "spec.artifactRoot.uri",
                "UnsupportedPipelineRoot",
                f"KFP's launcher cannot use a {scheme}:// pipeline root"
                + (" (it has no Azure Blob support)" if scheme == "az" else "")
                + "; use s3:// or gs:// with the kfp executor",
            )
        kfp_token(namespace, spec, secrets)
    storage_credentials(spec.data, "spec.data", secrets)
    storage_credentials(spec.model_store, "spec.modelStore", secrets)
    if spec.schedule is not None:
        try:
            cron.validate(spec.schedule)
        except cron.ScheduleError as error:
            raise SourceError(error.field, "InvalidSchedule", str(error).split(": ", 1)[1]) from error
    pipeline = resolve(spec.pipeline, config_maps)
    arguments(pipeline, {}, spec.parameters)  # unknown or mistyped parameters fail here, naming the field
    return pipeline


def secret_reader(namespace: str) -> SecretReader:
    def read(name: str) -> dict[str, str] | None:
        try:
            data: dict[str, str] = client.CoreV1Api(api_client()).read_namespaced_secret(name, namespace).data
            return data or {}
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    return read


def config_map_reader(namespace: str) -> Callable[[str], dict[str, str] | None]:
    def read(name: str) -> dict[str, str] | None:
        try:
            data: dict[str, str] = (
                client.CoreV1Api(api_client()).read_namespaced_config_map(name, namespace).data
            )
            return data or {}
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    return read


def next_version(existing: list[int], status: TrainingPipelineStatus) -> int:
    claimed = [int(r.details["version"]) for r in status.runs if r.details.get("version", "").isdigit()]
    return max([0, *existing, *claimed]) + 1


def model_version_body(
    namespace: str,
    name: str,
    spec: TrainingPipelineSpec,
    record: RunRecord,
    found: manifest.Manifest,
    uri: str,
) -> dict[str, Any]:
    lineage = found.lineage
    mv_spec = ModelVersionSpec(
        model_name=spec.model_name,
        version=found.version,
        uri=uri,
        storage_secret_ref=SecretRef(name=spec.model_store.secret_ref.name)
        if spec.model_store.secret_ref
        else None,
        metrics={key: manifest.decimal_string(value) for key, value in found.metrics.items()},
        headline_metric=_headline(spec, found),
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
            "name": f"{spec.model_name}-v{found.version}",
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


def _headline(spec: TrainingPipelineSpec, found: manifest.Manifest) -> str | None:
    if spec.gates and spec.gates.metrics:
        return spec.gates.metrics[0].name
    return "accuracy" if "accuracy" in found.metrics else next(iter(found.metrics), None)


def push_result(state: RunState) -> dict[str, Any] | None:
    import json

    value = (state.outputs or {}).get("push_result") or (state.outputs or {}).get("Output")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def register(
    namespace: str,
    name: str,
    spec: TrainingPipelineSpec,
    record: RunRecord,
    state: RunState,
    credentials: Any = None,
) -> tuple[bool | None, str, str | None]:
    """(pushed, message, ModelVersion name). pushed None means try again on the next reconcile."""
    result = push_result(state)
    if result is not None and not result.get("pushed"):
        return False, f"not pushed: {result.get('reason') or 'not blessed'}", None
    version = int((result or {}).get("version") or record.details.get("version") or 0)
    uri = objects.join(spec.model_store.uri, spec.model_name, str(version))
    try:
        if result is None and not objects.exists(objects.join(uri, manifest.MANIFEST), credentials):
            # No push_result output (a KFP run, or a pipeline without one): no manifest = nothing pushed.
            return False, f"not pushed: no {manifest.MANIFEST} under {uri}", None
        found = manifest.read(uri, credentials)
        if not objects.exists(objects.join(uri, "saved_model.pb"), credentials):
            return False, f"pushed manifest but no saved_model.pb under {uri}", None
    except (objects.ObjectError, manifest.ManifestError) as error:
        return None, f"registration pending: {error}", None
    body = model_version_body(namespace, name, spec, record, found, uri)
    try:
        client.CustomObjectsApi(api_client()).create_namespaced_custom_object(
            GROUP, VERSION, namespace, "modelversions", body
        )
        API_WRITES.labels("ModelVersion", "create").inc()
    except ApiException as error:
        if error.status != 409:
            raise
    return True, f"pushed v{version}", body["metadata"]["name"]


class Reconciler:
    def __init__(
        self,
        body: dict[str, Any],
        existing_versions: list[int],
        stable_uri: str | None,
        baseline_uri: str | None = None,
        wake: Callable[[], None] | None = None,
    ) -> None:
        """`stable_uri`: the model an endpoint serves as stable (the champion a run must beat);
        `baseline_uri`: the model whose training statistics new batches are compared with."""
        self.body = body
        self.namespace = body["metadata"]["namespace"]
        self.name = body["metadata"]["name"]
        self.generation = int(body["metadata"].get("generation", 1))
        self.spec = TrainingPipelineSpec.model_validate(body["spec"])
        self.status = TrainingPipelineStatus.model_validate(body.get("status") or {})
        self.existing_versions = existing_versions
        self.stable_uri = stable_uri
        self.baseline_uri = baseline_uri or stable_uri
        self.wake = wake
        self.events: list[tuple[str, str, str]] = []
        self.now = now()
        self.secrets = secret_reader(self.namespace)
        self.executor: Executor | None = None
        self.pipeline_root = ""

    def emit(self, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    def condition(self, type_: str, value: ConditionStatus, reason: str, message: str) -> None:
        self.status.conditions = set_condition(
            self.status.conditions, type_, value, reason, message, self.generation, self.now
        )

    def run(self) -> Outcome:
        try:
            pipeline = validate(self.namespace, self.spec, config_map_reader(self.namespace), self.secrets)
            self.executor, self.pipeline_root = executor_for(
                self.namespace, self.name, self.spec, self.secrets, self.wake
            )
        except SourceError as error:
            if self.ready_reason() != error.reason:
                self.emit("Warning", error.reason, str(error))
            self.condition("Ready", "False", error.reason, str(error))
            self.follow_runs()
            return self.finish()
        self.status.pipeline_digest = pipeline.digest
        self.condition("Ready", "True", "Valid", f"pipeline {pipeline.name} ({pipeline.digest[:19]})")
        try:
            self.follow_runs()
            for trigger, key, details in self.requests():
                self.start(pipeline, trigger, key, details)
        except KfpError as error:
            # The API is down or refused: keep what we know, say so once, try again on the next poll.
            previous = next((c for c in self.status.conditions if c.type == "ExecutorReachable"), None)
            if previous is None or previous.status != "False" or previous.reason != error.reason:
                self.emit("Warning", error.reason, str(error)[:1000])
            self.condition("ExecutorReachable", "False", error.reason, str(error)[:1000])
            return self.finish()
        if self.spec.executor.kfp is not None and self.spec.executor.type == "kfp":
            endpoint = self.spec.executor.kfp.endpoint
            self.condition("ExecutorReachable", "True", "Reachable", f"KFP API at {endpoint}")
        return self.finish()

    def ready_reason(self) -> str | None:
        return next((c.reason for c in self.status.conditions if c.type == "Ready"), None)

    # --- runs in flight ---------------------------------------------------------------------------------

    def follow_runs(self) -> None:
        if self.executor is None:
            return
        for index, record in enumerate(self.status.runs):
            if record.phase in ACTIVE:
                state = self.executor.state(record.id)
                if state.url and record.url != state.url:
                    record = self.status.runs[index] = record.model_copy(update={"url": state.url})
                limit = self.spec.run_timeout_seconds
                if (
                    state.phase in ACTIVE
                    and record.start_time is not None
                    and (self.now - record.start_time).total_seconds() > limit
                ):
                    self.executor.terminate(record.id)
                    message = f"timed out after {limit} s (spec.runTimeoutSeconds); terminated"
                    state = RunState("Failed", message)
                if state.phase in ACTIVE:
                    if record.phase != "Running":
                        self.status.runs[index] = record.model_copy(update={"phase": "Running"})
                    continue
                self.status.runs[index] = self.finished(record, state)
            elif record.phase == "Succeeded" and record.pushed is None:
                self.status.runs[index] = self.registered(record, self.executor.state(record.id))

    def finished(self, record: RunRecord, state: RunState) -> RunRecord:
        phase = state.phase if state.phase in ("Succeeded", "Failed", "Cancelled") else "Failed"
        update: dict[str, Any] = {"phase": phase, "finish_time": self.now, "message": state.message[:2000]}
        record = record.model_copy(update=update)
        RUNS.labels(self.namespace, self.name, phase, record.trigger).inc()
        if record.start_time:
            RUN_SECONDS.labels(self.namespace, self.name).observe(
                (self.now - record.start_time).total_seconds()
            )
        if phase != "Succeeded":
            assert self.executor is not None
            tail = self.executor.log_tail(record.id, 5)
            self.emit(
                "Warning", f"Run{phase}", f"run {record.id} {phase.lower()}: {state.message or tail}"[:1000]
            )
            return record
        self.emit("Normal", "RunSucceeded", f"run {record.id} succeeded")
        return self.registered(record, state)

    def registered(self, record: RunRecord, state: RunState) -> RunRecord:
        try:
            credentials = storage_credentials(self.spec.model_store, "spec.modelStore", self.secrets)
        except SourceError as error:
            return record.model_copy(update={"message": f"registration pending: {error}"})
        pushed, message, model_version = register(
            self.namespace, self.name, self.spec, record, state, credentials
        )
        if pushed:
            self.emit("Normal", "ModelVersionCreated", f"run {record.id} pushed ModelVersion {model_version}")
        elif pushed is False:
            self.emit("Normal", "NothingPushed", f"run {record.id}: {message}")
        return record.model_copy(
            update={"pushed": pushed, "message": message, "model_version": model_version}
        )

    # --- what asks for a run ----------------------------------------------------------------------------

    def requests(self) -> list[Request]:
        wanted: list[Request] = []
        token = (self.body["metadata"].get("annotations") or {}).get(RUN_ANNOTATION)
        if token and token != self.status.handled_run_request:
            wanted.append(("Manual", token, {}))
        schedule = self.spec.schedule
        if schedule is not None:
            created = datetime.fromisoformat(
                self.body["metadata"]["creationTimestamp"].replace("Z", "+00:00")
            )
            decision = cron.decide(schedule, self.status.last_schedule_time, created, self.now)
            self.status.next_schedule_time = decision.next_time
            if decision.missed is not None:
                self.status.last_schedule_time = decision.missed
                self.emit(
                    "Warning", "MissedSchedule", f"skipped {decision.missed.isoformat()}: past the deadline"
                )
            if decision.due is not None:
                wanted.append(("Schedule", decision.due.isoformat(), {}))
        if self.spec.triggers.on_new_data is not None and (change := self.new_data()) is not None:
            wanted.append(("NewData", change, {}))
        if self.spec.triggers.on_drift is not None:
            wanted.extend(self.drifted_batches(self.spec.triggers.on_drift))
        return wanted

    def poll_due(self, trigger: str, interval: int) -> bool:
        key = (self.namespace, self.name, trigger)
        last = _last_poll.get(key)
        if last is not None and (self.now - last).total_seconds() < interval:
            return False
        _last_poll[key] = self.now
        return True

    def new_data(self) -> str | None:
        rule = self.spec.triggers.on_new_data
        assert rule is not None
        if not self.poll_due("NewData", rule.poll_interval_seconds):
            return None
        try:
            credentials = storage_credentials(self.spec.data, "spec.data", self.secrets)
            current = objects.fingerprint(self.spec.data.uri, credentials)
        except (objects.ObjectError, OSError, SourceError) as error:
            self.condition("DataReachable", "False", "DataUnreadable", str(error))
            return None
        self.condition("DataReachable", "True", "Listed", f"data fingerprint {current[:19]}")
        previous = self.status.data_fingerprint
        self.status.data_fingerprint = current
        if previous is None:
            return None
        return current if current != previous else None

    # --- starting runs ----------------------------------------------------------------------------------

    def drifted_batches(self, rule: OnDrift) -> list[Request]:
        """Checks the batches that landed since the last poll; a Drift run for each that drifted."""
        if not self.poll_due("Drift", rule.poll_interval_seconds):
            return []
        field_path = "spec.triggers.onDrift.batches"
        try:
            credentials = storage_credentials(rule.batches, field_path, self.secrets)
            listing = objects.list_objects(rule.batches.uri, credentials)
        except (objects.ObjectError, SourceError) as error:
            self.drift_condition("False", "BatchesUnreadable", f"{field_path}: {error}")
            return []
        if self.status.drift is None:
            self.status.drift = drift.first_sight(listing, self.now)
            self.drift_condition(
                "True", "Watching", f"{len(self.status.drift.batches)} batches already there"
            )
            return []
        status = drift.prune(self.status.drift, listing)
        fresh = drift.new_batches(listing, status)
        self.status.drift = status
        if not fresh:
            return []
        try:
            baseline = self.drift_baseline()
        except (objects.ObjectError, manifest.ManifestError, SourceError, ValueError) as error:
            self.drift_condition("False", "BaselineUnreadable", str(error)[:1000])
            return []
        if baseline is None:
            message = f"{len(fresh)} batches wait: no Validated {self.spec.model_name} to compare them with"
            self.drift_condition("False", "NoBaseline", message)
            return []
        from slipway.datastats import statistics as datastats  # pyarrow: loaded once a batch is to be read

        wanted: list[Request] = []
        for batch in fresh:
            try:
                statistics = datastats.csv_statistics([objects.read_bytes(batch.uri, credentials)], batch.key)
                verdict = drift.judge(batch, statistics, baseline, rule)
            except (objects.ObjectError, ValueError) as error:  # pyarrow's parse errors are ValueErrors
                verdict = drift.unreadable(batch, str(error))
            run = (
                run_id(self.name, "Drift", f"{batch.key}@{batch.etag}")
                if verdict.outcome == "Drifted"
                else None
            )
            self.status.drift = drift.record(self.status.drift, verdict, baseline, self.now, run)
            self.report_drift(verdict, baseline)
            if run is not None:
                wanted.append(("Drift", f"{batch.key}@{batch.etag}", verdict.details(baseline.version)))
        checked = sum(b.outcome != "Baseline" for b in self.status.drift.batches)
        self.drift_condition(
            "True", "Watching", f"{checked} batches checked against v{baseline.version}'s training statistics"
        )
        return wanted

    def drift_baseline(self) -> drift.Baseline | None:
        """The training statistics and schema of the model version that is stable now, from its manifest."""
        if self.baseline_uri is None:
            return None
        credentials = storage_credentials(self.spec.model_store, "spec.modelStore", self.secrets)
        found = manifest.read(self.baseline_uri, credentials)
        uri = found.lineage.statistics_uri
        if not uri:
            raise ValueError(f"{self.baseline_uri}: the manifest records no statisticsUri (lineage)")
        if uri not in _baselines:
            from slipway.datastats import schema as datastats_schema
            from slipway.datastats import statistics as datastats

            artifacts = storage_credentials(self.spec.artifact_root, "spec.artifactRoot", self.secrets)
            schema = None
            if found.lineage.schema_uri:
                text = objects.read_bytes(found.lineage.schema_uri, artifacts).decode()
                schema = datastats_schema.parse(text)
            _baselines[uri] = drift.Baseline(
                found.version, uri, datastats.parse(objects.read_bytes(uri, artifacts)), schema
            )
        return _baselines[uri]

    def report_drift(self, verdict: drift.Verdict, baseline: drift.Baseline) -> None:
        for score in verdict.scores:
            DRIFT_SCORE.labels(self.namespace, self.name, score.feature).set(score.score)
        DRIFT_BATCHES.labels(self.namespace, self.name, verdict.outcome).inc()
        against = f"v{baseline.version}'s training data"
        if verdict.anomalies:
            self.emit(
                "Warning", "DataAnomalies", f"batch {verdict.batch.key}: {verdict.anomaly_text()}"[:1000]
            )
        if verdict.outcome == "Drifted":
            self.emit(
                "Warning",
                "DriftDetected",
                f"batch {verdict.batch.key} drifted from {against}: {verdict.summary()}"[:1000],
            )
        elif verdict.outcome == "Blocked":
            self.emit(
                "Warning",
                "DriftRunBlocked",
                f"batch {verdict.batch.key}: no run, it has anomalies (blockOnAnomalies)"[:1000],
            )
        elif verdict.outcome == "NoDrift":
            self.emit(
                "Normal",
                "NoDrift",
                f"batch {verdict.batch.key} against {against}: {verdict.summary()}"[:1000],
            )

    def drift_condition(self, value: ConditionStatus, reason: str, message: str) -> None:
        self.condition("DriftWatch", value, reason, message)

    def start(self, pipeline: PipelineSpec, trigger: str, key: str, details: dict[str, str]) -> None:
        assert self.executor is not None
        identifier = run_id(self.name, trigger, key)
        if any(r.id == identifier for r in self.status.runs):
            self.mark_handled(trigger, key)
            return
        active = [r for r in self.status.runs if r.phase in ACTIVE]
        policy = self.spec.schedule.concurrency_policy if self.spec.schedule else "Forbid"
        if active and policy == "Forbid":
            if trigger != "Manual":
                self.mark_handled(trigger, key)
                self.emit(
                    "Normal", "RunSkipped", f"{trigger} run skipped: {active[0].id} is still running (Forbid)"
                )
            return
        if active and policy == "Replace":
            for record in active:
                self.executor.terminate(record.id)
                self.emit(
                    "Normal", "RunReplaced", f"run {record.id} terminated to start a {trigger} run (Replace)"
                )
            self.follow_runs()
        version = next_version(self.existing_versions, self.status)
        standard = {
            "data_uri": self.spec.data.uri,
            "model_store_uri": self.spec.model_store.uri,
            "model_name": self.spec.model_name,
            "model_version": version,
            "pipeline_digest": pipeline.digest,
            "baseline_model_uri": self.stable_uri or "",
            "run_id": identifier,
        }
        args = arguments(pipeline, standard, self.spec.parameters)
        state = self.executor.submit(identifier, pipeline.ir_text, args, self.pipeline_root)
        record = RunRecord(
            id=identifier,
            trigger=trigger,
            phase="Running" if state.phase in ACTIVE else state.phase,
            url=state.url,
            start_time=self.now,
            pipeline_digest=pipeline.digest,
            details={"version": str(version), "triggerKey": key[:200], **details},
        )
        self.status.runs.append(record)
        self.mark_handled(trigger, key)
        self.emit("Normal", "RunStarted", f"{trigger} run {identifier} started (model version {version})")

    def mark_handled(self, trigger: str, key: str) -> None:
        if trigger == "Manual":
            self.status.handled_run_request = key
        elif trigger == "Schedule":
            self.status.last_schedule_time = datetime.fromisoformat(key)

    # --- the result -------------------------------------------------------------------------------------

    def finish(self) -> Outcome:
        self.trim_history()
        runs = self.status.runs
        self.status.last_run = runs[-1] if runs else None
        active = [r for r in runs if r.phase in ACTIVE]
        if active:
            self.condition("Running", "True", "RunInProgress", f"run {active[-1].id} running")
        else:
            self.condition("Running", "False", "Idle", "no run in progress")
        finished = [r for r in runs if r.phase not in ACTIVE]
        if finished:
            last = finished[-1]
            ok = last.phase == "Succeeded"
            self.condition(
                "Succeeded",
                "True" if ok else "False",
                f"Run{last.phase}",
                f"{last.id}: {last.message}"[:1000],
            )
        self.status.observed_generation = self.generation
        return Outcome(self.status, self.events)

    def trim_history(self) -> None:
        keep_ok, keep_failed = self.spec.successful_runs_history_limit, self.spec.failed_runs_history_limit
        ok = [r for r in self.status.runs if r.phase == "Succeeded"]
        failed = [r for r in self.status.runs if r.phase in ("Failed", "Cancelled")]
        drop = {r.id for r in ok[: max(0, len(ok) - keep_ok)]} | {
            r.id for r in failed[: max(0, len(failed) - keep_failed)]
        }
        self.status.runs = [r for r in self.status.runs if r.id not in drop]


def newest_validated_uri(infos: list[VersionInfo]) -> str | None:
    """The drift baseline when no endpoint serves the model: the newest version that passed its gates."""
    validated = [info for info in infos if info.servable]
    return max(validated, key=lambda info: info.version).uri if validated else None


def reconcile(
    namespace: str,
    name: str,
    existing_versions: list[int],
    stable_uri: str | None,
    baseline_uri: str | None,
    post_event: EventSink,
    wake: Callable[[], None] | None = None,
) -> None:
    """`wake`: reconciles this pipeline again; the local executor calls it when a run it started ends."""
    body = get_custom(PLURAL, namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return
    outcome = Reconciler(body, existing_versions, stable_uri, baseline_uri, wake).run()
    new = outcome.status.to_wire()
    old = body.get("status") or {}
    if not is_subset(new, old) or any(key not in new for key in old):
        body = patch_custom_status(PLURAL, namespace, name, {**{k: None for k in old if k not in new}, **new})
        API_WRITES.labels("TrainingPipeline", "patch-status").inc()
    for type_, reason, message in outcome.events:
        post_event(body, type_, reason, message)


def terminate_all(body: dict[str, Any]) -> None:
    """On deletion: stop every run still going."""
    spec = TrainingPipelineSpec.model_validate(body["spec"])
    status = TrainingPipelineStatus.model_validate(body.get("status") or {})
    try:
        executor, _ = executor_for(body["metadata"]["namespace"], body["metadata"]["name"], spec)
    except SourceError as error:
        log.warning("cannot terminate the runs of %s: %s", body["metadata"]["name"], error)
        return
    for record in status.runs:
        if record.phase in ACTIVE:
            executor.terminate(record.id)

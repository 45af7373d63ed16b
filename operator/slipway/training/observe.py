"""What the TrainingPipeline planner sees: the pipeline and whether its spec is usable, its runs' states
from the executor, the data fingerprint and the drift batches when their polls are due, and, when the plan
asks, what a finished run pushed and the statistics of new batches against the drift baseline.

Everything here reads (the API server's Secrets and ConfigMaps, object storage, the executor); nothing
decides what to do about it: that is `plan`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from slipway import blobs, cache, manifest
from slipway.api.common import StorageLocation
from slipway.api.training_pipeline import TrainingPipelineSpec, TrainingPipelineStatus
from slipway.refusals import Refused
from slipway.training import drift, registration
from slipway.training import schedule as cron
from slipway.training.credentials import DataReader, SecretReader, kfp_token, storage_credentials
from slipway.training.executors import UNREACHABLE, Executor, Target, executor_for, refusal_reason
from slipway.training.kfp_executor import KfpConnections
from slipway.training.local_executor import RunState
from slipway.training.pipeline_options import listing_root, spec_options
from slipway.training.plan import (
    RUN_ANNOTATION,
    DriftCheck,
    Observed,
    Polled,
    Reads,
    followed,
    needs_log_tail,
)
from slipway.training.source import PipelineSpec, SourceError, arguments, resolve

BATCHES_FIELD = "spec.triggers.onDrift.batches"


@dataclass
class Memory:
    """What the training controller keeps between reconciles, outside status: when each pipeline's data
    and batches were last polled, the drift baselines read (training statistics never change), and each
    pipeline's newest body from its watch events and the controller's own writes (see controller.reconcile).
    """

    last_poll: dict[tuple[str, str, str], datetime] = field(default_factory=dict)
    baselines: dict[str, drift.Baseline] = field(default_factory=dict)  # by statistics URI
    kfp: KfpConnections = field(default_factory=KfpConnections)
    bodies: cache.Newest = field(default_factory=cache.Newest)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def poll_due(self, pipeline: tuple[str, str], trigger: str, interval: int, now: datetime) -> bool:
        """True (and remembered) when the trigger's poll interval has passed since its last poll."""
        key = (*pipeline, trigger)
        with self.lock:
            last = self.last_poll.get(key)
            if last is not None and (now - last).total_seconds() < interval:
                return False
            self.last_poll[key] = now
            return True

    def polls_of(self, pipeline: tuple[str, str]) -> dict[tuple[str, str, str], datetime]:
        with self.lock:
            return {key: at for key, at in self.last_poll.items() if key[:2] == pipeline}

    def restore_polls(self, pipeline: tuple[str, str], polls: dict[tuple[str, str, str], datetime]) -> None:
        """The pipeline's poll times as `polls_of` returned them: a plan discarded unapplied polled for
        nothing."""
        with self.lock:
            for key in [key for key in self.last_poll if key[:2] == pipeline]:
                del self.last_poll[key]
            self.last_poll.update(polls)


@dataclass
class Session:
    """One reconcile's access to the world: the pipeline's namespace, its Secrets and ConfigMaps (each read
    once), the executor once the spec proved usable, the baseline model for drift."""

    namespace: str
    name: str
    secrets: SecretReader
    config_maps: DataReader
    memory: Memory
    baseline_uri: str | None = None  # the model whose training statistics new batches are compared with
    executor: Executor | None = None
    pipeline_root: str = ""


def validate(
    namespace: str, spec: TrainingPipelineSpec, config_maps: DataReader, secrets: SecretReader
) -> PipelineSpec:
    """The pipeline the spec names, or a SourceError naming the field that cannot be used."""
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
        cron.validate(spec.schedule)
    pipeline = resolve(spec.pipeline, config_maps)
    arguments(pipeline, {}, spec.parameters)  # unknown or mistyped parameters fail here, naming the field
    spec_options(pipeline, spec)  # as do spec.evaluation and spec.beam on a pipeline without their parameters
    return pipeline


def observe(
    body: dict[str, Any],
    session: Session,
    now: datetime,
    existing_versions: list[int] | None = None,
    stable_uri: str | None = None,
    on_run_exit: Any = None,
) -> Observed:
    meta = body["metadata"]
    spec = TrainingPipelineSpec.model_validate(body["spec"])
    status = TrainingPipelineStatus.model_validate(body.get("status") or {})
    observed = Observed(
        namespace=session.namespace,
        name=session.name,
        generation=int(meta.get("generation", 1)),
        created=datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00")),
        spec=spec,
        status=status,
        run_request=(meta.get("annotations") or {}).get(RUN_ANNOTATION),
        existing_versions=tuple(existing_versions or ()),
        stable_uri=stable_uri,
    )
    try:
        pipeline = validate(session.namespace, spec, session.config_maps, session.secrets)
        target = Target(
            session.namespace, session.name, spec, session.secrets, on_run_exit, session.memory.kfp
        )
        session.executor, session.pipeline_root = executor_for(target)
    except Refused as error:
        return replace(observed, problem=error)
    observed = replace(observed, pipeline=pipeline)
    try:
        runs, tails = run_states(session.executor, status)
    except UNREACHABLE as error:
        return replace(observed, executor_error=str(error), executor_reason=refusal_reason(error))
    return replace(
        observed,
        runs=runs,
        log_tails=tails,
        data=poll_data(spec, session, now),
        batches=poll_batches(spec, session, now),
    )


def run_states(
    executor: Executor, status: TrainingPipelineStatus
) -> tuple[dict[str, RunState], dict[str, str]]:
    states, tails = {}, {}
    for record in followed(status):
        state = states[record.id] = executor.state(record.id)
        if needs_log_tail(state):
            tails[record.id] = executor.log_tail(record.id, 5)
    return states, tails


def poll_data(spec: TrainingPipelineSpec, session: Session, now: datetime) -> Polled | None:
    """The fingerprint of spec.data's listing, when the onNewData poll is due."""
    rule = spec.triggers.on_new_data
    if rule is None:
        return None
    return poll(session, now, "NewData", rule.poll_interval_seconds, spec.data, "spec.data", fingerprint)


def poll_batches(spec: TrainingPipelineSpec, session: Session, now: datetime) -> Polled | None:
    """The listing of the drift batches, when the onDrift poll is due; an error names the field."""
    rule = spec.triggers.on_drift
    if rule is None:
        return None
    polled = poll(session, now, "Drift", rule.poll_interval_seconds, rule.batches, BATCHES_FIELD, listing)
    if polled is not None and polled.error is not None:
        return Polled(error=f"{BATCHES_FIELD}: {polled.error}")
    return polled


def fingerprint(uri: str, credentials: Any) -> Polled:
    return Polled(fingerprint=blobs.fingerprint(listing_root(uri), credentials))


def listing(uri: str, credentials: Any) -> Polled:
    return Polled(listing=tuple(blobs.list_objects(uri, credentials)))


def poll(
    session: Session,
    now: datetime,
    trigger: str,
    interval: int,
    location: StorageLocation,
    field: str,
    look: Callable[[str, Any], Polled],
) -> Polled | None:
    if not session.memory.poll_due((session.namespace, session.name), trigger, interval, now):
        return None
    try:
        return look(location.uri, storage_credentials(location, field, session.secrets))
    except (blobs.ObjectError, OSError, SourceError) as error:
        return Polled(error=str(error))


# --- what the plan asks to see -------------------------------------------------------------------------


def read(reads: Reads, observed: Observed, session: Session) -> Observed:
    """`observed` with what the plan asked for."""
    pushes = dict(observed.pushes)
    by_id = {r.id: r for r in observed.status.runs}
    for run_id in reads.pushes:
        pushes[run_id] = read_push(observed.spec, by_id[run_id], observed.runs[run_id], session.secrets)
    check = observed.drift_check
    if reads.batches:
        check = check_batches(observed.spec, reads.batches, session)
    return replace(observed, pushes=pushes, drift_check=check)


def read_push(
    spec: TrainingPipelineSpec, record: Any, state: RunState, secrets: SecretReader
) -> registration.Pushed:
    """What the model store holds where the run says it pushed (or, without a push_result output, where
    the version it was started with would be)."""
    version = registration.pushed_version(record, state)
    uri = registration.model_dir(spec, version)
    try:
        credentials = storage_credentials(spec.model_store, "spec.modelStore", secrets)
        if registration.push_result(state) is None and not blobs.exists(
            blobs.join(uri, manifest.MANIFEST), credentials
        ):
            # No push_result output (a KFP run, or a pipeline without one): no manifest = nothing pushed;
            # the pusher's record says why, when it wrote one.
            record = manifest.read_push_result(spec.model_store.uri, spec.model_name, version, credentials)
            return registration.Pushed(version, uri, missing=registration.missing_reason(record, uri))
        found = manifest.read(uri, credentials)
        if not blobs.exists(blobs.join(uri, "saved_model.pb"), credentials):
            return registration.Pushed(
                version, uri, missing=f"pushed manifest but no saved_model.pb under {uri}"
            )
    except (blobs.ObjectError, manifest.ManifestError, SourceError) as error:
        return registration.Pushed(version, uri, unreadable=str(error))
    return registration.Pushed(version, uri, found=found)


def check_batches(spec: TrainingPipelineSpec, batches: tuple[Any, ...], session: Session) -> DriftCheck:
    """The drift baseline and each batch's statistics (or why they could not be read)."""
    rule = spec.triggers.on_drift
    assert rule is not None
    try:
        baseline = drift_baseline(spec, session)
    except Exception as error:
        return DriftCheck(
            None, baseline_error=f"cannot read the drift baseline: {type(error).__name__}: {error}"
        )
    if baseline is None:
        return DriftCheck(None)
    from slipway.datastats import statistics as datastats  # pyarrow: loaded once a batch is to be read

    read: dict[tuple[str, str], Any] = {}
    for batch in batches:
        try:
            credentials = storage_credentials(rule.batches, BATCHES_FIELD, session.secrets)
            raw = blobs.read_bytes(batch.uri, credentials)
            read[(batch.key, batch.etag)] = datastats.csv_statistics([raw], batch.key)
        except Exception as error:
            read[(batch.key, batch.etag)] = f"{type(error).__name__}: {error}"
    return DriftCheck(baseline, batches=read)


def drift_baseline(spec: TrainingPipelineSpec, session: Session) -> drift.Baseline | None:
    """The training statistics and schema of the baseline model version, from its manifest."""
    if session.baseline_uri is None:
        return None
    credentials = storage_credentials(spec.model_store, "spec.modelStore", session.secrets)
    found = manifest.read(session.baseline_uri, credentials)
    uri = found.lineage.statistics_uri
    if not uri:
        raise ValueError(f"{session.baseline_uri}: the manifest records no statisticsUri (lineage)")
    baselines = session.memory.baselines
    if uri not in baselines:
        from slipway.datastats import schema as datastats_schema
        from slipway.datastats import statistics as datastats

        artifacts = storage_credentials(spec.artifact_root, "spec.artifactRoot", session.secrets)
        schema = None
        if found.lineage.schema_uri:
            text = blobs.read_bytes(found.lineage.schema_uri, artifacts).decode()
            schema = datastats_schema.parse(text)
        baselines[uri] = drift.Baseline(
            found.version, uri, datastats.parse(blobs.read_bytes(uri, artifacts)), schema
        )
    return baselines[uri]

"""The TrainingPipeline's decisions, as a pure function of what was observed and the time.

`plan(observed, now)` follows the runs in status (finished, timed out, pushed a model), decides what the
triggers ask for (a manual request, the schedule, new data, drifted batches) under the concurrency policy,
and returns the status to write, the Events, and the intents the applier carries out: terminate a run,
submit a run, create a ModelVersion. When it needs to see more than observe read (what a finished run
pushed, the statistics of new batches) it says so in `reads`; the controller reads them and plans again.
It never mutates its inputs."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, NamedTuple

from tensorflow_metadata.proto.v0 import statistics_pb2

from slipway import GROUP
from slipway.api.common import ConditionStatus, reconciled, set_condition
from slipway.api.training_pipeline import (
    OnDrift,
    RunRecord,
    RunTrigger,
    TrainingPipelineSpec,
    TrainingPipelineStatus,
)
from slipway.messages import sanitize
from slipway.refusals import Refused
from slipway.storage import ObjectInfo
from slipway.training import drift, registration
from slipway.training import schedule as cron
from slipway.training.local_executor import RunState
from slipway.training.source import PipelineSpec, arguments

RUN_ANNOTATION = f"{GROUP}/run"
ACTIVE = ("Pending", "Running")
FINISHED = ("Succeeded", "Failed", "Cancelled")
TERMINATED = "terminated"  # what the local executor records for a run it stopped


def run_id(pipeline: str, trigger: str, key: str) -> str:
    """Deterministic, DNS-safe: the same trigger always names the same run."""
    digest = hashlib.sha256(f"{pipeline}/{trigger}/{key}".encode()).hexdigest()[:10]
    return f"{pipeline[:40]}-{trigger.lower()}-{digest}"


# --- what is observed ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Polled:
    """One poll of a storage prefix: its fingerprint or listing, or why it could not be read."""

    fingerprint: str | None = None
    listing: tuple[ObjectInfo, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class DriftCheck:
    """New batches read against the drift baseline (the stable model's training statistics and schema).
    `batches`: by (key, etag), the batch's statistics or why it could not be read."""

    baseline: drift.Baseline | None
    baseline_error: str | None = None
    batches: Mapping[tuple[str, str], statistics_pb2.DatasetFeatureStatistics | str] = field(
        default_factory=dict
    )


@dataclass(frozen=True)
class Observed:
    namespace: str
    name: str
    generation: int
    created: datetime
    spec: TrainingPipelineSpec
    status: TrainingPipelineStatus
    run_request: str | None = None  # the run annotation's token
    pipeline: PipelineSpec | None = None  # the resolved source; None when the spec is unusable
    problem: Refused | None = None  # why the spec is unusable
    existing_versions: tuple[int, ...] = ()  # ModelVersions of the model
    stable_uri: str | None = None  # the model an endpoint serves as stable: the champion a run must beat
    runs: Mapping[str, RunState] = field(default_factory=dict)  # the executor's word on the runs followed
    log_tails: Mapping[str, str] = field(default_factory=dict)  # of runs that failed without a message
    executor_error: str | None = None  # the executor could not be asked: nothing is decided about runs
    executor_reason: str = "ExecutorUnreachable"  # why, as a condition reason
    data: Polled | None = None  # spec.data, when the onNewData poll was due
    batches: Polled | None = None  # spec.triggers.onDrift.batches, when the drift poll was due
    pushes: Mapping[str, registration.Pushed] = field(default_factory=dict)  # read at the plan's request
    drift_check: DriftCheck | None = None  # read at the plan's request


def followed(status: TrainingPipelineStatus) -> list[RunRecord]:
    """The runs whose state the executor is asked for: those still going and those not yet registered."""
    return [r for r in status.runs if r.phase in ACTIVE or (r.phase == "Succeeded" and r.pushed is None)]


def needs_log_tail(state: RunState) -> bool:
    return state.phase not in ACTIVE and state.phase != "Succeeded" and not state.message


# --- what to do ---------------------------------------------------------------------------------------


class Event(NamedTuple):
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Start:
    record: RunRecord  # as status lists it until the executor answers
    ir_text: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Terminate:
    run_id: str
    why: str  # Timeout or Replace


@dataclass(frozen=True)
class Register:
    body: dict[str, Any]  # the ModelVersion to create (one that exists already is left as it is)


@dataclass(frozen=True)
class Reads:
    pushes: tuple[str, ...] = ()  # run ids whose push to read from the model store
    batches: tuple[ObjectInfo, ...] = ()  # new batches to read against the drift baseline

    def __bool__(self) -> bool:
        return bool(self.pushes or self.batches)


@dataclass
class Plan:
    status: TrainingPipelineStatus
    events: list[Event] = field(default_factory=list)
    runs: list[Terminate | Start] = field(default_factory=list)  # executor calls, in this order
    register: list[Register] = field(default_factory=list)
    ended: list[RunRecord] = field(default_factory=list)  # runs that finished now (for the metrics)
    verdicts: list[drift.Verdict] = field(default_factory=list)  # batches judged now (for the metrics)
    reads: Reads = field(default_factory=Reads)  # not empty: read these and plan again; apply nothing

    @property
    def start(self) -> list[Start]:
        return [intent for intent in self.runs if isinstance(intent, Start)]

    @property
    def terminate(self) -> list[Terminate]:
        return [intent for intent in self.runs if isinstance(intent, Terminate)]


def plan(observed: Observed, now: datetime) -> Plan:
    return _Planning(observed, now).plan()


def submitted(observed: Observed, planned: Plan, states: Mapping[str, RunState], now: datetime) -> Plan:
    """The plan once the executor has answered each submit: a run it already had (an adopted run) may be
    further along than the planned Running."""
    if not planned.start:
        return planned
    status = planned.status.model_copy(deep=True)
    for index, record in enumerate(status.runs):
        state = states.get(record.id)
        if state is not None and record.phase in ACTIVE:
            phase = "Running" if state.phase in ACTIVE else state.phase
            status.runs[index] = record.model_copy(update={"phase": phase, "url": state.url})
    return replace(planned, status=conclude(status, observed, now))


def executor_refused(
    observed: Observed, message: str, now: datetime, reason: str = "ExecutorUnreachable"
) -> Plan:
    """The executor could not be reached or refused a call: nothing about runs changes this time, the
    ExecutorReachable condition says why (with one Event when it turns False or its reason changes),
    everything is tried again."""
    assert observed.pipeline is not None
    status = valid(observed.status.model_copy(deep=True), observed, now)
    events = []
    previous = next((c for c in status.conditions if c.type == "ExecutorReachable"), None)
    if previous is None or previous.status != "False" or previous.reason != reason:
        events.append(Event("Warning", reason, message[:1000]))
    status.conditions = set_condition(
        status.conditions,
        "ExecutorReachable",
        "False",
        reason,
        message[:1000],
        observed.generation,
        now,
    )
    return Plan(conclude(status, observed, now), events)


def valid(status: TrainingPipelineStatus, observed: Observed, now: datetime) -> TrainingPipelineStatus:
    pipeline = observed.pipeline
    assert pipeline is not None
    status.pipeline_digest = pipeline.digest
    message = f"pipeline {pipeline.name} ({pipeline.digest[:19]})"
    status.conditions = set_condition(
        status.conditions, "Ready", "True", "Valid", message, observed.generation, now
    )
    return status


def conclude(status: TrainingPipelineStatus, observed: Observed, now: datetime) -> TrainingPipelineStatus:
    """History trimmed to the spec's limits, the last run, the Running and Succeeded conditions."""
    spec, generation = observed.spec, observed.generation
    ok = [r for r in status.runs if r.phase == "Succeeded"]
    failed = [r for r in status.runs if r.phase in ("Failed", "Cancelled")]
    drop = {r.id for r in ok[: max(0, len(ok) - spec.successful_runs_history_limit)]} | {
        r.id for r in failed[: max(0, len(failed) - spec.failed_runs_history_limit)]
    }
    status.runs = [r for r in status.runs if r.id not in drop]
    runs = status.runs
    status.last_run = runs[-1] if runs else None
    active = [r for r in runs if r.phase in ACTIVE]
    if active:
        message = f"run {active[-1].id} running"
        status.conditions = set_condition(
            status.conditions, "Running", "True", "RunInProgress", message, generation, now
        )
    else:
        status.conditions = set_condition(
            status.conditions, "Running", "False", "Idle", "no run in progress", generation, now
        )
    finished = [r for r in runs if r.phase not in ACTIVE]
    if finished:
        last = finished[-1]
        status.conditions = set_condition(
            status.conditions,
            "Succeeded",
            "True" if last.phase == "Succeeded" else "False",
            f"Run{last.phase}",
            f"{last.id}: {last.message}"[:1000],
            generation,
            now,
        )
    status.conditions = reconciled(status.conditions, generation, now)
    status.observed_generation = generation
    return status


def not_registered(
    record: RunRecord,
    reason: str,
    message: str,
    events: list[Event],
    details: dict[str, str] | None = None,
) -> RunRecord:
    """`record` with its registration ended without a ModelVersion (`pushed: false`, the reason first in
    its message), and the Warning Event that says so."""
    text = sanitize(f"{reason}: {message}", 2000)
    events.append(Event("Warning", reason, f"run {record.id}: {text}"))
    update: dict[str, Any] = {"pushed": False, "message": text, "model_version": None}
    if details:
        update["details"] = {**record.details, **details}
    return record.model_copy(update=update)


def registration_refused(planned: Plan, run: str, reason: str, message: str) -> Plan:
    """The plan once the API server refused to register `run`'s model (its version belongs to another
    ModelVersion): the run is recorded as not pushed, with a Warning Event."""
    status = planned.status.model_copy(deep=True)
    events = [e for e in planned.events if not (e.reason == "ModelVersionCreated" and run in e.message)]
    status.runs = [not_registered(r, reason, message, events) if r.id == run else r for r in status.runs]
    status.last_run = status.runs[-1] if status.runs else None
    return replace(planned, status=status, events=events)


Request = tuple[RunTrigger, str, dict[str, str]]  # (trigger, key that names the run, figures behind it)


class _Planning:
    """One plan being made: a working copy of status, the Events and intents so far."""

    def __init__(self, observed: Observed, now: datetime) -> None:
        self.observed = observed
        self.spec = observed.spec
        self.now = now
        self.status = observed.status.model_copy(deep=True)
        self.result = Plan(self.status)
        self.pushes: list[str] = []
        self.batches: list[ObjectInfo] = []

    def emit(self, type_: str, reason: str, message: str) -> None:
        self.result.events.append(Event(type_, reason, message))

    def condition(self, type_: str, value: ConditionStatus, reason: str, message: str) -> None:
        self.status.conditions = set_condition(
            self.status.conditions, type_, value, reason, message, self.observed.generation, self.now
        )

    def plan(self) -> Plan:
        observed = self.observed
        if observed.problem is not None:
            problem = observed.problem
            if next((c.reason for c in self.status.conditions if c.type == "Ready"), None) != problem.reason:
                self.emit("Warning", problem.reason, str(problem))
            self.condition("Ready", "False", problem.reason, str(problem))
            return self.concluded()
        if observed.executor_error is not None:
            return executor_refused(observed, observed.executor_error, self.now, observed.executor_reason)
        valid(self.status, observed, self.now)
        self.follow_runs()
        for trigger, key, details in self.requests():
            self.start(trigger, key, details)
        kfp = self.spec.executor.kfp
        if kfp is not None and self.spec.executor.type == "kfp":
            self.condition("ExecutorReachable", "True", "Reachable", f"KFP API at {kfp.endpoint}")
        if self.spec.executor.type == "job":
            self.condition("ExecutorReachable", "True", "Reachable", "Kubernetes Jobs")
        self.result.reads = Reads(tuple(self.pushes), tuple(self.batches))
        return self.concluded()

    def concluded(self) -> Plan:
        self.result.status = conclude(self.status, self.observed, self.now)
        return self.result

    # --- runs in flight ---------------------------------------------------------------------------------

    def follow_runs(self) -> None:
        for index, record in enumerate(self.status.runs):
            state = self.observed.runs.get(record.id)
            if state is None:
                continue
            if record.phase in ACTIVE:
                if state.url and record.url != state.url:
                    record = record.model_copy(update={"url": state.url})
                limit = self.spec.run_timeout_seconds
                started = record.start_time
                if (
                    state.phase in ACTIVE
                    and started is not None
                    and (self.now - started).total_seconds() > limit
                ):
                    self.result.runs.append(Terminate(record.id, "Timeout"))
                    state = RunState(
                        "Failed", f"timed out after {limit} s (spec.runTimeoutSeconds); terminated"
                    )
                if state.phase in ACTIVE:
                    self.status.runs[index] = record.model_copy(update={"phase": "Running"})
                    continue
                self.status.runs[index] = self.finished(record, state)
            elif record.phase == "Succeeded" and record.pushed is None:
                self.status.runs[index] = self.registered(record, state)

    def finished(self, record: RunRecord, state: RunState) -> RunRecord:
        phase = state.phase if state.phase in FINISHED else "Failed"
        message = sanitize(state.message, 2000)  # a run's message may carry its log's terminal colours
        update: dict[str, Any] = {"phase": phase, "finish_time": self.now, "message": message}
        record = record.model_copy(update=update)
        self.result.ended.append(record)
        if phase != "Succeeded":
            said = state.message or self.observed.log_tails.get(record.id, "")
            self.emit("Warning", f"Run{phase}", f"run {record.id} {phase.lower()}: {said}"[:1000])
            return record
        self.emit("Normal", "RunSucceeded", f"run {record.id} succeeded")
        return self.registered(record, state)

    def registered(self, record: RunRecord, state: RunState) -> RunRecord:
        reason = registration.not_pushed_reason(state)
        pushed = self.observed.pushes.get(record.id)
        if reason is None and pushed is None:
            self.pushes.append(record.id)
            return record
        if reason is None and pushed is not None and pushed.unreadable is not None:
            attempts = registration.attempts(record) + 1
            if attempts < registration.MAX_ATTEMPTS:
                return record.model_copy(
                    update={
                        "pushed": None,
                        "message": sanitize(
                            f"registration pending (attempt {attempts}/{registration.MAX_ATTEMPTS}): "
                            f"{pushed.unreadable}",
                            2000,
                        ),
                        "details": {**record.details, registration.ATTEMPTS: str(attempts)},
                    }
                )
            return self.not_registered(
                record,
                "RegistrationFailed",
                f"gave up after {attempts} attempts: {pushed.unreadable}",
                {registration.ATTEMPTS: str(attempts)},
            )
        if reason is None and pushed is not None and pushed.found is not None:
            if (mismatch := registration.mismatch(self.spec, pushed)) is not None:
                return self.not_registered(record, "ManifestMismatch", mismatch)
            observed = self.observed
            body = registration.model_version_body(
                observed.namespace, observed.name, self.spec, record, pushed.found, pushed.uri
            )
            name = body["metadata"]["name"]
            self.result.register.append(Register(body))
            self.emit("Normal", "ModelVersionCreated", f"run {record.id} pushed ModelVersion {name}")
            return record.model_copy(
                update={"pushed": True, "message": f"pushed v{pushed.version}", "model_version": name}
            )
        message = reason or (pushed.missing if pushed is not None else None) or "not pushed"
        if reason is None and registration.push_result(state) is not None:
            # The run said it pushed, and the store holds no manifest: a failed registration, not a choice.
            return self.not_registered(record, "RegistrationFailed", message)
        self.emit("Normal", "NothingPushed", f"run {record.id}: {message}")
        return record.model_copy(update={"pushed": False, "message": message, "model_version": None})

    def not_registered(
        self, record: RunRecord, reason: str, message: str, details: dict[str, str] | None = None
    ) -> RunRecord:
        """The end of a run's registration without a ModelVersion: terminal, never retried."""
        return not_registered(record, reason, message, self.result.events, details)

    # --- what asks for a run ----------------------------------------------------------------------------

    def requests(self) -> list[Request]:
        wanted: list[Request] = []
        token = self.observed.run_request
        if token and token != self.status.handled_run_request:
            wanted.append(("Manual", token, {}))
        wanted += self.scheduled()
        wanted += self.new_data()
        wanted += self.drifted()
        return wanted

    def scheduled(self) -> list[Request]:
        schedule = self.spec.schedule
        if schedule is None:
            return []
        decision = cron.decide(schedule, self.status.last_schedule_time, self.observed.created, self.now)
        self.status.next_schedule_time = decision.next_time
        if decision.missed is not None:
            self.status.last_schedule_time = decision.missed
            self.emit(
                "Warning", "MissedSchedule", f"skipped {decision.missed.isoformat()}: past the deadline"
            )
        return [] if decision.due is None else [("Schedule", decision.due.isoformat(), {})]

    def new_data(self) -> list[Request]:
        polled = self.observed.data
        if self.spec.triggers.on_new_data is None or polled is None:
            return []
        if polled.error is not None or polled.fingerprint is None:
            self.condition("DataReachable", "False", "DataUnreadable", polled.error or "no fingerprint")
            return []
        current = polled.fingerprint
        self.condition("DataReachable", "True", "Listed", f"data fingerprint {current[:19]}")
        previous = self.status.data_fingerprint
        self.status.data_fingerprint = current
        return [] if previous is None or current == previous else [("NewData", current, {})]

    def drifted(self) -> list[Request]:
        """Judges the batches that landed since the last poll; a Drift run for each that drifted."""
        rule, polled = self.spec.triggers.on_drift, self.observed.batches
        if rule is None or polled is None:
            return []
        if polled.error is not None:
            self.drift_condition("False", "BatchesUnreadable", polled.error, warn=True)
            return []
        listing = list(polled.listing)
        if self.status.drift is None:
            self.status.drift = drift.first_sight(listing, self.now)
            self.drift_condition(
                "True", "Watching", f"{len(self.status.drift.batches)} batches already there"
            )
            return []
        self.status.drift = drift.prune(self.status.drift, listing)
        fresh = drift.new_batches(listing, self.status.drift)
        check = self.observed.drift_check
        if not fresh:
            return []
        if check is None:
            self.batches += fresh
            return []
        if check.baseline_error is not None:
            self.drift_condition("False", "BaselineUnreadable", check.baseline_error, warn=True)
            return []
        baseline = check.baseline
        if baseline is None:
            message = f"{len(fresh)} batches wait: no Validated {self.spec.model_name} to compare them with"
            self.drift_condition("False", "NoBaseline", message)
            return []
        wanted: list[Request] = []
        for batch in fresh:
            verdict = judged(batch, check, baseline, rule)
            key = f"{batch.key}@{batch.etag}"
            run = run_id(self.observed.name, "Drift", key) if verdict.outcome == "Drifted" else None
            self.status.drift = drift.record(self.status.drift, verdict, baseline, self.now, run)
            self.report(verdict, baseline)
            if run is not None:
                wanted.append(("Drift", key, verdict.details(baseline.version)))
        checked = sum(b.outcome != "Baseline" for b in self.status.drift.batches)
        self.drift_condition(
            "True", "Watching", f"{checked} batches checked against v{baseline.version}'s training statistics"
        )
        return wanted

    def report(self, verdict: drift.Verdict, baseline: drift.Baseline) -> None:
        self.result.verdicts.append(verdict)
        key, against = verdict.batch.key, f"v{baseline.version}'s training data"
        if verdict.anomalies:
            self.emit("Warning", "DataAnomalies", f"batch {key}: {verdict.anomaly_text()}"[:1000])
        if verdict.outcome == "Drifted":
            self.emit(
                "Warning", "DriftDetected", f"batch {key} drifted from {against}: {verdict.summary()}"[:1000]
            )
        elif verdict.outcome == "Blocked":
            message = f"batch {key}: no run, it has anomalies (blockOnAnomalies)"
            self.emit("Warning", "DriftRunBlocked", message[:1000])
        elif verdict.outcome == "Unjudgeable":
            self.emit("Warning", "DriftUnjudgeable", f"batch {key}: {verdict.summary()}")
        elif verdict.outcome == "NoDrift":
            self.emit("Normal", "NoDrift", f"batch {key} against {against}: {verdict.summary()}"[:1000])

    def drift_condition(self, value: ConditionStatus, reason: str, message: str, warn: bool = False) -> None:
        """With `warn`, a Warning Event too when the condition's reason changes to this one."""
        previous = next((c for c in self.status.conditions if c.type == "DriftWatch"), None)
        if warn and (previous is None or previous.reason != reason):
            self.emit("Warning", reason, message)
        self.condition("DriftWatch", value, reason, message)

    # --- starting runs ----------------------------------------------------------------------------------

    def start(self, trigger: RunTrigger, key: str, details: dict[str, str]) -> None:
        identifier = run_id(self.observed.name, trigger, key)
        if any(r.id == identifier for r in self.status.runs):
            self.mark_handled(trigger, key)
            return
        active = [r for r in self.status.runs if r.phase in ACTIVE]
        policy = self.spec.schedule.concurrency_policy if self.spec.schedule else "Forbid"
        if active and policy == "Forbid":
            if trigger != "Manual":  # a manual request waits for the run in progress
                self.mark_handled(trigger, key)
                self.emit(
                    "Normal", "RunSkipped", f"{trigger} run skipped: {active[0].id} is still running (Forbid)"
                )
            return
        if active and policy == "Replace":
            self.replace(active, trigger)
        version = registration.next_version(list(self.observed.existing_versions), self.status)
        pipeline = self.observed.pipeline
        assert pipeline is not None
        standard = {
            "data_uri": self.spec.data.uri,
            "model_store_uri": self.spec.model_store.uri,
            "model_name": self.spec.model_name,
            "model_version": version,
            "pipeline_digest": pipeline.digest,
            "baseline_model_uri": self.observed.stable_uri or "",
            "run_id": identifier,
        }
        record = RunRecord(
            id=identifier,
            trigger=trigger,
            phase="Running",
            start_time=self.now,
            pipeline_digest=pipeline.digest,
            details={"version": str(version), "triggerKey": key[:200], **details},
        )
        args = arguments(pipeline, standard, self.spec.parameters)
        self.result.runs.append(Start(record, pipeline.ir_text, args))
        self.status.runs.append(record)
        self.mark_handled(trigger, key)
        self.emit("Normal", "RunStarted", f"{trigger} run {identifier} started (model version {version})")

    def replace(self, active: list[RunRecord], trigger: str) -> None:
        """Replace: the runs in progress are terminated, and recorded so, before the new one starts."""
        for record in active:
            self.result.runs.append(Terminate(record.id, "Replace"))
            self.emit(
                "Normal", "RunReplaced", f"run {record.id} terminated to start a {trigger} run (Replace)"
            )
        for index, record in enumerate(self.status.runs):
            if record.phase in ACTIVE:
                self.status.runs[index] = self.finished(record, RunState("Cancelled", TERMINATED))

    def mark_handled(self, trigger: str, key: str) -> None:
        if trigger == "Manual":
            self.status.handled_run_request = key
        elif trigger == "Schedule":
            self.status.last_schedule_time = datetime.fromisoformat(key)


def judged(batch: ObjectInfo, check: DriftCheck, baseline: drift.Baseline, rule: OnDrift) -> drift.Verdict:
    read = check.batches.get((batch.key, batch.etag), "not read")
    if isinstance(read, str):
        return drift.unjudgeable(batch, read)
    try:
        return drift.judge(batch, read, baseline, rule)
    except Exception as error:
        return drift.unjudgeable(batch, f"{type(error).__name__}: {error}")

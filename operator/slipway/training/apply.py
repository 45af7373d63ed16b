"""Carries out a TrainingPipeline plan: the executor calls in order (terminate, submit), the ModelVersions
to create, the metrics of what ended. The status to write comes back from the plan; when the executor
cannot be reached, the plan is set aside and only that is recorded (everything is tried again later)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubernetes.client.rest import ApiException

from slipway import kube
from slipway.crashpoints import crash_point
from slipway.metrics import DRIFT_BATCHES, DRIFT_SCORE, RUN_SECONDS, RUNS
from slipway.training.executors import UNREACHABLE, refusal_reason
from slipway.training.local_executor import RunState
from slipway.training.observe import Session
from slipway.training.plan import Observed, Plan, Start, executor_refused, registration_refused, submitted


def apply(planned: Plan, observed: Observed, session: Session, now: datetime) -> Plan:
    """The plan as carried out: its status patched with what the executor answered."""
    assert not planned.reads, "a plan that still asks to read is not to be applied"
    states: dict[str, RunState] = {}
    if planned.runs:
        executor = session.executor
        assert executor is not None
        try:
            for intent in planned.runs:
                if isinstance(intent, Start):
                    record = intent.record
                    states[record.id] = executor.submit(
                        record.id, intent.ir_text, intent.arguments, session.pipeline_root
                    )
                    crash_point("training.after-submit")
                else:
                    executor.terminate(intent.run_id)
        except UNREACHABLE as error:
            return executor_refused(observed, str(error), now, refusal_reason(error))
    for registration in planned.register:
        if (refused := register(registration.body)) is not None:
            run = registration.body["spec"]["lineage"]["runId"]
            planned = registration_refused(planned, run, *refused)
        else:
            crash_point("training.after-register")
    record_metrics(planned, observed, now)
    return submitted(observed, planned, states, now)


def register(body: dict[str, Any]) -> tuple[str, str] | None:
    """Creates the ModelVersion unless it exists; one that exists and records this run (a registration
    retried after a restart) changes nothing. None when registered; else (reason, message): another run
    holds the version (VersionTaken), or admission refused what the manifest says (RegistrationRefused:
    NaN metrics, a metric name too long), which no retry changes."""
    try:
        if kube.create_if_absent(body) is not None:
            return None
    except ApiException as error:
        if error.status not in (400, 422):
            raise
        return "RegistrationRefused", f"the API server refused ModelVersion {body['metadata']['name']}: " + (
            kube.api_message(error)
        )
    meta = body["metadata"]
    existing = kube.get("ModelVersion", meta["namespace"], meta["name"])
    if existing is None:  # deleted in between: the next reconcile creates it
        return None
    mine = body["spec"]["lineage"]["runId"]
    theirs = ((existing.get("spec") or {}).get("lineage") or {}).get("runId") or "unknown"
    if theirs == mine:
        return None
    return "VersionTaken", f"ModelVersion {meta['name']} exists and records run {theirs}"


def record_metrics(planned: Plan, observed: Observed, now: datetime) -> None:
    namespace, name = observed.namespace, observed.name
    for record in planned.ended:
        RUNS.labels(namespace, name, record.phase, record.trigger).inc()
        if record.start_time:
            RUN_SECONDS.labels(namespace, name).observe(
                ((record.finish_time or now) - record.start_time).total_seconds()
            )
    for verdict in planned.verdicts:
        for score in verdict.scores:
            DRIFT_SCORE.labels(namespace, name, score.feature).set(score.score)
        DRIFT_BATCHES.labels(namespace, name, verdict.outcome).inc()

"""Carries out a TrainingPipeline plan: the executor calls in order (terminate, submit), the ModelVersions
to create, the metrics of what ended. The status to write comes back from the plan; when the executor
cannot be reached, the plan is set aside and only that is recorded (everything is tried again later)."""

from __future__ import annotations

from datetime import datetime

from slipway import kube
from slipway.metrics import DRIFT_BATCHES, DRIFT_SCORE, RUN_SECONDS, RUNS
from slipway.training.executors import UNREACHABLE, refusal_reason
from slipway.training.local_executor import RunState
from slipway.training.observe import Session
from slipway.training.plan import Observed, Plan, Start, executor_refused, submitted


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
                else:
                    executor.terminate(intent.run_id)
        except UNREACHABLE as error:
            return executor_refused(observed, str(error), now, refusal_reason(error))
    for registration in planned.register:
        kube.create_if_absent(registration.body)  # a registration retried after a restart changes nothing
    record_metrics(planned, observed, now)
    return submitted(observed, planned, states, now)


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

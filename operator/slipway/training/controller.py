"""TrainingPipeline reconcile: observe (the pipeline, its runs' states from the executor, the data and the
drift batches when their polls are due), plan (pure: `plan.plan`), read what the plan asks for and plan
again, apply (executor calls, ModelVersions), then status and Events. Run ids are deterministic and a
submitted run id is adopted, so nothing runs twice; a reconcile that changes nothing writes nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slipway import announce, kube
from slipway.api.common import now
from slipway.api.training_pipeline import TrainingPipelineSpec, TrainingPipelineStatus
from slipway.crashpoints import crash_point
from slipway.training.apply import apply
from slipway.training.credentials import config_map_reader, secret_reader
from slipway.training.executors import Target, executor_for
from slipway.training.observe import Memory, Session, observe, read
from slipway.training.plan import ACTIVE, Plan, plan
from slipway.training.source import SourceError
from slipway.views import VersionInfo

log = logging.getLogger(__name__)
KIND = "TrainingPipeline"
# A plan asks to read at most twice (pushes and batches are asked for in the same round).
READ_ROUNDS = 3


def newest_validated_uri(infos: list[VersionInfo]) -> str | None:
    """The drift baseline when no endpoint serves the model: the newest version that passed its gates."""
    validated = [info for info in infos if info.servable]
    return max(validated, key=lambda info: info.version).uri if validated else None


def reconcile_body(
    body: dict[str, Any],
    existing_versions: list[int],
    stable_uri: str | None,
    baseline_uri: str | None = None,
    wake: Callable[[], None] | None = None,
    *,
    memory: Memory,
    fresh: bool = True,
) -> Plan | None:
    """Observe, plan, read what the plan asks for, apply: the plan as carried out (status and Events).
    None, having done nothing, when `body` may be stale (not `fresh`), the plan would start or stop a run
    and the pipeline has changed since `body`: a run started or stopped is not undone by the status
    write that then fails, so those plans are carried out only on the object as the API server has it."""
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    session = Session(
        namespace,
        name,
        secret_reader(namespace),
        config_map_reader(namespace),
        memory,
        baseline_uri=baseline_uri or stable_uri,
    )
    at = now()
    polls = memory.polls_of((namespace, name))
    observed = observe(body, session, at, existing_versions, stable_uri, wake)
    planned = plan(observed, at)
    for _ in range(READ_ROUNDS):
        if not planned.reads:
            break
        observed = read(planned.reads, observed, session)
        planned = plan(observed, at)
    if planned.runs and not fresh and not unchanged_since(body):
        memory.restore_polls((namespace, name), polls)  # the plan on the current body polls again
        return None
    return apply(planned, observed, session, at)


def unchanged_since(body: dict[str, Any]) -> bool:
    meta = body["metadata"]
    current = kube.get(KIND, meta["namespace"], meta["name"])
    return current is not None and current["metadata"]["resourceVersion"] == meta["resourceVersion"]


def reconcile(
    namespace: str,
    name: str,
    existing_versions: list[int],
    stable_uri: str | None,
    baseline_uri: str | None,
    post_event: kube.EventSink,
    memory: Memory,
    wake: Callable[[], None] | None = None,
) -> None:
    """`memory`: what the controller keeps between reconciles (one per operator); `wake`: reconciles this
    pipeline again, which the local executor calls when a run it started ends.

    The pipeline is planned from its newest body known (its watch events, this controller's own writes),
    not from a read: a run's end is registered with one request, the ModelVersion's create. Creating a
    ModelVersion is idempotent (only if absent); starting or stopping a run waits for a read that shows the
    body is current (see reconcile_body). The status is written only onto that very revision; when anyone
    wrote the pipeline since, it is read and planned again."""
    key = (namespace, name)
    body = memory.bodies.get(key)
    fresh = body is None
    while True:
        if body is None:
            body, fresh = kube.get(KIND, namespace, name), True
        if body is None or body["metadata"].get("deletionTimestamp"):
            return
        outcome = reconcile_body(
            body, existing_versions, stable_uri, baseline_uri, wake, memory=memory, fresh=fresh
        )
        written = None
        if outcome is not None:
            if announce.post_run_ends(body, outcome.events):  # a run's end, read again from the executor
                crash_point("training.after-event")
            outcome.status.pending_events = announce.with_pending(
                outcome.status.pending_events, outcome.events, posted=announce.RUN_ENDS
            )
            write = kube.write_status if fresh else kube.write_status_if_unchanged
            written = write(body, outcome.status.to_wire())
        if outcome is not None and written is not None:
            break
        body = None  # changed since: read, and plan again (a read body is fresh: this loops at most twice)
    memory.bodies.put(key, written)
    for type_, reason, message in outcome.events:
        if not announce.matters(reason):
            post_event(written, type_, reason, message)
    memory.bodies.put(key, announce.announce(written))


def terminate_all(body: dict[str, Any], memory: Memory) -> None:
    """On deletion: stop every run still going."""
    spec = TrainingPipelineSpec.model_validate(body["spec"])
    status = TrainingPipelineStatus.model_validate(body.get("status") or {})
    try:
        executor, _ = executor_for(
            Target(
                body["metadata"]["namespace"],
                body["metadata"]["name"],
                spec,
                None,
                kfp_connections=memory.kfp,
            )
        )
    except SourceError as error:
        log.warning("cannot terminate the runs of %s: %s", body["metadata"]["name"], error)
        return
    for record in status.runs:
        if record.phase in ACTIVE:
            executor.terminate(record.id)

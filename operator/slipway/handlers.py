"""The only module with kopf decorators. Each handler is a few lines that delegate to the logic
modules; reconciles are level-based and shared by watch events, timers and resumes."""

from __future__ import annotations

import functools
import itertools
import logging
import threading
from collections.abc import Iterator
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

import kopf

from slipway import GROUP, VERSION, kube, metrics
from slipway.locks import Reconciles
from slipway.messages import sanitize
from slipway.refusals import Guard, user_change
from slipway.registry import collisions
from slipway.registry import controller as registry
from slipway.serving import controller as serving
from slipway.serving.builders import ENDPOINT_LABEL, MODEL_LABEL
from slipway.serving.children import CHILD_KINDS, Children
from slipway.settings import settings as operator_settings
from slipway.training import controller as training
from slipway.training.observe import Memory
from slipway.views import Views

WORKER_LIMIT = 64  # kopf workers per watched kind at once: twice the handler threads


@dataclass
class Operator:
    """What the operator keeps in memory, made once by the runner and handed to every handler as kopf's
    memo (one for all objects: see __copy__)."""

    views: Views = field(default_factory=Views)
    children: Children = field(default_factory=Children)
    reconciles: Reconciles = field(default_factory=Reconciles)
    training: Memory = field(default_factory=Memory)
    guard: Guard = field(init=False)  # every reconcile runs through it: failures become conditions

    def __post_init__(self) -> None:
        self.guard = Guard(self.reconciles, post_event)

    def __copy__(self) -> Operator:
        """kopf copies the memo for every object it watches (11,000 copies at 1,000 endpoints): Slipway
        keeps nothing per object in it, so every object shares this one."""
        return self

    def remember(self, kind: str, body: dict[str, Any]) -> None:
        """What the operator itself just wrote, before its watch event arrives."""
        if kind == "ModelVersion":
            self.views.observe_version("MODIFIED", body)
        elif kind == "ServingEndpoint":
            self.views.observe_endpoint("MODIFIED", body)
        else:
            self.children.observe(kind, "MODIFIED", body)


class RetryForever:
    """kopf's delays between attempts of a failed API request, never exhausted. With kopf's default (eight
    retries, 54 s in all) an API server away for a minute made every watch stream escalate: kopf logs
    "Watcher for ... has failed", never starts that watch again, and the operator lives on deaf to what it
    watches (a rollout decided after the API server came back never finished). A fresh iterator each time:
    kopf iterates it once per request."""

    def __iter__(self) -> Iterator[float]:
        return itertools.chain((1, 1, 2, 3, 5), itertools.repeat(10.0))


def started_pool(workers: int) -> ThreadPoolExecutor:
    """The handler threads, all started at once. A pool started on demand grows by a thread whenever more
    handlers than ever before overlap, so over thousands of rollouts its thread count creeps towards its
    cap and reads as a leak (12 -> 13 over 1,400 rollouts in the stamina bench). Started whole, the count
    is fixed from the first event."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slipway-handler")
    everyone = threading.Barrier(workers)
    # Each task waits for all the others, so no thread is free to take a second: one thread per task.
    futures.wait([pool.submit(everyone.wait) for _ in range(workers)])
    return pool


class DiffBaseForChangeHandlers(kopf.AnnotationsDiffBaseStorage):
    """kopf builds (and deep-copies) a diff base of every event's body, though only on.create/update/delete
    handlers read it, and Slipway has one only for TrainingPipelines; every other kind gets an empty one
    (a tenth of the operator's CPU in a rollout)."""

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        if body.get("kind") != "TrainingPipeline":
            return {}
        return super().build(body=body, extra_fields=extra_fields)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    operator = operator_settings()
    settings.persistence.finalizer = operator.finalizer
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = DiffBaseForChangeHandlers(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.peering.name = operator.peering_name
    settings.peering.standalone = operator.standalone
    # With several replicas, the one with the highest priority works and the others stand by.
    settings.peering.priority = operator.peering_priority
    settings.peering.lifetime = operator.peering_lifetime_seconds
    settings.peering.clusterwide = not operator.namespaces
    # kopf would post an Event for every handler log line at INFO; Slipway posts its own Events.
    settings.posting.level = logging.WARNING
    # kopf waits this long for more events on an object before reacting; 0.1 s by default.
    settings.batching.batch_window = 0.02
    settings.execution.executor = started_pool(operator.max_workers)
    settings.execution.max_workers = operator.max_workers
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60
    settings.networking.error_backoffs = RetryForever()
    _bound_memory(settings)


def _bound_memory(settings: kopf.OperatorSettings) -> None:
    """What keeps the operator's memory flat at scale (bench/results/HISTORY.md has the breakdown)."""
    # kopf starts a worker per object with events and keeps it idle for 5 s: at start-up every object
    # has one at once (10,000 ModelVersions: 10,000 tasks waiting for 32 handler threads, each holding
    # its event). A bounded pool of workers that leave at once holds the rest back in the watch stream.
    settings.queueing.worker_limit = WORKER_LIMIT
    settings.queueing.idle_timeout = 0.2
    # The initial LIST a page at a time, as the views' priming does.
    settings.watching.chunk_size = kube.LIST_PAGE
    # Only Slipway's own children are listed and watched: a server-side selector, where the handlers'
    # label filter alone would have kopf keep a memory of every pod and Deployment in the cluster.
    for kind in CHILD_KINDS:
        child = kube.KINDS[kind]
        settings.watching.label_selectors[child.group, child.version, child.plural] = ENDPOINT_LABEL


def post_event(body: dict[str, Any], type_: str, reason: str, message: str) -> None:
    """The one Event sink: every Event's message is sanitized here (see slipway.messages)."""
    kopf.event(cast(Any, body), type=type_, reason=sanitize(reason, 128), message=sanitize(message))


def _namespaced(namespace: str | None) -> str:
    """Every Slipway kind and child is namespaced; kopf's handler types allow for cluster-scoped ones."""
    assert namespace is not None
    return namespace


def _model(spec: kopf.Spec) -> str:
    return str(spec.get("modelName") or "")


# --- ServingEndpoint ---------------------------------------------------------------------------------


@kopf.on.startup()
def prime_views(memo: Operator, logger: kopf.Logger, **_: Any) -> None:
    namespaces = operator_settings().namespaces
    counts = {**memo.views.prime(namespaces), "children": memo.children.prime(namespaces)}
    logger.info(f"views primed: {counts}")
    metrics.register_computed(
        "slipway_model_versions",
        "ModelVersions by phase",
        ["namespace", "phase"],
        memo.views.versions_by_phase,
    )
    metrics.register_computed(
        "slipway_serving_endpoints",
        "ServingEndpoints by phase (Degraded: the last rollout failed)",
        ["namespace", "phase"],
        memo.views.endpoints_by_phase,
    )


def reconcile_endpoint(
    memo: Operator, namespace: str, name: str, model: str, change: str | None = None
) -> None:
    # The views are read once the lock is held: a reconcile queued behind another sees what that one wrote.
    memo.guard.run(
        "ServingEndpoint",
        namespace,
        name,
        lambda: serving.reconcile(
            memo.views.endpoint_bodies.get((namespace, name)),
            memo.views.versions.get((namespace, model)),
            memo.children.of(namespace, name),
            post_event,
            memo.remember,
            memo.children.unserved,
        ),
        retry=lambda: reconcile_endpoint(memo, namespace, name, model),
        change=change,
    )


@kopf.on.event(GROUP, VERSION, "servingendpoints")
def endpoint_changed(
    type: str, body: kopf.Body, namespace: str | None, name: str, spec: kopf.Spec, memo: Operator, **_: Any
) -> None:
    namespace = _namespaced(namespace)
    memo.views.observe_endpoint(type, dict(body))
    if type == "DELETED":
        memo.reconciles.forget("ServingEndpoint", namespace, name)
        return
    reconcile_endpoint(memo, namespace, name, _model(spec), change=user_change(body))


@kopf.timer(GROUP, VERSION, "servingendpoints", interval=operator_settings().reconcile_interval_seconds)
def endpoint_resync(namespace: str | None, name: str, spec: kopf.Spec, memo: Operator, **_: Any) -> None:
    namespace = _namespaced(namespace)
    reconcile_endpoint(memo, namespace, name, _model(spec))


def _child_changed(kind: str) -> Any:
    def handler(
        type: str, body: kopf.Body, namespace: str | None, labels: kopf.Labels, memo: Operator, **_: Any
    ) -> None:
        namespace = _namespaced(namespace)
        if memo.children.observe(kind, type, dict(body)):
            reconcile_endpoint(memo, namespace, labels[ENDPOINT_LABEL], labels.get(MODEL_LABEL, ""))

    return handler


for _kind in CHILD_KINDS:
    _child = kube.KINDS[_kind]
    kopf.on.event(
        _child.group,
        _child.version,
        _child.plural,
        labels={ENDPOINT_LABEL: kopf.PRESENT},
        id=f"serving-{_child.plural}",
    )(_child_changed(_kind))


# --- ModelVersion: registry and serving ----------------------------------------------------------------


@kopf.on.event(GROUP, VERSION, "modelversions")
def model_version_changed(
    type: str, body: kopf.Body, namespace: str | None, name: str, spec: kopf.Spec, memo: Operator, **_: Any
) -> None:
    namespace = _namespaced(namespace)
    model = _model(spec)
    raw = dict(body)
    servable_changed = memo.views.observe_version(type, raw)
    if type == "DELETED":
        memo.reconciles.forget("ModelVersion", namespace, name)
    elif memo.views.superseded(body):
        pass  # the verdict's own write is newer than this event: its event is the one to judge
    elif registry.needs_verdict(raw) and judge_version(
        memo, namespace, name, model, servable_changed, seen=raw
    ):
        servable_changed = False  # the endpoints have seen the verdict already
    mark_claimants(memo, type, raw, namespace, model)
    if servable_changed:
        reconcile_endpoints_of(memo, namespace, model)


def reconcile_endpoints_of(memo: Operator, namespace: str, model: str) -> None:
    for ref in memo.views.endpoints.get((namespace, model)):
        reconcile_endpoint(memo, namespace, ref.name, model)


def judge_version(
    memo: Operator,
    namespace: str,
    name: str,
    model: str,
    changed: bool = False,
    seen: dict[str, Any] | None = None,
) -> bool:
    """True when a verdict was written and the endpoints of the model have looked at it (when it, or the
    event that asked for it (`changed`), changed what serving reads of the version). `seen`: the event's
    body, judged without a read (see registry.reconcile)."""
    stable = memo.views.stable_versions(namespace, model)
    names = {info.version: info.name for info in memo.views.versions.get((namespace, model))}
    written: list[dict[str, Any]] = []

    def decided(body: dict[str, Any]) -> None:
        # A rollout starts on the verdict as written, not on its watch event after the Event is posted.
        written.append(body)
        if memo.views.observe_version("MODIFIED", body) or changed:
            reconcile_endpoints_of(memo, namespace, model)

    def retry() -> None:
        judge_version(memo, namespace, name, model)

    def judge() -> None:
        # Checked again under the version's lock: a reconcile that held it may have written the version
        # since this event (its verdict, or the clear after posting its Events).
        if seen is not None and memo.views.superseded(seen):
            return
        announced = functools.partial(memo.views.observe_version, "MODIFIED")
        awaited = bool(memo.views.endpoints.get((namespace, model)))
        registry.reconcile(namespace, name, stable, names, decided, seen, announced, awaited)

    memo.guard.run("ModelVersion", namespace, name, judge, retry=retry)
    return bool(written)


def mark_claimants(memo: Operator, type: str, body: dict[str, Any], namespace: str, model: str) -> None:
    """Every ModelVersion claiming this one's version carries `Unique` naming the others (see
    registry.collisions); nothing is read or written for a version with one claimant that was never
    contested."""
    version = (body.get("spec") or {}).get("version")
    claims = [(info.name, info.version) for info in memo.views.versions.get((namespace, model))]
    claimants = sorted({claimant for claimant, number in claims if number == version})
    marked = any(
        c.get("type") == collisions.CONDITION and c.get("status") == "False"
        for c in (body.get("status") or {}).get("conditions") or []
    )
    if not (len(claimants) > 1 or (type == "DELETED" and claimants) or marked):
        return
    for claimant in claimants:
        others = [other for other in claimants if other != claimant]
        memo.guard.run(
            "ModelVersion",
            namespace,
            claimant,
            functools.partial(collisions.mark, namespace, claimant, others, post_event),
        )


# --- TrainingPipeline ---------------------------------------------------------------------------------


def reconcile_pipeline(
    memo: Operator, namespace: str, name: str, model: str, change: str | None = None
) -> None:
    infos = memo.views.versions.get((namespace, model))
    stable = max(memo.views.stable_versions(namespace, model), default=None)
    stable_uri = next((info.uri for info in infos if info.version == stable), None)
    versions = [info.version for info in infos]
    baseline_uri = stable_uri or training.newest_validated_uri(infos)
    memo.guard.run(
        "TrainingPipeline",
        namespace,
        name,
        lambda: training.reconcile(
            namespace,
            name,
            versions,
            stable_uri,
            baseline_uri,
            post_event,
            memo.training,
            wake=lambda: reconcile_pipeline(memo, namespace, name, model),
        ),
        retry=lambda: reconcile_pipeline(memo, namespace, name, model),
        change=change,
    )


@kopf.on.event(GROUP, VERSION, "trainingpipelines")
def pipeline_changed(
    type: str, body: kopf.Body, namespace: str | None, name: str, spec: kopf.Spec, memo: Operator, **_: Any
) -> None:
    namespace = _namespaced(namespace)
    if type == "DELETED":
        memo.reconciles.forget("TrainingPipeline", namespace, name)
        memo.training.bodies.delete((namespace, name))
        return
    memo.training.bodies.put((namespace, name), dict(body))
    reconcile_pipeline(memo, namespace, name, _model(spec), change=user_change(body))


@kopf.timer(GROUP, VERSION, "trainingpipelines", interval=operator_settings().training_poll_seconds)
def pipeline_resync(namespace: str | None, name: str, spec: kopf.Spec, memo: Operator, **_: Any) -> None:
    namespace = _namespaced(namespace)
    reconcile_pipeline(memo, namespace, name, _model(spec))


@kopf.on.delete(GROUP, VERSION, "trainingpipelines")
def pipeline_deleted(body: kopf.Body, memo: Operator, **_: Any) -> None:
    try:
        training.terminate_all(dict(body), memo.training)
    except Exception as error:
        # kopf retries (the finalizer stays until the runs are stopped); its Event quotes this message only.
        raise kopf.TemporaryError(
            sanitize(f"cannot stop the runs: {type(error).__name__}: {error}"), delay=30
        ) from error

"""The only module with kopf decorators. Each handler is a few lines that delegate to the logic
modules; reconciles are level-based and shared by watch events, timers and resumes."""

from __future__ import annotations

import logging
from typing import Any, cast

import kopf

from slipway import GROUP, VERSION, metrics
from slipway import reconcile as runner
from slipway.kube import api_client
from slipway.registry import controller as registry
from slipway.serving import controller as serving
from slipway.serving import views
from slipway.serving.builders import ENDPOINT_LABEL
from slipway.settings import settings as operator_settings
from slipway.training import controller as training


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
    settings.peering.clusterwide = not operator.namespaces
    # kopf would post an Event for every handler log line at INFO; Slipway posts its own Events.
    settings.posting.level = logging.WARNING
    # kopf waits this long for more events on an object before reacting; 0.1 s by default.
    settings.batching.batch_window = 0.02
    settings.execution.max_workers = operator.max_workers
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60


def post_event(body: dict[str, Any], type_: str, reason: str, message: str) -> None:
    kopf.event(cast(Any, body), type=type_, reason=reason, message=message)


# --- ServingEndpoint ---------------------------------------------------------------------------------


@kopf.on.startup()
def prime_views(logger: Any, **_: Any) -> None:
    counts = views.prime(api_client(), operator_settings().namespaces)
    logger.info(f"views primed: {counts}")
    metrics.register_computed(
        "slipway_model_versions", "ModelVersions by phase", ["namespace", "phase"], views.versions_by_phase
    )
    metrics.register_computed(
        "slipway_serving_endpoints",
        "ServingEndpoints by phase (Degraded: the last rollout failed)",
        ["namespace", "phase"],
        views.endpoints_by_phase,
    )


def reconcile_endpoint(namespace: str, name: str, model: str) -> None:
    # The views are read once the lock is held: a reconcile queued behind another sees what that one wrote.
    runner.run(
        "ServingEndpoint",
        namespace,
        name,
        lambda: serving.reconcile(
            views.ENDPOINT_BODIES.get((namespace, name)),
            views.VERSIONS.get((namespace, model)),
            views.CHILDREN.get((namespace, name)),
            post_event,
            views.observe_written,
        ),
    )


@kopf.on.event(GROUP, VERSION, "servingendpoints")
def endpoint_changed(type: Any, body: Any, namespace: Any, name: Any, spec: Any, **_: Any) -> None:
    views.observe_endpoint(type, dict(body))
    if type == "DELETED":
        runner.forget("ServingEndpoint", namespace, name)
        return
    reconcile_endpoint(namespace, name, spec.get("modelName"))


@kopf.timer(GROUP, VERSION, "servingendpoints", interval=operator_settings().reconcile_interval_seconds)
def endpoint_resync(namespace: Any, name: Any, spec: Any, **_: Any) -> None:
    reconcile_endpoint(namespace, name, spec.get("modelName"))


def _child_changed(kind: str) -> Any:
    def handler(type: Any, body: Any, namespace: Any, labels: Any, **_: Any) -> None:
        if views.observe_child(kind, type, body):
            model = labels.get(serving.builders.MODEL_LABEL, "")
            reconcile_endpoint(namespace, labels[ENDPOINT_LABEL], model)

    return handler


for _kind, (_group, _version, _plural) in serving.CHILD_RESOURCES.items():
    kopf.on.event(_group, _version, _plural, labels={ENDPOINT_LABEL: kopf.PRESENT}, id=f"serving-{_plural}")(
        _child_changed(_kind)
    )


# --- ModelVersion: registry and serving ----------------------------------------------------------------


@kopf.on.event(GROUP, VERSION, "modelversions")
def model_version_changed(type: Any, body: Any, namespace: Any, name: Any, spec: Any, **_: Any) -> None:
    model = spec.get("modelName")
    servable_changed = views.observe_version(type, body)
    if type == "DELETED":
        runner.forget("ModelVersion", namespace, name)
    elif registry.needs_verdict(body):
        stable = [ref.stable_version for ref in views.ENDPOINTS.get((namespace, model)) if ref.stable_version]
        names = {info.version: info.name for info in views.VERSIONS.get((namespace, model))}
        runner.run(
            "ModelVersion",
            namespace,
            name,
            lambda: registry.reconcile(namespace, name, stable, names),
        )
    if servable_changed:
        for ref in views.ENDPOINTS.get((namespace, model)):
            reconcile_endpoint(namespace, ref.name, model)


# --- TrainingPipeline ---------------------------------------------------------------------------------


def reconcile_pipeline(namespace: str, name: str, model: str) -> None:
    infos = views.VERSIONS.get((namespace, model))
    refs = views.ENDPOINTS.get((namespace, model))
    stable = max((ref.stable_version for ref in refs if ref.stable_version), default=None)
    stable_uri = next((info.uri for info in infos if info.version == stable), None)
    versions = [info.version for info in infos]
    baseline_uri = stable_uri or training.newest_validated_uri(infos)
    runner.run(
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
            wake=lambda: reconcile_pipeline(namespace, name, model),
        ),
    )


@kopf.on.event(GROUP, VERSION, "trainingpipelines")
def pipeline_changed(type: Any, namespace: Any, name: Any, spec: Any, **_: Any) -> None:
    if type == "DELETED":
        runner.forget("TrainingPipeline", namespace, name)
        return
    reconcile_pipeline(namespace, name, spec.get("modelName"))


@kopf.timer(GROUP, VERSION, "trainingpipelines", interval=operator_settings().training_poll_seconds)
def pipeline_resync(namespace: Any, name: Any, spec: Any, **_: Any) -> None:
    reconcile_pipeline(namespace, name, spec.get("modelName"))


@kopf.on.delete(GROUP, VERSION, "trainingpipelines")
def pipeline_deleted(body: Any, **_: Any) -> None:
    training.terminate_all(dict(body))

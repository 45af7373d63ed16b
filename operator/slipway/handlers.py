"""The only module with kopf decorators. Each handler is a few lines that delegate to the logic
modules; reconciles are level-based and shared by watch events, timers and resumes."""

from __future__ import annotations

import logging
from typing import Any, cast

import kopf

from slipway import GROUP, VERSION
from slipway import reconcile as runner
from slipway.registry import controller as registry
from slipway.serving import controller as serving
from slipway.serving.builders import ENDPOINT_LABEL
from slipway.settings import settings as operator_settings
from slipway.training import controller as training


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    operator = operator_settings()
    settings.persistence.finalizer = operator.finalizer
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
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


@kopf.index(GROUP, VERSION, "modelversions")
def model_versions(namespace: Any, name: Any, spec: Any, status: Any, meta: Any, **_: Any) -> Any:
    return {(namespace, spec.get("modelName")): serving.summarize_version(name, spec, status, meta)}


@kopf.index(GROUP, VERSION, "servingendpoints")
def endpoints_by_model(namespace: Any, name: Any, spec: Any, **_: Any) -> Any:
    return {(namespace, spec.get("modelName")): name}


@kopf.index(GROUP, VERSION, "servingendpoints")
def stable_versions(namespace: Any, spec: Any, status: Any, **_: Any) -> Any:
    stable = (status or {}).get("stableVersion")
    return {(namespace, spec.get("modelName")): stable} if stable else None


@kopf.index("apps", "v1", "deployments", labels={ENDPOINT_LABEL: kopf.PRESENT})
def serving_deployments(namespace: Any, labels: Any, body: Any, **_: Any) -> Any:
    return {(namespace, labels[ENDPOINT_LABEL]): serving.summarize_child("Deployment", body)}


@kopf.index("", "v1", "services", labels={ENDPOINT_LABEL: kopf.PRESENT})
def serving_services(namespace: Any, labels: Any, body: Any, **_: Any) -> Any:
    return {(namespace, labels[ENDPOINT_LABEL]): serving.summarize_child("Service", body)}


@kopf.index("", "v1", "configmaps", labels={ENDPOINT_LABEL: kopf.PRESENT})
def serving_configmaps(namespace: Any, labels: Any, body: Any, **_: Any) -> Any:
    return {(namespace, labels[ENDPOINT_LABEL]): serving.summarize_child("ConfigMap", body)}


@kopf.index("autoscaling", "v2", "horizontalpodautoscalers", labels={ENDPOINT_LABEL: kopf.PRESENT})
def serving_autoscalers(namespace: Any, labels: Any, body: Any, **_: Any) -> Any:
    return {(namespace, labels[ENDPOINT_LABEL]): serving.summarize_child("HorizontalPodAutoscaler", body)}


@kopf.index("gateway.networking.k8s.io", "v1", "httproutes", labels={ENDPOINT_LABEL: kopf.PRESENT})
def serving_routes(namespace: Any, labels: Any, body: Any, **_: Any) -> Any:
    return {(namespace, labels[ENDPOINT_LABEL]): serving.summarize_child("HTTPRoute", body)}


@kopf.index("monitoring.coreos.com", "v1", "servicemonitors", labels={ENDPOINT_LABEL: kopf.PRESENT})
def serving_monitors(namespace: Any, labels: Any, body: Any, **_: Any) -> Any:
    return {(namespace, labels[ENDPOINT_LABEL]): serving.summarize_child("ServiceMonitor", body)}


CHILD_INDEXES = (
    "serving_deployments",
    "serving_services",
    "serving_configmaps",
    "serving_autoscalers",
    "serving_routes",
    "serving_monitors",
)


def reconcile_endpoint(namespace: str, name: str, model: str, indexes: dict[str, Any]) -> None:
    versions = list(indexes["model_versions"].get((namespace, model), []))
    key = (namespace, name)
    children = [child for index in CHILD_INDEXES for child in indexes[index].get(key, [])]
    runner.run(
        "ServingEndpoint",
        namespace,
        name,
        lambda: serving.reconcile(namespace, name, versions, children, post_event),
    )


@kopf.on.event(GROUP, VERSION, "servingendpoints")
def endpoint_changed(type: Any, namespace: Any, name: Any, spec: Any, **kwargs: Any) -> None:
    if type == "DELETED":
        runner.forget("ServingEndpoint", namespace, name)
        return
    reconcile_endpoint(namespace, name, spec.get("modelName"), kwargs)


@kopf.timer(GROUP, VERSION, "servingendpoints", interval=operator_settings().reconcile_interval_seconds)
def endpoint_resync(namespace: Any, name: Any, spec: Any, **kwargs: Any) -> None:
    reconcile_endpoint(namespace, name, spec.get("modelName"), kwargs)


@kopf.on.event(GROUP, VERSION, "modelversions")
def model_version_changed(namespace: Any, spec: Any, **kwargs: Any) -> None:
    model = spec.get("modelName")
    for endpoint in list(kwargs["endpoints_by_model"].get((namespace, model), [])):
        reconcile_endpoint(namespace, endpoint, model, kwargs)


@kopf.on.event("apps", "v1", "deployments", labels={ENDPOINT_LABEL: kopf.PRESENT})
def serving_deployment_changed(namespace: Any, labels: Any, **kwargs: Any) -> None:
    model = labels.get(serving.builders.MODEL_LABEL)
    reconcile_endpoint(namespace, labels[ENDPOINT_LABEL], model, kwargs)


# --- ModelVersion registry ------------------------------------------------------------------------------


@kopf.on.event(GROUP, VERSION, "modelversions")
def model_version_registry(type: Any, namespace: Any, name: Any, spec: Any, **kwargs: Any) -> None:
    if type == "DELETED":
        runner.forget("ModelVersion", namespace, name)
        return
    key = (namespace, spec.get("modelName"))
    stable = list(kwargs["stable_versions"].get(key, []))
    names = {info.version: info.name for info in kwargs["model_versions"].get(key, [])}
    runner.run(
        "ModelVersion",
        namespace,
        name,
        lambda: registry.reconcile(namespace, name, stable, names, post_event),
    )


# --- TrainingPipeline ---------------------------------------------------------------------------------


def reconcile_pipeline(namespace: str, name: str, model: str, indexes: dict[str, Any]) -> None:
    infos = list(indexes["model_versions"].get((namespace, model), []))
    stable = max(indexes["stable_versions"].get((namespace, model), []), default=None)
    stable_uri = next((info.uri for info in infos if info.version == stable), None)
    versions = [info.version for info in infos]
    runner.run(
        "TrainingPipeline",
        namespace,
        name,
        lambda: training.reconcile(namespace, name, versions, stable_uri, post_event),
    )


@kopf.on.event(GROUP, VERSION, "trainingpipelines")
def pipeline_changed(type: Any, namespace: Any, name: Any, spec: Any, **kwargs: Any) -> None:
    if type == "DELETED":
        runner.forget("TrainingPipeline", namespace, name)
        return
    reconcile_pipeline(namespace, name, spec.get("modelName"), kwargs)


@kopf.timer(GROUP, VERSION, "trainingpipelines", interval=operator_settings().training_poll_seconds)
def pipeline_resync(namespace: Any, name: Any, spec: Any, **kwargs: Any) -> None:
    reconcile_pipeline(namespace, name, spec.get("modelName"), kwargs)


@kopf.on.delete(GROUP, VERSION, "trainingpipelines")
def pipeline_deleted(body: Any, **_: Any) -> None:
    training.terminate_all(dict(body))

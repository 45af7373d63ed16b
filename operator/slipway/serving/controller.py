"""ServingEndpoint reconcile: observe (the views of the endpoint, its versions, children and pods: no reads
from the API server but a model's storage Secret at a canary's first analysis round), plan (pure), analyse
(I/O), apply the difference, record status and Events. A reconcile that changes nothing writes nothing."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from slipway import GROUP, announce, manifest
from slipway.api.common import now
from slipway.api.serving_endpoint import ServingEndpointSpec, ServingEndpointStatus
from slipway.cache import resource_version
from slipway.crashpoints import crash_point
from slipway.kube import api_client, is_subset, owner_reference, patch_custom_status
from slipway.metrics import API_WRITES, ROLLBACKS, ROLLOUT_SECONDS, ROLLOUTS
from slipway.objects import ObjectError
from slipway.serving import analysis, builders, faults, traffic
from slipway.serving.rollout import DeploymentInfo, Event, Observed, Plan, VersionInfo, effective_steps, plan
from slipway.settings import settings
from slipway.storage.credentials import StorageCredentials

log = logging.getLogger(__name__)
PLURAL = "servingendpoints"
REQUEST_ANNOTATIONS = {kind: f"{GROUP}/{kind}" for kind in ("promote", "abort", "retry")}
CHILD_RESOURCES = {
    "Deployment": ("apps", "v1", "deployments"),
    "Service": ("", "v1", "services"),
    "ConfigMap": ("", "v1", "configmaps"),
    "HorizontalPodAutoscaler": ("autoscaling", "v2", "horizontalpodautoscalers"),
    "HTTPRoute": ("gateway.networking.k8s.io", "v1", "httproutes"),
    "ServiceMonitor": ("monitoring.coreos.com", "v1", "servicemonitors"),
    # Not a child the operator writes: watched so a canary pod's fault ends its rollout at once.
    "Pod": ("", "v1", "pods"),
}
CUSTOM_CHILDREN = {
    "HTTPRoute": ("gateway.networking.k8s.io", "v1", "httproutes"),
    "ServiceMonitor": ("monitoring.coreos.com", "v1", "servicemonitors"),
}
Remember = Callable[[str, dict[str, Any]], object]
_UNSERVED_WARNED: set[str] = set()  # custom child kinds last found without their CRD
EventSink = Callable[[dict[str, Any], str, str, str], None]


@dataclass(frozen=True)
class ChildSummary:
    """What the deployment/service/configmap indexes keep about one child."""

    kind: str
    name: str
    applied_hash: str | None
    version: int | None = None
    replicas: int = 0
    ready: int = 0
    up_to_date: bool = True
    resource_version: int = 0
    failure: faults.PodFailure | None = None  # pods and Deployments


def summarize_child(kind: str, body: Mapping[str, Any]) -> ChildSummary:
    meta = body.get("metadata", {})
    version_label = (meta.get("labels") or {}).get(builders.VERSION_LABEL)
    if kind == "Pod":
        return ChildSummary(
            kind=kind,
            name=meta.get("name", ""),
            applied_hash=None,
            version=int(version_label) if version_label and version_label.isdigit() else None,
            resource_version=resource_version(meta),
            failure=faults.pod_failure(body),
        )
    spec, status = body.get("spec") or {}, body.get("status") or {}
    up_to_date = status.get("observedGeneration", 0) >= meta.get("generation", 0)
    return ChildSummary(
        kind=kind,
        name=meta.get("name", ""),
        applied_hash=(meta.get("annotations") or {}).get(builders.HASH_ANNOTATION),
        version=int(version_label) if version_label and version_label.isdigit() else None,
        replicas=int(spec.get("replicas") or 0),
        ready=int(status.get("readyReplicas") or 0),
        up_to_date=up_to_date,
        resource_version=resource_version(meta),
        failure=faults.deployment_failure(body) if kind == "Deployment" else None,
    )


def summarize_version(
    name: str, spec: Mapping[str, Any], status: Mapping[str, Any], meta: Mapping[str, Any]
) -> VersionInfo:
    secret = (spec.get("storageSecretRef") or {}).get("name")
    return VersionInfo(
        name=name,
        version=int(spec["version"]),
        phase=(status or {}).get("phase"),
        uri=spec["uri"],
        deleting=meta.get("deletionTimestamp") is not None,
        storage_secret=secret,
        served_by=tuple((status or {}).get("servedBy") or ()),
        resource_version=resource_version(meta),
        storage_endpoint=spec.get("storageEndpoint"),
    )


def observe(
    body: Mapping[str, Any], versions: Iterable[VersionInfo], children: Iterable[ChildSummary]
) -> Observed:
    annotations = body["metadata"].get("annotations") or {}
    by_version: dict[int, VersionInfo] = {}
    for info in versions:
        # Two ModelVersions claiming one version number: the Validated one wins, else the first seen.
        if info.version not in by_version or info.servable:
            by_version[info.version] = info
    deployments = {
        c.version: DeploymentInfo(c.version, c.replicas, c.ready, c.up_to_date)
        for c in children
        if c.kind == "Deployment" and c.version is not None
    }
    failures: dict[int, faults.PodFailure] = {}
    for child in sorted(children, key=lambda c: c.name):
        if child.kind in ("Pod", "Deployment") and child.version is not None and child.failure is not None:
            known = failures.get(child.version)
            if known is None or (child.failure.certain and not known.certain):
                failures[child.version] = child.failure
    return Observed(
        generation=int(body["metadata"].get("generation", 1)),
        now=now(),
        versions=by_version,
        deployments=deployments,
        requests={
            kind: annotations[key] for kind, key in REQUEST_ANNOTATIONS.items() if annotations.get(key)
        },
        failures=failures,
    )


SecretReader = Callable[[str], Mapping[str, str] | None]


def secret_reader(namespace: str) -> SecretReader:
    def read(name: str) -> Mapping[str, str] | None:
        try:
            data: Mapping[str, str] = (
                client.CoreV1Api(api_client()).read_namespaced_secret(name, namespace).data
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return data or {}

    return read


def model_credentials(info: VersionInfo, secrets: SecretReader) -> StorageCredentials | None:
    """What the model's store needs, as the puller gets it: the ModelVersion's Secret and endpoint (the
    rest from the operator's environment or workload identity). Raises ValueError naming what is wrong."""
    if info.storage_secret is None and info.storage_endpoint is None:
        return None
    data = secrets(info.storage_secret) if info.storage_secret is not None else None
    if info.storage_secret is not None and data is None:
        raise ValueError(f"storage Secret {info.storage_secret!r} of {info.name} not found")
    return StorageCredentials.for_location(data, info.storage_endpoint)


def read_sample_request(info: VersionInfo, secrets: SecretReader) -> tuple[dict[str, Any] | None, str | None]:
    """The manifest's sampleRequest, read from the model store with the store's credentials; or why not."""
    try:
        return manifest.read(info.uri, model_credentials(info, secrets)).sample_request, None
    except (ObjectError, manifest.ManifestError, ValueError, ApiException) as error:
        reason = error.reason if isinstance(error, ApiException) else str(error)
        log.warning("cannot read the manifest of %s: %s", info.uri, reason)
        return None, f"cannot read the model's manifest: {reason}"


def run_analysis(
    spec: ServingEndpointSpec,
    status: ServingEndpointStatus,
    namespace: str,
    endpoint: str,
    observed: Observed,
    secrets: SecretReader,
) -> analysis.AnalysisResult | None:
    version, step_index = status.canary_version, status.current_step
    if version is None or step_index is None:
        return None
    steps = effective_steps(spec)
    step = steps[step_index].analysis if step_index < len(steps) else None
    info = observed.versions.get(version)
    if step is None or info is None:
        return None
    base_url = settings().tfserving_url_template.format(
        service=builders.version_name(endpoint, version), namespace=namespace, version=version
    )
    progress = status.analysis if status.analysis and status.analysis.step == step_index else None
    first_round = progress is None or not progress.ready_checked
    sample, problem = read_sample_request(info, secrets) if first_round else (None, None)
    target = analysis.Target(spec.model_name, version, base_url, sample, problem)
    found = analysis.measure(spec.rollout.analysis, step, target, first_round=first_round)
    return analysis.judge(spec.rollout.analysis, step, step_index, progress, found)


def _apply(body: dict[str, Any], observed: ChildSummary | None, remember: Remember) -> bool:
    """Creates or patches one child when its applied hash differs; returns whether it wrote. What was
    written is remembered at once, so the next reconcile does not write it again before its watch event."""
    digest = body["metadata"]["annotations"][builders.HASH_ANNOTATION]
    replicas = body.get("spec", {}).get("replicas")
    if (
        observed is not None
        and observed.applied_hash == digest
        and (replicas is None or observed.replicas == replicas)
    ):
        return False
    kind = body["kind"]
    try:
        written = _create_or_patch(body, create_first=observed is None)
    except ApiException as error:
        if error.status == 404 and kind in CUSTOM_CHILDREN:
            if kind not in _UNSERVED_WARNED:  # once per kind, not at every resync of every endpoint
                _UNSERVED_WARNED.add(kind)
                log.warning("%s is not served by this cluster (its CRD is not installed)", kind)
            return False
        if error.status == 403 and "NamespaceTerminating" in str(error.body or ""):
            return False  # the endpoint goes with its namespace: nothing left to create there
        raise
    _UNSERVED_WARNED.discard(kind)
    remember(kind, written)
    return True


def _create_or_patch(body: dict[str, Any], create_first: bool) -> dict[str, Any]:
    kind, namespace, name = body["kind"], body["metadata"]["namespace"], body["metadata"]["name"]
    create, patch = _verbs(kind)
    if create_first:
        try:
            written = _json(create(namespace, _without_nulls(body), _preload_content=False))
            API_WRITES.labels(kind, "create").inc()
            return written
        except ApiException as error:
            if error.status != 409:
                raise
    written = _json(patch(name, namespace, body, _preload_content=False))
    API_WRITES.labels(kind, "patch").inc()
    return written


def _without_nulls(value: Any) -> Any:
    """A body to create: the nulls a patch uses to remove keys mean nothing there."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _json(response: Any) -> dict[str, Any]:
    """The written object as plain JSON: the client's own models would build (and this module then
    flatten) one object per nested field (about a tenth of the operator's CPU in a rollout)."""
    written: dict[str, Any] = json.loads(response.data)
    return written


def _verbs(kind: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    api = api_client()
    if kind == "Deployment":
        apps = client.AppsV1Api(api)
        return apps.create_namespaced_deployment, apps.patch_namespaced_deployment
    if kind == "Service":
        core = client.CoreV1Api(api)
        return core.create_namespaced_service, core.patch_namespaced_service
    if kind == "ConfigMap":
        core = client.CoreV1Api(api)
        return core.create_namespaced_config_map, core.patch_namespaced_config_map
    if kind == "HorizontalPodAutoscaler":
        scaling = client.AutoscalingV2Api(api)
        return (
            scaling.create_namespaced_horizontal_pod_autoscaler,
            scaling.patch_namespaced_horizontal_pod_autoscaler,
        )
    if kind in CUSTOM_CHILDREN:
        custom = client.CustomObjectsApi(api)
        group, version, plural = CUSTOM_CHILDREN[kind]
        return (
            lambda namespace, body, **options: custom.create_namespaced_custom_object(
                group, version, namespace, plural, body, **options
            ),
            lambda name, namespace, body, **options: custom.patch_namespaced_custom_object(
                group, version, namespace, plural, name, body, **options
            ),
        )
    raise ValueError(f"no verbs for {kind}")


def _delete(child: ChildSummary, namespace: str) -> None:
    api = api_client()
    try:
        if child.kind == "Deployment":
            client.AppsV1Api(api).delete_namespaced_deployment(child.name, namespace)
        elif child.kind == "Service":
            client.CoreV1Api(api).delete_namespaced_service(child.name, namespace)
        elif child.kind == "ConfigMap":
            client.CoreV1Api(api).delete_namespaced_config_map(child.name, namespace)
        API_WRITES.labels(child.kind, "delete").inc()
    except ApiException as error:
        if error.status != 404:
            raise


def apply_children(
    endpoint: builders.Endpoint,
    result: Plan,
    versions: dict[int, VersionInfo],
    children: Iterable[ChildSummary],
    remember: Remember,
    service_selects: traffic.Selection,
) -> list[ChildSummary]:
    """Creates and updates what the plan wants; returns the children it no longer wants, to be deleted
    only after the status records the change (so status never names a version whose pods are gone)."""
    observed = {(c.kind, c.name): c for c in children}
    desired = builders.children(
        endpoint,
        versions,
        result.replicas,
        result.status.stable_version,
        service_selects,
        result.route_weights,
    )
    for body in desired:
        _apply(body, observed.get((body["kind"], body["metadata"]["name"])), remember)
    wanted = {(body["kind"], body["metadata"]["name"]) for body in desired}
    return [
        c
        for key, c in observed.items()
        if key not in wanted and c.kind in ("Deployment", "Service", "ConfigMap")
    ]


def record_outcomes(namespace: str, name: str, events: list[Event], status: ServingEndpointStatus) -> None:
    for event in events:
        if event.reason == "Promoted":
            ROLLOUTS.labels(namespace, name, "Promoted").inc()
        elif event.reason in ("RolledBack", "Aborted"):
            ROLLOUTS.labels(namespace, name, event.reason).inc()
            if event.type == "Warning":
                ROLLBACKS.labels(
                    namespace, name, status.history[-1].message.split(":")[0] if status.history else "unknown"
                ).inc()
    for event in events:
        if event.reason in ("Promoted", "RolledBack") and status.history:
            last = status.history[-1]
            if last.started_at and last.finished_at:
                ROLLOUT_SECONDS.observe((last.finished_at - last.started_at).total_seconds())


def reconcile(
    body: dict[str, Any] | None,
    versions: Iterable[VersionInfo],
    children: Iterable[ChildSummary],
    post_event: EventSink,
    remember: Remember,
) -> dict[str, Any] | None:
    """`body` is the endpoint as last seen or written (the views keep it; no GET)."""
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    spec = ServingEndpointSpec.model_validate(body["spec"])
    status = ServingEndpointStatus.model_validate(body.get("status") or {})
    children = list(children)
    observed = observe(body, versions, children)
    result = plan(spec, status, observed)
    if result.analysis_due:
        measured = run_analysis(spec, result.status, namespace, name, observed, secret_reader(namespace))
        result = plan(spec, status, observed, measured)
    endpoint = builders.Endpoint(name, namespace, spec, owner_reference(body), settings().image)
    result.status.url = builders.url(endpoint)
    # The Service selects only what status claims both before and after its write, then what it claims.
    present = {c.version for c in children if c.kind in ("Deployment", "Pod") and c.version is not None}
    present |= set(result.replicas)
    claims = traffic.claimed(result.status)
    selects = traffic.selection(result.traffic_versions, traffic.claimed(status) & claims, present)
    obsolete = apply_children(endpoint, result, observed.versions, children, remember, selects)
    outcomes = [(e.type, e.reason, e.message) for e in result.events]
    result.status.pending_events = announce.with_pending(result.status.pending_events, outcomes)
    new_status = result.status.to_wire()
    if not is_subset(new_status, body.get("status") or {}) or _removed_keys(
        body.get("status") or {}, new_status
    ):
        crash_point("serving.before-status")
        body = patch_custom_status(PLURAL, namespace, name, _with_nulls(body.get("status") or {}, new_status))
        remember("ServingEndpoint", body)
        API_WRITES.labels("ServingEndpoint", "patch-status").inc()
        crash_point("serving.after-status")
    if (widened := traffic.selection(result.traffic_versions, claims, present)) != selects:
        service = {(c.kind, c.name): c for c in children}.get(("Service", name))
        _apply(builders.endpoint_service(endpoint, widened), service, remember)
    for child in obsolete:
        _delete(child, namespace)
    crash_point("serving.after-delete")
    for event in result.events:
        if not announce.matters(event.reason):
            post_event(body, event.type, event.reason, event.message)
    if result.status.pending_events:
        body = announce.announce(PLURAL, body)
        remember("ServingEndpoint", body)
    record_outcomes(namespace, name, result.events, result.status)
    update_served_by(namespace, name, observed.versions.values(), set(result.replicas), remember)
    return body


def update_served_by(
    namespace: str, endpoint: str, versions: Iterable[VersionInfo], serving: set[int], remember: Remember
) -> None:
    """Lists this endpoint in the status of each ModelVersion it serves, and only those. Each patched
    version is remembered at once: reconciles that follow before its watch event must not patch it
    again (they did, about seven times per rollout)."""
    for info in versions:
        listed = endpoint in info.served_by
        if listed == (info.version in serving) or info.deleting:
            continue
        others = [name for name in info.served_by if name != endpoint]
        served_by = sorted([*others, endpoint]) if info.version in serving else others
        try:
            remember(
                "ModelVersion",
                patch_custom_status("modelversions", namespace, info.name, {"servedBy": served_by}),
            )
            API_WRITES.labels("ModelVersion", "patch-status").inc()
        except ApiException as error:
            if error.status != 404:
                raise


def _removed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return [key for key in old if key not in new]


def _with_nulls(old: Mapping[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A merge patch that also clears fields the new status no longer has (canaryVersion, analysis...)."""
    return {**{key: None for key in _removed_keys(old, new)}, **new}

"""The operator's views of ModelVersions, ServingEndpoints and endpoint children (see slipway.cache)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from kubernetes import client

from slipway import cache
from slipway.serving.builders import ENDPOINT_LABEL
from slipway.serving.controller import CUSTOM_CHILDREN, ChildSummary, summarize_child, summarize_version
from slipway.serving.rollout import VersionInfo

VERSIONS: cache.View[VersionInfo] = cache.View()
ENDPOINTS: cache.View[cache.EndpointRef] = cache.View()
CHILDREN: cache.View[ChildSummary] = cache.View()
ENDPOINT_BODIES = cache.Newest()  # each ServingEndpoint as last seen or written: reconciles read no GET


def _servable_fields(info: VersionInfo | None) -> tuple[Any, ...] | None:
    if info is None:
        return None
    return (info.version, info.phase, info.uri, info.deleting, info.storage_secret, info.storage_endpoint)


def observe_version(event: str | None, body: dict[str, Any]) -> bool:
    """Updates the view; True when what serving cares about changed (so endpoints should look again)."""
    meta, spec = body["metadata"], body.get("spec") or {}
    if event == "DELETED":
        return VERSIONS.delete(meta["uid"]) is not None
    info = summarize_version(meta["name"], spec, body.get("status") or {}, meta)
    previous = VERSIONS.put_newer(
        (meta["namespace"], spec.get("modelName", "")), meta["uid"], info, info.resource_version
    )
    return _servable_fields(previous) != _servable_fields(info)


def observe_endpoint(event: str | None, body: dict[str, Any]) -> None:
    meta, spec, status = body["metadata"], body.get("spec") or {}, body.get("status") or {}
    if event == "DELETED":
        ENDPOINTS.delete(meta["uid"])
        ENDPOINT_BODIES.delete((meta["namespace"], meta["name"]))
        return
    ENDPOINT_BODIES.put((meta["namespace"], meta["name"]), body)
    ref = cache.EndpointRef(
        meta["name"], status.get("stableVersion"), status.get("phase"), cache.resource_version(meta)
    )
    # The operator's own status patch comes here too, and may be followed by older watch events.
    ENDPOINTS.put_newer(
        (meta["namespace"], spec.get("modelName", "")), meta["uid"], ref, ref.resource_version
    )


def observe_written(kind: str, body: dict[str, Any]) -> None:
    """What the operator itself just wrote, before its watch event arrives."""
    if kind == "ModelVersion":
        observe_version("MODIFIED", body)
    elif kind == "ServingEndpoint":
        observe_endpoint("MODIFIED", body)
    else:
        observe_child(kind, "MODIFIED", body)


def observe_child(kind: str, event: str | None, body: dict[str, Any]) -> bool:
    meta = body["metadata"]
    if event == "DELETED":
        removed = CHILDREN.delete(meta["uid"])
        return removed is not None and (kind != "Pod" or removed.failure is not None)
    summary = summarize_child(kind, body)
    endpoint = (meta.get("labels") or {}).get(ENDPOINT_LABEL, "")
    previous = CHILDREN.put_newer(
        (meta["namespace"], endpoint), meta["uid"], summary, summary.resource_version
    )
    if kind == "Pod":  # only a fault (or its end) gives a reconcile something to do
        return (previous.failure if previous is not None else None) != summary.failure
    # A new resourceVersion alone (a status condition's timestamp, say) gives a reconcile nothing to do.
    return previous is None or replace(previous, resource_version=summary.resource_version) != summary


def _child_listers(api: client.ApiClient) -> dict[str, tuple[Callable[..., Any], Callable[..., Any]]]:
    apps, core, scaling = client.AppsV1Api(api), client.CoreV1Api(api), client.AutoscalingV2Api(api)
    return {
        "Deployment": (apps.list_deployment_for_all_namespaces, apps.list_namespaced_deployment),
        "Service": (core.list_service_for_all_namespaces, core.list_namespaced_service),
        "ConfigMap": (core.list_config_map_for_all_namespaces, core.list_namespaced_config_map),
        "Pod": (core.list_pod_for_all_namespaces, core.list_namespaced_pod),
        "HorizontalPodAutoscaler": (
            scaling.list_horizontal_pod_autoscaler_for_all_namespaces,
            scaling.list_namespaced_horizontal_pod_autoscaler,
        ),
    }


def _items(api: client.ApiClient, result: Any) -> Iterable[dict[str, Any]]:
    items: list[dict[str, Any]] = api.sanitize_for_serialization(result)["items"]
    return items


def prime(api: client.ApiClient, namespaces: list[str]) -> dict[str, int]:
    """One LIST per kind, before any handler runs; returns how many objects each view holds."""
    for body in cache.model_version_items(api, namespaces):
        observe_version(None, body)
    for body in cache.endpoint_items(api, namespaces):
        observe_endpoint(None, body)
    for kind, (everywhere, namespaced) in _child_listers(api).items():
        results = (
            [everywhere(label_selector=ENDPOINT_LABEL)]
            if not namespaces
            else [namespaced(ns, label_selector=ENDPOINT_LABEL) for ns in namespaces]
        )
        for result in results:
            for body in _items(api, result):
                body.setdefault("kind", kind)
                observe_child(kind, None, body)
    for kind, (group, version, plural) in CUSTOM_CHILDREN.items():
        for body in cache.list_custom(api, namespaces, group, version, plural, label_selector=ENDPOINT_LABEL):
            observe_child(kind, None, body)
    return {"modelversions": len(VERSIONS), "servingendpoints": len(ENDPOINTS), "children": len(CHILDREN)}


def versions_by_phase() -> list[tuple[tuple[str, str], float]]:
    """(namespace, phase) -> how many ModelVersions, for the slipway_model_versions gauge."""
    counts = Counter((namespace, info.phase or "Pending") for (namespace, _), info in VERSIONS.items())
    return [(key, float(n)) for key, n in sorted(counts.items())]


def endpoints_by_phase() -> list[tuple[tuple[str, str], float]]:
    """(namespace, phase) -> how many ServingEndpoints, for the slipway_serving_endpoints gauge."""
    counts = Counter((namespace, ref.phase or "Pending") for (namespace, _), ref in ENDPOINTS.items())
    return [(key, float(n)) for key, n in sorted(counts.items())]

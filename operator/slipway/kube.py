"""The operator's one way to the Kubernetes API: one table of the kinds it reads and writes, and the verbs
over them (get, list, create, patch, delete, status). Bodies travel as plain JSON: the client's models would
build (and the caller then flatten) one object per nested field. 404 and 409 are handled here, one way:
a get or delete of what is gone is None or False, a create of what exists is told apart by its caller.

Writes happen only when the desired object differs from the observed one, so a no-op reconcile makes
no write; every write is counted in `slipway_api_writes_total`."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from slipway import GROUP, VERSION
from slipway.messages import redact
from slipway.metrics import API_WRITES

FIELD_MANAGER = "slipway"
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
# Posts an Event about an object: (body, type, reason, message). The handlers give the one implementation.
EventSink = Callable[[dict[str, Any], str, str, str], None]
_lock = threading.Lock()
_api_client: client.ApiClient | None = None


@dataclass(frozen=True)
class Kind:
    kind: str
    group: str
    version: str
    plural: str
    # Custom resources take no strategic merge patch.
    patch_type: str = STRATEGIC_MERGE
    # Served only where its CRD is installed (Gateway API, prometheus-operator): absent is not an error.
    optional: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str = "") -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [root]
        if namespace is not None:
            parts.append(f"namespaces/{quote(namespace, safe='')}")
        parts.append(self.plural)
        if name is not None:
            parts.append(quote(name, safe=""))
        if subresource:
            parts.append(subresource)
        return "/".join(parts)


KINDS: dict[str, Kind] = {
    kind.kind: kind
    for kind in (
        Kind("TrainingPipeline", GROUP, VERSION, "trainingpipelines", MERGE),
        Kind("ModelVersion", GROUP, VERSION, "modelversions", MERGE),
        Kind("ServingEndpoint", GROUP, VERSION, "servingendpoints", MERGE),
        Kind("Deployment", "apps", "v1", "deployments"),
        Kind("Service", "", "v1", "services"),
        Kind("ConfigMap", "", "v1", "configmaps"),
        Kind("Secret", "", "v1", "secrets"),
        Kind("Pod", "", "v1", "pods"),
        Kind("Job", "batch", "v1", "jobs"),
        Kind("Event", "", "v1", "events"),
        Kind("HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers"),
        Kind("HTTPRoute", "gateway.networking.k8s.io", "v1", "httproutes", MERGE, optional=True),
        Kind("ServiceMonitor", "monitoring.coreos.com", "v1", "servicemonitors", MERGE, optional=True),
    )
}


def api_client() -> client.ApiClient:
    global _api_client
    with _lock:
        if _api_client is None:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            configuration = client.Configuration.get_default_copy()
            configuration.connection_pool_maxsize = 64
            _api_client = client.ApiClient(configuration)
        return _api_client


def request(
    method: str,
    path: str,
    body: Any = None,
    query: list[tuple[str, Any]] | None = None,
    content_type: str = "application/json",
) -> Any:
    """One call to the API server; the answer as JSON. Raises ApiException as the typed client does."""
    response = api_client().call_api(
        path,
        method,
        query_params=query or [],
        header_params={"Accept": "application/json", "Content-Type": content_type},
        body=body,
        auth_settings=["BearerToken"],
        _preload_content=False,
        _return_http_data_only=True,
    )
    return json.loads(response.data) if response.data else None


def get(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """The object, or None when there is none."""
    try:
        found: dict[str, Any] = request("GET", KINDS[kind].path(namespace, name))
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return found


def read_data(kind: str, namespace: str, name: str) -> dict[str, str] | None:
    """A Secret's or ConfigMap's data (a Secret's base64-encoded), {} when it has none, None when absent."""
    found = get(kind, namespace, name)
    if found is None:
        return None
    data = dict(found.get("data") or {})
    if kind == "Secret":
        redact(data)  # before anything can quote a value: see slipway.messages
    return data


DataReader = Callable[[str], dict[str, str] | None]


def data_reader(kind: str, namespace: str) -> DataReader:
    """A reader of Secrets' or ConfigMaps' data by name in one namespace; each name is read once per
    reader (a reader lives for one reconcile)."""
    return functools.cache(lambda name: read_data(kind, namespace, name))


LIST_PAGE = 500  # objects per LIST response: a start-up never holds a whole kind's list at once


def list_items(kind: str, namespaces: list[str], label_selector: str = "") -> Iterator[dict[str, Any]]:
    """Every object of a kind in the namespaces (all, when none are named), each with its kind set, read
    a page at a time. An optional kind this cluster does not serve lists nothing."""
    spec = KINDS[kind]
    query = [("labelSelector", label_selector)] if label_selector else []
    try:
        scopes: list[str | None] = [*namespaces] or [None]
        for namespace in scopes:
            page = ""
            while True:
                more = [("limit", LIST_PAGE)] + ([("continue", page)] if page else [])
                found = request("GET", spec.path(namespace), query=query + more)
                for item in found["items"]:
                    item.setdefault("kind", kind)
                    item.setdefault("apiVersion", spec.api_version)
                    yield item
                page = found["metadata"].get("continue") or ""
                if not page:
                    break
    except ApiException as error:
        if not (error.status == 404 and spec.optional):
            raise


def create(body: dict[str, Any]) -> dict[str, Any]:
    """Creates the object; ApiException 409 when it exists."""
    kind = body["kind"]
    written: dict[str, Any] = request(
        "POST",
        KINDS[kind].path(body["metadata"]["namespace"]),
        without_nulls(body),
        [("fieldManager", FIELD_MANAGER)],
    )
    API_WRITES.labels(kind, "create").inc()
    return written


def create_if_absent(body: dict[str, Any]) -> dict[str, Any] | None:
    """Creates the object unless one of its name exists (then None): a retried create changes nothing."""
    try:
        return create(body)
    except ApiException as error:
        if error.status != 409:
            raise
        return None


def without_nulls(value: Any) -> Any:
    """A body to create: the nulls a patch uses to remove keys (a Service's selector) mean nothing there."""
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def patch(
    kind: str, namespace: str, name: str, body: dict[str, Any], subresource: str = ""
) -> dict[str, Any]:
    spec = KINDS[kind]
    written: dict[str, Any] = request(
        "PATCH",
        spec.path(namespace, name, subresource),
        body,
        [("fieldManager", FIELD_MANAGER)],
        content_type=MERGE if subresource == "status" else spec.patch_type,
    )
    API_WRITES.labels(kind, f"patch-{subresource}" if subresource else "patch").inc()
    return written


def create_or_patch(body: dict[str, Any], create_first: bool = True) -> dict[str, Any]:
    """The object as written: created (or, when it exists, patched to the body)."""
    if create_first:
        written = create_if_absent(body)
        if written is not None:
            return written
    meta = body["metadata"]
    return patch(body["kind"], meta["namespace"], meta["name"], body)


def delete(kind: str, namespace: str, name: str, propagation: str | None = None) -> bool:
    """Deletes the object; False when it was already gone."""
    options = {"propagationPolicy": propagation} if propagation else None
    try:
        request("DELETE", KINDS[kind].path(namespace, name), options)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    API_WRITES.labels(kind, "delete").inc()
    return True


def patch_status(kind: str, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
    return patch(kind, namespace, name, {"status": status}, subresource="status")


def status_differs(body: Mapping[str, Any], status: dict[str, Any]) -> bool:
    old = body.get("status") or {}
    return not is_subset(status, old) or any(key not in status for key in old)


def write_status(body: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    """Patches the object's status to `status` when it differs (fields no longer set are cleared); the
    body as it now is, unchanged when nothing was written."""
    if not status_differs(body, status):
        return body
    meta = body["metadata"]
    return patch_status(body["kind"], meta["namespace"], meta["name"], _status_patch(body, status))


def _status_patch(body: Mapping[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    """A merge patch that makes the status `status`: fields no longer set are cleared."""
    return {**dict.fromkeys(key for key in body.get("status") or {} if key not in status), **status}


def write_status_if_unchanged(body: dict[str, Any], status: dict[str, Any]) -> dict[str, Any] | None:
    """write_status, but only onto the object as `body` has it: None, writing nothing, when anyone wrote
    it since (the API server compares the resourceVersion the patch carries)."""
    if not status_differs(body, status):
        return body
    meta = body["metadata"]
    written = {
        "metadata": {"resourceVersion": meta["resourceVersion"]},
        "status": _status_patch(body, status),
    }
    try:
        return patch(body["kind"], meta["namespace"], meta["name"], written, subresource="status")
    except ApiException as error:
        if error.status == 409:
            return None
        raise


def is_subset(desired: Any, observed: Any) -> bool:
    """True when every field we set in `desired` already has that value in `observed`
    (the server adds defaults, so observed may hold more)."""
    if isinstance(desired, dict):
        return isinstance(observed, dict) and all(is_subset(v, observed.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(observed, list)
            and len(desired) == len(observed)
            and all(is_subset(d, o) for d, o in zip(desired, observed, strict=True))
        )
    return bool(desired == observed)


def api_message(error: Any) -> str:
    """An API server's refusal in its own words (the Status' message), never the response headers."""
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except (ValueError, AttributeError):
        return str(error.reason)


def owner_reference(body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "name": body["metadata"]["name"],
        "uid": body["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }

"""Thin, synchronous access to the Kubernetes API for the handlers (kopf runs sync handlers in threads).

Writes happen only when the desired object differs from the observed one, so a no-op reconcile makes
no write.
"""

from __future__ import annotations

import threading
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from slipway import GROUP, VERSION

FIELD_MANAGER = "slipway"
_lock = threading.Lock()
_api_client: client.ApiClient | None = None


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


def custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client())


def core() -> client.CoreV1Api:
    return client.CoreV1Api(api_client())


def apps() -> client.AppsV1Api:
    return client.AppsV1Api(api_client())


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


def patch_custom_status(plural: str, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = custom().patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, plural, name, {"status": status}
    )
    return result


def get_custom(plural: str, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = custom().get_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name
        )
        return result
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def owner_reference(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "name": body["metadata"]["name"],
        "uid": body["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }

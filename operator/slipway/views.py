"""What the operator knows of the ModelVersions and ServingEndpoints, kept by the watches (see
slipway.cache): the three kinds share it. Training reads the versions and stable endpoints of its model,
the registry the champions, serving the versions it may roll out. One `Views` per operator, made by the
runner; tests make their own."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slipway import cache, kube


@dataclass(frozen=True)
class VersionInfo:
    """A ModelVersion, as the endpoints serving its model and the pipeline training it need it."""

    name: str
    version: int
    phase: str | None
    uri: str
    deleting: bool = False
    storage_secret: str | None = None
    served_by: tuple[str, ...] = ()
    resource_version: int = 0
    storage_endpoint: str | None = None

    @property
    def servable(self) -> bool:
        return self.phase == "Validated" and not self.deleting


@dataclass(frozen=True)
class EndpointRef:
    name: str
    stable_version: int | None
    phase: str | None = None
    resource_version: int = 0


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
        resource_version=cache.resource_version(meta),
        storage_endpoint=spec.get("storageEndpoint"),
    )


def _servable_fields(info: VersionInfo | None) -> tuple[Any, ...] | None:
    if info is None:
        return None
    return (info.version, info.phase, info.uri, info.deleting, info.storage_secret, info.storage_endpoint)


class Views:
    """ModelVersions and ServingEndpoints by (namespace, model), and each endpoint's newest body."""

    def __init__(self) -> None:
        self.versions: cache.View[VersionInfo] = cache.View()
        self.endpoints: cache.View[EndpointRef] = cache.View()
        self.endpoint_bodies = cache.Newest()  # each ServingEndpoint as last seen or written: no GET

    def observe_version(self, event: str | None, body: dict[str, Any]) -> bool:
        """Updates the view; True when what serving cares about changed (endpoints should look again)."""
        meta, spec = body["metadata"], body.get("spec") or {}
        if event == "DELETED":
            return self.versions.delete(meta["uid"]) is not None
        info = summarize_version(meta["name"], spec, body.get("status") or {}, meta)
        previous = self.versions.put_newer(
            (meta["namespace"], spec.get("modelName", "")), meta["uid"], info, info.resource_version
        )
        return _servable_fields(previous) != _servable_fields(info)

    def superseded(self, body: Mapping[str, Any]) -> bool:
        """True when the view holds a newer copy of this ModelVersion than `body` (the operator wrote it
        since): that copy's own watch event is still to come, and is the one to act on."""
        info = self.versions.find(body["metadata"]["uid"])
        return info is not None and info.resource_version > cache.resource_version(body["metadata"])

    def observe_endpoint(self, event: str | None, body: dict[str, Any]) -> None:
        meta, spec, status = body["metadata"], body.get("spec") or {}, body.get("status") or {}
        if event == "DELETED":
            self.endpoints.delete(meta["uid"])
            self.endpoint_bodies.delete((meta["namespace"], meta["name"]))
            return
        self.endpoint_bodies.put((meta["namespace"], meta["name"]), body)
        ref = EndpointRef(
            meta["name"], status.get("stableVersion"), status.get("phase"), cache.resource_version(meta)
        )
        # The operator's own status patch comes here too, and may be followed by older watch events.
        self.endpoints.put_newer(
            (meta["namespace"], spec.get("modelName", "")), meta["uid"], ref, ref.resource_version
        )

    def prime(self, namespaces: list[str]) -> dict[str, int]:
        """One LIST per kind, before any handler runs; returns how many objects each view holds."""
        for body in kube.list_items("ModelVersion", namespaces):
            self.observe_version(None, body)
        for body in kube.list_items("ServingEndpoint", namespaces):
            self.observe_endpoint(None, body)
        return {"modelversions": len(self.versions), "servingendpoints": len(self.endpoints)}

    def stable_versions(self, namespace: str, model: str) -> list[int]:
        """The versions stable on any endpoint of the model."""
        return [ref.stable_version for ref in self.endpoints.get((namespace, model)) if ref.stable_version]

    def versions_by_phase(self) -> list[tuple[tuple[str, str], float]]:
        """(namespace, phase) -> how many ModelVersions, for the slipway_model_versions gauge."""
        counts = Counter((ns, info.phase or "Pending") for (ns, _), info in self.versions.items())
        return [(key, float(n)) for key, n in sorted(counts.items())]

    def endpoints_by_phase(self) -> list[tuple[tuple[str, str], float]]:
        """(namespace, phase) -> how many ServingEndpoints, for the slipway_serving_endpoints gauge."""
        counts = Counter((ns, ref.phase or "Pending") for (ns, _), ref in self.endpoints.items())
        return [(key, float(n)) for key, n in sorted(counts.items())]

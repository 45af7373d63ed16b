"""ServingEndpoint reconcile: observe (the views of the endpoint, its versions, children and pods: no reads
from the API server but a model's storage Secret at a canary's first analysis round), plan (pure), analyse
(I/O), apply the difference, record status and Events. A reconcile that changes nothing writes (and reads)
nothing; one that writes reads the endpoint once first, and writes nothing if it changed since."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kubernetes.client.rest import ApiException

from slipway import GROUP, announce, kube, manifest
from slipway.api.common import now
from slipway.api.serving_endpoint import ServingEndpointSpec, ServingEndpointStatus
from slipway.blobs import ObjectError
from slipway.crashpoints import crash_point
from slipway.metrics import ROLLBACKS, ROLLOUT_SECONDS, ROLLOUTS
from slipway.serving import analysis, builders, faults, traffic
from slipway.serving.children import PER_VERSION_KINDS, ChildSummary
from slipway.serving.rollout import DeploymentInfo, Event, Observed, Plan, by_number, effective_steps, plan
from slipway.settings import settings
from slipway.storage.credentials import StorageCredentials
from slipway.views import VersionInfo

log = logging.getLogger(__name__)
REQUEST_ANNOTATIONS = {kind: f"{GROUP}/{kind}" for kind in ("promote", "abort", "retry")}
Remember = Callable[[str, dict[str, Any]], object]
BeforeWrite = Callable[[], None]


class Stale(Exception):
    """The endpoint changed since the body this reconcile planned from."""


def freshness_check(body: dict[str, Any], remember: Remember) -> BeforeWrite:
    """What runs before a reconcile's first write: one GET of the endpoint, and `Stale` unless it is the body
    the plan was made from. The views are current in the normal path, but not for a replica resuming from a
    peering pause, nor after a watch relists: every kind is listed anew, in no order, and a child's event can
    reconcile an endpoint from its body of before the pause. The fault suite caught one deleting the stable
    Deployment it had just relisted, which that old status did not claim. Reconciles that write nothing
    (nearly all) read nothing."""
    checked = False

    def check() -> None:
        nonlocal checked
        if checked:
            return
        checked = True
        meta = body["metadata"]
        current = kube.get("ServingEndpoint", meta["namespace"], meta["name"])
        if current is None or current["metadata"].get("resourceVersion") != meta.get("resourceVersion"):
            if current is not None:
                remember("ServingEndpoint", current)
            since = meta.get("resourceVersion")
            raise Stale(f"{meta['namespace']}/{meta['name']} changed since resourceVersion {since}")

    return check


def observe(
    body: Mapping[str, Any], versions: Iterable[VersionInfo], children: Iterable[ChildSummary]
) -> Observed:
    annotations = body["metadata"].get("annotations") or {}
    # Two ModelVersions claiming one version number: neither replaces what this endpoint serves.
    by_version, contested = by_number(versions, body["metadata"]["name"])
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
        contested=contested,
    )


SecretReader = Callable[[str], Mapping[str, str] | None]


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


def _apply(
    body: dict[str, Any],
    observed: ChildSummary | None,
    remember: Remember,
    unserved: set[str],
    before_write: BeforeWrite | None = None,
) -> bool:
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
    if before_write is not None:
        before_write()
    kind = body["kind"]
    try:
        written = kube.create_or_patch(body, create_first=observed is None)
    except ApiException as error:
        if error.status == 404 and kube.KINDS[kind].optional:
            if kind not in unserved:  # once per kind, not at every resync of every endpoint
                unserved.add(kind)
                log.warning("%s is not served by this cluster (its CRD is not installed)", kind)
            return False
        if error.status == 403 and "NamespaceTerminating" in str(error.body or ""):
            return False  # the endpoint goes with its namespace: nothing left to create there
        raise
    unserved.discard(kind)
    remember(kind, written)
    return True


def apply_children(
    endpoint: builders.Endpoint,
    result: Plan,
    versions: dict[int, VersionInfo],
    children: Iterable[ChildSummary],
    remember: Remember,
    unserved: set[str],
    service_selects: traffic.Selection,
    before_write: BeforeWrite | None = None,
) -> list[ChildSummary]:
    """Creates and updates what the plan wants; returns the children it no longer wants, to be deleted
    only after the status records the change (so status never names a version whose pods are gone). A
    version the plan still runs keeps its children even when it cannot be built (its ModelVersion is gone
    or contested): what is served stays as it was."""
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
        _apply(body, observed.get((body["kind"], body["metadata"]["name"])), remember, unserved, before_write)
    wanted = {(body["kind"], body["metadata"]["name"]) for body in desired}
    return [
        c
        for key, c in observed.items()
        if key not in wanted and c.kind in PER_VERSION_KINDS and c.version not in result.replicas
    ]


def record_outcomes(namespace: str, name: str, events: list[Event], status: ServingEndpointStatus) -> None:
    for event in events:
        if event.reason == "Promoted":
            ROLLOUTS.labels(namespace, name, "Promoted").inc()
        elif event.reason in ("RolledBack", "Aborted"):
            ROLLOUTS.labels(namespace, name, event.reason).inc()
            if event.type == "Warning":
                ROLLBACKS.labels(
                    namespace, name, (status.history[-1].reason if status.history else "") or "unknown"
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
    post_event: kube.EventSink,
    remember: Remember,
    unserved: set[str] | None = None,
) -> dict[str, Any] | None:
    """`body` is the endpoint as last seen or written (the views keep it; a GET only before writing).
    `unserved`: the optional child kinds already found without their CRD (see serving.children.Children)."""
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    spec = ServingEndpointSpec.model_validate(body["spec"])
    status = ServingEndpointStatus.model_validate(body.get("status") or {})
    children = list(children)
    observed = observe(body, versions, children)
    # A missing stable version is the plan's to report (it keeps serving as deployed: StableVersionMissing).
    if unseen := sorted(traffic.claimed(status) - set(observed.versions) - {status.stable_version}):
        # A replica resuming from a peering pause lists every kind anew, in no order: an endpoint may come
        # before its versions. Acting then would tear down what serves; their watch events reconcile again.
        log.info("%s/%s: v%s not in view yet (or deleted outright): holding", namespace, name, unseen)
        return body
    result = plan(spec, status, observed)
    if result.analysis_due:
        measured = run_analysis(
            spec, result.status, namespace, name, observed, kube.data_reader("Secret", namespace)
        )
        result = plan(spec, status, observed, measured)
    endpoint = builders.Endpoint(name, namespace, spec, kube.owner_reference(body), settings().image)
    result.status.url = builders.url(endpoint)
    unserved = set() if unserved is None else unserved
    # The Service selects only what status claims both before and after its write, then what it claims.
    present = {c.version for c in children if c.kind in ("Deployment", "Pod") and c.version is not None}
    present |= set(result.replicas)
    claims = traffic.claimed(result.status)
    selects = traffic.selection(result.traffic_versions, traffic.claimed(status) & claims, present)
    try:
        return _write(
            body, result, endpoint, observed, children, post_event, remember, unserved, (selects, present)
        )
    except Stale as stale:
        log.info("%s: not written, the newer version's event reconciles it", stale)
        return body


def _write(
    body: dict[str, Any],
    result: Plan,
    endpoint: builders.Endpoint,
    observed: Observed,
    children: list[ChildSummary],
    post_event: kube.EventSink,
    remember: Remember,
    unserved: set[str],
    selection: tuple[traffic.Selection, set[int]],
) -> dict[str, Any]:
    """The plan's writes, in order: children, Service narrowed, status, Service widened, deletions, Events,
    the ModelVersions' servedBy; the first of them only once the endpoint is known unchanged. `selection`:
    what the Service selects until the status write, and the versions that have pods."""
    namespace, name = endpoint.namespace, endpoint.name
    selects, present = selection
    fresh = freshness_check(body, remember)
    obsolete = apply_children(
        endpoint, result, observed.versions, children, remember, unserved, selects, fresh
    )
    outcomes = [(e.type, e.reason, e.message) for e in result.events]
    result.status.pending_events = announce.with_pending(result.status.pending_events, outcomes)
    new_status = result.status.to_wire()
    claims = traffic.claimed(result.status)
    if kube.status_differs(body, new_status):
        fresh()
        crash_point("serving.before-status")
        body = kube.write_status(body, new_status)
        remember("ServingEndpoint", body)
        crash_point("serving.after-status")
    if (widened := traffic.selection(result.traffic_versions, claims, present)) != selects:
        service = {(c.kind, c.name): c for c in children}.get(("Service", name))
        _apply(builders.endpoint_service(endpoint, widened), service, remember, unserved, fresh)
    if obsolete:
        fresh()
    for child in obsolete:
        kube.delete(child.kind, namespace, child.name)
    crash_point("serving.after-delete")
    for event in result.events:
        if not announce.matters(event.reason):
            post_event(body, event.type, event.reason, event.message)
    if result.status.pending_events:
        fresh()
        body = announce.announce(body)
        remember("ServingEndpoint", body)
    record_outcomes(namespace, name, result.events, result.status)
    update_served_by(namespace, name, observed.versions.values(), set(result.replicas), remember, fresh)
    return body


def update_served_by(
    namespace: str,
    endpoint: str,
    versions: Iterable[VersionInfo],
    serving: set[int],
    remember: Remember,
    before_write: BeforeWrite | None = None,
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
        if before_write is not None:
            before_write()
        try:
            remember(
                "ModelVersion",
                kube.patch_status("ModelVersion", namespace, info.name, {"servedBy": served_by}),
            )
        except ApiException as error:
            if error.status != 404:
                raise

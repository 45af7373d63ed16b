"""Events that matter (outcomes: a rollout promoted or rolled back, a version validated or rejected, a run
that succeeded or failed, drift found) are posted at least once, in one of two ways.

Queued: the outcome's Event is recorded in `status.pendingEvents` by the same status write that records the
outcome; after that write the Event is posted (synchronously, not through kopf's queue, which a crash
would lose) and then removed from status. An operator that stops anywhere in between finds it there when it
starts again and posts it then: a crash between posting and removing posts it twice, the normal path once.
Every outcome can go this way; those decided from what is seen only once (a rollout's step on the metrics
of the moment, a drift verdict on the batches of that poll) must.

Named first: an outcome decided again the same way from what the operator reads back (a run's end from
the executor's record of it, a version's verdict from its spec) can be posted before the status write that
records it, under a name derived from the outcome (`post_named`). An operator that stops in between, or a
status write refused because the object changed, decides it again and posts it again; the API server
refuses the second Event as already there, so it is posted once, and no second status write clears it. The
training controller posts a run's end this way; the registry posts a verdict this way unless a rollout
waits on it (then the Event would delay the rollout, so it is queued after the verdict).

Other Events (steps, starts) stay at most once, through kopf."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.rest import ApiException

from slipway import kube
from slipway.api.common import PendingEvent
from slipway.crashpoints import crash_point
from slipway.messages import sanitize

RUN_ENDS = frozenset({"RunSucceeded", "RunFailed"})  # named first by the training controller
OUTCOMES = RUN_ENDS | {"Validated", "Rejected", "Promoted", "RolledBack", "Aborted", "DriftDetected"}
PENDING_LIMIT = 20
EventTuple = tuple[str, str, str]  # type, reason, message
log = logging.getLogger(__name__)


def matters(reason: str) -> bool:
    return reason in OUTCOMES


def with_pending(
    pending: list[PendingEvent], events: Iterable[EventTuple], posted: frozenset[str] = frozenset()
) -> list[PendingEvent]:
    """`pending` and the outcome Events among `events` (but those whose reason is in `posted`, named
    first), the newest PENDING_LIMIT."""
    added = [
        PendingEvent(type=t, reason=r, message=m[:1024])
        for t, r, m in events
        if matters(r) and r not in posted
    ]
    return [*pending, *added][-PENDING_LIMIT:]


def post_now(body: dict[str, Any], type_: str, reason: str, message: str) -> None:
    """Creates the Event and returns once the API server has it."""
    kube.create(event_body(body, {"generateName": f"{body['metadata']['name']}."}, type_, reason, message))


def post_named(body: dict[str, Any], type_: str, reason: str, message: str, outcome: str) -> None:
    """Creates the Event of an outcome decided again the same way, unless it exists: its name is derived
    from the object's uid, the reason and `outcome` (what tells this outcome from another of the same
    reason: the message naming the run, the generation judged), so a post repeated after a crash or a
    refused status write changes nothing. Returns once the API server has it."""
    meta = body["metadata"]
    digest = hashlib.sha256(f"{meta['uid']}/{reason}/{outcome}".encode()).hexdigest()[:20]
    kube.create_if_absent(
        event_body(body, {"name": f"{meta['name'][:200]}.{digest}"}, type_, reason, message)
    )


def post_run_ends(body: dict[str, Any], events: Iterable[EventTuple]) -> bool:
    """Posts the RUN_ENDS among `events`, each named by its message (which names its run); whether there
    were any."""
    ends = [(t, r, m) for t, r, m in events if r in RUN_ENDS]
    for type_, reason, message in ends:
        post_named(body, type_, reason, message, message)
    return bool(ends)


def event_body(
    body: dict[str, Any], naming: dict[str, str], type_: str, reason: str, message: str
) -> dict[str, Any]:
    """The Event about `body`; `naming`: its name, or the prefix the API server completes."""
    meta = body["metadata"]
    stamp = datetime.now(UTC).isoformat()
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"namespace": meta["namespace"], **naming},
        "type": type_,
        "reason": reason,
        "message": sanitize(message),
        "action": reason,
        "reportingComponent": "slipway",
        "reportingInstance": "slipway",
        "source": {"component": "slipway"},
        "involvedObject": {
            "apiVersion": body["apiVersion"],
            "kind": body["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        },
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "eventTime": stamp,
    }


def announce(
    body: dict[str, Any],
    post: Callable[[dict[str, Any], str, str, str], None] = post_now,
) -> dict[str, Any]:
    """Posts what `body`'s status holds pending, then removes it from status; the body as written."""
    pending = (body.get("status") or {}).get("pendingEvents") or []
    if not pending:
        return body
    for event in pending:
        post(body, event["type"], event["reason"], event.get("message", ""))
    crash_point("events.after-post")
    meta = body["metadata"]
    try:
        return kube.patch_status(body["kind"], meta["namespace"], meta["name"], {"pendingEvents": []})
    except ApiException as error:
        if error.status != 404:
            raise
        return body

"""Events that matter (outcomes: a rollout promoted or rolled back, a version validated or rejected, a run
that succeeded or failed, drift found) are posted at least once.

An outcome's Event is recorded in `status.pendingEvents` by the same status write that records the
outcome; after that write the Event is posted (synchronously, not through kopf's queue, which a crash
would lose) and then removed from status. An operator that stops anywhere in between finds it there when
it starts again and posts it then: a crash between posting and removing posts it twice, the normal path
once. Other Events (steps, starts) stay at most once, through kopf."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.rest import ApiException

from slipway import kube
from slipway.api.common import PendingEvent
from slipway.crashpoints import crash_point

OUTCOMES = frozenset(
    {
        "Promoted",
        "RolledBack",
        "Aborted",
        "Validated",
        "Rejected",
        "RunSucceeded",
        "RunFailed",
        "DriftDetected",
    }
)
PENDING_LIMIT = 20
EventTuple = tuple[str, str, str]  # type, reason, message
log = logging.getLogger(__name__)


def matters(reason: str) -> bool:
    return reason in OUTCOMES


def with_pending(pending: list[PendingEvent], events: Iterable[EventTuple]) -> list[PendingEvent]:
    """`pending` and the outcome Events among `events`, the newest PENDING_LIMIT."""
    added = [PendingEvent(type=t, reason=r, message=m[:1024]) for t, r, m in events if matters(r)]
    return [*pending, *added][-PENDING_LIMIT:]


def post_now(body: dict[str, Any], type_: str, reason: str, message: str) -> None:
    """Creates the Event and returns once the API server has it."""
    meta = body["metadata"]
    stamp = datetime.now(UTC).isoformat()
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"namespace": meta["namespace"], "generateName": f"{meta['name']}."},
            "type": type_,
            "reason": reason,
            "message": message,
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
    )


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

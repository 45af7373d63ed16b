"""What is wrong with a serving pod, read from its container statuses: the kubelet's reason and the
container's own last words (its termination message, or its last log line where the kubelet falls back to
the log), bounded and sanitized for a condition and an Event.

Some faults are certain at once (an init container that exited non-zero, an image the node may never pull,
a crash loop, an OOM kill); others only once they persist (a pull error or a missing Secret may be fixed in
the meantime): `PodFailure.since` tells the plan from when, and the plan decides with its own clock."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

MESSAGE_LIMIT = 400
PULLER_CONTAINER = "pull-model"
SERVER_CONTAINER = "tensorflow-serving"
# Waiting reasons that no retry by the kubelet will cure.
HOPELESS_WAITING = frozenset({"ErrImageNeverPull", "InvalidImageName", "CrashLoopBackOff"})
# Waiting reasons that fail the pod only once they have lasted (the image may be pushed, the Secret created).
PERSISTENT_WAITING = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
IMAGE_REASONS = frozenset({"ErrImageNeverPull", "InvalidImageName", "ErrImagePull", "ImagePullBackOff"})
_SECRETS = re.compile(r"(?i)\b([A-Z0-9_]*(?:secret|password|token|key|signature|credential)[A-Z0-9_]*)=\S+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class PodFailure:
    pod: str  # the pod, or for pods that could not even be created, their Deployment
    container: str  # "" when no container ever existed
    reason: str
    message: str
    certain: bool
    since: datetime | None = None  # for a fault that becomes certain only when it lasts

    @property
    def condition_reason(self) -> str:
        """What failed, for a condition: creating the pods, the image, the model pull, or the model server."""
        if not self.container:
            return "PodCreationFailed"
        if self.reason in IMAGE_REASONS:
            return "ImagePullFailed"
        return "ModelPullFailed" if self.container == PULLER_CONTAINER else "ModelServerFailed"

    def describe(self) -> str:
        detail = f": {self.message}" if self.message else ""
        where = f"pod {self.pod} container {self.container}" if self.container else f"Deployment {self.pod}"
        return f"{where}: {self.reason}{detail}"


def sanitize(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """The last non-empty line (a log's last words), without control characters or `KEY=secret` values,
    at most `limit` characters."""
    lines = [line.strip() for line in _CONTROL.sub(" ", text).replace("\r", "\n").splitlines()]
    last = next((line for line in reversed(lines) if line), "")
    last = _SECRETS.sub(r"\1=***", re.sub(r"\s+", " ", last))
    return last if len(last) <= limit else last[: limit - 1] + "…"


def _terminated(state: Mapping[str, Any]) -> str:
    code = state.get("exitCode")
    reason = state.get("reason") or "Error"
    message = sanitize(str(state.get("message") or ""))
    text = f"{reason} (exit code {code})" if code is not None else reason
    return f"{text}: {message}" if message else text


def container_failure(
    pod: str, status: Mapping[str, Any], init: bool, started: datetime | None
) -> PodFailure | None:
    name = str(status.get("name", "?"))
    state = status.get("state") or {}
    last = (status.get("lastState") or {}).get("terminated") or {}
    if (terminated := state.get("terminated")) and (terminated.get("exitCode") or 0) != 0:
        return PodFailure(pod, name, "Terminated", _terminated(terminated), certain=True)
    if init and last and (last.get("exitCode") or 0) != 0:
        return PodFailure(pod, name, "Terminated", _terminated(last), certain=True)
    if last.get("reason") == "OOMKilled":
        return PodFailure(pod, name, "OOMKilled", _terminated(last), certain=True)
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason")
    if reason in HOPELESS_WAITING:
        message = _terminated(last) if reason == "CrashLoopBackOff" and last else ""
        return PodFailure(pod, name, reason, message or sanitize(str(waiting.get("message") or "")), True)
    if reason in PERSISTENT_WAITING:
        return PodFailure(pod, name, reason, sanitize(str(waiting.get("message") or "")), False, started)
    return None


def pod_failure(body: Mapping[str, Any]) -> PodFailure | None:
    """The first failing container of a pod (init containers first: they run first), or None."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    if meta.get("deletionTimestamp"):
        return None
    started = _timestamp(status.get("startTime") or meta.get("creationTimestamp"))
    name = str(meta.get("name", "?"))
    for key, init in (("initContainerStatuses", True), ("containerStatuses", False)):
        for container in status.get(key) or ():
            if (failure := container_failure(name, container, init, started)) is not None:
                return failure
    return None


def deployment_failure(body: Mapping[str, Any]) -> PodFailure | None:
    """Pods the ReplicaSet cannot create (Pod Security admission, a quota, a missing ServiceAccount):
    the Deployment's ReplicaFailure condition, failing the rollout once it lasts."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    for condition in status.get("conditions") or ():
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            return PodFailure(
                str(meta.get("name", "?")),
                "",
                str(condition.get("reason") or "FailedCreate"),
                sanitize(str(condition.get("message") or "")),
                certain=False,
                since=_timestamp(condition.get("lastTransitionTime") or condition.get("lastUpdateTime")),
            )
    return None


def _timestamp(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None

"""What becomes of a reconcile that fails: one decision for every kind, as pure functions.

Every error a reconcile raises is classified (`classify`) as permanent (the spec, or something it names,
must change: a condition and a Warning Event, no retry) or transient (the API server, a store, a network:
a condition and a Warning Event, retried with exponential backoff). `Backoff` keeps the attempts per object
and says when the next may run. The runner applies the decision; nothing here does I/O."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from slipway.messages import sanitize

CONDITION = "Reconciled"  # False while the last reconcile failed; True again after one succeeds
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 300.0


class Refused(ValueError):
    """An error whose cause is known: `field` (a spec path) and `reason` (CamelCase) name it. Permanent
    unless `transient`."""

    transient = False

    def __init__(self, field: str, reason: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class Failure:
    reason: str
    message: str  # sanitized; names the field where it is known
    permanent: bool
    field: str | None = None


def field_path(location: Iterable[Any], prefix: str = "spec") -> str:
    """A pydantic error location as a field path: ("rollout", "steps", 0) -> spec.rollout.steps[0]."""
    path = prefix
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{to_camel(str(part))}"
    return path


def _api_message(error: Any) -> str:
    """An API server's refusal in its own words (the Status' message), never the response headers."""
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except (ValueError, AttributeError):
        return str(error.reason)


# HTTP statuses that no retry will change: the request itself is wrong (a name too long, an invalid field).
PERMANENT_HTTP = (400, 422)


def classify(error: BaseException) -> Failure:
    """The decision for one error: its reason, a sanitized message naming the field where known, and
    whether retrying can help."""
    if isinstance(error, Refused):
        return Failure(error.reason, sanitize(error), not error.transient, error.field)
    if isinstance(error, ValidationError):
        first = error.errors(include_url=False, include_input=False)[:1]
        where = field_path(first[0]["loc"]) if first else "spec"
        said = first[0]["msg"] if first else "invalid"
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        return Failure("InvalidSpec", sanitize(f"{where}: {said}{more}"), True, where)
    status = getattr(error, "status", None)
    if type(error).__name__ == "ApiException" and isinstance(status, int):
        message = sanitize(f"the API server answered {status}: {_api_message(error)}")
        return Failure(
            "ApiError" if status not in PERMANENT_HTTP else "ApiRefused", message, status in PERMANENT_HTTP
        )
    return Failure("ReconcileError", sanitize(f"{type(error).__name__}: {error}"), False)


def backoff_delay(
    attempts: int, base: float = BACKOFF_BASE_SECONDS, cap: float = BACKOFF_CAP_SECONDS
) -> float:
    """Seconds before attempt `attempts + 1`: base, 2 base, 4 base, ... up to cap."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


Key = tuple[str, str, str]  # kind, namespace, name


@dataclass
class Backoff:
    """Failed attempts per object and when the next may run. Periodic resyncs of a failing object wait for
    it; a change to the object itself does not (it may be the fix). A permanent failure waits the cap."""

    clock: Callable[[], float] = time.monotonic
    attempts: dict[Key, int] = field(default_factory=dict)
    not_before: dict[Key, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def failed(self, key: Key, failure: Failure) -> float:
        """Records a failure; returns the delay before the next attempt."""
        with self.lock:
            attempts = self.attempts[key] = self.attempts.get(key, 0) + 1
            delay = BACKOFF_CAP_SECONDS if failure.permanent else backoff_delay(attempts)
            self.not_before[key] = self.clock() + delay
            return delay

    def succeeded(self, key: Key) -> bool:
        """Forgets the object's failures; True if it had any."""
        with self.lock:
            self.not_before.pop(key, None)
            return self.attempts.pop(key, None) is not None

    def waiting(self, key: Key) -> bool:
        with self.lock:
            until = self.not_before.get(key)
            return until is not None and self.clock() < until

    def failing(self, key: Key) -> int:
        with self.lock:
            return self.attempts.get(key, 0)

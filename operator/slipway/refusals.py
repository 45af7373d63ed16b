"""What becomes of a reconcile that fails: one decision for every kind, and the one path that applies it.

Every error a reconcile raises is classified (`classify`) as permanent (the spec, or something it names,
must change: a condition and a Warning Event, no retry) or transient (the API server, a store, a network:
a condition and a Warning Event, retried with exponential backoff). `Backoff` keeps the attempts per object
and says when the next may run; `Retries` runs the next attempts. `Guard` applies the decision: every
handler's reconcile runs through it, and `report` writes the condition and the Event."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from slipway import kube
from slipway.api.common import RECONCILED, Condition, set_condition
from slipway.messages import sanitize

log = logging.getLogger(__name__)
T = TypeVar("T")
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
        message = sanitize(f"the API server answered {status}: {kube.api_message(error)}")
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


def user_change(body: Mapping[str, Any]) -> str:
    """What the user controls of an object, as one string: its spec (by generation) and its annotations
    (requests: promote, abort, run), not its status, which recording a failure changes."""
    meta = body.get("metadata") or {}
    annotations = {
        key: value
        for key, value in (meta.get("annotations") or {}).items()
        if not key.startswith("kopf.") and not key.endswith("last-handled-configuration")
    }
    return json.dumps([meta.get("generation"), annotations], sort_keys=True)


@dataclass
class Backoff:
    """Failed attempts per object and when the next may run. Every trigger of a failing object waits for
    it (resyncs, children, the status write that recorded the failure) except a change the user made to
    the object itself, which may be the fix: its `user_change` differs from the one that failed. A
    permanent failure waits the cap."""

    clock: Callable[[], float] = time.monotonic
    attempts: dict[Key, int] = field(default_factory=dict)
    not_before: dict[Key, float] = field(default_factory=dict)
    changes: dict[Key, str | None] = field(default_factory=dict)  # of the failed attempt
    lock: threading.Lock = field(default_factory=threading.Lock)

    def failed(self, key: Key, failure: Failure, change: str | None = None) -> float:
        """Records a failure; returns the delay before the next attempt."""
        with self.lock:
            attempts = self.attempts[key] = self.attempts.get(key, 0) + 1
            delay = BACKOFF_CAP_SECONDS if failure.permanent else backoff_delay(attempts)
            self.not_before[key] = self.clock() + delay
            if change is not None or key not in self.changes:
                self.changes[key] = change
            return delay

    def succeeded(self, key: Key) -> bool:
        """Forgets the object's failures; True if it had any."""
        with self.lock:
            self.not_before.pop(key, None)
            self.changes.pop(key, None)
            return self.attempts.pop(key, None) is not None

    def waiting(self, key: Key, change: str | None = None) -> bool:
        """True while the object backs off and `change` (None: not a change of the object) is not new."""
        with self.lock:
            until = self.not_before.get(key)
            if until is None or self.clock() >= until:
                return False
            return change is None or change == self.changes.get(key)

    def failing(self, key: Key) -> int:
        with self.lock:
            return self.attempts.get(key, 0)


class Retries:
    """One daemon thread that runs each object's next attempt when its backoff is over (at most one
    pending attempt per object: a later failure replaces it)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._due: dict[Key, tuple[float, Callable[[], None]]] = {}
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def at(self, key: Key, delay: float, attempt: Callable[[], None]) -> None:
        with self._wake:
            self._due[key] = (self._clock() + delay, attempt)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="slipway-retries", daemon=True)
                self._thread.start()
            self._wake.notify()

    def pending(self) -> list[Key]:
        with self._wake:
            return list(self._due)

    def _run(self) -> None:
        while True:
            with self._wake:
                now = self._clock()
                ready = [key for key, (when, _) in self._due.items() if when <= now]
                attempts = [self._due.pop(key)[1] for key in ready]
                if not attempts:
                    soonest = min((when for when, _ in self._due.values()), default=now + 60)
                    self._wake.wait(timeout=max(0.05, soonest - now))
                    continue
            for attempt in attempts:
                try:
                    attempt()
                except Exception:  # an attempt reports its own failure; this thread must go on
                    log.warning("a retried reconcile failed outside its guard", exc_info=False)


class Serial(Protocol):
    """Runs one object's reconciles one at a time (slipway.locks.Reconciles)."""

    def run(self, kind: str, namespace: str, name: str, reconcile: Callable[[], T]) -> T: ...


def report(kind: str, namespace: str, name: str, failure: Failure, post_event: kube.EventSink) -> None:
    """`Reconciled=False` with the failure's reason and message on the object, and a Warning Event naming
    the object, both only when the condition changes (a failure repeated at every retry writes nothing)."""
    body = kube.get(kind, namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return
    conditions = []
    for raw in (body.get("status") or {}).get("conditions") or []:
        try:
            conditions.append(Condition.model_validate(raw))
        except ValidationError:
            continue  # a condition not of Slipway's making: dropped rather than kept broken
    current = next((c for c in conditions if c.type == RECONCILED), None)
    if current is not None and (current.status, current.reason, current.message) == (
        "False",
        failure.reason,
        failure.message,
    ):
        return
    generation = body["metadata"].get("generation")
    updated = set_condition(conditions, RECONCILED, "False", failure.reason, failure.message, generation)
    written = kube.patch_status(kind, namespace, name, {"conditions": [c.to_wire() for c in updated]})
    post_event(written, "Warning", failure.reason, f"{kind} {namespace}/{name}: {failure.message}")


@dataclass
class Guard:
    """The one path of every reconcile: run under the object's lock; what it raises is classified, logged
    as one line (no traceback), recorded as a condition and an Event, and, when transient, retried with
    exponential backoff. Whatever else asks for a failing object's reconcile waits out its backoff; a
    change the user made to the object does not."""

    serial: Serial
    post_event: kube.EventSink
    backoff: Backoff = field(default_factory=Backoff)
    retries: Retries = field(default_factory=Retries)

    def run(
        self,
        kind: str,
        namespace: str,
        name: str,
        reconcile: Callable[[], object],
        retry: Callable[[], None] | None = None,
        change: str | None = None,
    ) -> None:
        """`change`: set when a watch event of the object itself asks (what the user controls of it);
        None for resyncs, children, other objects and retries."""
        key = (kind, namespace, name)
        if self.backoff.waiting(key, change):
            return
        try:
            self.serial.run(kind, namespace, name, reconcile)
        except Exception as error:
            self.failed(key, error, retry, change)
        else:
            self.backoff.succeeded(key)

    def failed(
        self, key: Key, error: Exception, retry: Callable[[], None] | None, change: str | None = None
    ) -> None:
        kind, namespace, name = key
        failure = classify(error)
        delay = self.backoff.failed(key, failure, change)
        next_step = "not retried until it changes" if failure.permanent else f"retried in {delay:.0f} s"
        log.warning(
            "%s %s/%s: %s: %s (%s)", kind, namespace, name, failure.reason, failure.message, next_step
        )
        log.debug("%s %s/%s failed", kind, namespace, name, exc_info=error)
        try:
            report(kind, namespace, name, failure, self.post_event)
        except Exception as unrecorded:
            log.warning(
                "%s %s/%s: cannot record the failure: %s", kind, namespace, name, sanitize(unrecorded)
            )
        if retry is not None and not failure.permanent:
            self.retries.at(key, delay, retry)

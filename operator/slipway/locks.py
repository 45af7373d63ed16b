"""Runs reconciles one at a time per object, whoever asks (watch event, timer, child event)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from slipway.metrics import RECONCILE_SECONDS, RECONCILES

T = TypeVar("T")
ObjectKey = tuple[str, str, str]  # kind, namespace, name


class Reconciles:
    """One lock per object; a reconcile queued behind another runs after it, never beside it."""

    def __init__(self) -> None:
        self._locks: dict[ObjectKey, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: ObjectKey) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def forget(self, kind: str, namespace: str, name: str) -> None:
        with self._guard:
            self._locks.pop((kind, namespace, name), None)

    def run(self, kind: str, namespace: str, name: str, reconcile: Callable[[], T]) -> T:
        started = time.monotonic()
        with self._lock((kind, namespace, name)):
            try:
                result = reconcile()
            except Exception:
                RECONCILES.labels(kind, "error").inc()
                raise
            finally:
                RECONCILE_SECONDS.labels(kind).observe(time.monotonic() - started)
        RECONCILES.labels(kind, "ok").inc()
        return result

    def __len__(self) -> int:
        with self._guard:
            return len(self._locks)

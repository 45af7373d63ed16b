"""Runs reconciles one at a time per object, whoever asks (watch event, timer, child event)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from slipway.metrics import RECONCILE_SECONDS, RECONCILES

T = TypeVar("T")
_locks: dict[tuple[str, str, str], threading.Lock] = {}
_guard = threading.Lock()


@contextmanager
def exclusive(kind: str, namespace: str, name: str) -> Iterator[None]:
    with _guard:
        lock = _locks.setdefault((kind, namespace, name), threading.Lock())
    with lock:
        yield


def forget(kind: str, namespace: str, name: str) -> None:
    with _guard:
        _locks.pop((kind, namespace, name), None)


def run(kind: str, namespace: str, name: str, reconcile: Callable[[], T]) -> T:
    started = time.monotonic()
    with exclusive(kind, namespace, name):
        try:
            result = reconcile()
        except Exception:
            RECONCILES.labels(kind, "error").inc()
            raise
        finally:
            RECONCILE_SECONDS.labels(kind).observe(time.monotonic() - started)
    RECONCILES.labels(kind, "ok").inc()
    return result

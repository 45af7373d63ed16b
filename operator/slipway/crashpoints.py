"""Failure injection for the fault suite: the operator kills itself (SIGKILL, as the kernel's OOM killer or
a node failure would) at a named point between two of its writes.

`SLIPWAY_CRASH_AT` lists the points, comma-separated, each optionally `@N` to crash the N-th time the
point is reached (first time by default): `serving.after-status@3,registry.after-verdict`. Unset (always,
outside tests), `crash_point` only compares a name against an empty set."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

ENV = "SLIPWAY_CRASH_AT"
# Every point the operator has, so a test naming one that does not exist fails instead of waiting forever.
POINTS = frozenset(
    {
        "serving.before-status",  # the children are applied, the status is not written yet
        "serving.after-status",  # the status is written, obsolete children not yet deleted
        "serving.after-delete",  # obsolete children deleted, Events not yet posted
        "events.after-post",  # pending Events posted, not yet recorded as posted
    }
)
log = logging.getLogger(__name__)


def parse(text: str) -> dict[str, int]:
    """`a@2,b` -> {"a": 2, "b": 1}; raises ValueError naming an unknown point or a bad count."""
    armed: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, count = item.partition("@")
        if name not in POINTS:
            raise ValueError(f"{ENV}: unknown crash point {name!r} (known: {', '.join(sorted(POINTS))})")
        if count and (not count.isdigit() or int(count) < 1):
            raise ValueError(f"{ENV}: {item!r}: the count after @ must be a positive integer")
        armed[name] = int(count or 1)
    return armed


_armed = parse(os.environ.get(ENV, ""))
_hits: dict[str, int] = {}
_lock = threading.Lock()


def crash_point(name: str) -> None:
    """Dies here, at once and without cleanup, when this point is armed and reached for the N-th time."""
    if name not in _armed:
        return
    with _lock:
        _hits[name] = _hits.get(name, 0) + 1
        if _hits[name] != _armed[name]:
            return
    log.warning("crash point %s reached: killing the operator", name)
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)

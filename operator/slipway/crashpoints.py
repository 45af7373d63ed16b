"""Failure injection for the fault suite: the operator kills itself (SIGKILL, as the kernel's OOM killer or
a node failure would) at a named point between two of its writes.

`SLIPWAY_CRASH_AT` lists the points, comma-separated, each optionally `@N` to crash the N-th time the
point is reached (first time by default): `serving.after-status@3,training.after-submit`.
`SLIPWAY_CRASH_AT_FILE` names a file holding such a list, read again whenever it changes: a test arms a
point in a running operator (and disarms it before starting the next) instead of restarting it to arm.
Both unset (always, outside tests), `crash_point` only compares a name against an empty set."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path

ENV = "SLIPWAY_CRASH_AT"
FILE_ENV = "SLIPWAY_CRASH_AT_FILE"
# Every point the operator has, so a test naming one that does not exist fails instead of waiting forever.
POINTS = frozenset(
    {
        "serving.before-status",  # the children are applied, the status is not written yet
        "serving.after-status",  # the status is written, obsolete children not yet deleted
        "serving.after-delete",  # obsolete children deleted, Events not yet posted
        "events.after-post",  # pending Events posted, not yet recorded as posted
        "training.after-submit",  # a run started by the executor, not yet recorded in status
        "training.after-register",  # a finished run's ModelVersion created, the run not yet recorded so
        "training.after-event",  # a finished run's Event posted, the run not yet recorded as finished
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
_file = os.environ.get(FILE_ENV)
_file_stamp: tuple[int, int] | None = None
_hits: dict[str, int] = {}
_lock = threading.Lock()


def _rearm() -> None:
    """Reads the arming file again when it changed since it was last read (the caller holds the lock)."""
    global _armed, _file_stamp
    assert _file is not None
    try:
        stat = os.stat(_file)
        stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        text = Path(_file).read_text() if stamp != _file_stamp else ""
    except FileNotFoundError:
        stamp, text = None, ""
    if stamp != _file_stamp:
        _file_stamp, _armed = stamp, parse(text)
        _hits.clear()


def crash_point(name: str) -> None:
    """Dies here, at once and without cleanup, when this point is armed and reached for the N-th time."""
    if _file is None and name not in _armed:
        return
    with _lock:
        if _file is not None:
            _rearm()
        if name not in _armed:
            return
        _hits[name] = _hits.get(name, 0) + 1
        if _hits[name] != _armed[name]:
            return
    log.warning("crash point %s reached: killing the operator", name)
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)

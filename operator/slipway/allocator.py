"""glibc malloc settings for the operator process, made at its start (bench/results/HISTORY.md has the
figures).

The handler threads each get a malloc arena of their own (up to eight per core), and glibc raises its
mmap threshold every time a large buffer (a LIST page, a TLS read) is freed, so later large buffers come
from the arenas and stay there. Two arenas, and a fixed threshold above which buffers are mapped and
unmapped on their own, keep what start-up's burst allocated from staying resident."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
SETTINGS = {M_ARENA_MAX: 2, M_MMAP_THRESHOLD: 128 * 1024, M_TRIM_THRESHOLD: 128 * 1024}
log = logging.getLogger(__name__)


def tune() -> bool:
    """Applies SETTINGS where the C library is glibc; False elsewhere (musl has no mallopt)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    applied = all(mallopt(option, value) == 1 for option, value in SETTINGS.items())
    if not applied:
        log.warning("mallopt refused a setting: the allocator keeps its defaults")
    return applied

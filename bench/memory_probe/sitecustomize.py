"""Loaded into the operator process by bench/memory_breakdown.py (this directory first on PYTHONPATH):
starts tracemalloc at interpreter start, and on SIGUSR1 writes a report of where the memory goes to
$SLIPWAY_MEMORY_REPORT: tracemalloc's top allocation sites and its total, live objects by type, threads,
asyncio tasks, and glibc's malloc_info (per-arena native heap)."""

from __future__ import annotations

import os
import signal
import tracemalloc

FRAMES = int(os.environ.get("SLIPWAY_TRACEMALLOC_FRAMES", "8"))


def _report(_signum: int, _frame: object) -> None:
    # A signal handler runs inside whatever the main thread (kopf's event loop) was doing: never raise.
    try:
        _write_report()
    except BaseException as error:
        with open(os.environ["SLIPWAY_MEMORY_REPORT"] + ".done", "w") as fh:
            fh.write(f"failed: {error!r}")


def _type_name(kind: type) -> str:
    module = kind.__dict__.get("__module__", "builtins")
    name = kind.__dict__.get("__qualname__", kind.__name__)
    return f"{module}.{name}" if isinstance(module, str) and isinstance(name, str) else str(kind)


def _write_report() -> None:
    import asyncio
    import ctypes
    import gc
    import json
    import re
    import sys
    import threading
    from collections import Counter

    out = os.environ["SLIPWAY_MEMORY_REPORT"]
    by_file: list[tracemalloc.Statistic] = []
    by_line: list[tracemalloc.Statistic] = []
    by_trace: list[tracemalloc.Statistic] = []
    if tracemalloc.is_tracing():
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
        )
        by_file = snapshot.statistics("filename")
        by_line = snapshot.statistics("lineno")
        by_trace = snapshot.statistics("traceback")
    objects = gc.get_objects()
    types = Counter(_type_name(type(o)) for o in objects)
    try:
        tasks = asyncio.all_tasks(asyncio.get_event_loop())
    except RuntimeError:
        tasks = set()
    task_names = Counter(getattr(t.get_coro(), "__qualname__", type(t.get_coro()).__name__) for t in tasks)
    report = {
        "traced_mib": sum(s.size for s in by_file) / 2**20,
        "tracemalloc_overhead_mib": tracemalloc.get_tracemalloc_memory() / 2**20,
        "by_file": [(str(s.traceback[0].filename), s.size / 2**20, s.count) for s in by_file[:60]],
        "by_line": [(str(s.traceback[0]), s.size / 2**20, s.count) for s in by_line[:80]],
        "by_traceback": [([str(f) for f in s.traceback], s.size / 2**20, s.count) for s in by_trace[:40]],
        "gc_objects": len(objects),
        "allocated_blocks": sys.getallocatedblocks(),
        "types": types.most_common(60),
        "threads": threading.active_count(),
        # "ThreadPoolExecutor-0_3" is worker 3 of pool 0: counted per pool.
        "thread_names": Counter(re.sub(r"_\d+$", "", t.name) for t in threading.enumerate()).most_common(),
        "asyncio_tasks": len(tasks),
        "asyncio_task_coroutines": task_names.most_common(30),
    }
    del objects
    with open(out + ".json", "w") as fh:
        json.dump(report, fh, indent=1)
    libc = ctypes.CDLL("libc.so.6")
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    fp = libc.fopen((out + ".malloc.xml").encode(), b"w")
    libc.malloc_info(0, fp)
    libc.fclose(fp)
    with open(out + ".done", "w") as fh:
        fh.write("ok")


if os.environ.get("SLIPWAY_MEMORY_REPORT"):
    if FRAMES > 0:
        tracemalloc.start(FRAMES)
    signal.signal(signal.SIGUSR1, _report)

"""Where the operator's memory goes at scale (writes bench/results/memory.json; the breakdown is in
bench/results/HISTORY.md).

Creates E endpoints x V Validated versions (as bench/scale_bench.py does), starts the operator with
bench/memory_probe/ first on its PYTHONPATH (tracemalloc from interpreter start, a report on SIGUSR1),
waits until all are reconciled, then reads /proc/PID/smaps (resident memory by mapping kind: the main
heap, other anonymous memory, thread stacks, libraries), glibc's malloc_info (native heap per arena, in
use and free) and the probe's report (Python allocations by file and line, live objects by type,
threads, asyncio tasks).

Usage: python bench/memory_breakdown.py [--endpoints 1000] [--versions 10] [--frames 8]
       (--frames 0: no tracemalloc, so RSS is the operator's own; objects, threads and arenas still reported)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes import client

sys.path.insert(0, str(Path(__file__).parent))
from scale_bench import create_all, reconciled, rss_mib
from serving_bench import NAMESPACE, bench_client, write_result
from slipway.api.crd import KINDS, crd
from slipway.devcluster import DevCluster
from slipway.devcluster.install import apply_crds
from slipway.devcluster.operator_process import OperatorProcess

PROBE = Path(__file__).parent / "memory_probe"
STACK_SIZES = {8 * 2**20, 8 * 2**20 + 4096}


def smaps(pid: int) -> dict[str, float]:
    """Resident MiB by kind of mapping."""
    kinds: dict[str, float] = {}
    name, size = "", 0
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            start, end = (int(x, 16) for x in head[0].split("-"))
            size, name = end - start, head[5] if len(head) > 5 else ""
        elif head[0] == "Rss:":
            kb = int(head[1])
            if name == "[heap]":
                kind = "heap (main arena, brk)"
            elif name.startswith("["):
                kind = name
            elif name:
                kind = "file: " + Path(name).name
            elif size in STACK_SIZES:
                kind = "anon: thread stacks (8 MiB mappings)"
            elif size % (64 * 2**20) == 0:
                kind = "anon: glibc thread arenas (64 MiB mappings)"
            else:
                kind = "anon: other (pymalloc arenas, large mallocs, merged)"
            kinds[kind] = kinds.get(kind, 0.0) + kb / 1024
    files = {k: v for k, v in kinds.items() if k.startswith("file: ")}
    top = dict(sorted(files.items(), key=lambda kv: -kv[1])[:12])
    out = {k: round(v, 1) for k, v in kinds.items() if not k.startswith("file: ")}
    out["files (all)"] = round(sum(files.values()), 1)
    out.update({k: round(v, 1) for k, v in top.items()})
    return out


def malloc_arenas(xml: str) -> dict[str, Any]:
    """From malloc_info: per arena, the bytes the system gave it and the free bytes it holds."""
    arenas = []
    for heap in re.finditer(r'<heap nr="(\d+)">(.*?)</heap>', xml, re.S):
        body = heap.group(2)
        system = re.search(r'<system type="current" size="(\d+)"', body)
        free = sum(int(x) for x in re.findall(r'<total type="(?:fast|rest)" count="\d+" size="(\d+)"', body))
        arenas.append(
            {
                "arena": int(heap.group(1)),
                "system_mib": round(int(system.group(1)) / 2**20, 1) if system else 0,
                "free_mib": round(free / 2**20, 1),
            }
        )
    mmap = re.search(r'<total type="mmap" count="(\d+)" size="(\d+)"', xml)
    return {
        "arenas": len(arenas),
        "system_mib": round(sum(a["system_mib"] for a in arenas), 1),
        "free_in_arenas_mib": round(sum(a["free_mib"] for a in arenas), 1),
        "mmapped_chunks": int(mmap.group(1)) if mmap else 0,
        "mmapped_mib": round(int(mmap.group(2)) / 2**20, 1) if mmap else 0,
        "per_arena": arenas,
    }


def report(pid: int, path: Path) -> dict[str, Any]:
    done = Path(str(path) + ".done")
    done.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 600
    while not done.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the operator wrote no memory report")
        time.sleep(1)
    probe = json.loads(Path(str(path) + ".json").read_text())
    probe["malloc"] = malloc_arenas(Path(str(path) + ".malloc.xml").read_text())
    return probe


def status(pid: int) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmSize", "Threads"):
            fields[key] = value.strip()
    fields["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return fields


def measure(endpoints: int, versions: int, frames: int, env: dict[str, str]) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="slipway-memory-"))
    result: dict[str, Any] = {
        "endpoints": endpoints,
        "model_versions": endpoints * versions,
        "frames": frames,
        "env": env,
    }
    result["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    with DevCluster(workdir=work / "cluster", full=True) as cluster:
        api = bench_client(cluster.kubeconfig)
        apply_crds(api, [crd(kind) for kind in KINDS])
        client.CoreV1Api(api).create_namespace({"metadata": {"name": NAMESPACE}})
        custom = client.CustomObjectsApi(api)
        create_all(custom, work / "models", endpoints, versions)
        operator = OperatorProcess(kubeconfig=cluster.kubeconfig, log_dir=work, live_timeout=900)
        operator.env.update(
            {
                "SLIPWAY_RECONCILE_INTERVAL_SECONDS": "60",
                "SLIPWAY_IMAGE": "slipway:bench",
                "PYTHONPATH": f"{PROBE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                "SLIPWAY_MEMORY_REPORT": str(work / "report"),
                "SLIPWAY_TRACEMALLOC_FRAMES": str(frames),
                **env,
            }
        )
        started = time.monotonic()
        operator.start()
        assert operator.popen is not None
        pid = operator.popen.pid
        result["after_start_mib"] = round(rss_mib(pid), 1)
        samples = []
        while (done := reconciled(custom, versions)) < endpoints:
            samples.append((round(time.monotonic() - started, 1), round(rss_mib(pid), 1), done))
            time.sleep(2)
        result["startup_to_all_reconciled_seconds"] = round(time.monotonic() - started, 1)
        result["rss_samples_s_mib_done"] = samples
        time.sleep(20)
        result["status"] = status(pid)
        result["smaps_rss_mib"] = smaps(pid)
        result["probe"] = report(pid, work / "report")
        result["status_after_report"] = status(pid)
        operator.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the operator (repeatable)")
    parser.add_argument("--name", default="memory")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    write_result(args.name, measure(args.endpoints, args.versions, args.frames, env))


if __name__ == "__main__":
    main()

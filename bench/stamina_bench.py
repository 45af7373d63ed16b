"""Stamina benchmark: thousands of rollouts one after another on one cluster and one operator process
(`make bench-stamina`; writes bench/results/stamina.json and stamina.png).

Plain rollouts (one endpoint, one step to 100%), and spread among them rollouts with analysis (50% ->
smoke test against a loopback TF Serving REST API -> 100%) where every third version fails its smoke test
and is rolled back; versions older than the newest ten are deleted as they go. Every `--every` rollouts
it samples the operator's resident memory, open file descriptors, threads, and its Python objects
(gc-tracked objects and allocated blocks, through bench/memory_probe's report on SIGUSR1), and the
p50/p99 of that window's latencies (plain rollouts: Validated -> canary Deployment, and Validated ->
stable; analysed ones: Validated -> promoted or rolled back). The verdict: growth of each sampled figure
after the first `--warmup` rollouts, and the last window's p50 next to the first window's.

Usage: python bench/stamina_bench.py [--rollouts 2000] [--analysis 300] [--every 100] [--warmup 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kubernetes import client

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fixtures.tfserving import FakeTFServing
from memory_breakdown import PROBE, status
from serving_bench import (
    NAMESPACE,
    DeploymentCreations,
    ValidatedTimes,
    bench_client,
    endpoint_body,
    endpoint_status,
    model_version,
    percentile,
    validate,
    wait,
    write_result,
)
from slipway import GROUP, VERSION
from slipway.api.crd import KINDS, crd
from slipway.devcluster import DevCluster
from slipway.devcluster.install import apply_crds
from slipway.devcluster.operator_process import OperatorProcess
from slipway.modelserver.config import DEFAULT_METRICS_PATH
from slipway.modelserver.rest import handler

RESULTS = Path(__file__).parent / "results"
SAMPLE = {"instances": [{"x": 1.0}]}
KEEP_VERSIONS = 10  # older ModelVersions are deleted, so growth is a leak, not a bigger registry
ANALYSIS_STEPS: list[dict[str, Any]] = [{"setWeight": 50}, {"analysis": {}}, {"setWeight": 100}]


def with_manifest(store: Path, model: str, version: int) -> None:
    """The model files analysis reads: a SavedModel stand-in and a manifest with a sample request."""
    directory = store / model / str(version)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "saved_model.pb").write_bytes(b"\x08\x01")
    manifest = {"modelName": model, "version": version, "sampleRequest": SAMPLE}
    (directory / "slipway-manifest.json").write_text(json.dumps(manifest))


class Probe:
    """The operator's figures: /proc for memory, fds and threads; bench/memory_probe for Python objects."""

    def __init__(self, pid: int, report: Path) -> None:
        self.pid, self.report = pid, report

    def sample(self) -> dict[str, Any]:
        done = Path(f"{self.report}.done")
        done.unlink(missing_ok=True)
        os.kill(self.pid, __import__("signal").SIGUSR1)
        wait(done.exists, timeout=300, interval=0.2)
        python = json.loads(Path(f"{self.report}.json").read_text())
        proc = status(self.pid)  # after the report, so the report's own garbage is freed again
        return {
            "rss_mib": round(int(proc["VmRSS"].split()[0]) / 1024, 1),
            "fds": proc["fds"],
            "threads": int(proc["Threads"]),
            "gc_objects": python["gc_objects"],
            "allocated_blocks": python["allocated_blocks"],
            "asyncio_tasks": python["asyncio_tasks"],
            "thread_names": dict(python["thread_names"]),
        }


def growth(samples: list[dict[str, Any]], key: str, warmup: int) -> float:
    """Percent change of a figure from the first sample at or after `warmup` rollouts to the last."""
    after = [s for s in samples if s["rollouts"] >= warmup]
    first, last = after[0][key], after[-1][key]
    return round(100 * (last - first) / first, 1) if first else 0.0


def measure(rollouts: int, analysis: int, every: int, warmup: int, checkpoint: Any = None) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="slipway-stamina-"))
    store = work / "models"
    load = [round(x, 2) for x in os.getloadavg()]
    fake = FakeTFServing()
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), handler(fake, fake.metrics, DEFAULT_METRICS_PATH, prefixed=True)
    )
    server.daemon_threads = True
    fake.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    windows: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    started = time.monotonic()
    with DevCluster(workdir=work / "cluster", full=True) as cluster:
        api = bench_client(cluster.kubeconfig)
        apply_crds(api, [crd(kind) for kind in KINDS])
        client.CoreV1Api(api).create_namespace({"metadata": {"name": NAMESPACE}})
        custom = client.CustomObjectsApi(api)
        operator = OperatorProcess(kubeconfig=cluster.kubeconfig, log_dir=work, live_timeout=300)
        operator.env.update(
            {
                "SLIPWAY_IMAGE": "slipway:bench",
                "SLIPWAY_TFSERVING_URL_TEMPLATE": fake.url_template,
                "PYTHONPATH": f"{PROBE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                "SLIPWAY_MEMORY_REPORT": str(work / "report"),
                "SLIPWAY_TRACEMALLOC_FRAMES": "0",
            }
        )
        operator.start()
        assert operator.popen is not None
        probe = Probe(operator.popen.pid, work / "report")
        creations, validated = DeploymentCreations(api), ValidatedTimes(api)
        # The analysed rollouts are spread among the plain ones, so a run cut short has some of each.
        count = rollouts + analysis
        plan = [
            ("analysis", True) if (i + 1) * analysis // count > i * analysis // count else ("plain", False)
            for i in range(count)
        ]
        for name, steps in (("plain", None), ("analysis", ANALYSIS_STEPS)):
            custom.create_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, "servingendpoints", endpoint_body(name, store, steps)
            )
        samples.append({"rollouts": 0, **probe.sample()})
        canary: list[float] = []
        total: list[float] = []
        analysed_total: list[float] = []
        rolled_back = 0
        versions = {"plain": 0, "analysis": 0}
        for index, (model, analysed) in enumerate(plan, start=1):
            versions[model] += 1
            version = versions[model]
            broken = analysed and version % 3 == 0
            if broken:
                fake.broken_versions.add(version)
            with_manifest(store, model, version)
            model_version(custom, store, model, version)
            validate(custom, model, version)

            def settled(m: str = model, v: int = version) -> bool:
                s = endpoint_status(custom, m)
                return (s.get("stableVersion") == v and not s.get("canaryVersion")) or v in (
                    s.get("failedVersions") or []
                )

            wait(settled, timeout=300, interval=0.02)
            now = time.monotonic()
            deployment = f"{model}-v{version}"
            wait(lambda d=deployment: d in creations.seen, timeout=60, interval=0.01)
            if analysed:
                analysed_total.append(validated.since_validated(model, version, now))
                rolled_back += broken
            else:
                canary.append(validated.since_validated(model, version, creations.seen[deployment]))
                total.append(validated.since_validated(model, version, now))
            if version > KEEP_VERSIONS:  # a retention policy: the registry keeps the newest versions
                custom.delete_namespaced_custom_object(
                    GROUP, VERSION, NAMESPACE, "modelversions", f"{model}-v{version - KEEP_VERSIONS}"
                )
            fake.requests.clear()
            if index % every == 0 or index == len(plan):
                windows.append(
                    {
                        "rollouts": index,
                        "plain": len(canary),
                        "rolled_back_so_far": rolled_back,
                        "analysed_settled_p50_ms": round(percentile(analysed_total, 50) * 1000, 1)
                        if analysed_total
                        else None,
                        "canary_p50_ms": round(percentile(canary, 50) * 1000, 1),
                        "canary_p99_ms": round(percentile(canary, 99) * 1000, 1),
                        "settled_p50_ms": round(percentile(total, 50) * 1000, 1),
                        "settled_p99_ms": round(percentile(total, 99) * 1000, 1),
                        "stdev_canary_ms": round(statistics.pstdev(canary) * 1000, 1),
                    }
                )
                samples.append({"rollouts": index, **probe.sample()})
                print(json.dumps({**windows[-1], **samples[-1]}), flush=True)
                if checkpoint is not None:  # what is done so far survives a run cut short
                    checkpoint(verdict(windows, samples, rollouts, analysis, every, warmup, started, load))
                canary, total, analysed_total = [], [], []
        operator.stop()
    server.shutdown()
    return verdict(windows, samples, rollouts, analysis, every, warmup, started, load)


def verdict(
    windows: list[dict[str, Any]],
    samples: list[dict[str, Any]],
    rollouts: int,
    analysis: int,
    every: int,
    warmup: int,
    started: float,
    load: list[float],
) -> dict[str, Any]:
    plain = [w for w in windows if w["plain"]]
    done = windows[-1]["rollouts"] if windows else 0
    result: dict[str, Any] = {
        "rollouts": rollouts,
        "analysis_rollouts": analysis,
        "rollouts_done": done,
        "rolled_back": windows[-1]["rolled_back_so_far"] if windows else 0,
        "sample_every": every,
        "warmup_rollouts": warmup,
        "minutes": round((time.monotonic() - started) / 60, 1),
        "growth_after_warmup_percent": {
            key: growth(samples, key, warmup) if done > warmup else None
            for key in ("rss_mib", "fds", "threads", "gc_objects", "allocated_blocks")
        },
        "first_window_canary_p50_ms": plain[0]["canary_p50_ms"] if plain else None,
        "last_window_canary_p50_ms": plain[-1]["canary_p50_ms"] if plain else None,
        "windows": windows,
        "samples": samples,
        "load_average_at_start": load,
    }
    return result


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples, windows = result["samples"], result["windows"]
    fig, rss_axis = plt.subplots(figsize=(8, 4), dpi=100)
    rss_axis.plot([s["rollouts"] for s in samples], [s["rss_mib"] for s in samples], "o-", color="tab:blue")
    rss_axis.set_xlabel(
        "rollouts, one after another (one in eight with analysis; a third of those rolled back)"
    )
    rss_axis.set_ylabel("operator RSS (MiB)", color="tab:blue")
    rss_axis.set_ylim(0, max(s["rss_mib"] for s in samples) * 1.3)
    p50_axis = rss_axis.twinx()
    p50_axis.plot(
        [w["rollouts"] for w in windows], [w["canary_p50_ms"] for w in windows], "s-", color="tab:orange"
    )
    p50_axis.set_ylabel(f"p50 Validated -> canary, per {result['sample_every']} (ms)", color="tab:orange")
    p50_axis.set_ylim(0, max(w["canary_p50_ms"] for w in windows) * 1.3)
    fig.suptitle(f"Stamina: {result['rollouts_done']} rollouts on one operator")
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rollouts", type=int, default=2000)
    parser.add_argument("--analysis", type=int, default=300)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    def save(result: dict[str, Any]) -> None:
        write_result("stamina", result, args.out)
        plot(result, args.out / "stamina.png")

    save(measure(args.rollouts, args.analysis, args.every, args.warmup, checkpoint=save))


if __name__ == "__main__":
    main()

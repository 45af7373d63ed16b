"""`make bench`: the benchmark suite on the embedded control plane. Prints one table and writes it as
bench/results/summary.json and summary.md (each part also keeps its own JSON).

- Reconcile latency, p50/p99 next to a bare client's floor measured in the same run:
  ModelVersion Validated -> canary Deployment created (serving), and a TrainingPipeline run finished ->
  its ModelVersion created (training).
- Rollout: Validated -> 100% of traffic with zero-length pauses, next to the time the Deployments take to
  become ready in the same run (the operator's share is the difference).
- Throughput: N endpoints given a new version at once, for N = 1, 2, 4, ...; the largest N whose p50
  Validated -> canary latency stays within twice the N = 1 figure.
- Idle: API writes in a quiet window (target 0).
- Scale: 1,000 ServingEndpoints and 10,000 ModelVersions (bench/scale_bench.py): start-up to all
  reconciled, RSS, steady-state writes, latency under load.

Usage: python bench/suite.py [--quick] [--skip-scale]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client

sys.path.insert(0, str(Path(__file__).parent))
import scale_bench
import serving_bench
from serving_bench import (
    NAMESPACE,
    Watcher,
    model_version,
    percentile,
    summary_ms,
    validate,
    wait,
    write_result,
)
from slipway import GROUP, VERSION
from training_bench import tiny_pipeline, training_cluster

RESULTS = Path(__file__).parent / "results"
PIPELINES = Path(__file__).resolve().parents[1] / "tests" / "training" / "pipelines"


def endpoint_status(custom: client.CustomObjectsApi, name: str) -> dict[str, Any]:
    body = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "servingendpoints", name)
    status: dict[str, Any] = body.get("status") or {}
    return status


def set_steps(custom: client.CustomObjectsApi, names: list[str], steps: list[dict[str, Any]]) -> None:
    for name in names:
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, "servingendpoints", name, {"spec": {"rollout": {"steps": steps}}}
        )


def stable_on(custom: client.CustomObjectsApi, names: list[str], version: int) -> bool:
    return all(
        (s := endpoint_status(custom, n)).get("stableVersion") == version and not s.get("canaryVersion")
        for n in names
    )


def rollout_and_throughput(repeats: int, levels: list[int]) -> Callable[..., dict[str, Any]]:
    def measure(
        cluster: Any,
        api: Any,
        custom: client.CustomObjectsApi,
        store: Path,
        models: list[str],
        creations: Any,
        validated: Any,
    ) -> dict[str, Any]:
        # Rollout: canary 50% -> zero-length pause -> 100%, one endpoint at a time; version 3 everywhere.
        steps = [{"setWeight": 50}, {"pause": {"duration": "0s"}}, {"setWeight": 100}]
        names = models[:repeats]
        set_steps(custom, names, steps)
        totals, ready = [], []
        for name in names:
            model_version(custom, store, name, 3)
            validate(custom, name, 3)
            wait(lambda n=name: stable_on(custom, [n], 3), timeout=120, interval=0.01)
            totals.append(validated.since_validated(name, 3, time.monotonic()))
            deployment = f"{name}-v3"
            ready.append(creations.ready[deployment] - creations.seen[deployment])
        rollout = {
            "repeats": repeats,
            "validated_to_full_traffic_ms": summary_ms(totals),
            "deployment_creation_to_ready_ms": summary_ms(ready),
            "operator_share_ms": summary_ms([t - r for t, r in zip(totals, ready, strict=True)]),
        }
        # Throughput: N endpoints validated at once; latency to each canary Deployment. All start on v3.
        set_steps(custom, models, [{"setWeight": 100}])
        for name in models[repeats:]:
            model_version(custom, store, name, 3)
            validate(custom, name, 3)
        wait(lambda: stable_on(custom, models, 3), timeout=600)
        version, per_level = 4, {}
        for level in levels:
            if level > len(models):
                break
            chosen = models[:level]
            for name in chosen:
                model_version(custom, store, name, version)
            for name in chosen:
                validate(custom, name, version)
            wait(lambda c=chosen, v=version: all(f"{n}-v{v}" in creations.seen for n in c), timeout=300)
            latencies = [
                validated.since_validated(n, version, creations.seen[f"{n}-v{version}"]) for n in chosen
            ]
            per_level[level] = {
                "p50_ms": round(percentile(latencies, 50) * 1000, 1),
                "p99_ms": round(percentile(latencies, 99) * 1000, 1),
            }
            wait(lambda c=chosen, v=version: stable_on(custom, c, v), timeout=300)
            # Endpoints not chosen stay a version behind; bring them level for the next round.
            for name in models[level:]:
                model_version(custom, store, name, version)
                validate(custom, name, version)
            wait(lambda v=version: stable_on(custom, models, v), timeout=600)
            version += 1
        return {"rollout": rollout, "throughput": {"levels": per_level}}

    return measure


class RunFinishes:
    """Polls every run's state.json (every 10 ms) and notes when each first reads finished."""

    def __init__(self, root: Path) -> None:
        self.root, self.finished, self._stop = root, {}, False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop:
            for path in self.root.rglob("state.json"):
                run = path.parent.name
                if run in self.finished:
                    continue
                try:
                    phase = json.loads(path.read_text()).get("phase")
                except (OSError, ValueError):
                    continue
                if phase in ("Succeeded", "Failed"):
                    self.finished[run] = time.monotonic()
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop = True


class VersionCreations(Watcher):
    """When the ModelVersion of each run (label slipway.dev/run) was first seen."""

    def __init__(self, api: client.ApiClient) -> None:
        self.created: dict[str, float] = {}
        custom = client.CustomObjectsApi(api)
        super().__init__(custom.list_namespaced_custom_object, GROUP, VERSION, NAMESPACE, "modelversions")

    def observe(self, body: Any, now: float) -> None:
        labels = body["metadata"].get("labels") or {}
        if "slipway.dev/run" in labels:
            self.created.setdefault(labels["slipway.dev/run"], now)


def training_floor(custom: client.CustomObjectsApi, store: Path, index: int) -> float:
    """What registering a run needs at the least: read the manifest, create the ModelVersion, record it."""
    begin = time.monotonic()
    json.loads((store / "floor" / "1" / "slipway-manifest.json").read_text())
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": f"floor-v{index}"},
        "spec": {"modelName": "floor", "version": index, "uri": f"file://{store}/floor/1"},
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "modelversions", body)
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, NAMESPACE, "trainingpipelines", "p0", {"status": {"lastRun": None}}
    )
    return time.monotonic() - begin


def measure_training(pipelines: int, rounds: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="slipway-bench-training-"))
    (work / "models" / "floor" / "1").mkdir(parents=True)
    (work / "models" / "floor" / "1" / "slipway-manifest.json").write_text(
        '{"modelName": "floor", "version": 1}'
    )
    load = os.getloadavg()
    with training_cluster(work) as (_, api, operator):
        custom = client.CustomObjectsApi(api)
        names = [f"p{i}" for i in range(pipelines)]
        for name in names:
            custom.create_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, "trainingpipelines", tiny_pipeline(work, name)
            )
        finishes, creations = RunFinishes(work / "artifacts"), VersionCreations(api)
        for round_ in range(1, rounds + 1):
            for name in names:
                patch = {"metadata": {"annotations": {f"{GROUP}/run": f"r{round_}"}}}
                custom.patch_namespaced_custom_object(
                    GROUP, VERSION, NAMESPACE, "trainingpipelines", name, patch
                )
            wait(lambda r=round_: len(creations.created) >= r * len(names), timeout=600)
        finishes.stop()
        latencies = [
            creations.created[run] - finishes.finished[run]
            for run in creations.created
            if run in finishes.finished
        ]
        floors = [training_floor(custom, work / "models", i) for i in range(1, len(latencies) + 1)]
        operator.stop()
    return {
        "runs": len(latencies),
        "pipelines_in_parallel": pipelines,
        "run_finished_to_model_version_created_ms": summary_ms(latencies),
        "floor_bare_client_ms": summary_ms(floors),
        "operator_poll_interval_s": 1,
        "load_average_at_start": [round(x, 2) for x in load],
    }


def knee(serving: dict[str, Any]) -> None:
    """The most endpoints rolled out at once whose p50 stays within twice the one-at-a-time p50."""
    base = serving["validated_to_canary_deployment_ms"]["p50"]
    levels = serving["throughput"]["levels"]
    serving["throughput"]["one_at_a_time_p50_ms"] = base
    serving["throughput"]["max_concurrent_within_2x_p50"] = max(
        (n for n, f in levels.items() if f["p50_ms"] <= 2 * base), default=0
    )
    serving["throughput"]["first_level_over_2x"] = next(
        (n for n, f in levels.items() if f["p50_ms"] > 2 * base), None
    )


def row(name: str, figures: str, floor: str = "", note: str = "") -> tuple[str, str, str, str]:
    return (name, figures, floor, note)


def table(summary: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    s, t, sc = summary["serving"], summary["training"], summary.get("scale") or {}
    ms = lambda d: f"p50 {d['p50']:.0f} ms / p99 {d['p99']:.0f} ms"  # noqa: E731
    rows = [
        row(
            "Validated -> canary Deployment",
            ms(s["validated_to_canary_deployment_ms"]),
            ms(s["floor_bare_client_ms"]),
            f"{s['rollouts']} rollouts",
        ),
        row(
            "Run finished -> ModelVersion created",
            ms(t["run_finished_to_model_version_created_ms"]),
            ms(t["floor_bare_client_ms"]),
            f"{t['runs']} runs, {t['pipelines_in_parallel']} pipelines",
        ),
        row(
            "Validated -> 100% (0 s pauses)",
            ms(s["rollout"]["validated_to_full_traffic_ms"]),
            "Deployments ready: " + ms(s["rollout"]["deployment_creation_to_ready_ms"]),
            "operator share p50 " + f"{s['rollout']['operator_share_ms']['p50']:.0f} ms",
        ),
        row(
            "Concurrent rollouts before p50 doubles",
            str(s["throughput"]["max_concurrent_within_2x_p50"]),
            "",
            ", ".join(f"{n}: {f['p50_ms']:.0f} ms" for n, f in s["throughput"]["levels"].items()),
        ),
        row(
            "Idle API writes", f"{s['writes_in_quiet_window']} in {s['quiet_window_seconds']:.0f} s", "0", ""
        ),
    ]
    if sc:
        rows += [
            row(
                f"Scale: start-up to all reconciled ({sc['endpoints']} SE / {sc['model_versions']} MV)",
                f"{sc['startup_to_all_reconciled_seconds']:.0f} s",
                "",
                f"RSS {sc['operator_rss_mib_steady']:.0f} MiB",
            ),
            row("Scale: steady-state writes", f"{sc['steady_state_writes_per_second']}/s", "0", ""),
            row("Scale: Validated -> canary under load", ms(sc["validated_to_canary_under_load_ms"]), "", ""),
        ]
    return rows


def markdown(rows: list[tuple[str, str, str, str]], load: list[float]) -> str:
    lines = ["| measure | Slipway | floor / reference | notes |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    return "\n".join(lines) + f"\n\nLoad average at start: {load}. Machine: {os.cpu_count()} cores.\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (a few minutes), for a smoke run")
    parser.add_argument("--skip-scale", action="store_true", help="reuse bench/results/scale.json")
    args = parser.parse_args()
    load = [round(x, 2) for x in os.getloadavg()]
    rollouts, repeats, levels = (20, 5, [1, 2, 4, 8]) if args.quick else (100, 20, [1, 2, 4, 8, 16, 32, 64])
    summary: dict[str, Any] = {"load_average_at_start": load, "quick": args.quick}
    summary["serving"] = serving_bench.measure(rollouts, 30, extra=rollout_and_throughput(repeats, levels))
    knee(summary["serving"])
    write_result("serving", summary["serving"])
    pipelines, rounds = (5, 2) if args.quick else (10, 10)
    summary["training"] = measure_training(pipelines, rounds)
    write_result("registration", summary["training"])
    if args.skip_scale or args.quick:
        scale_path = RESULTS / "scale.json"
        summary["scale"] = json.loads(scale_path.read_text()) if scale_path.exists() else None
    else:
        summary["scale"] = scale_bench.measure(1000, 10, 20, 60)
        write_result("scale", summary["scale"])
    rows = table(summary)
    text = markdown(rows, load)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "summary.json").write_text(json.dumps({**summary, "table": rows}, indent=2) + "\n")
    (RESULTS / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

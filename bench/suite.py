"""`make bench`: the benchmark suite on the embedded control plane. Prints one table and writes it as
bench/results/summary.json and summary.md (each part also keeps its own JSON).

- Reconcile latency, p50/p99 next to a bare client's floor measured in the same run:
  ModelVersion Validated -> canary Deployment created (serving), and a TrainingPipeline run finished ->
  its ModelVersion created (training; 10 pipelines' runs finish at once, and the floor registers as many
  at once, one thread each).
- Rollout: Validated -> 100% of traffic with zero-length pauses, next to the time the Deployments take to
  become ready in the same run (the operator's share is the difference).
- Throughput: N endpoints given a new version at once, for N = 1, 2, 4, ... (each level repeated to at
  least 20 latencies); the largest N whose p50 Validated -> canary latency stays within twice the
  one-at-a-time figure, next to the bare client's floor with N clients at once (what the machine allows).
- Idle: API writes in a quiet window (target 0).
- Scale: 1,000 ServingEndpoints and 10,000 ModelVersions (bench/scale_bench.py): start-up to all
  reconciled, RSS, steady-state requests (all) and writes, latency under load.

--quick runs small sizes without the scale part and writes under bench/results/quick/, so the committed
figures are never replaced by a smoke run; --only reruns one part and reuses the others' JSON.

Usage: python bench/suite.py [--quick] [--only serving|training|scale ...]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client

sys.path.insert(0, str(Path(__file__).parent))
import scale_bench
import serving_bench
from serving_bench import (
    NAMESPACE,
    Watcher,
    floor_once,
    model_version,
    percentile,
    stable_on,
    summary_ms,
    validate,
    wait,
    write_result,
)
from slipway import GROUP, VERSION
from training_bench import tiny_pipeline, training_cluster

RESULTS = Path(__file__).parent / "results"
MIN_SAMPLES = 20
FLOOR_NAMES = itertools.count(100_000)  # floor objects' names, clear of the serving part's own
PIPELINES = Path(__file__).resolve().parents[1] / "tests" / "training" / "pipelines"


def set_steps(custom: client.CustomObjectsApi, names: list[str], steps: list[dict[str, Any]]) -> None:
    for name in names:
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, "servingendpoints", name, {"spec": {"rollout": {"steps": steps}}}
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
        steps: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {"duration": "0s"}}, {"setWeight": 100}]
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
        # Throughput: N endpoints validated at once; latency to each canary Deployment. Each level is
        # repeated until it has at least MIN_SAMPLES latencies; every endpoint keeps its own version count.
        set_steps(custom, models, [{"setWeight": 100}])
        for name in models[repeats:]:
            model_version(custom, store, name, 3)
            validate(custom, name, 3)
        wait(lambda: stable_on(custom, models, 3), timeout=600)
        current = dict.fromkeys(models, 3)
        per_level = {}
        for level in levels:
            if level > len(models):
                break
            latencies = []
            chosen = models[:level]
            for _ in range(-(-MIN_SAMPLES // level)):
                for name in chosen:
                    current[name] += 1
                    model_version(custom, store, name, current[name])
                for name in chosen:
                    validate(custom, name, current[name])
                deployments = [f"{n}-v{current[n]}" for n in chosen]
                wait(lambda d=deployments: all(x in creations.seen for x in d), timeout=300, interval=0.01)
                latencies += [
                    validated.since_validated(n, current[n], creations.seen[f"{n}-v{current[n]}"])
                    for n in chosen
                ]
                wait(lambda c=chosen: all(stable_on(custom, [n], current[n]) for n in c), timeout=300)
            floors = concurrent_floor(api, level, -(-MIN_SAMPLES // level))
            per_level[level] = {
                "samples": len(latencies),
                "p50_ms": round(percentile(latencies, 50) * 1000, 1),
                "p99_ms": round(percentile(latencies, 99) * 1000, 1),
                "floor_p50_ms": round(percentile(floors, 50) * 1000, 1),
                "floor_p99_ms": round(percentile(floors, 99) * 1000, 1),
            }
        return {"rollout": rollout, "throughput": {"levels": per_level}}

    return measure


def concurrent_floor(api: client.ApiClient, level: int, rounds: int) -> list[float]:
    """The bare client's floor with `level` clients at once, as many rounds as the operator got: what
    the machine and API server allow for that much concurrent work."""
    found: list[float] = []
    with ThreadPoolExecutor(max_workers=level) as pool:
        for _ in range(rounds):
            indexes = [next(FLOOR_NAMES) for _ in range(level)]
            found += pool.map(lambda i: floor_once(api, i), indexes)
    return found


class RunFinishes:
    """Polls every run's state.json (every 10 ms) and notes when each first reads finished. `pattern`
    finds the state files under `root` without walking the runs' outputs: a walk grows with every round
    and burns the CPU the measured processes need."""

    def __init__(self, root: Path, pattern: str) -> None:
        self.root, self.pattern, self._stop = root, pattern, False
        self.finished: dict[str, float] = {}
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop:
            for path in self.root.glob(self.pattern):
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


def training_floor(
    custom: client.CustomObjectsApi, work: Path, creations: VersionCreations, pipelines: int, rounds: int
) -> list[float]:
    """What registering runs needs at the least, under the load the operator had: the measured rounds'
    runs again, their run directories copied, `pipelines` of them at once through the same child process
    the local executor starts (`slipway.training.local_run`), with the operator stopped. A bare client
    registers each as its process exits, one thread per run: read the pushed manifest, create the
    ModelVersion, record it in the pipeline's status. Timed as the operator is: from the run's state.json
    reading finished to the ModelVersion's arrival on the same watch."""
    by_round: dict[int, list[Path]] = {}
    for request in sorted((work / "artifacts").rglob("request.json")):
        version = json.loads(request.read_text())["arguments"]["model_version"]
        by_round.setdefault(version, []).append(request.parent)
    root = work / "floor-runs"
    finishes = RunFinishes(root, "*/state.json")

    def run_and_register(measured: Path) -> str:
        request = json.loads((measured / "request.json").read_text())
        arguments, run = request["arguments"], f"floor-{measured.name}"
        run_dir = root / run
        run_dir.mkdir(parents=True)
        shutil.copy(measured / "pipeline.yaml", run_dir / "pipeline.yaml")
        request["pipelineRoot"] = str(root / "pipeline-root" / arguments["model_name"])
        (run_dir / "request.json").write_text(json.dumps(request))
        child = [sys.executable, "-m", "slipway.training.local_run", str(run_dir)]
        subprocess.run(child, cwd=run_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        model, version = arguments["model_name"], arguments["model_version"]
        store = Path(arguments["model_store_uri"].removeprefix("file://")) / model / str(version)
        json.loads((store / "slipway-manifest.json").read_text())
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelVersion",
            "metadata": {"name": run, "labels": {"slipway.dev/run": run}},
            "spec": {"modelName": f"floor-{model}", "version": version, "uri": f"file://{store}"},
        }
        custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "modelversions", body)
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, NAMESPACE, "trainingpipelines", model, {"status": {"lastRun": None}}
        )
        return run

    latencies: list[float] = []
    with ThreadPoolExecutor(max_workers=pipelines) as pool:
        for round_ in sorted(by_round)[:rounds]:
            runs = list(pool.map(run_and_register, by_round[round_]))
            wait(lambda rs=runs: all(run in creations.created for run in rs), timeout=60, interval=0.01)
            latencies += [creations.created[run] - finishes.finished[run] for run in runs]
    finishes.stop()
    return latencies


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
        finishes, creations = RunFinishes(work / "artifacts", "*/*/runs/*/state.json"), VersionCreations(api)
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
        operator.stop()
        floors = training_floor(custom, work, creations, pipelines, rounds)
    return {
        "runs": len(latencies),
        "pipelines_in_parallel": pipelines,
        "run_finished_to_model_version_created_ms": summary_ms(latencies),
        "floor_bare_client_ms": summary_ms(floors),
        "operator_resync_interval_s": 1,
        "load_average_at_start": [round(x, 2) for x in load],
    }


def knee(serving: dict[str, Any]) -> None:
    """The most endpoints rolled out at once whose p50 stays within twice the one-at-a-time p50 (every
    smaller level too); the same for the bare client's floor, which shows where the machine itself bends."""
    throughput = serving["throughput"]
    levels = throughput["levels"]

    def within(key: str, base: float) -> int:
        over = next((n for n, f in levels.items() if f[key] > 2 * base), None)
        return max((n for n in levels if over is None or n < over), default=0)

    throughput["one_at_a_time_p50_ms"] = serving["validated_to_canary_deployment_ms"]["p50"]
    throughput["max_concurrent_within_2x_p50"] = within("p50_ms", throughput["one_at_a_time_p50_ms"])
    throughput["floor_one_at_a_time_p50_ms"] = serving["floor_bare_client_ms"]["p50"]
    throughput["floor_max_concurrent_within_2x_p50"] = within(
        "floor_p50_ms", throughput["floor_one_at_a_time_p50_ms"]
    )


Row = tuple[str, str, str, str, str]


def row(name: str, figures: str, floor: str = "", target: str = "", note: str = "") -> Row:
    return (name, figures, floor, target, note)


def serving_rows(s: dict[str, Any]) -> list[Row]:
    rollout, throughput = s["rollout"], s["throughput"]
    return [
        row(
            "Validated -> canary Deployment",
            ms(s["validated_to_canary_deployment_ms"]),
            ms(s["floor_bare_client_ms"]),
            "",
            f"{s['rollouts']} rollouts, one at a time",
        ),
        row(
            "Validated -> 100% (0 s pauses)",
            ms(rollout["validated_to_full_traffic_ms"]),
            "Deployments ready: " + ms(rollout["deployment_creation_to_ready_ms"]),
            "",
            f"operator share p50 {rollout['operator_share_ms']['p50']:.0f} ms",
        ),
        row(
            "Concurrent rollouts before p50 doubles",
            str(throughput["max_concurrent_within_2x_p50"]),
            f"bare client: {throughput['floor_max_concurrent_within_2x_p50']}",
            ">= bare client",
            "p50 at N at once (floor): "
            + ", ".join(
                f"{n}: {f['p50_ms']:.0f} ms ({f['floor_p50_ms']:.0f})"
                for n, f in throughput["levels"].items()
            ),
        ),
        row(
            "Idle API writes",
            f"{s['writes_in_quiet_window']} in {s['quiet_window_seconds']:.0f} s",
            "0",
            "0",
        ),
    ]


def training_rows(t: dict[str, Any]) -> list[Row]:
    return [
        row(
            "Run finished -> ModelVersion created",
            ms(t["run_finished_to_model_version_created_ms"]),
            ms(t["floor_bare_client_ms"]),
            "<= 2x floor (p50 and p99)",
            f"{t['runs']} runs, {t['pipelines_in_parallel']} pipelines",
        )
    ]


def scale_rows(sc: dict[str, Any]) -> list[Row]:
    requests = sc.get("steady_state_requests_by_verb_and_resource") or {}
    floor = sc.get("startup_floor_seconds")
    size = f"({sc['endpoints']} SE / {sc['model_versions']} MV)"
    after = sc.get("operator_rss_mib_after_startup", sc["operator_rss_mib_steady"])
    return [
        row(
            f"Scale: start-up to all reconciled {size}",
            f"{sc['startup_to_all_reconciled_seconds']:.0f} s",
            f"bare client, same writes: {floor:.0f} s" if floor else "not measured",
            "<= 2x floor",
            ", ".join(f"{key}: {n}" for key, n in (sc.get("startup_operator_writes") or {}).items())
            + (f", Events: {sc['startup_operator_events']}" if "startup_operator_events" in sc else ""),
        ),
        row(
            f"Scale: operator RSS {size}",
            f"after start-up {after:.0f} MiB, steady {sc['operator_rss_mib_steady']:.0f} MiB",
            "",
            "< 300 MiB",
            f"peak during start-up {sc['operator_rss_mib_peak_during_startup']:.0f} MiB",
        ),
        row("Scale: steady-state writes", f"{sc['steady_state_writes_per_second']}/s", "0", "0"),
        row(
            "Scale: steady-state API requests, all clients",
            f"{sc.get('steady_state_requests_per_second', 'not measured')}/s",
            "",
            "",
            ", ".join(f"{key}: {count}" for key, count in requests.items()),
        ),
        row("Scale: Validated -> canary under load", ms(sc["validated_to_canary_under_load_ms"])),
    ]


def stamina_rows(st: dict[str, Any]) -> list[Row]:
    grew = st["growth_after_warmup_percent"]
    return [
        row(
            f"Stamina: {st['rollouts_done']} rollouts on one operator",
            ", ".join(f"{key} {value:+.1f}%" for key, value in grew.items() if value is not None),
            "",
            f"< 5% growth after {st['warmup_rollouts']}",
            f"{st['rolled_back']} rolled back by analysis; {st['minutes']:.0f} min; `make bench-stamina`",
        ),
        row(
            "Stamina: p50 Validated -> canary, first / last 100 rollouts (plain ones)",
            f"{st['first_window_canary_p50_ms']:.0f} / {st['last_window_canary_p50_ms']:.0f} ms",
            "",
            "within noise",
            "p50 per 100: " + ", ".join(f"{w['canary_p50_ms']:.0f}" for w in st["windows"] if w["plain"]),
        ),
    ]


def ms(figures: dict[str, float]) -> str:
    return f"p50 {figures['p50']:.0f} ms / p99 {figures['p99']:.0f} ms"


def table(summary: dict[str, Any]) -> list[Row]:
    rows = []
    for part, rows_of in (
        ("serving", serving_rows),
        ("training", training_rows),
        ("scale", scale_rows),
        ("stamina", stamina_rows),
    ):
        if summary.get(part):
            rows += rows_of(summary[part])
    return rows


def markdown(rows: list[Row], summary: dict[str, Any]) -> str:
    lines = ["| measure | Slipway | floor / reference | target | notes |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    loads = ", ".join(
        f"{part} {summary[part]['load_average_at_start']}"
        for part in [*PARTS, "stamina"]
        if summary.get(part)
    )
    return (
        "\n".join(lines)
        + f"\n\nLoad average (1, 5, 15 min) at the start of each part: {loads}. "
        + (f"Machine: {os.cpu_count()} cores. Run this time: {', '.join(summary['parts_run'])}.\n")
    )


PARTS = {"serving": "serving", "training": "registration", "scale": "scale"}  # part -> its JSON file


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, no scale part (a few minutes); results/quick/"
    )
    parser.add_argument(
        "--only", action="append", choices=list(PARTS), help="run this part (repeatable); reuse the others"
    )
    args = parser.parse_args()
    out = RESULTS / "quick" if args.quick else RESULTS
    run = set(args.only or PARTS) - ({"scale"} if args.quick else set())
    load = [round(x, 2) for x in os.getloadavg()]
    rollouts, repeats, levels = (20, 5, [1, 2, 4, 8]) if args.quick else (100, 20, [1, 2, 4, 8, 16, 32, 64])
    pipelines, rounds = (5, 2) if args.quick else (10, 10)
    summary: dict[str, Any] = {"load_average_at_start": load, "quick": args.quick, "parts_run": sorted(run)}
    stamina = out / "stamina.json"  # `make bench-stamina` runs it: its figures join the table
    summary["stamina"] = json.loads(stamina.read_text()) if stamina.exists() else None
    for part, file in PARTS.items():
        if part not in run:
            path = out / f"{file}.json"
            summary[part] = json.loads(path.read_text()) if path.exists() else None
            continue
        if part == "serving":
            summary[part] = serving_bench.measure(rollouts, 30, extra=rollout_and_throughput(repeats, levels))
            knee(summary[part])
        elif part == "training":
            summary[part] = measure_training(pipelines, rounds)
        else:
            summary[part] = scale_bench.measure(1000, 10, 20, 60)
        write_result(file, summary[part], out)
    text = markdown(rows := table(summary), summary)
    (out / "summary.json").write_text(json.dumps({**summary, "table": rows}, indent=2) + "\n")
    (out / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

"""Scale benchmark: many ServingEndpoints and ModelVersions in one cluster (prints figures; writes
bench/results/scale.json).

Creates E endpoints, each over its own model with V Validated versions (E x V ModelVersions), then starts
the operator and measures: start-up to "all reconciled" (every endpoint stable on its newest version with
Ready=True), the operator's resident memory, the API requests the whole cluster serves per second at
steady state (all of them, by verb and resource, and the writes on Slipway's resources, which should be
0), and the Validated -> canary Deployment latency under that load.

Usage: python bench/scale_bench.py [--endpoints 1000] [--versions 10] [--probes 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client

sys.path.insert(0, str(Path(__file__).parent))
from serving_bench import (
    NAMESPACE,
    DeploymentCreations,
    ValidatedTimes,
    bench_client,
    delta,
    model_version,
    percentile,
    requests_by_resource,
    validate,
    wait,
    write_result,
    writes_only,
)
from slipway import GROUP, VERSION
from slipway.api.crd import KINDS, crd
from slipway.devcluster import DevCluster
from slipway.devcluster.install import apply_crds
from slipway.devcluster.operator_process import OperatorProcess


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def create_all(custom: client.CustomObjectsApi, store: Path, endpoints: int, versions: int) -> None:
    def one_model(index: int) -> None:
        model = f"m{index}"
        for version in range(1, versions + 1):
            model_version(custom, store, model, version)
            validate(custom, model, version)
        endpoint = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ServingEndpoint",
            "metadata": {"name": model},
            "spec": {
                "modelName": model,
                "replicas": 1,
                "rollout": {"steps": [{"setWeight": 100}]},
                "modelVolume": {"mountPath": str(store), "hostPath": str(store)},
            },
        }
        custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "servingendpoints", endpoint)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(one_model, range(endpoints)))


def reconciled(custom: client.CustomObjectsApi, version: int) -> int:
    items = custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "servingendpoints")["items"]
    done = 0
    for item in items:
        status = item.get("status") or {}
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))
        done += status.get("stableVersion") == version and ready
    return done


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--quiet-seconds", type=float, default=30)
    args = parser.parse_args()
    write_result("scale", measure(args.endpoints, args.versions, args.probes, args.quiet_seconds))


def measure(endpoints: int, versions: int, probes: int, quiet_seconds: float) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="slipway-scale-"))
    load = os.getloadavg()
    result: dict[str, Any] = {"endpoints": endpoints, "model_versions": endpoints * versions}
    with DevCluster(workdir=work / "cluster", full=True) as cluster:
        api = bench_client(cluster.kubeconfig)
        apply_crds(api, [crd(kind) for kind in KINDS])
        client.CoreV1Api(api).create_namespace({"metadata": {"name": NAMESPACE}})
        custom = client.CustomObjectsApi(api)
        started = time.monotonic()
        create_all(custom, work / "models", endpoints, versions)
        result["create_objects_seconds"] = round(time.monotonic() - started, 1)

        operator = OperatorProcess(kubeconfig=cluster.kubeconfig, log_dir=work)
        operator.env.update({"SLIPWAY_RECONCILE_INTERVAL_SECONDS": "60", "SLIPWAY_IMAGE": "slipway:bench"})
        started = time.monotonic()
        operator.start()
        assert operator.popen is not None
        peak = 0.0
        while (done := reconciled(custom, versions)) < endpoints:
            peak = max(peak, rss_mib(operator.popen.pid))
            if time.monotonic() - started > 1800:
                raise TimeoutError(f"only {done}/{endpoints} endpoints reconciled after 30 min")
            time.sleep(2)
        result["startup_to_all_reconciled_seconds"] = round(time.monotonic() - started, 1)
        result["operator_rss_mib_peak_during_startup"] = round(peak, 1)

        time.sleep(10)
        before = requests_by_resource(cluster)
        time.sleep(quiet_seconds)
        # Requests for /metrics (these readings) name no resource, so they do not count themselves.
        served = delta(before, requests_by_resource(cluster))
        grew = writes_only(served)
        result["steady_state_writes_per_second"] = round(sum(grew.values()) / quiet_seconds, 3)
        result["steady_state_writes_by_resource"] = grew
        result["steady_state_requests_per_second"] = round(sum(served.values()) / quiet_seconds, 3)
        result["steady_state_requests_by_verb_and_resource"] = served
        result["operator_rss_mib_steady"] = round(rss_mib(operator.popen.pid), 1)

        creations, validated = DeploymentCreations(api), ValidatedTimes(api)
        time.sleep(1)
        latencies = []
        for index in range(probes):
            model, version = f"m{index}", versions + 1
            model_version(custom, work / "models", model, version)
            validate(custom, model, version)
            wait(lambda m=model, v=version: f"{m}-v{v}" in creations.seen, timeout=120, interval=0.01)
            latencies.append(validated.since_validated(model, version, creations.seen[f"{model}-v{version}"]))
        result["validated_to_canary_under_load_ms"] = {
            "p50": round(percentile(latencies, 50) * 1000, 1),
            "p99": round(percentile(latencies, 99) * 1000, 1),
            "mean": round(statistics.mean(latencies) * 1000, 1),
        }
        operator.stop()
    result["load_average_at_start"] = [round(x, 2) for x in load]
    return result


if __name__ == "__main__":
    main()

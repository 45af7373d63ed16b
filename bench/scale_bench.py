"""Scale benchmark: many ServingEndpoints and ModelVersions in one cluster (prints figures; writes
bench/results/scale.json).

Creates E endpoints, each over its own model with V Validated versions (E x V ModelVersions, which the
operator has never judged), then starts the operator and measures: start-up to "all reconciled" (every
endpoint stable on its newest version with Ready=True, and every version carrying the operator's verdict for
its generation with its Event posted) next to a floor measured in the same run (once the operator is
stopped, a bare client on 32 threads makes the creates, patches, status patches and Events the operator
made at start-up, waiting for each Deployment to be ready as a rollout does), the operator's resident
memory, the API requests the whole cluster serves per second at steady state (all of them, by verb and
resource, and the writes on Slipway's resources, which should be 0), and the Validated -> canary Deployment
latency under that load.

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
from kubernetes.client.rest import ApiException

sys.path.insert(0, str(Path(__file__).parent))
from serving_bench import (
    NAMESPACE,
    DeploymentCreations,
    ValidatedTimes,
    Watcher,
    bench_client,
    delta,
    endpoint_body,
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
from slipway.registry.controller import needs_verdict


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
        custom.create_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, "servingendpoints", endpoint_body(model, store)
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(one_model, range(endpoints)))


FLOOR_NAMESPACE = "floor"
FLOOR_THREADS = 32  # as many as the operator's handler threads (SLIPWAY_MAX_WORKERS)


def operator_writes(served: dict[str, int]) -> dict[str, int]:
    """The writes the operator made, out of the API server's counts for a window: its creates, patches and
    deletes of endpoint children and its status patches (other writers: the controller-manager updates
    Deployments with PUT, kwok and the scheduler write pods, and their Events are counted separately)."""
    mine = ("configmaps", "deployments", "services", "servingendpoints/status", "modelversions/status")
    return {
        key: n
        for key, n in served.items()
        if key.split()[0] in ("POST", "PATCH", "DELETE", "APPLY") and key.split()[1] in mine
    }


def operator_events(core: client.CoreV1Api) -> int:
    """Events the operator posted (about its own kinds; the controllers' are about Deployments and pods)."""
    events = core.list_namespaced_event(NAMESPACE).items
    return sum(e.involved_object.kind in ("ServingEndpoint", "ModelVersion") for e in events)


def share(total: int, parts: int, index: int) -> int:
    """How many of `total` operations part `index` of `parts` makes, spread evenly."""
    return total * (index + 1) // parts - total * index // parts


def startup_floor(
    api: client.ApiClient, store: Path, endpoints: int, writes: dict[str, int], events: int
) -> float:
    """A bare client doing the writes the operator made at start-up, on `FLOOR_THREADS` threads: per endpoint
    its share of each create/patch/delete, waiting for its Deployment's pod to be ready (kwok) as the
    operator's rollout does, then its share of the status patches and Events. Returns the seconds it took
    (the endpoints, which it patches, are created first and not timed)."""
    custom, core, apps = client.CustomObjectsApi(api), client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace({"metadata": {"name": FLOOR_NAMESPACE}})
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(
            pool.map(
                lambda i: custom.create_namespaced_custom_object(
                    GROUP, VERSION, FLOOR_NAMESPACE, "servingendpoints", floor_endpoint(store, i)
                ),
                range(endpoints),
            )
        )
    ready = FloorReady(api)

    def count(key: str, index: int) -> int:
        return share(writes.get(key, 0), endpoints, index)

    def one(index: int) -> None:
        name, labels = f"f{index}", {"app": f"f{index}"}
        for n in range(count("POST configmaps", index)):
            core.create_namespaced_config_map(
                FLOOR_NAMESPACE, {"metadata": {"name": f"{name}-{n}"}, "data": {"models.config": "x" * 200}}
            )
        for n in range(count("POST services", index)):
            core.create_namespaced_service(
                FLOOR_NAMESPACE,
                {
                    "metadata": {"name": f"{name}-{n}"},
                    "spec": {"selector": labels, "ports": [{"name": "http", "port": 8501}]},
                },
            )
        for n in range(count("POST deployments", index)):
            apps.create_namespaced_deployment(
                FLOOR_NAMESPACE,
                {
                    "metadata": {"name": f"{name}-{n}"},
                    "spec": {
                        "replicas": 1,
                        "selector": {"matchLabels": labels},
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": {"containers": [{"name": "c", "image": "example.invalid/tfs:1"}]},
                        },
                    },
                },
            )
        for n in range(count("PATCH deployments", index)):
            apps.patch_namespaced_deployment(
                f"{name}-0", FLOOR_NAMESPACE, {"metadata": {"annotations": {"floor": str(n)}}}
            )
        for n in range(count("PATCH services", index)):
            core.patch_namespaced_service(
                f"{name}-0", FLOOR_NAMESPACE, {"metadata": {"annotations": {"floor": str(n)}}}
            )
        for n in range(count("PATCH configmaps", index)):
            core.patch_namespaced_config_map(f"{name}-0", FLOOR_NAMESPACE, {"data": {"n": str(n)}})
        if count("POST deployments", index):
            wait(lambda: f"{name}-0" in ready.ready, timeout=600, interval=0.02)
        for n in range(count("PATCH servingendpoints/status", index)):
            custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                FLOOR_NAMESPACE,
                "servingendpoints",
                name,
                {"status": {"phase": "Healthy", "observedGeneration": n}},
            )
        for n in range(count("PATCH modelversions/status", index)):
            custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                NAMESPACE,
                "modelversions",
                f"m{index}-v10",
                {"status": {"servedBy": [f"f{n}"]}},
            )
        for _ in range(share(events, endpoints, index)):
            core.create_namespaced_event(
                FLOOR_NAMESPACE,
                {
                    "metadata": {"generateName": f"{name}-"},
                    "involvedObject": {"kind": "ServingEndpoint", "name": name, "namespace": FLOOR_NAMESPACE},
                    "reason": "Floor",
                    "message": "floor",
                    "type": "Normal",
                },
            )

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=FLOOR_THREADS) as pool:
        list(pool.map(one, range(endpoints)))
    return time.monotonic() - started


def floor_endpoint(store: Path, index: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ServingEndpoint",
        "metadata": {"name": f"f{index}"},
        "spec": {"modelName": f"f{index}", "modelVolume": {"mountPath": str(store), "hostPath": str(store)}},
    }


class FloorReady(Watcher):
    """The floor's Deployments whose replicas are all ready."""

    def __init__(self, api: client.ApiClient) -> None:
        self.ready: set[str] = set()
        super().__init__(client.AppsV1Api(api).list_namespaced_deployment, FLOOR_NAMESPACE)

    def observe(self, deployment: Any, now: float) -> None:
        if (deployment.status.ready_replicas or 0) >= (deployment.spec.replicas or 1):
            self.ready.add(deployment.metadata.name)


class Verdicts(Watcher):
    """The ModelVersions that carry the operator's verdict for their generation, its Event posted."""

    def __init__(self, api: client.ApiClient) -> None:
        self.final: set[str] = set()
        custom = client.CustomObjectsApi(api)
        super().__init__(custom.list_namespaced_custom_object, GROUP, VERSION, NAMESPACE, "modelversions")

    def observe(self, body: Any, now: float) -> None:
        name = body["metadata"]["name"]
        if needs_verdict(body):
            self.final.discard(name)
        else:
            self.final.add(name)


def reconciled(custom: client.CustomObjectsApi, version: int) -> int:
    try:
        items = custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "servingendpoints")["items"]
    except ApiException as error:  # a loaded API server times a LIST out (504): this poll counts none
        if error.status not in (429, 500, 503, 504):
            raise
        return 0
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

        operator = OperatorProcess(kubeconfig=cluster.kubeconfig, log_dir=work, live_timeout=600)
        operator.env.update({"SLIPWAY_RECONCILE_INTERVAL_SECONDS": "60", "SLIPWAY_IMAGE": "slipway:bench"})
        served_before = requests_by_resource(cluster)
        started = time.monotonic()
        operator.start()
        assert operator.popen is not None
        peak, verdicts = 0.0, Verdicts(api)
        judged = endpoints * versions
        while (done := reconciled(custom, versions)) < endpoints or len(verdicts.final) < judged:
            peak = max(peak, rss_mib(operator.popen.pid))
            if time.monotonic() - started > 1800:
                raise TimeoutError(
                    f"after 30 min, {done}/{endpoints} endpoints reconciled and "
                    f"{len(verdicts.final)}/{judged} versions judged"
                )
            time.sleep(2)
        result["startup_to_all_reconciled_seconds"] = round(time.monotonic() - started, 1)
        result["operator_rss_mib_peak_during_startup"] = round(peak, 1)
        result["operator_rss_mib_after_startup"] = round(rss_mib(operator.popen.pid), 1)
        writes = operator_writes(delta(served_before, requests_by_resource(cluster)))
        result["startup_operator_writes"] = writes
        result["startup_operator_events"] = events = operator_events(client.CoreV1Api(api))

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
        result["load_average_before_floor"] = [round(x, 2) for x in os.getloadavg()]
        result["startup_floor_seconds"] = round(
            startup_floor(api, work / "models", endpoints, writes, events), 1
        )
    result["load_average_at_start"] = [round(x, 2) for x in load]
    return result


if __name__ == "__main__":
    main()

"""Serving benchmark on the embedded control plane (prints its figures; writes bench/results/serving.json).

1. Latency from a ModelVersion turning Validated to its canary Deployment existing, p50/p99 over N
   rollouts made one at a time (each finishes before the next version is created, so none overlaps the
   tail of the last), next to the floor: a bare client making the calls that job needs (create the
   ConfigMap, create the Deployment; the operator reads the endpoint from its watch), timed in the same
   run.
2. Writes to the API server while nothing changes: apiserver_request_total for write verbs on the
   resources Slipway touches, before and after a quiet window spanning several resync intervals.

Usage: python bench/serving_bench.py [--rollouts 100] [--quiet-seconds 30] (`make bench`: the whole suite)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from slipway import GROUP, VERSION
from slipway.api.crd import KINDS, crd
from slipway.devcluster import DevCluster
from slipway.devcluster.install import apply_crds
from slipway.devcluster.operator_process import OperatorProcess

NAMESPACE = "bench"
WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE", "APPLY")
TOUCHED = ("servingendpoints", "modelversions", "deployments", "services", "configmaps", "events")


def bench_client(kubeconfig: Path, pool: int = 64) -> client.ApiClient:
    """A client for the benchmark itself, with a connection per thread it may run at once (the
    library's default pool is 5 per core; past it, each request would open a new TLS connection)."""
    configuration = client.Configuration()
    config.load_kube_config(str(kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = pool
    return client.ApiClient(configuration)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def writes_by_resource(cluster: DevCluster, resources: tuple[str, ...] = TOUCHED) -> dict[str, int]:
    """Write requests the API server has served on these resources, by anyone (its own metrics), keyed
    `verb resource[/subresource]`."""
    return writes_only(requests_by_resource(cluster), resources)


def writes_only(counts: dict[str, int], resources: tuple[str, ...] = TOUCHED) -> dict[str, int]:
    """The write verbs on these resources, out of a `requests_by_resource` reading."""
    return {
        key: n
        for key, n in counts.items()
        if key.split()[0] in WRITE_VERBS and key.split()[1].split("/")[0] in resources
    }


def requests_by_resource(cluster: DevCluster) -> dict[str, int]:
    """Every request the API server has served on a resource (its own metrics), by anyone, keyed
    `verb resource[/subresource]`. A WATCH counts when its stream ends."""
    counts: dict[str, int] = {}
    pattern = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$")
    for line in cluster.get_text("/metrics").splitlines():
        match = pattern.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if labels.get("verb") and labels.get("resource"):
            key = f"{labels['verb']} {labels['resource']}" + (
                f"/{labels['subresource']}" if labels.get("subresource") else ""
            )
            counts[key] = counts.get(key, 0) + int(float(match["value"]))
    return counts


def writes_on_touched_resources(cluster: DevCluster, resources: tuple[str, ...] = TOUCHED) -> int:
    return sum(writes_by_resource(cluster, resources).values())


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """What grew between two readings of the request counters."""
    return {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)}


def model_version(custom: client.CustomObjectsApi, store: Path, model: str, version: int) -> None:
    directory = store / model / str(version)
    directory.mkdir(parents=True, exist_ok=True)
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": f"{model}-v{version}"},
        "spec": {"modelName": model, "version": version, "uri": f"file://{directory}"},
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "modelversions", body)


def endpoint_body(name: str, store: Path, steps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A ServingEndpoint of one replica over model `name` in the file:// store, one step to 100% unless
    other steps are given."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ServingEndpoint",
        "metadata": {"name": name},
        "spec": {
            "modelName": name,
            "replicas": 1,
            "rollout": {"steps": steps or [{"setWeight": 100}]},
            "modelVolume": {"mountPath": str(store), "hostPath": str(store)},
        },
    }


def endpoint_status(custom: client.CustomObjectsApi, name: str) -> dict[str, Any]:
    body = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "servingendpoints", name)
    status: dict[str, Any] = body.get("status") or {}
    return status


def stable_on(custom: client.CustomObjectsApi, names: list[str], version: int) -> bool:
    """Every one of these endpoints serves `version` as stable with no canary left."""
    return all(
        (s := endpoint_status(custom, n)).get("stableVersion") == version and not s.get("canaryVersion")
        for n in names
    )


def validate(custom: client.CustomObjectsApi, model: str, version: int) -> None:
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, NAMESPACE, "modelversions", f"{model}-v{version}", {"status": {"phase": "Validated"}}
    )


def wait(predicate: Any, timeout: float = 120, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark precondition not reached")
        time.sleep(interval)


class Watcher:
    """Follows one list in a background thread from its start, reconnecting when the API server is not
    ready yet or the stream ends; `observe` gets each object with the time it arrived."""

    def __init__(self, lister: Any, *args: Any) -> None:
        self.lister, self.args = lister, args
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                for event in watch.Watch().stream(self.lister, *self.args, timeout_seconds=3600):
                    self.observe(event["object"], time.monotonic())
            except Exception:  # not ready yet ("storage is (re)initializing"), or gone at the end
                pass
            time.sleep(0.2)

    def observe(self, obj: Any, now: float) -> None:
        raise NotImplementedError


class DeploymentCreations(Watcher):
    """When each Deployment was first seen (`seen`) and first had all its replicas ready (`ready`)."""

    def __init__(self, api: client.ApiClient) -> None:
        self.seen: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        super().__init__(client.AppsV1Api(api).list_namespaced_deployment, NAMESPACE)

    def observe(self, deployment: Any, now: float) -> None:
        name = deployment.metadata.name
        self.seen.setdefault(name, now)
        wanted = deployment.spec.replicas or 0
        if wanted and (deployment.status.ready_replicas or 0) >= wanted:
            self.ready.setdefault(name, now)


class ValidatedTimes(Watcher):
    """When each ModelVersion first read Validated. The registry gives a version without gates its verdict
    on its own, often before the benchmark's own status patch, so latencies start here."""

    def __init__(self, api: client.ApiClient) -> None:
        self.at: dict[str, float] = {}
        custom = client.CustomObjectsApi(api)
        super().__init__(custom.list_namespaced_custom_object, GROUP, VERSION, NAMESPACE, "modelversions")

    def observe(self, body: Any, now: float) -> None:
        if (body.get("status") or {}).get("phase") == "Validated":
            self.at.setdefault(body["metadata"]["name"], now)

    def since_validated(self, model: str, version: int, until: float) -> float:
        wait(lambda: f"{model}-v{version}" in self.at, timeout=60)
        return until - self.at[f"{model}-v{version}"]


def floor_once(api: client.ApiClient, index: int) -> float:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    name = f"floor-{index}"
    labels = {"app": name}
    started = time.monotonic()
    core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": name}, "data": {"models.config": "x"}})
    apps.create_namespaced_deployment(
        NAMESPACE,
        {
            "metadata": {"name": name},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "c", "image": "example.invalid/tfs:1"}]},
                },
            },
        },
    )
    return time.monotonic() - started


def write_result(name: str, result: dict[str, Any], out: Path = Path(__file__).parent / "results") -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def summary_ms(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50) * 1000, 1),
        "p99": round(percentile(values, 99) * 1000, 1),
        "mean": round(statistics.mean(values) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rollouts", type=int, default=100)
    parser.add_argument("--quiet-seconds", type=float, default=30)
    args = parser.parse_args()
    write_result("serving", measure(args.rollouts, args.quiet_seconds))


def measure(rollouts: int, quiet_seconds: float, extra: Any = None) -> dict[str, Any]:
    """`extra(cluster, api, custom, store, models)`, when given, runs more measurements on the same cluster
    once the latency and idle figures are taken; its dict is merged into the result."""
    work = Path(tempfile.mkdtemp(prefix="slipway-bench-"))
    load = os.getloadavg()
    more: dict[str, Any] = {}
    with DevCluster(workdir=work / "cluster", full=True) as cluster:
        api = bench_client(cluster.kubeconfig)
        apply_crds(api, [crd(kind) for kind in KINDS])
        client.CoreV1Api(api).create_namespace({"metadata": {"name": NAMESPACE}})
        custom = client.CustomObjectsApi(api)
        operator = OperatorProcess(kubeconfig=cluster.kubeconfig, log_dir=work)
        operator.env.update({"SLIPWAY_RECONCILE_INTERVAL_SECONDS": "10", "SLIPWAY_IMAGE": "slipway:bench"})
        operator.start()
        store = work / "models"
        models = [f"m{i}" for i in range(rollouts)]
        for model in models:
            model_version(custom, store, model, 1)
            validate(custom, model, 1)
            custom.create_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, "servingendpoints", endpoint_body(model, store)
            )

        def all_stable(version: int) -> bool:
            items = custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "servingendpoints")[
                "items"
            ]
            return all((i.get("status") or {}).get("stableVersion") == version for i in items)

        wait(lambda: all_stable(1), timeout=300)
        creations, validated = DeploymentCreations(api), ValidatedTimes(api)
        time.sleep(1)
        latencies: list[float] = []
        for model in models:
            model_version(custom, store, model, 2)
            validate(custom, model, 2)
            wait(lambda m=model: f"{m}-v2" in creations.seen, timeout=60)
            latencies.append(validated.since_validated(model, 2, creations.seen[f"{model}-v2"]))
            wait(lambda m=model: stable_on(custom, [m], 2), timeout=60, interval=0.01)
        floors = [floor_once(api, i) for i in range(rollouts)]
        wait(lambda: all_stable(2), timeout=300)
        time.sleep(5)
        before = writes_by_resource(cluster)
        time.sleep(quiet_seconds)
        grew = delta(before, writes_by_resource(cluster))
        if extra is not None:
            more = extra(cluster, api, custom, store, models, creations, validated)
        operator.stop()

    return {
        "rollouts": rollouts,
        "validated_to_canary_deployment_ms": summary_ms(latencies),
        "floor_bare_client_ms": summary_ms(floors),
        "quiet_window_seconds": quiet_seconds,
        "writes_in_quiet_window": sum(grew.values()),
        "writes_in_quiet_window_by_resource": grew,
        **more,
        "load_average_at_start": [round(x, 2) for x in load],
    }


if __name__ == "__main__":
    main()

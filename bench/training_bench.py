"""Training benchmark on the embedded control plane (prints its figures; writes bench/results/training.json).

1. A manual run request (annotation) → the run recorded in status → the ModelVersion Validated, p50/max over
   N sequential runs of the tiny test pipeline through the local executor (real kfp.local child process);
   the pipeline's own execution time (from its state file) is reported beside it, so the operator's share
   is visible.
2. Writes to the API server while nothing changes: apiserver_request_total for write verbs on
   trainingpipelines and modelversions over a quiet window spanning many poll intervals.

Usage: python bench/training_bench.py [--runs 5] [--quiet-seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from kubernetes import client

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fixtures.pipelines import local_pipeline
from serving_bench import bench_client, writes_on_touched_resources
from slipway import GROUP, VERSION
from slipway.api.crd import KINDS, crd
from slipway.devcluster import DevCluster
from slipway.devcluster.install import apply_crds
from slipway.devcluster.operator_process import OperatorProcess

NAMESPACE = "bench"
PIPELINES = Path(__file__).resolve().parents[1] / "tests" / "training" / "pipelines"


def wait(predicate: Any, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise TimeoutError("benchmark step timed out")


@contextmanager
def training_cluster(work: Path) -> Iterator[tuple[DevCluster, client.ApiClient, OperatorProcess]]:
    """A minimal control plane with the CRDs, the bench namespace, and the operator running the tiny test
    pipeline through the local executor (1 s polls), over a one-file data set under `work`."""
    (work / "data").mkdir()
    (work / "data" / "a.csv").write_text("x,y\n1,2\n")
    with DevCluster(workdir=work / "cluster", full=False) as cluster:
        api = bench_client(cluster.kubeconfig)
        apply_crds(api, [crd(kind) for kind in KINDS])
        client.CoreV1Api(api).create_namespace({"metadata": {"name": NAMESPACE}})
        operator = OperatorProcess(kubeconfig=cluster.kubeconfig, log_dir=work)
        operator.env.update({"SLIPWAY_PIPELINES_DIR": str(PIPELINES), "SLIPWAY_TRAINING_POLL_SECONDS": "1"})
        operator.start()
        yield cluster, api, operator


def tiny_pipeline(work: Path, name: str, **spec: Any) -> dict[str, Any]:
    return local_pipeline(work, name, successfulRunsHistoryLimit=100, **spec)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quiet-seconds", type=float, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="slipway-training-bench-"))
    load = os.getloadavg()
    with training_cluster(work) as (cluster, api, operator):
        custom = client.CustomObjectsApi(api)
        body = tiny_pipeline(work, "tiny", gates={"metrics": [{"name": "accuracy", "min": "0.9"}]})
        custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "trainingpipelines", body)

        def status() -> dict[str, Any]:
            got = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "trainingpipelines", "tiny")
            return got.get("status") or {}

        wait(lambda: any(c["type"] == "Ready" for c in status().get("conditions", [])))
        to_started, to_validated, pipeline_seconds = [], [], []
        for index in range(1, args.runs + 1):
            patch = {"metadata": {"annotations": {f"{GROUP}/run": f"bench-{index}"}}}
            begin = time.monotonic()
            custom.patch_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, "trainingpipelines", "tiny", patch
            )
            record = wait(lambda i=index: len(status().get("runs", [])) >= i and status()["runs"][i - 1])
            to_started.append(time.monotonic() - begin)

            def validated(i: int = index) -> bool:
                try:
                    mv = custom.get_namespaced_custom_object(
                        GROUP, VERSION, NAMESPACE, "modelversions", f"tiny-v{i}"
                    )
                except client.ApiException:
                    return False
                return (mv.get("status") or {}).get("phase") == "Validated"

            wait(validated)
            to_validated.append(time.monotonic() - begin)
            state = json.loads(
                (work / "artifacts" / NAMESPACE / "tiny" / "runs" / record["id"] / "state.json").read_text()
            )
            started, finished = (
                datetime.fromisoformat(state[k].replace("Z", "+00:00")) for k in ("started", "finished")
            )
            pipeline_seconds.append((finished - started).total_seconds())
        time.sleep(3)
        before = writes_on_touched_resources(cluster, ("trainingpipelines", "modelversions"))
        time.sleep(args.quiet_seconds)
        idle = writes_on_touched_resources(cluster, ("trainingpipelines", "modelversions")) - before
        operator.stop()
    result = {
        "runs": args.runs,
        "request_to_run_recorded_s": {
            "p50": round(statistics.median(to_started), 3),
            "max": round(max(to_started), 3),
        },
        "request_to_model_version_validated_s": {
            "p50": round(statistics.median(to_validated), 2),
            "max": round(max(to_validated), 2),
        },
        "pipeline_execution_s_state_file_resolution_1s": {
            "p50": statistics.median(pipeline_seconds),
            "max": max(pipeline_seconds),
        },
        "idle_writes": {"seconds": args.quiet_seconds, "poll_interval_s": 1, "writes": idle},
        "load_average_at_start": [round(x, 2) for x in load],
    }
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "training.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

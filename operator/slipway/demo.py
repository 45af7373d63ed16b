"""`make demo`: the whole loop on the embedded control plane, narrated.

Starts (in the background, until `make demo-down`) the control plane, a loopback TF Serving stand-in that
runs the pushed models with real TensorFlow, and the operator with the local executor and a file:// store;
then trains the penguins pipeline and follows v1 to serving, v2 through a canary to promotion, and a
deliberately bad v3 to Rejected, never served; then drops two batches where the drift trigger watches:
a resample (no drift, nothing runs) and a shifted one, whose Drift run gives v4, rolled out in turn."""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from slipway import GROUP, VERSION
from slipway.devcluster.binaries import find_tool
from slipway.devcluster.cluster import free_port

NAMESPACE = "demo"
console = Console()


def _spawn(name: str, workdir: Path, args: list[str], env: dict[str, str] | None = None) -> int:
    log = (workdir / f"{name}.log").open("ab")
    process = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )
    (workdir / f"{name}.pid").write_text(str(process.pid))
    return process.pid


def _wait(what: str, check: Callable[[], Any], progress: Progress, timeout: float = 600) -> Any:
    task = progress.add_task(what, total=None)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (ApiException, OSError, urllib3.exceptions.HTTPError):  # not up yet: ask again
            value = None
        if value:
            progress.update(task, completed=1, total=1, description=f"[green]✓[/] {what}")
            return value
        time.sleep(1)
    progress.update(task, description=f"[red]✗[/] {what} (timed out)")
    raise SystemExit(f"demo: timed out waiting for: {what}; logs are in {progress.console.file.name}")


def penguins_csv() -> Path:
    return Path(str(resources.files("palmerpenguins") / "data" / "penguins.csv"))


def up(workdir: Path) -> int:
    workdir.mkdir(parents=True, exist_ok=True)
    if (workdir / "cluster.pid").exists():
        console.print(f"A demo is already up ({workdir}); `make demo-down` first.")
        return 1
    python = sys.executable
    for directory in ("data", "artifacts", "models", "batches"):
        (workdir / directory).mkdir(exist_ok=True)
    shutil.copyfile(penguins_csv(), workdir / "data" / "penguins.csv")
    kubeconfig = workdir / "cluster" / "admin.kubeconfig"
    model_port = free_port()
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as progress:
        _spawn(
            "cluster",
            workdir,
            [python, "-m", "slipway.cli", "dev-cluster", "up", "--workdir", str(workdir / "cluster")],
        )
        api = _wait(
            "control plane: etcd, kube-apiserver, controller-manager, scheduler, kwok; CRDs installed",
            lambda: kubeconfig.exists() and _crds_ready(kubeconfig),
            progress,
        )
        _spawn(
            "model-server",
            workdir,
            [
                python,
                "-m",
                "slipway.devcluster.model_server",
                "--store",
                str(workdir / "models"),
                "--port",
                str(model_port),
            ],
        )
        _spawn(
            "operator",
            workdir,
            [
                python,
                "-m",
                "slipway.cli",
                "run",
                "--standalone",
                f"--metrics-port={free_port()}",
                f"--liveness-port={free_port()}",
            ],
            env={
                "KUBECONFIG": str(kubeconfig),
                "SLIPWAY_TFSERVING_URL_TEMPLATE": f"http://127.0.0.1:{model_port}/{{namespace}}/{{service}}",
                "SLIPWAY_RECONCILE_INTERVAL_SECONDS": "2",
                "SLIPWAY_TRAINING_POLL_SECONDS": "2",
                "SLIPWAY_IMAGE": "slipway:demo",
            },
        )
        custom = client.CustomObjectsApi(api)
        client.CoreV1Api(api).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE))
        )
        create(custom, "trainingpipelines", pipeline(workdir))
        create(custom, "servingendpoints", endpoint(workdir))

        def mv(version: int) -> Any:
            return lambda: _phase(custom, f"penguins-v{version}")

        def stable(version: int) -> Any:
            return lambda: _status(custom, "servingendpoints", "penguins").get("stableVersion") == version

        request_run(custom, "1")
        _wait(
            "run 1: penguins pipeline (TF, Keras, evaluator, infra-validator, pusher)",
            lambda: _pushed(custom),
            progress,
        )
        _wait("ModelVersion penguins-v1: gates evaluated", mv(1), progress)
        _wait("ServingEndpoint penguins serves v1", stable(1), progress)
        request_run(custom, "2")
        _wait("run 2: retrain", lambda: _pushed(custom, "penguins-v2"), progress)
        _wait("ModelVersion penguins-v2: gates evaluated", mv(2), progress)
        _wait(
            "v2 canary: 50% -> analysis (real predictions) -> 100%",
            lambda: _status(custom, "servingendpoints", "penguins").get("canaryVersion") == 2,
            progress,
        )
        _wait("v2 promoted", stable(2), progress)
        request_run(custom, "3", bad=True)
        _wait(
            "run 3: deliberately bad (1 epoch, tiny learning rate)",
            lambda: _pushed(custom, "penguins-v3"),
            progress,
        )
        phase = _wait("ModelVersion penguins-v3: gates evaluated", mv(3), progress)
        progress.console.print(f"penguins-v3 is [bold]{phase}[/]: it is never rolled out; v2 keeps serving.")
        restore_parameters(custom)
        (workdir / "batches" / "day-1.csv").write_bytes(penguin_batch(shift=False, seed=1))
        _wait("batch day-1 (a resample): checked for drift", _checked(custom, "day-1.csv"), progress)
        (workdir / "batches" / "day-2.csv").write_bytes(penguin_batch(shift=True, seed=2))
        verdict = _wait(
            "batch day-2 (body mass x1.5, a new island): checked for drift",
            _checked(custom, "day-2.csv"),
            progress,
        )
        progress.console.print(f"day-2 [bold]{verdict['outcome']}[/]: {verdict['summary']}")
        _wait("run 4: started by drift", lambda: _pushed(custom, "penguins-v4"), progress)
        _wait("ModelVersion penguins-v4: gates evaluated", mv(4), progress)
        _wait("v4 canary -> promoted", stable(4), progress)
    console.print()
    kubectl = str(find_tool("kubectl"))
    subprocess.run([kubectl, "--kubeconfig", str(kubeconfig), "get", "slipway", "-n", NAMESPACE], check=False)
    console.print(
        f"\nThe cluster stays up. [bold]export KUBECONFIG={kubeconfig}[/] and explore "
        f"(kubectl get slipway -n {NAMESPACE}, kubectl describe mv penguins-v3 -n {NAMESPACE}); "
        "`make demo-down` stops everything."
    )
    return 0


def penguin_batch(shift: bool, rows: int = 200, seed: int = 0) -> bytes:
    """A day's batch: a resample of the penguins, or one where they weigh half as much again and a quarter
    of them live on an island the model never saw."""
    header, *lines = penguins_csv().read_text().splitlines()
    rng = random.Random(seed)
    mass, island = header.split(",").index("body_mass_g"), header.split(",").index("island")
    out = []
    for i in range(rows):
        fields = rng.choice(lines).split(",")
        if shift and fields[mass] != "NA":
            fields[mass] = str(float(fields[mass]) * 1.5)
        if shift and i % 4 == 0:
            fields[island] = "Atlantis"
        out.append(",".join(fields))
    return ("\n".join([header, *out]) + "\n").encode()


def _checked(custom: client.CustomObjectsApi, key: str) -> Callable[[], Any]:
    def check() -> Any:
        batches = (_status(custom, "trainingpipelines", "penguins").get("drift") or {}).get("batches", [])
        return next((b for b in batches if b["batch"] == key and b["outcome"] != "Baseline"), None)

    return check


def _crds_ready(kubeconfig: Path) -> client.ApiClient | None:
    api = config.new_client_from_config(str(kubeconfig))
    client.CustomObjectsApi(api).list_namespaced_custom_object(GROUP, VERSION, "default", "servingendpoints")
    return api


def create(custom: client.CustomObjectsApi, plural: str, body: dict[str, Any]) -> None:
    custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, body)


def pipeline(workdir: Path) -> dict[str, Any]:
    root = workdir.resolve()
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingPipeline",
        "metadata": {"name": "penguins"},
        "spec": {
            "pipeline": {"builtin": "penguins"},
            "modelName": "penguins",
            "data": {"uri": f"file://{root}/data/penguins.csv"},
            "artifactRoot": {"uri": f"file://{root}/artifacts"},
            "modelStore": {"uri": f"file://{root}/models"},
            "triggers": {"onDrift": {"batches": {"uri": f"file://{root}/batches"}, "pollIntervalSeconds": 5}},
            "gates": {
                "metrics": [{"name": "accuracy", "min": "0.9"}],
                "mustBeatChampion": {"metric": "accuracy", "minDelta": "-0.05"},
                "requireBlessings": {"evaluator": True, "infraValidator": True},
            },
        },
    }


def endpoint(workdir: Path) -> dict[str, Any]:
    root = str(workdir.resolve())
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ServingEndpoint",
        "metadata": {"name": "penguins"},
        "spec": {
            "modelName": "penguins",
            "replicas": 2,
            "modelVolume": {"mountPath": root, "hostPath": root},  # the file:// model store, for the puller
            "rollout": {
                "steps": [
                    {"setWeight": 50},
                    {"analysis": {}},
                    {"pause": {"duration": "3s"}},
                    {"setWeight": 100},
                ]
            },
        },
    }


# The pipeline's own evaluator blesses within 5% of the champion; the bad run is blessed by the pipeline
# on purpose, so that it is the operator's gate (accuracy >= 0.9) that rejects it.
GOOD_RUN = {"max_accuracy_drop": "0.05"}
BAD_RUN = {"epochs": "1", "learning_rate": "0.0001", "min_accuracy": "0", "max_accuracy_drop": "1"}


def restore_parameters(custom: client.CustomObjectsApi) -> None:
    """Back to the good parameters (null deletes the bad run's keys in a merge patch)."""
    parameters: dict[str, Any] = {key: None for key in BAD_RUN} | GOOD_RUN
    patch = {"spec": {"parameters": parameters}}
    custom.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "trainingpipelines", "penguins", patch)


def request_run(custom: client.CustomObjectsApi, token: str, bad: bool = False) -> None:
    parameters = BAD_RUN if bad else GOOD_RUN
    patch: dict[str, Any] = {
        "metadata": {"annotations": {f"{GROUP}/run": token}},
        "spec": {"parameters": parameters},
    }
    custom.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "trainingpipelines", "penguins", patch)


def _status(custom: client.CustomObjectsApi, plural: str, name: str) -> dict[str, Any]:
    body = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, name)
    status: dict[str, Any] = body.get("status") or {}
    return status


def _pushed(custom: client.CustomObjectsApi, model_version: str = "penguins-v1") -> bool:
    last = _status(custom, "trainingpipelines", "penguins").get("lastRun") or {}
    if last.get("phase") == "Failed":
        raise SystemExit(f"demo: run {last.get('id')} failed: {last.get('message')}")
    return bool(last.get("modelVersion") == model_version)


def _phase(custom: client.CustomObjectsApi, name: str) -> str | None:
    try:
        body = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "modelversions", name)
    except ApiException:
        return None
    phase: str | None = (body.get("status") or {}).get("phase")
    return phase


def down(workdir: Path) -> int:
    stopped = []
    for name in ("operator", "model-server", "cluster"):
        pid_file = workdir / f"{name}.pid"
        if not pid_file.exists():
            continue
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)
            stopped.append(name)
        except (ProcessLookupError, ValueError):
            pass
        pid_file.unlink()
    time.sleep(2)
    shutil.rmtree(workdir, ignore_errors=True)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}; removed {workdir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="slipway demo", description=__doc__)
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--workdir", default=".demo", type=Path)
    args = parser.parse_args(argv)
    return up(args.workdir.resolve()) if args.action == "up" else down(args.workdir.resolve())


if __name__ == "__main__":
    sys.exit(main())

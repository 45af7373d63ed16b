"""`make demo`: the whole loop on the embedded control plane, narrated.

Where the machine can run a real node (root, containerd; `slipway.devcluster.realnode`), every container
runs: the control plane with a real node (kubelet, containerd, kube-proxy, CoreDNS) and Slipway's images
(`hack/images.sh`), moto's S3 server on the node's bridge address, the operator installed in-cluster from
manifests/overlays/dev, training as Kubernetes Jobs in the pipelines image, models served by the
model-server image; it ends with a prediction sent through the endpoint's Service. Elsewhere it says why and
falls back to kwok's fake node: the operator as a host process with the local executor, a file:// store, and
a loopback TF Serving stand-in that runs the pushed models with real TensorFlow.

Either way (in the background, until `make demo-down`) the same story: the penguins pipeline trains v1 to
serving, v2 through a canary to promotion, and a deliberately bad v3 to Rejected, never served; then two
batches land where the drift trigger watches: a resample (no drift, nothing runs) and a shifted one, whose
Drift run gives v4, rolled out in turn."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from slipway import GROUP, VERSION
from slipway.devcluster import incluster, realnode
from slipway.devcluster.binaries import find_tool
from slipway.devcluster.cluster import free_port
from slipway.storage.credentials import StorageCredentials

NAMESPACE = "demo"
MODEL = "penguins"
REST_PORT = 8501  # TF Serving's REST port, on every serving Service
REPO = Path(__file__).resolve().parents[2]
BUCKET = "slipway-demo"
S3_SECRET = "demo-s3"
# Stopped in this order by `demo down`; each has a <name>.pid in the workdir.
PROCESSES = ("operator", "model-server", "s3", "cluster")
PENGUIN = {
    "island": "Biscoe",
    "bill_length_mm": 48.6,
    "bill_depth_mm": 16.0,
    "flipper_length_mm": 230.0,
    "body_mass_g": 5800.0,
    "sex": "male",
    "year": 2009,  # the penguins CSV has a year column, so the serving signature takes one
}
console = Console()


class DemoError(RuntimeError):
    pass


@dataclass
class Narration:
    """The live progress display, and the background processes the demo starts (logs in the workdir)."""

    progress: Progress
    workdir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: `demo down` stops it and its children
            env={**os.environ, **(env or {})},
        )
        (self.workdir / f"{name}.pid").write_text(str(process.pid))
        self.processes[name] = process

    def say(self, text: str) -> None:
        self.progress.console.print(text)

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 600) -> Any:
        task = self.progress.add_task(what, total=None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._fail_if_a_process_died(what, task)
            try:
                value = check()
            except (ApiException, OSError, urllib3.exceptions.HTTPError):  # not up yet: ask again
                value = None
            if value:
                self.progress.update(task, completed=1, total=1, description=f"[green]✓[/] {what}")
                return value
            time.sleep(1)
        self.progress.update(task, description=f"[red]✗[/] {what} (timed out)")
        raise DemoError(f"timed out waiting for: {what}; logs are in {self.workdir}")

    def _fail_if_a_process_died(self, what: str, task: Any) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                self.progress.update(task, description=f"[red]✗[/] {what} ({name} exited)")
                log = self.workdir / f"{name}.log"
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                raise DemoError(f"{name} exited with code {process.returncode}; {log} ends:\n{tail}")


@dataclass
class Stage:
    """Everything the kwok and real demos differ in; the story itself is the same."""

    node: str
    api: client.ApiClient
    kubeconfig: Path
    locations: dict[str, dict[str, Any]]  # data, artifactRoot, modelStore, batches
    put_batch: Callable[[str, bytes], Any]  # a day's batch where the drift trigger watches
    pipeline_extra: dict[str, Any]
    endpoint_extra: dict[str, Any]
    model_url: Callable[[], str]  # where the closing prediction goes
    run_timeout: float


def penguins_csv() -> Path:
    return Path(str(resources.files("palmerpenguins") / "data" / "penguins.csv"))


# --- which node (pure) ---------------------------------------------------------------------------------


def choose_node(requested: str, unavailable: str | None) -> tuple[str, str | None]:
    """(node, why not a real one). `requested`: auto (a real node where the machine allows it), kwok, real."""
    if requested == "kwok":
        return "kwok", "kwok was asked for (--node kwok)"
    if unavailable is None:
        return "real", None
    if requested == "real":
        raise DemoError(f"--node real, but this machine cannot run a real node: {unavailable}")
    return "kwok", unavailable


def lock_holder(proc_locks: str, device: tuple[int, int], inode: int) -> int | None:
    """The pid holding a lock on (device, inode), from the text of /proc/locks."""
    wanted = f"{device[0]:02x}:{device[1]:02x}:{inode}"
    for line in proc_locks.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[5] == wanted and fields[4].isdigit():
            return int(fields[4])
    return None


def real_node_unavailable() -> str | None:
    """realnode's own reason, or that another real node (the e2e tier's, say) holds the machine's one."""
    if (reason := realnode.unavailable_reason()) is not None:
        return reason
    try:
        stat = realnode.LOCK.stat()
        locks = Path("/proc/locks").read_text()
    except OSError:
        return None
    holder = lock_holder(locks, (os.major(stat.st_dev), os.minor(stat.st_dev)), stat.st_ino)
    if holder is not None:
        return f"another real node is running on this machine (pid {holder} holds {realnode.LOCK})"
    return None


# --- what the story creates (pure) ---------------------------------------------------------------------


def file_locations(workdir: Path) -> dict[str, dict[str, Any]]:
    root = workdir.resolve()
    return {
        "data": {"uri": f"file://{root}/data/penguins.csv"},
        "artifactRoot": {"uri": f"file://{root}/artifacts"},
        "modelStore": {"uri": f"file://{root}/models"},
        "batches": {"uri": f"file://{root}/batches"},
    }


def s3_locations(bucket: str, secret: str, endpoint: str) -> dict[str, dict[str, Any]]:
    def location(prefix: str) -> dict[str, Any]:
        return {"uri": f"s3://{bucket}/{prefix}", "secretRef": {"name": secret}, "endpoint": endpoint}

    return {
        "data": location("data/penguins.csv"),
        "artifactRoot": location("artifacts"),
        "modelStore": location("models"),
        "batches": location("batches"),
    }


def pipeline(locations: dict[str, dict[str, Any]], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingPipeline",
        "metadata": {"name": MODEL},
        "spec": {
            "pipeline": {"builtin": {"name": "penguins"}},
            "modelName": MODEL,
            "data": locations["data"],
            "artifactRoot": locations["artifactRoot"],
            "modelStore": locations["modelStore"],
            "triggers": {"onDrift": {"batches": locations["batches"], "pollIntervalSeconds": 5}},
            "gates": {
                "metrics": [{"name": "accuracy", "min": "0.9"}],
                "mustBeatChampion": {"metric": "accuracy", "minDelta": "-0.05"},
                "requireBlessings": {"evaluator": True, "infraValidator": True},
            },
            **(extra or {}),
        },
    }


def endpoint(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ServingEndpoint",
        "metadata": {"name": MODEL},
        "spec": {
            "modelName": MODEL,
            "replicas": 2,
            "rollout": {
                "steps": [
                    {"setWeight": 50},
                    {"analysis": {}},
                    {"pause": {"duration": "3s"}},
                    {"setWeight": 100},
                ]
            },
            **(extra or {}),
        },
    }


def kwok_serving(workdir: Path) -> dict[str, Any]:
    root = str(workdir.resolve())
    return {"modelVolume": {"mountPath": root, "hostPath": root}}  # the file:// model store, for the puller


def real_serving(model_server_image: str) -> dict[str, Any]:
    """The model-server image (`localhost/slipway-model-server:dev`) as the endpoint's runtime, with requests
    sized for a 2-core machine."""
    image, _, tag = model_server_image.rpartition(":")
    return {
        "runtime": {
            "image": image,
            "version": tag,
            "resources": {"requests": {"cpu": "20m", "memory": "256Mi"}},
        }
    }


def parse_images(output: str) -> dict[str, Path]:
    """hack/images.sh's `image-ref archive-path` lines."""
    lines = [line.split(" ", 1) for line in output.splitlines() if line.strip()]
    return {ref: Path(path) for ref, path in lines}


def predict_request(url: str) -> urllib.request.Request:
    body = json.dumps({"instances": [PENGUIN]}).encode()
    return urllib.request.Request(
        f"{url}/v1/models/{MODEL}:predict",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )


# --- setup: kwok or a real node --------------------------------------------------------------------------


def _cluster_args(workdir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "slipway.cli", "dev-cluster", "up", "--workdir", str(workdir), *extra]


def setup_kwok(show: Narration) -> Stage:
    workdir = show.workdir
    for directory in ("data", "artifacts", "models", "batches"):
        (workdir / directory).mkdir(exist_ok=True)
    shutil.copyfile(penguins_csv(), workdir / "data" / "penguins.csv")
    kubeconfig = workdir / "cluster" / "admin.kubeconfig"
    show.spawn("cluster", _cluster_args(workdir / "cluster"))
    api = show.wait(
        "control plane: etcd, kube-apiserver, controller-manager, scheduler, kwok; CRDs installed",
        lambda: kubeconfig.exists() and _crds_ready(kubeconfig),
    )
    model_port = free_port()
    python = sys.executable
    store = str(workdir / "models")
    show.spawn(
        "model-server",
        [python, "-m", "slipway.devcluster.model_server", "--store", store, "--port", str(model_port)],
    )
    show.spawn(
        "operator",
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
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    return Stage(
        node="kwok",
        api=api,
        kubeconfig=kubeconfig,
        locations=file_locations(workdir),
        put_batch=lambda key, body: _write(workdir / "batches" / key, body),
        pipeline_extra={},
        endpoint_extra=kwok_serving(workdir),
        model_url=lambda: f"http://127.0.0.1:{model_port}/{NAMESPACE}/{MODEL}",  # the stand-in's Service
        run_timeout=600,
    )


def _write(path: Path, body: bytes) -> None:
    path.write_bytes(body)


def build_images(show: Narration) -> dict[str, Path]:
    log = (show.workdir / "images.log").open("ab")
    building = subprocess.Popen(
        ["bash", str(REPO / "hack" / "images.sh")], stdout=subprocess.PIPE, stderr=log, cwd=REPO
    )
    show.wait(
        "images: operator, pipelines, model-server (hack/images.sh: built once, then reused)",
        lambda: building.poll() is not None,
        timeout=3600,
    )
    assert building.stdout is not None
    output = building.stdout.read().decode()
    if building.returncode != 0:
        tail = "\n".join((show.workdir / "images.log").read_text(errors="replace").splitlines()[-15:])
        raise DemoError(f"hack/images.sh failed (exit {building.returncode}); images.log ends:\n{tail}")
    return parse_images(output)


def start_s3(show: Narration) -> StorageCredentials:
    """moto's S3 server on the node's bridge address, where pods reach it; the bucket and the penguins."""
    from slipway.storage.s3 import s3_client

    port = free_port()
    url = f"http://{realnode.NODE_IP}:{port}"
    show.spawn("s3", [sys.executable, "-m", "moto.server", "-H", realnode.NODE_IP, "-p", str(port)])
    show.wait(f"S3 (moto) on {url}", lambda: _http_ok(f"{url}/moto-api/"))
    credentials = StorageCredentials(
        aws_access_key_id="demo",
        aws_secret_access_key="demo-secret",
        aws_region="us-east-1",
        aws_endpoint_url=url,
    )
    s3 = s3_client(credentials)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="data/penguins.csv", Body=penguins_csv().read_bytes())
    return credentials


def setup_real(show: Narration) -> Stage:
    from slipway.storage.s3 import s3_client

    images = build_images(show)
    model_server = next((ref for ref in images if "model-server" in ref), None)
    if model_server is None:
        raise DemoError(f"hack/images.sh built no model-server image: {sorted(images)}")
    kubeconfig = show.workdir / "cluster" / "admin.kubeconfig"
    archives = [arg for archive in images.values() for arg in ("--image", str(archive))]
    show.spawn("cluster", _cluster_args(show.workdir / "cluster", "--node", "real", *archives))
    api = show.wait(
        "control plane and a real node: containerd, kubelet, kube-proxy, CoreDNS; images imported; CRDs",
        lambda: kubeconfig.exists() and _crds_ready(kubeconfig),
        timeout=1200,  # the first import of a few GB of images
    )
    credentials = start_s3(show)
    overlay = incluster.dev_overlay()
    incluster.apply_overlay(kubeconfig, overlay)
    try:
        pod = show.wait(
            f"operator in-cluster: kubectl apply --server-side of {overlay.relative_to(REPO)}",
            lambda: incluster.running_operator_pod(api),
            timeout=300,
        )
    except DemoError as error:
        raise DemoError(f"{error}\n{incluster.pod_report(api, incluster.OPERATOR_NAMESPACE)}") from None
    show.say(f"operator pod {pod['metadata']['name']} runs {pod['spec']['containers'][0]['image']}")
    incluster.serve_namespace(api, NAMESPACE)
    client.CoreV1Api(api).create_namespaced_secret(
        NAMESPACE, incluster.s3_secret(NAMESPACE, S3_SECRET, credentials)
    )
    s3 = s3_client(credentials)

    def service_url() -> str:
        service = client.CoreV1Api(api).read_namespaced_service(MODEL, NAMESPACE)
        return f"http://{service.spec.cluster_ip}:{REST_PORT}"

    return Stage(
        node="real",
        api=api,
        kubeconfig=kubeconfig,
        locations=s3_locations(BUCKET, S3_SECRET, str(credentials.aws_endpoint_url)),
        put_batch=lambda key, body: s3.put_object(Bucket=BUCKET, Key=f"batches/{key}", Body=body),
        pipeline_extra={"executor": {"type": "job"}},
        endpoint_extra=real_serving(model_server),
        model_url=service_url,
        run_timeout=1500,  # a run is a Job in the pipelines image, on 2 shared cores
    )


# --- the story, the same on either node --------------------------------------------------------------


def story(stage: Stage, show: Narration) -> None:
    custom = client.CustomObjectsApi(stage.api)
    create(custom, "trainingpipelines", pipeline(stage.locations, stage.pipeline_extra))
    create(custom, "servingendpoints", endpoint(stage.endpoint_extra))
    runs = stage.run_timeout

    def mv(version: int) -> Any:
        return lambda: _phase(custom, f"{MODEL}-v{version}")

    def stable(version: int) -> Any:
        return lambda: _status(custom, "servingendpoints", MODEL).get("stableVersion") == version

    where = (
        "as a Kubernetes Job in the pipelines image" if stage.node == "real" else "with the local executor"
    )
    request_run(custom, "1")
    show.wait(
        f"run 1: penguins pipeline (TF, Keras, evaluator, infra-validator, pusher) {where}",
        lambda: _pushed(custom),
        runs,
    )
    show.wait("ModelVersion penguins-v1: gates evaluated", mv(1))
    show.wait("ServingEndpoint penguins serves v1", stable(1), runs)
    request_run(custom, "2")
    show.wait("run 2: retrain", lambda: _pushed(custom, "penguins-v2"), runs)
    show.wait("ModelVersion penguins-v2: gates evaluated", mv(2))
    show.wait(
        "v2 canary: 50% -> analysis (real predictions) -> 100%",
        lambda: 2 in _serving(custom),  # canary, or already promoted between two looks
        runs,
    )
    show.wait("v2 promoted", stable(2), runs)
    request_run(custom, "3", bad=True)
    show.wait(
        "run 3: deliberately bad (1 epoch, tiny learning rate)", lambda: _pushed(custom, "penguins-v3"), runs
    )
    phase = show.wait("ModelVersion penguins-v3: gates evaluated", mv(3))
    show.say(f"penguins-v3 is [bold]{phase}[/]: it is never rolled out; v2 keeps serving.")
    restore_parameters(custom)
    stage.put_batch("day-1.csv", penguin_batch(shift=False, seed=1))
    show.wait("batch day-1 (a resample): checked for drift", _checked(custom, "day-1.csv"))
    stage.put_batch("day-2.csv", penguin_batch(shift=True, seed=2))
    verdict = show.wait(
        "batch day-2 (body mass x1.5, a new island): checked for drift", _checked(custom, "day-2.csv")
    )
    show.say(f"day-2 [bold]{verdict['outcome']}[/]: {verdict['summary']}")
    show.wait("run 4: started by drift", lambda: _pushed(custom, "penguins-v4"), runs)
    show.wait("ModelVersion penguins-v4: gates evaluated", mv(4))
    show.wait("v4 canary -> promoted", stable(4), runs)


def predict(stage: Stage, show: Narration) -> tuple[str, Any]:
    """A penguin sent to the endpoint's Service (on kwok: the loopback stand-in); (url, predictions)."""
    url = ""

    def answer() -> Any:
        nonlocal url
        url = stage.model_url()
        with urllib.request.urlopen(predict_request(url), timeout=30) as response:
            return json.load(response)["predictions"]

    via = "its Service's ClusterIP" if stage.node == "real" else "the loopback stand-in"
    predictions = show.wait(f"a prediction through the endpoint ({via})", answer, timeout=120)
    return f"{url}/v1/models/{MODEL}:predict", predictions


def up(workdir: Path, node: str = "auto") -> int:
    workdir.mkdir(parents=True, exist_ok=True)
    if (workdir / "cluster.pid").exists():
        console.print(f"A demo is already up ({workdir}); `make demo-down` first.")
        return 1
    try:
        chosen, why = choose_node(node, None if node == "kwok" else real_node_unavailable())
    except DemoError as error:
        console.print(f"[red]demo:[/] {error}")
        return 1
    if why is None:
        console.print(
            "[bold]A real node[/]: every container runs (training Jobs, model pullers, model servers)."
        )
    else:
        console.print(
            f"[bold]kwok's fake node[/], not a real one: {why}.\n"
            "No container runs: the operator runs on this host, a loopback stand-in answers for TF Serving."
        )
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as progress:
        show = Narration(progress, workdir)
        try:
            stage = setup_real(show) if chosen == "real" else setup_kwok(show)
            story(stage, show)
            url, predictions = predict(stage, show)
        except (DemoError, incluster.InstallError) as error:
            console.print(f"[red]demo:[/] {error}\n`make demo-down` stops what was started.")
            return 1
    console.print()
    kubectl = [str(find_tool("kubectl")), "--kubeconfig", str(stage.kubeconfig)]
    subprocess.run([*kubectl, "get", "slipway", "-n", NAMESPACE], check=False)
    if chosen == "real":
        subprocess.run([*kubectl, "get", "pods", "-n", NAMESPACE, "-o", "wide"], check=False)
    console.print(f"\nPOST {url}\n  {json.dumps({'instances': [PENGUIN]})}\n  -> {json.dumps(predictions)}")
    console.print(
        f"\nThe cluster stays up. [bold]export KUBECONFIG={stage.kubeconfig}[/] and explore "
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


def _serving(custom: client.CustomObjectsApi) -> set[int]:
    """The versions the endpoint serves: stable and canary."""
    status = _status(custom, "servingendpoints", MODEL)
    return {status[key] for key in ("stableVersion", "canaryVersion") if status.get(key) is not None}


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


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting for its parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _mounts_under(path: Path) -> list[str]:
    root = str(path.resolve())
    mounts = Path("/proc/mounts").read_text().splitlines() if Path("/proc/mounts").exists() else []
    points = [line.split()[1] for line in mounts if len(line.split()) > 1]
    return [point for point in points if point == root or point.startswith(root + "/")]


def down(workdir: Path, grace: float = 180) -> int:
    """SIGTERM to each process the demo started, a wait for it to exit, then SIGTERM to whatever is left in
    its process group. The leader alone first: the dev cluster's process tears a real node down (pods,
    mounts, network, kernel settings) before it exits, and stops its own children in order."""
    stopped = []
    for name in PROCESSES:
        pid_file = workdir / f"{name}.pid"
        if not pid_file.exists():
            continue
        try:
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            pid_file.unlink()
            continue
        deadline = time.monotonic() + grace
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        if _alive(pid):
            console.print(f"{name} (pid {pid}) did not stop within {grace:.0f} s; killing it")
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        stopped.append(name)
        pid_file.unlink()
    if mounts := _mounts_under(workdir):
        console.print(
            f"stopped: {', '.join(stopped) or 'nothing was running'}; {workdir} is kept, still mounted "
            f"there: {', '.join(mounts[:5])} (`python -m slipway.devcluster.realnode teardown` clears them)"
        )
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}; removed {workdir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="slipway demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--workdir", default=".demo", type=Path)
    parser.add_argument(
        "--node",
        choices=["auto", "kwok", "real"],
        default="auto",
        help="auto (default): a real node where this machine can run one, else kwok and why",
    )
    args = parser.parse_args(argv)
    return up(args.workdir.resolve(), args.node) if args.action == "up" else down(args.workdir.resolve())


if __name__ == "__main__":
    sys.exit(main())

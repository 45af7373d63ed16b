"""`make demo`'s pure parts: which node it runs on, and that what it creates is what the API accepts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from slipway import demo
from slipway.api.serving_endpoint import ServingEndpointSpec
from slipway.api.training_pipeline import TrainingPipelineSpec
from slipway.cli import build_parser
from slipway.devcluster import incluster
from slipway.storage.credentials import StorageCredentials

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"


def test_a_real_node_where_the_machine_allows_one() -> None:
    assert demo.choose_node("auto", None) == ("real", None)
    assert demo.choose_node("real", None) == ("real", None)


def test_kwok_otherwise_and_says_why() -> None:
    assert demo.choose_node("auto", "a real node needs root") == ("kwok", "a real node needs root")
    node, why = demo.choose_node("kwok", None)
    assert node == "kwok" and why is not None and "--node kwok" in why


def test_asking_for_a_real_node_where_there_is_none_is_an_error_with_the_reason() -> None:
    with pytest.raises(demo.DemoError, match="needs root"):
        demo.choose_node("real", "a real node needs root")


def test_the_holder_of_the_real_nodes_lock_is_found_in_proc_locks() -> None:
    locks = (
        "1: FLOCK  ADVISORY  WRITE 5476 fe:00:9986693 0 EOF\n"
        "2: FLOCK  ADVISORY  WRITE 32627 fe:01:10160464 0 EOF\n"
        "3: OFDLCK ADVISORY  WRITE -1 fe:01:10160465 0 EOF\n"
    )
    assert demo.lock_holder(locks, (0xFE, 1), 10160464) == 32627
    assert demo.lock_holder(locks, (0xFE, 0), 10160464) is None
    assert demo.lock_holder(locks, (0xFE, 1), 10160465) is None  # an OFD lock names no process


def test_a_lock_this_process_holds_is_found(tmp_path: Path) -> None:
    import fcntl

    path = tmp_path / "lock"
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        stat = path.stat()
        holder = demo.lock_holder(
            Path("/proc/locks").read_text(), (os.major(stat.st_dev), os.minor(stat.st_dev)), stat.st_ino
        )
    assert holder == os.getpid()


def test_on_a_real_node_the_pipeline_runs_as_a_job_on_s3() -> None:
    locations = demo.s3_locations("bkt", "demo-s3", "http://10.244.0.1:5000")
    body = demo.pipeline(locations, {"executor": {"type": "job"}})
    spec = TrainingPipelineSpec.model_validate(body["spec"])
    assert spec.executor.type == "job"
    for location in (spec.data, spec.artifact_root, spec.model_store):
        assert location.uri.startswith("s3://bkt/")
        assert location.secret_ref is not None and location.secret_ref.name == "demo-s3"
        assert location.endpoint == "http://10.244.0.1:5000"
    assert spec.triggers.on_drift is not None
    assert spec.triggers.on_drift.batches.uri == "s3://bkt/batches"
    assert spec.triggers.on_drift.batches.secret_ref is not None


def test_on_kwok_the_pipeline_runs_locally_on_files(tmp_path: Path) -> None:
    spec = TrainingPipelineSpec.model_validate(demo.pipeline(demo.file_locations(tmp_path))["spec"])
    assert spec.executor.type == "local"
    assert spec.data.uri == f"file://{tmp_path}/data/penguins.csv"
    assert spec.triggers.on_drift is not None
    assert spec.triggers.on_drift.batches.uri == f"file://{tmp_path}/batches"


def test_on_a_real_node_the_endpoint_runs_the_model_server_image() -> None:
    body = demo.endpoint(demo.real_serving("localhost/slipway-model-server:dev"))
    spec = ServingEndpointSpec.model_validate(body["spec"])
    assert (spec.runtime.image, spec.runtime.version) == ("localhost/slipway-model-server", "dev")
    assert spec.model_volume is None


def test_on_kwok_the_endpoint_mounts_the_file_store(tmp_path: Path) -> None:
    spec = ServingEndpointSpec.model_validate(demo.endpoint(demo.kwok_serving(tmp_path))["spec"])
    assert spec.model_volume is not None and spec.model_volume.host_path == str(tmp_path)


def test_the_images_script_output_is_parsed() -> None:
    output = (
        "localhost/slipway:dev /c/images/operator-1.oci.tar\nlocalhost/slipway-model-server:dev /c/m.tar\n\n"
    )
    assert demo.parse_images(output) == {
        "localhost/slipway:dev": Path("/c/images/operator-1.oci.tar"),
        "localhost/slipway-model-server:dev": Path("/c/m.tar"),
    }


def test_the_closing_penguin_has_every_feature_the_model_is_trained_on() -> None:
    header = demo.penguins_csv().read_text().splitlines()[0].split(",")
    assert set(demo.PENGUIN) == set(header) - {"species"}  # the serving signature takes each column


def test_the_closing_prediction_is_a_penguin_posted_to_predict() -> None:
    request = demo.predict_request("http://10.96.0.10:8501")
    assert request.full_url == "http://10.96.0.10:8501/v1/models/penguins:predict"
    assert request.get_method() == "POST"
    assert isinstance(request.data, bytes) and b'"island": "Biscoe"' in request.data


def test_a_served_namespace_gets_the_binding_serve_namespace_yaml_describes() -> None:
    docs = list(yaml.safe_load_all((MANIFESTS / "base" / "serve-namespace.yaml").read_text()))
    base = next(d for d in docs if d["kind"] == "RoleBinding")
    binding = incluster.secret_reader_binding("demo")
    assert binding["metadata"]["namespace"] == "demo"
    assert (binding["roleRef"], binding["subjects"]) == (base["roleRef"], base["subjects"])


def test_the_s3_secret_holds_what_storage_credentials_read() -> None:
    credentials = StorageCredentials(aws_access_key_id="k", aws_secret_access_key="s", aws_region="eu-west-1")
    secret = incluster.s3_secret("demo", "demo-s3", credentials)
    read = StorageCredentials.from_mapping(secret["stringData"])
    assert (read.aws_access_key_id, read.aws_secret_access_key, read.aws_region) == ("k", "s", "eu-west-1")


def test_the_dev_overlay_is_found_in_the_checkout() -> None:
    assert incluster.dev_overlay() == MANIFESTS / "overlays" / "dev"


def test_dev_cluster_up_takes_a_node_and_image_archives() -> None:
    args = build_parser().parse_args(
        ["dev-cluster", "up", "--node", "real", "--image", "a.oci.tar", "--image", "b.oci.tar"]
    )
    assert (args.node, args.image) == ("real", ["a.oci.tar", "b.oci.tar"])
    assert build_parser().parse_args(["dev-cluster", "up"]).node == "kwok"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--node", "real", "--minimal"], "--minimal"),
        (["--image", "a.oci.tar"], "--node real"),
    ],
)
def test_dev_cluster_up_refuses_options_that_do_not_go_together(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = build_parser().parse_args(["dev-cluster", "up", *argv])
    assert args.func(args) == 2
    assert message in capsys.readouterr().err


def test_the_dev_overlay_runs_the_locally_built_images_with_one_replica() -> None:
    import subprocess

    from slipway.devcluster.binaries import find_tool

    rendered = subprocess.run(
        [str(find_tool("kubectl")), "kustomize", str(MANIFESTS / "overlays" / "dev")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert rendered.returncode == 0, rendered.stderr
    (deployment,) = [d for d in yaml.safe_load_all(rendered.stdout) if d and d["kind"] == "Deployment"]
    assert deployment["metadata"]["name"] == incluster.OPERATOR_DEPLOYMENT
    assert deployment["metadata"]["namespace"] == incluster.OPERATOR_NAMESPACE
    assert deployment["spec"]["replicas"] == 1
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "localhost/slipway:dev"
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names)), names  # server-side apply refuses duplicate keys
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SLIPWAY_IMAGE"] == "localhost/slipway:dev"
    assert env["SLIPWAY_PIPELINES_IMAGE"] == "localhost/slipway-pipelines:dev"


def _narration(workdir: Path) -> demo.Narration:
    from rich.console import Console
    from rich.progress import Progress

    return demo.Narration(Progress(console=Console(file=open(os.devnull, "w"))), workdir)


def test_waiting_stops_with_the_log_of_a_background_process_that_died(tmp_path: Path) -> None:
    import sys

    show = _narration(tmp_path)
    show.spawn("cluster", [sys.executable, "-c", "print('etcd would not start'); raise SystemExit(3)"])
    with pytest.raises(demo.DemoError, match=r"(?s)cluster exited with code 3.*etcd would not start"):
        show.wait("the control plane", lambda: False, timeout=30)


def test_down_stops_what_up_started_and_removes_the_workdir(tmp_path: Path) -> None:
    import sys
    import time

    workdir = tmp_path / "demo"
    workdir.mkdir()
    show = _narration(workdir)
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    show.spawn("cluster", [sys.executable, "-c", "import time; time.sleep(60)"])
    show.spawn("s3", [sys.executable, "-c", stubborn])
    time.sleep(0.5)  # the stubborn one has installed its handler
    assert demo.down(workdir, grace=2) == 0
    for process in show.processes.values():
        assert process.wait(timeout=10) is not None
    assert show.processes["cluster"].returncode == -15
    assert show.processes["s3"].returncode == -9  # it ignored SIGTERM, so it was killed after the grace
    assert not workdir.exists()

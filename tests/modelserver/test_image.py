"""The model-server image run as the operator's Deployment runs TF Serving: the Deployment's own arguments,
its ConfigMap mounted at /config, the pulled model at /models, a read-only root filesystem, a writable /tmp
and the pod's uid; the readiness and liveness probes' paths, predict and the metrics page answer."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.images import podman
from fixtures.modelserver import free_port, http, wait_for
from slipway.api.serving_endpoint import ServingEndpointSpec
from slipway.serving import builders
from slipway.views import VersionInfo

IMAGE = "localhost/slipway-model-server:dev"
pytestmark = pytest.mark.tensorflow  # the SavedModel is written by TensorFlow


@pytest.fixture
def pod(models: Path, tmp_path: Path, slipway_images: dict[str, Path]) -> Iterator[tuple[str, dict]]:
    assert IMAGE in slipway_images
    spec = ServingEndpointSpec.model_validate(
        {"modelName": "half", "runtime": {"image": IMAGE.rsplit(":", 1)[0], "version": "dev"}}
    )
    endpoint = builders.Endpoint("web", "ml", spec, {}, "localhost/slipway:dev")
    info = VersionInfo("half-v2", 2, "Validated", "file:///store/half/2", False, None)
    deployment = builders.deployment(endpoint, info, 1)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE
    config = tmp_path / "config"
    config.mkdir()
    for name, text in builders.config_map(endpoint, 2)["data"].items():
        (config / name).write_text(text)
    store = tmp_path / "models"
    shutil.copytree(models / "half" / "2", store / "half" / "2")  # what the puller leaves in /models
    subprocess.run(["chmod", "-R", "a+rX", str(tmp_path)], check=True)
    port = free_port()  # the host's network: the Deployment's 8501 may be taken
    name = f"slipway-model-server-test-{port}"
    podman(
        "run", "-d", "--name", name, "--network=host", "--read-only", "--tmpfs", "/tmp",
        "--user", str(builders.RUN_AS), "-v", f"{config}:/config:ro",
        "-v", f"{store}:{builders.MODELS_DIR}:ro",
        IMAGE, *container["args"], f"--rest_api_port={port}", f"--port={free_port()}",
        check=True,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}", container
    finally:
        logs = podman("logs", name).stderr
        podman("rm", "-f", name)
        print(logs[-4000:])


def test_the_image_serves_what_the_operators_deployment_asks_for(pod: tuple[str, dict]) -> None:
    url, container = pod
    ready = container["readinessProbe"]["httpGet"]["path"]
    deadline = time.monotonic() + 180
    while (status := wait_for(url + ready))[0] != 200:
        assert time.monotonic() < deadline, status
        time.sleep(1)
    assert status[1]["model_version_status"][0]["state"] == "AVAILABLE"
    assert http("GET", url + container["livenessProbe"]["httpGet"]["path"])[0] == 200
    assert http("POST", f"{url}/v1/models/half/versions/2:predict", {"instances": [1.0, 2.0]}) == (
        200,
        {"predictions": [3.0, 5.0]},
    )
    code, page = http("GET", url + builders.METRICS_PATH)
    assert code == 200
    assert ':tensorflow:serving:request_count{model_name="half",status="OK"} 3' in page.splitlines()

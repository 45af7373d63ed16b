"""The model server on real SavedModels: started as the operator's Deployment starts TF Serving (its flags,
its config files), answering status, predict and metrics over loopback; a model that cannot load stops the
start as it stops TF Serving's; the demo's store-wide server behind a path prefix."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures.modelserver import free_port, http, wait_for
from slipway.devcluster.model_server import store_models
from slipway.modelserver import config, flags
from slipway.modelserver.__main__ import serve
from slipway.modelserver.manager import Manager
from slipway.modelserver.metrics import Metrics
from slipway.modelserver.servable import load_saved_model
from slipway.serving.builders import MODELS_DIR, MONITORING_CONFIG, model_config

pytestmark = pytest.mark.tensorflow


@pytest.fixture
def server_files(models: Path, tmp_path: Path) -> Path:
    # The ConfigMap the operator writes for version 2, with the pod's /models mount pointed at the test's.
    (tmp_path / "models.config").write_text(model_config("half", 2).replace(f"{MODELS_DIR}/", f"{models}/"))
    (tmp_path / "monitoring.config").write_text(MONITORING_CONFIG)
    return tmp_path


def start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "slipway.modelserver", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


@dataclass
class Running:
    url: str
    grpc_port: int


@pytest.fixture
def server(server_files: Path) -> Iterator[Running]:
    port, grpc_port = free_port(), free_port()
    process = start(
        [
            f"--port={grpc_port}",
            f"--rest_api_port={port}",
            f"--model_config_file={server_files / 'models.config'}",
            "--enable_batching=true",
            f"--monitoring_config_file={server_files / 'monitoring.config'}",
        ]
    )
    try:
        yield Running(f"http://127.0.0.1:{port}", grpc_port)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serves_the_configured_version_as_tf_serving_does(server: Running) -> None:
    running = server.url
    code, status = wait_for(f"{running}/v1/models/half/versions/2")
    assert code == 200, status
    assert status == {
        "model_version_status": [
            {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    # The policy names version 2 only: version 1, on disk too, is not loaded.
    assert http("GET", f"{running}/v1/models/half/versions/1") == (
        404,
        {"error": "Could not find version 1 of model half"},
    )
    assert http("POST", f"{running}/v1/models/half/versions/2:predict", {"instances": [2.0, 4]}) == (
        200,
        {"predictions": [5.0, 9.0]},
    )
    assert http("POST", f"{running}/v1/models/half:predict", {"inputs": [0.5]}) == (200, {"outputs": [2.0]})
    code, answer = http(
        "POST", f"{running}/v1/models/half:predict", {"signature_name": "shout", "instances": ["ab", "é"]}
    )
    assert code == 200
    assert answer == {"predictions": [{"length": 2, "loud": "AB"}, {"length": 2, "loud": "é"}]}
    code, error = http(
        "POST", f"{running}/v1/models/half:predict", {"signature_name": "whisper", "instances": [1]}
    )
    assert (code, error) == (400, {"error": 'Serving signature name: "whisper" not found in signature def'})
    code, metadata = http("GET", f"{running}/v1/models/half/metadata")
    assert code == 200
    assert metadata["model_spec"] == {"name": "half", "signature_name": "", "version": "2"}
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["x"]["dtype"] == "DT_FLOAT"
    assert signature["method_name"] == "tensorflow/serving/predict"
    code, page = http("GET", f"{running}/monitoring/prometheus/metrics")
    assert code == 200
    lines = page.splitlines()
    assert ':tensorflow:serving:request_count{model_name="half",status="OK"} 5' in lines
    assert ':tensorflow:serving:request_count{model_name="half",status="INVALID_ARGUMENT"} 1' in lines
    assert (
        ':tensorflow:serving:request_latency_count{model_name="half",API="predict",entrypoint="REST"} 3'
        in lines
    )
    assert any(
        line.startswith(':tensorflow:serving:request_latency_bucket{model_name="half"') for line in lines
    )
    assert ":tensorflow:core:graph_runs{} 3" in lines
    assert any(line.startswith(":tensorflow:cc:saved_model:load_attempt_count{") for line in lines)


def test_a_model_that_cannot_load_stops_the_start(models: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken" / "1"
    broken.mkdir(parents=True)
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    config_file = tmp_path / "models.config"
    config_file.write_text(
        f'model_config_list {{ config {{ name: "broken" base_path: "{broken.parent}" }} }}'
    )
    # TF Serving retries a failed load (5 times, a minute apart, by default) before it gives up.
    args = [
        f"--rest_api_port={free_port()}",
        f"--model_config_file={config_file}",
        "--max_num_load_retries=1",
    ]
    process = start([*args, "--load_retry_interval_micros=100000"])
    try:
        output, _ = process.communicate(timeout=180)
    finally:
        process.kill()
    assert process.returncode != 0
    assert output.count("Loading servable {name: broken version: 1} failed") == 2
    assert "Failed to start server. Error: broken version 1:" in output


def test_bad_flags_and_configs_end_the_process_with_the_reason(tmp_path: Path) -> None:
    process = start(["--rest_api_port=1", "--no_such_flag=1"])  # ends before TensorFlow is imported
    assert process.communicate(timeout=60)[0].strip().endswith("unknown flag --no_such_flag")
    (tmp_path / "bad.config").write_text('model_config_list { config { name: "a" } }')
    process = start(["--rest_api_port=1", f"--model_config_file={tmp_path / 'bad.config'}"])
    output = process.communicate(timeout=60)[0]
    assert process.returncode != 0 and "config[0].base_path is empty (model 'a')" in output


def test_the_demo_server_serves_every_pushed_version_behind_a_service_prefix(
    models: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    metrics = Metrics()
    manager = Manager(lambda: store_models(store), load_saved_model(["serve"]), metrics)
    options = flags.Options(port=0, rest_api_port=0)
    server = serve(
        options, manager, metrics, config.DEFAULT_METRICS_PATH, prefixed=True, wait=False, host="127.0.0.1"
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/ml/web-v2"
    try:
        assert http("GET", f"{base}/v1/models/half/versions/2")[0] == 404
        # A push lands in the store while the server runs: the next poll loads it.
        (store / "half").mkdir()
        os.symlink(models / "half" / "2", store / "half" / "2")
        deadline = time.monotonic() + 120
        while "AVAILABLE" not in str(http("GET", f"{base}/v1/models/half/versions/2")):  # LOADING first
            assert time.monotonic() < deadline, "version 2 never became AVAILABLE"
            time.sleep(0.5)
        assert http("POST", f"{base}/v1/models/half/versions/2:predict", {"instances": [1.0]}) == (
            200,
            {"predictions": [3.0]},
        )
    finally:
        server.shutdown()
        server.server_close()


def test_grpc_predict_and_model_status(server: Running) -> None:
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import (
        get_model_status_pb2,
        model_service_pb2_grpc,
        predict_pb2,
        prediction_service_pb2_grpc,
    )

    assert wait_for(f"{server.url}/v1/models/half/versions/2")[0] == 200
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "half"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto([1.0, 3.0], dtype=tf.float32))
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)
        assert tf.make_ndarray(response.outputs["y"]).tolist() == [3.0, 7.0]
        assert response.model_spec.signature_name == "serving_default"
        status_request = get_model_status_pb2.GetModelStatusRequest()
        status_request.model_spec.name = "half"
        status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(status_request, timeout=60)
        assert [
            (s.version, get_model_status_pb2.ModelVersionStatus.State.Name(s.state))
            for s in status.model_version_status
        ] == [(2, "AVAILABLE")]
        request.model_spec.version.value = 1
        with pytest.raises(grpc.RpcError) as failed:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)
        assert failed.value.code() == grpc.StatusCode.NOT_FOUND
        assert failed.value.details() == "Servable not found for request: Specific(half, 1)"
    page = http("GET", f"{server.url}/monitoring/prometheus/metrics")[1]
    assert (
        ':tensorflow:serving:request_latency_count{model_name="half",API="Predict",entrypoint="GRPC"} 1'
        in page
    )

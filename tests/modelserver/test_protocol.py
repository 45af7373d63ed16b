"""The model server's TF Serving interface without TensorFlow: flags, config files, version policy, the
REST API's routing, JSON and error codes, metrics, and version states (with a stand-in loader)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from slipway.api.serving_endpoint import ServingEndpointSpec
from slipway.modelserver import config, flags, rest, tensors
from slipway.modelserver.errors import ServingError
from slipway.modelserver.manager import Manager
from slipway.modelserver.metrics import Metrics
from slipway.serving import builders
from slipway.views import VersionInfo


def deployment_args() -> list[str]:
    """The model server's arguments in the Deployment the operator builds for a version."""
    spec = ServingEndpointSpec.model_validate({"modelName": "penguins", "runtime": {"batching": True}})
    endpoint = builders.Endpoint("web", "ml", spec, {}, "slipway:dev")
    info = VersionInfo("penguins-v3", 3, "Validated", "s3://models/penguins/3", False, None)
    args: list[str] = builders.deployment(endpoint, info, 1)["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    return args


def test_the_operators_flags_are_understood_and_the_other_standard_ones_accepted() -> None:
    args = deployment_args()
    assert any(a.startswith("--monitoring_config_file=") for a in args)
    options = flags.parse([*args, "--enable_model_warmup=true", "--grpc_max_threads=8"])
    assert (options.port, options.rest_api_port) == (builders.GRPC_PORT, builders.REST_PORT)
    assert options.model_config_file == "/config/models.config"
    assert options.monitoring_config_file == "/config/monitoring.config"
    assert options.ignored == {
        "enable_batching": "true",
        "enable_model_warmup": "true",
        "grpc_max_threads": "8",
    }
    assert flags.parse(["--rest_api_enable_cors_support"]).rest_api_enable_cors_support is True
    assert flags.parse(["--model_config_file_poll_wait_seconds=60"]).model_config_file_poll_wait_seconds == 60


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--no_such_flag=1"], "unknown flag --no_such_flag"),
        (["--rest_api_port=http"], "--rest_api_port=http: expected an integer"),
        (["--model_config_file"], "--model_config_file needs a value"),
        (["models.config"], "flags are --name=value"),
        (["--rest_api_enable_cors_support=maybe"], "expected true or false"),
    ],
)
def test_bad_flags_are_refused_with_the_flag_named(argv: list[str], message: str) -> None:
    with pytest.raises(flags.FlagError, match=re.escape(message)):
        flags.parse(argv)


def test_version_policies_pick_among_the_versions_on_disk() -> None:
    available = [1, 4, 3, 2]
    assert config.aspired_versions(config.ModelSpec("m", "/m"), available) == [4]
    assert config.aspired_versions(config.ModelSpec("m", "/m", latest=2), available) == [4, 3]
    assert config.aspired_versions(config.ModelSpec("m", "/m", policy="all"), available) == [4, 3, 2, 1]
    specific = config.ModelSpec("m", "/m", policy="specific", specific=(2, 9))
    assert config.aspired_versions(specific, available) == [2]  # 9 is not there (yet)


def test_a_version_directory_counts_once_its_saved_model_is_written(tmp_path: Path) -> None:
    for name in ("1", "2", "10", "tmp-3", "4"):
        (tmp_path / name).mkdir()
    for name in ("1", "10", "tmp-3"):
        (tmp_path / name / "saved_model.pb").write_bytes(b"")
    (tmp_path / "2" / "variables").mkdir()  # being pulled: saved_model.pb comes last
    assert sorted(config.versions_on_disk(str(tmp_path))) == [1, 10]
    assert config.versions_on_disk(str(tmp_path / "absent")) == {}


def test_the_prometheus_page_has_tf_servings_names_and_format() -> None:
    metrics = Metrics()
    metrics.record_request("penguins", "OK", "predict", 25)
    metrics.record_request("penguins", "OK", "predict", 2_000_000)
    metrics.record_request("penguins", "NOT_FOUND", "predict", None)
    metrics.record_run("penguins", 12)
    page = metrics.page()
    lines = page.splitlines()
    assert "# TYPE :tensorflow:serving:request_count counter" in lines
    assert ':tensorflow:serving:request_count{model_name="penguins",status="OK"} 2' in lines
    assert ':tensorflow:serving:request_count{model_name="penguins",status="NOT_FOUND"} 1' in lines
    assert "# TYPE :tensorflow:serving:request_latency histogram" in lines
    bucket = (
        ':tensorflow:serving:request_latency_bucket{model_name="penguins",API="predict",entrypoint="REST",le='
    )
    assert f'{bucket}"10"}} 0' in lines and f'{bucket}"32.4"}} 1' in lines
    assert f'{bucket}"1.27482e+06"}} 1' in lines and f'{bucket}"2.29468e+06"}} 2' in lines
    assert f'{bucket}"+Inf"}} 2' in lines
    assert sum(1 for line in lines if line.startswith(bucket)) == 34
    assert (
        ':tensorflow:serving:request_latency_count{model_name="penguins",API="predict",entrypoint="REST"} 2'
        in lines
    )
    assert ":tensorflow:core:graph_runs{} 1" in lines
    assert (
        ':tensorflow:serving:runtime_latency_count{model_name="penguins",API="Predict",runtime="TF1"} 1'
        in lines
    )
    # Every series name is what the dashboard queries.
    assert re.search(r"^:tensorflow:serving:request_latency_bucket\{", page, re.M)


SPECS = {"x": tensors.InputSpec(np.dtype("float32")), "s": tensors.InputSpec(np.dtype(object))}


def test_instances_and_inputs_become_batched_arrays() -> None:
    doc = {"instances": [{"x": 1, "s": "a"}, {"x": 2.5, "s": {"b64": "Yg=="}}]}
    arrays, form = tensors.request_inputs(doc, SPECS)
    assert form == tensors.ROW
    assert arrays["x"].dtype == np.float32 and arrays["x"].tolist() == [1.0, 2.5]
    assert arrays["s"].tolist() == [b"a", b"b"]
    arrays, form = tensors.request_inputs({"inputs": {"x": [[1, 2]], "s": ["q"]}}, SPECS)
    assert form == tensors.COLUMNAR and arrays["x"].shape == (1, 2)
    single = {"x": SPECS["x"]}
    arrays, _ = tensors.request_inputs({"instances": [[1, 2], [3, 4]]}, single)
    assert arrays["x"].shape == (2, 2)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"instances": [{"x": 1, "s": "a"}], "inputs": {}}, "expecting only one of 'inputs' or 'instances'"),
        ({"instances": []}, "No values in 'instances' array"),
        ({"instances": {"x": 1}}, "Expecting 'instances' to be an list/array"),
        ({"instances": [1, 2]}, "instances is a plain list, but expecting list of objects"),
        ({"instances": [{"x": 1}]}, "keys must be equal to: s,x"),
        (
            {"instances": [{"x": "one", "s": "a"}]},
            'JSON Value: "one" Type: String is not of expected type: float',
        ),
        ({"inputs": {"x": [1]}}, "Missing named input: s in 'inputs' object."),
        ({"instances": [{"x": 1, "s": 5}]}, "Type: Number is not of expected type: string"),
        ({"signature": "x"}, "Missing 'inputs' or 'instances' key"),
    ],
)
def test_malformed_predict_requests_get_tf_servings_messages(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ServingError, match=re.escape(message)) as raised:
        tensors.request_inputs(doc, SPECS)
    assert raised.value.code == "INVALID_ARGUMENT" and raised.value.http_status == 400


def test_outputs_in_row_and_columnar_form() -> None:
    probabilities = np.array([[0.1, 0.9], [0.7, 0.3]], dtype=np.float32)
    species = np.array([b"Adelie", b"Gentoo"], dtype=object)
    assert tensors.response({"probabilities": probabilities, "species": species}, tensors.ROW) == {
        "predictions": [
            {"probabilities": [0.1, 0.9], "species": "Adelie"},
            {"probabilities": [0.7, 0.3], "species": "Gentoo"},
        ]
    }
    assert tensors.response({"y": np.array([3.0, 5.0], dtype=np.float32)}, tensors.ROW) == {
        "predictions": [3.0, 5.0]
    }
    assert tensors.response({"y_bytes": np.array([b"\x00"], dtype=object)}, tensors.COLUMNAR) == {
        "outputs": [{"b64": "AA=="}]
    }
    with pytest.raises(ServingError, match="inconsistent batch size: 1 expecting: 2"):
        tensors.response({"a": probabilities, "b": np.array([1])}, tensors.ROW)


class Echo:
    def __init__(self, version: int) -> None:
        self.version = version

    def predict(self, doc: dict[str, Any], on_run: Any) -> dict[str, Any]:
        on_run(7)
        return {"predictions": [self.version] * len(doc["instances"])}


def manager_over(
    specs: list[config.ModelSpec], broken: tuple[int, ...] = ()
) -> tuple[Manager, list[config.ModelSpec]]:
    """A manager whose model list is `specs` (edit it in place to change the config) and whose loader
    fails for the `broken` versions."""

    def load(path: Path) -> Echo:
        if int(path.name) in broken:
            raise ValueError(f"SavedModel at {path} is corrupt")
        return Echo(int(path.name))

    return Manager(lambda: list(specs), load, Metrics()), specs


def push(root: Path, version: int) -> None:
    (root / "m" / str(version)).mkdir(parents=True)
    (root / "m" / str(version) / "saved_model.pb").write_bytes(b"")


def call(manager: Manager, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    reply = rest.handle(manager, manager.metrics, method, path, json.dumps(body).encode() if body else b"")
    return reply.status, json.loads(reply.body)


def test_latest_policy_loads_a_new_version_before_it_unloads_the_old(tmp_path: Path) -> None:
    manager, _ = manager_over([config.ModelSpec("m", f"{tmp_path}/m")])
    manager.poll()
    with pytest.raises(LookupError, match=r"m \(no version under"):
        manager.settled()
    assert call(manager, "GET", "/v1/models/m") == (404, {"error": "Could not find any versions of model m"})
    push(tmp_path, 1)
    manager.poll()
    assert manager.settled() == []
    assert call(manager, "POST", "/v1/models/m:predict", {"instances": [0]}) == (200, {"predictions": [1]})
    push(tmp_path, 2)
    manager.poll()
    code, status = call(manager, "GET", "/v1/models/m")
    assert code == 200
    assert [(s["version"], s["state"]) for s in status["model_version_status"]] == [
        ("2", "AVAILABLE"),
        ("1", "END"),
    ]
    assert status["model_version_status"][0]["status"] == {"error_code": "OK", "error_message": ""}
    assert call(manager, "POST", "/v1/models/m/versions/1:predict", {"instances": [0]}) == (
        404,
        {"error": "Servable not found for request: Specific(m, 1)"},
    )
    assert call(manager, "POST", "/v1/models/m:predict", {"instances": [0, 0]}) == (
        200,
        {"predictions": [2, 2]},
    )


def test_a_version_that_fails_to_load_ends_with_its_error(tmp_path: Path) -> None:
    spec = config.ModelSpec("m", f"{tmp_path}/m", policy="specific", specific=(1, 2))
    manager, _ = manager_over([spec], broken=(2,))
    push(tmp_path, 1)
    push(tmp_path, 2)
    manager.poll()
    failures = manager.settled()
    assert failures == ["m version 2: ValueError: SavedModel at " + f"{tmp_path}/m/2 is corrupt"]
    code, status = call(manager, "GET", "/v1/models/m/versions/2")
    assert code == 200
    (entry,) = status["model_version_status"]
    assert entry["state"] == "END" and entry["status"]["error_code"] == "UNKNOWN"
    assert "corrupt" in entry["status"]["error_message"]
    assert (
        call(manager, "GET", "/v1/models/m/versions/1")[1]["model_version_status"][0]["state"] == "AVAILABLE"
    )


def test_labels_routes_errors_and_request_metrics(tmp_path: Path) -> None:
    manager, specs = manager_over(
        [config.ModelSpec("m", f"{tmp_path}/m", policy="all", labels={"stable": 1})]
    )
    push(tmp_path, 1)
    push(tmp_path, 2)
    manager.poll()
    assert call(manager, "POST", "/v1/models/m/labels/stable:predict", {"instances": [0]}) == (
        200,
        {"predictions": [1]},
    )
    assert call(manager, "GET", "/v1/models/m/labels/canary")[0] == 400
    assert call(manager, "POST", "/v1/models/m:regress", {"examples": []})[0] == 501
    assert call(manager, "GET", "/v1/models/m/versions/3") == (
        404,
        {"error": "Could not find version 3 of model m"},
    )
    assert call(manager, "GET", "/v1/models") == (400, {"error": "Missing model name in request."})
    assert call(manager, "PUT", "/v1/models/m") == (400, {"error": "Malformed request: PUT /v1/models/m"})
    assert call(manager, "POST", "/v1/models/m:predict", None) == (
        400,
        {"error": "JSON Parse error: The document is empty"},
    )
    page = manager.metrics.page()
    assert ':tensorflow:serving:request_count{model_name="m",status="OK"} 1' in page
    assert ':tensorflow:serving:request_count{model_name="m",status="NOT_FOUND"} 1' in page
    assert ':tensorflow:serving:request_count{model_name="m",status="INVALID_ARGUMENT"} 2' in page
    assert ':tensorflow:serving:request_count{model_name="",status="INVALID_ARGUMENT"} 2' in page
    assert ':tensorflow:serving:request_count{model_name="m",status="UNIMPLEMENTED"} 1' in page
    # Removing the model from the config unloads its versions at the next poll.
    specs.clear()
    manager.poll()
    assert {s["state"] for s in call(manager, "GET", "/v1/models/m")[1]["model_version_status"]} == {"END"}

"""The built-in penguins pipeline run from its compiled IR with kfp.local (SubprocessRunner(use_venv=False),
offline) on real TensorFlow, TF Transform, TFMA and Beam -- the way the operator's `local` executor runs it.

One champion run is shared by the module; the corrupted-data run stops at the ExampleValidator, and the
worse-than-champion run is a second full chain."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from pipelines.local import ir_digest, run_compiled_locally
from pipelines.penguins.pipeline import IR_PATH, compile_to
from pipelines.penguins.records import read_split

pytestmark = pytest.mark.tensorflow

PENGUINS_CSV = Path(str(resources.files("palmerpenguins") / "data" / "penguins.csv"))
SPECIES = {"Adelie", "Chinstrap", "Gentoo"}


def arguments(data: Path, store: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "data_uri": f"file://{data}",
        "model_store_uri": f"file://{store}",
        "model_name": "penguins",
        "model_version": 0,
        "pipeline_digest": ir_digest(IR_PATH),
        **overrides,
    }


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("penguins")
    (directory / "penguins.csv").write_bytes(PENGUINS_CSV.read_bytes())
    return directory


@pytest.fixture(scope="module")
def champion(workdir: Path) -> dict[str, Any]:
    store = workdir / "models"
    outputs = run_compiled_locally(
        IR_PATH, arguments(workdir / "penguins.csv", store, run_id="champion-run"), workdir / "root-champion"
    )
    version_dir = store / "penguins" / "1"
    manifest = json.loads((version_dir / "slipway-manifest.json").read_text())
    return {"outputs": outputs, "store": store, "version_dir": version_dir, "manifest": manifest}


def test_the_chain_pushes_an_accurate_model_with_its_manifest(
    champion: dict[str, Any], workdir: Path
) -> None:
    result = champion["outputs"]["push_result"]
    version_dir = champion["version_dir"]
    assert result == {
        "pushed": True,
        "reason": "",
        "version": 1,
        "manifestUri": f"file://{version_dir}/slipway-manifest.json",
    }
    assert (version_dir / "saved_model.pb").is_file() and (version_dir / "variables").is_dir()
    manifest = champion["manifest"]
    assert manifest["schemaVersion"] == 1 and manifest["format"] == "SavedModel"
    assert manifest["modelName"] == "penguins" and manifest["version"] == 1
    assert manifest["uri"] == f"file://{version_dir}"
    assert datetime.fromisoformat(manifest["createdAt"].replace("Z", "+00:00")).tzinfo is not None
    assert manifest["metrics"]["accuracy"] >= 0.9
    assert manifest["metrics"]["example_count"] > 50
    assert 0 <= manifest["metrics"]["loss"] < 0.5
    assert manifest["blessings"] == {"evaluator": True, "infraValidator": True}
    assert manifest["signature"]["name"] == "serving_default"
    assert manifest["signature"]["inputs"]["island"] == "string"
    assert manifest["signature"]["inputs"]["bill_length_mm"] == "float32"
    assert "species" not in manifest["signature"]["inputs"]
    assert set(manifest["signature"]["outputs"]) == {"probabilities", "species"}
    assert 2 <= len(manifest["sampleRequest"]["instances"]) <= 3


def test_the_manifest_records_lineage(champion: dict[str, Any], workdir: Path) -> None:
    lineage = champion["manifest"]["lineage"]
    data = workdir / "penguins.csv"
    assert lineage["pipeline"] == "penguins"
    assert lineage["pipelineDigest"] == ir_digest(IR_PATH)
    assert lineage["runId"] == "champion-run"
    assert lineage["data"] == [
        {"uri": f"file://{data}", "fingerprint": "sha256:" + hashlib.sha256(data.read_bytes()).hexdigest()}
    ]
    assert lineage["parameters"]["epochs"] == "40" and lineage["parameters"]["model_name"] == "penguins"
    assert all(isinstance(value, str) for value in lineage["parameters"].values())
    schema_text = Path(urlparse(lineage["schemaUri"]).path).read_text()
    assert 'name: "species"' in schema_text and "string_domain" in schema_text
    assert Path(urlparse(lineage["statisticsUri"]).path).stat().st_size > 0


def test_saved_model_pb_is_written_last(champion: dict[str, Any]) -> None:
    saved_model = champion["version_dir"] / "saved_model.pb"
    others = [p for p in champion["version_dir"].rglob("*") if p.is_file() and p != saved_model]
    # File times tick coarsely (a few ms), so "last" can only be checked as "none later".
    assert all(p.stat().st_mtime_ns <= saved_model.stat().st_mtime_ns for p in others)
    assert not list(champion["version_dir"].rglob("*.partial"))


def test_the_pushed_model_loaded_fresh_answers_a_rest_request(champion: dict[str, Any]) -> None:
    request = json.dumps(champion["manifest"]["sampleRequest"])
    serve = (
        "import json, sys\n"
        "import tensorflow as tf\n"
        "signature = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
        "specs = signature.structured_input_signature[1]\n"
        "instances = json.loads(sys.argv[2])['instances']\n"
        "columns = {k: tf.constant([i[k] for i in instances], s.dtype) for k, s in specs.items()}\n"
        "outputs = signature(**columns)\n"
        "print(json.dumps({'predictions': [{'species': outputs['species'][n].numpy().decode(),\n"
        "    'probabilities': outputs['probabilities'][n].numpy().tolist()}\n"
        "    for n in range(len(instances))]}))\n"
    )
    answer = subprocess.run(
        [sys.executable, "-c", serve, str(champion["version_dir"]), request],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    predictions = json.loads(answer.stdout.strip().splitlines()[-1])["predictions"]
    assert len(predictions) == len(champion["manifest"]["sampleRequest"]["instances"])
    for prediction in predictions:
        assert prediction["species"] in SPECIES
        assert abs(sum(prediction["probabilities"]) - 1) < 1e-4
        assert max(prediction["probabilities"]) > 0.5


def write_corrupted(source: Path, target: Path) -> None:
    """Drops a column, adds an island nobody saw, and puts body masses far outside the known range."""
    rows = list(csv.DictReader(source.open()))
    fields = [f for f in rows[0] if f != "flipper_length_mm"]
    with target.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for index, row in enumerate(rows):
            if index % 5 == 0:
                row = {**row, "island": "Atlantis", "body_mass_g": "999999"}
            writer.writerow(row)


def read_anomalies(pipeline_root: Path, split: str) -> dict[str, set[str]]:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    (path,) = pipeline_root.glob(f"*/example-validator/anomalies/Split-{split}/SchemaDiff.pb")
    anomalies = anomalies_pb2.Anomalies.FromString(path.read_bytes())
    return {
        name: {anomalies_pb2.AnomalyInfo.Type.Name(reason.type) for reason in info.reason}
        for name, info in anomalies.anomaly_info.items()
    }


def test_corrupted_data_yields_anomalies_and_no_push(champion: dict[str, Any], workdir: Path) -> None:
    corrupted, store, root = (
        workdir / "corrupted.csv",
        workdir / "models-corrupted",
        workdir / "root-corrupted",
    )
    write_corrupted(workdir / "penguins.csv", corrupted)
    curated_schema = champion["manifest"]["lineage"]["schemaUri"]
    with pytest.raises(RuntimeError, match="example-validator"):
        run_compiled_locally(IR_PATH, arguments(corrupted, store, curated_schema_uri=curated_schema), root)
    assert not store.exists()
    for split in ("train", "eval"):
        found = read_anomalies(root, split)
        assert found["flipper_length_mm"] == {"SCHEMA_MISSING_COLUMN"}
        assert found["island"] == {"ENUM_TYPE_UNEXPECTED_STRING_VALUES"}
        assert found["body_mass_g"] == {"INT_TYPE_BIG_INT"}
        assert set(found) == {"flipper_length_mm", "island", "body_mass_g"}


def test_clean_data_against_the_curated_schema_has_no_anomalies(
    champion: dict[str, Any], workdir: Path
) -> None:
    # The same chain up to the validator must pass on clean data, or the corrupted-data test proves nothing.
    assert champion["outputs"]["push_result"]["pushed"] is True
    root = next((workdir / "root-champion").glob("*/example-validator/anomalies"))
    assert (root / "Split-eval" / "SchemaDiff.pb").is_file()
    assert read_anomalies(workdir / "root-champion", "eval") == {}


def test_a_model_worse_than_the_champion_is_not_blessed_nor_pushed(
    champion: dict[str, Any], workdir: Path
) -> None:
    store = champion["store"]
    outputs = run_compiled_locally(
        IR_PATH,
        arguments(
            workdir / "penguins.csv",
            store,
            epochs=1,
            learning_rate=0.0003,
            min_accuracy=0.0,
            baseline_model_uri=champion["manifest"]["uri"],
        ),
        workdir / "root-worse",
    )
    result = outputs["push_result"]
    assert result["pushed"] is False and result["version"] is None and result["manifestUri"] is None
    assert "evaluator did not bless" in result["reason"]
    assert "change against the baseline" in result["reason"]
    assert sorted(p.name for p in (store / "penguins").iterdir()) == ["1"]
    (blessing,) = (workdir / "root-worse").glob("*/evaluator/blessing")
    assert (blessing / "NOT_BLESSED").exists() and not (blessing / "BLESSED").exists()


def test_the_compiled_ir_is_up_to_date(tmp_path: Path) -> None:
    fresh = tmp_path / "pipeline.yaml"
    compile_to(fresh)
    assert fresh.read_text() == IR_PATH.read_text(), "run `make pipelines-compile` to refresh pipeline.yaml"


def test_no_step_installs_packages_at_run_time() -> None:
    ir = yaml.safe_load(IR_PATH.read_text())
    executors = ir["deploymentSpec"]["executors"]
    assert len(executors) == 9
    for name, executor in executors.items():
        shell, flags, script, _source = executor["container"]["command"]
        assert (shell, flags) == ("sh", "-ec"), name
        assert "pip" not in script, name
        assert "python3 -m kfp.dsl.executor_main" in script, name


def call_pusher(
    champion: dict[str, Any], workdir: Path, store_uri: str, infra_blessed: bool, model_version: int = 0
) -> dict[str, Any]:
    """The Pusher's own function on the champion run's artifacts, without a whole chain."""
    from kfp.dsl import Artifact, Model
    from pipelines.penguins.components import pusher

    run = next((workdir / "root-champion").glob("*/pusher")).parent
    executor_output = json.loads((run / "infra-validator" / "executor_output.json").read_text())
    infra = json.loads(executor_output["parameterValues"]["Output"])
    infra["blessed"], infra["reason"] = infra_blessed, "" if infra_blessed else "latency 5000 ms > 2000 ms"
    evaluation = {"blessed": True, "metrics": {"accuracy": 1.0}, "reasons": []}
    parameters: dict[str, Any] = {
        "data_uri": "file:///data.csv",
        "eval_buckets": 30,
        "epochs": 1,
        "batch_size": 32,
        "learning_rate": 0.01,
        "hidden_units": 16,
        "seed": 7,
        "min_accuracy": 0.9,
        "max_accuracy_drop": 0.01,
        "baseline_model_uri": "",
        "curated_schema_uri": "",
    }
    pushed_model = Artifact(uri=str(workdir / "pushed-model-scratch"))
    result = pusher.python_func(
        model=Model(uri=str(run / "trainer" / "model")),
        statistics=Artifact(uri=str(run / "statistics-gen" / "statistics")),
        schema=Artifact(uri=str(run / "schema-gen" / "schema")),
        evaluation=json.dumps(evaluation),
        infra_validation=json.dumps(infra),
        data_lineage=json.dumps([{"uri": "file:///data.csv", "fingerprint": "sha256:0"}]),
        model_store_uri=store_uri,
        model_name="penguins",
        model_version=model_version,
        pipeline_name="penguins",
        pipeline_digest="sha256:1",
        run_id="direct",
        pipeline_job_name="job",
        pushed_model=pushed_model,
        **parameters,
    )
    parsed: dict[str, Any] = json.loads(result)
    return parsed


def test_no_infra_blessing_means_no_push(champion: dict[str, Any], workdir: Path) -> None:
    store = workdir / "models-unblessed"
    result = call_pusher(champion, workdir, f"file://{store}", infra_blessed=False)
    assert result == {
        "pushed": False,
        "reason": "infra validator did not bless the model: latency 5000 ms > 2000 ms",
        "version": None,
        "manifestUri": None,
    }
    assert not store.exists()
    # Started by the operator (a version assigned): the reason is also kept where it reads it after a KFP
    # run, whose outputs it cannot read; no version directory appears.
    call_pusher(champion, workdir, f"file://{store}", infra_blessed=False, model_version=3)
    assert sorted(p.name for p in (store / "penguins").iterdir()) == ["slipway-push-results"]
    record = json.loads((store / "penguins" / "slipway-push-results" / "3.json").read_text())
    assert record == {
        "pushed": False,
        "reason": "infra validator did not bless the model: latency 5000 ms > 2000 ms",
        "version": 3,
        "runId": "direct",
    }


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A moto S3 server on loopback, reached through the environment's AWS_* variables."""
    import socket
    import time
    import urllib.error
    import urllib.request

    import boto3

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "moto.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
            break
        except urllib.error.HTTPError:
            break
        except OSError:
            assert time.monotonic() < deadline and server.poll() is None, "moto did not start"
            time.sleep(0.2)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="models")
    try:
        yield "models"
    finally:
        server.terminate()
        server.wait(10)
        log.close()


def test_the_pusher_writes_versions_to_an_s3_store(
    champion: dict[str, Any], workdir: Path, s3_bucket: str
) -> None:
    import boto3

    first = call_pusher(champion, workdir, f"s3://{s3_bucket}/store", infra_blessed=True)
    second = call_pusher(champion, workdir, f"s3://{s3_bucket}/store", infra_blessed=True)
    assert (first["version"], second["version"]) == (1, 2)
    assert second["manifestUri"] == f"s3://{s3_bucket}/store/penguins/2/slipway-manifest.json"
    s3 = boto3.client("s3")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="store/penguins/2/")["Contents"]}
    local = {
        str(p.relative_to(champion["version_dir"])) for p in champion["version_dir"].rglob("*") if p.is_file()
    }
    assert keys == {f"store/penguins/2/{name}" for name in local}
    manifest = json.loads(
        s3.get_object(Bucket=s3_bucket, Key="store/penguins/2/slipway-manifest.json")["Body"].read()
    )
    assert manifest["uri"] == f"s3://{s3_bucket}/store/penguins/2" and manifest["version"] == 2


SPLIT_IN_A_FRESH_PROCESS = """
import json, sys
from kfp.dsl import Dataset
from tfx_bsl.coders import example_coder
from pipelines.penguins.components import example_gen

examples = Dataset(uri=sys.argv[2])
example_gen.python_func(data_uri=sys.argv[1], eval_buckets=30, examples=examples)
rows = []
for record in open(sys.argv[2] + "/Split-eval/data_tfrecord-00000-of-00001", "rb").read().split(b"\\\\n"):
    pass
print(json.dumps({k: v for k, v in examples.metadata.items() if k.endswith("_count")}))
"""


def eval_rows(examples_dir: Path) -> set[tuple[tuple[str, str], ...]]:
    from tfx_bsl.coders import example_coder

    return {
        tuple(sorted((k, "" if v is None else str(v.tolist())) for k, v in example.items()))
        for example in map(example_coder.ExampleToNumpyDict, read_split(str(examples_dir), "eval"))
    }


def test_the_split_is_the_same_in_every_process(workdir: Path, tmp_path: Path) -> None:
    counts = []
    for attempt in ("first", "second"):
        completed = subprocess.run(
            [
                sys.executable,
                "-c",
                SPLIT_IN_A_FRESH_PROCESS,
                f"file://{workdir / 'penguins.csv'}",
                str(tmp_path / attempt),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
            cwd=Path(__file__).resolve().parents[2],  # where `pipelines` imports from
        )
        counts.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    assert counts[0] == counts[1] and counts[0]["train_count"] + counts[0]["eval_count"] == 344
    assert 0.2 < counts[0]["eval_count"] / 344 < 0.4
    assert eval_rows(tmp_path / "first") == eval_rows(tmp_path / "second")


def test_the_operator_reads_the_runs_statistics_as_a_drift_baseline(champion: dict[str, Any]) -> None:
    """The drift trigger measures batches with the code StatisticsGen ran: against the run's own
    statistics and schema, a resample of the data does not drift and a shifted batch does."""
    from fixtures.penguins import resample, shifted
    from slipway.api.training_pipeline import OnDrift
    from slipway.datastats import schema as datastats_schema
    from slipway.datastats import statistics as datastats
    from slipway.storage import ObjectInfo
    from slipway.training import drift

    lineage = champion["manifest"]["lineage"]
    stats_path, schema_path = (
        Path(lineage[k].removeprefix("file://")) for k in ("statisticsUri", "schemaUri")
    )
    baseline = drift.Baseline(
        1,
        lineage["statisticsUri"],
        datastats.parse(stats_path.read_bytes()),
        datastats_schema.parse(schema_path.read_text()),
    )
    rule = OnDrift.model_validate({"batches": {"uri": "file:///batches"}})
    batch = ObjectInfo(key="b.csv", size=1, etag="1", uri="file:///batches/b.csv")
    clean = drift.judge(batch, datastats.csv_statistics([resample(200, 5)], "b"), baseline, rule)
    assert clean.outcome == "NoDrift", clean.summary()
    moved = drift.judge(batch, datastats.csv_statistics([shifted(200, 5)], "b"), baseline, rule)
    assert moved.outcome == "Drifted" and {d.feature for d in moved.drifted} == {"body_mass_g", "island"}


def test_a_push_by_tfx_s_own_pusher_is_registered_with_tfma_s_metrics_or_told_why_not(
    champion: dict[str, Any], workdir: Path
) -> None:
    """slipway.training.tfx_register on this chain's real TFX-format artifacts (TFMA's evaluation output,
    the BLESSED and INFRA_BLESSED files) and a push laid out as TFX's Pusher lays it out."""
    import shutil

    import tensorflow as tf
    from tensorflow_model_analysis.proto import validation_result_pb2

    from slipway.training.tfx_register import Request, register

    run = next((workdir / "root-champion").glob("*/pusher")).parent
    (blessing,) = (run / "evaluator").glob("blessing")
    (infra_blessing,) = (run / "infra-validator").glob("infra_blessing")
    (evaluation,) = (run / "evaluator").glob("evaluation")
    destination = workdir / "tfx-serving"
    shutil.copytree(run / "trainer" / "model" / "Format-Serving", destination / "1700000000")
    store = workdir / "models-tfx"
    request = Request(
        push_destination=str(destination),
        blessing=str(blessing),
        infra_blessing=str(infra_blessing),
        evaluation=str(evaluation),
        model_store_uri=f"file://{store}",
        model_name="penguins",
        model_version=2,
        run_id="tfx-run",
    )
    result = register(request)
    assert result["pushed"] is True and result["version"] == 2
    written = json.loads((store / "penguins" / "2" / "slipway-manifest.json").read_text())
    # TFMA's own metric names; the same values the built-in pipeline's manifest gives as accuracy and loss.
    assert written["metrics"]["sparse_categorical_accuracy"] == champion["manifest"]["metrics"]["accuracy"]
    assert written["metrics"]["example_count"] == champion["manifest"]["metrics"]["example_count"]
    assert (store / "penguins" / "2" / "saved_model.pb").read_bytes() == (
        destination / "1700000000" / "saved_model.pb"
    ).read_bytes()

    # Not blessed: TFMA's validation result names the metric, its value and the threshold it failed.
    refused = workdir / "tfx-refused"
    shutil.copytree(evaluation, refused / "evaluation")
    (refused / "blessing").mkdir()
    (refused / "blessing" / "NOT_BLESSED").touch()
    failing = validation_result_pb2.ValidationResult(validation_ok=False)
    failure = failing.metric_validations_per_slice.add().failures.add()
    failure.metric_key.name = "sparse_categorical_accuracy"
    failure.metric_threshold.value_threshold.lower_bound.value = 0.99
    failure.metric_value.double_value.value = 0.42
    (validations,) = (refused / "evaluation").glob("validations*")
    with tf.io.TFRecordWriter(str(validations)) as writer:
        writer.write(failing.SerializeToString())
    result = register(
        Request(
            push_destination=str(destination),
            blessing=str(refused / "blessing"),
            evaluation=str(refused / "evaluation"),
            model_store_uri=f"file://{store}",
            model_name="penguins",
            model_version=3,
        )
    )
    assert result["pushed"] is False
    assert result["reason"] == (
        "evaluator did not bless the model: sparse_categorical_accuracy value 0.4200 fails "
        "{value_threshold { lower_bound { value: 0.99 } }}"
    )
    assert not (store / "penguins" / "3").exists()
    assert json.loads((store / "penguins" / "slipway-push-results" / "3.json").read_text())["pushed"] is False

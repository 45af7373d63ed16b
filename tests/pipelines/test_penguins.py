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
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from pipelines.local import ir_digest, run_compiled_locally
from pipelines.penguins.pipeline import IR_PATH, compile_to

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
    # kfp.local rewrites every "python3" in a step's command line, argument values included, so the data
    # must not stay under .../lib/python3.11/site-packages.
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
    files = [p for p in champion["version_dir"].rglob("*") if p.is_file()]
    last = max(files, key=lambda p: p.stat().st_mtime_ns)
    assert last.name == "saved_model.pb"
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

"""The job executor's in-pod entry, `python3 -m slipway.training.job_run <dir>`, run as the pod runs it (a
process with the ConfigMap's two files in a directory and the store's credentials in its environment): it
runs the real tiny pipeline with kfp.local and leaves its outcome and artifacts on S3 (moto)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from fixtures.storage import StorageServer
from slipway import blobs
from slipway.datastats import statistics
from slipway.storage import open_store
from slipway.training import job_executor as jobs

TINY = Path(__file__).resolve().parent / "pipelines" / "tiny" / "pipeline.yaml"
PENGUINS = Path(__file__).resolve().parents[2] / "pipelines" / "penguins" / "pipeline.yaml"
PENGUINS_CSV = Path(str(resources.files("palmerpenguins") / "data" / "penguins.csv"))


def run_pod(
    tmp_path: Path, server: StorageServer, ir: Path = TINY, root: str = "", **arguments: Any
) -> tuple[int, str, str]:
    """(exit code, output, the run's root on S3)."""
    root = root or f"s3://{server.new_bucket()}/ml/tiny"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "batch.csv").write_text("x,y\n1,2\n")
    standard = {
        "data_uri": f"file://{tmp_path / 'data'}",
        "model_store_uri": f"file://{tmp_path / 'models'}",
        "model_name": "tiny",
        "model_version": 1,
        "run_id": "tiny-manual-1",
    }
    request = jobs.request("tiny-manual-1", {**standard, **arguments}, root)
    request["pipelineRoot"] = str(tmp_path / "work" / "pipeline-root")  # the emptyDir
    (run_dir / "request.json").write_text(json.dumps(request))
    (run_dir / "pipeline.yaml").write_text(ir.read_text())
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLIPWAY_"))},
        **server.credentials.to_env(),
        "HOME": str(tmp_path / "work"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "slipway.training.job_run", str(run_dir)],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return done.returncode, done.stdout + done.stderr, root


def test_a_run_records_its_outputs_and_uploads_its_artifacts(
    tmp_path: Path, s3_server: StorageServer
) -> None:
    code, output, root = run_pod(tmp_path, s3_server)
    assert code == 0, output[-3000:]
    store = open_store(root, s3_server.credentials)
    state = json.loads(store.read_bytes("runs/tiny-manual-1/state.json"))
    assert state["phase"] == "Succeeded" and state["started"] <= state["finished"]
    assert json.loads(state["outputs"]["Output"])["pushed"] is True
    assert state["artifactsUri"] == f"{root}/runs/tiny-manual-1/artifacts"
    uploaded = [info.key for info in store.list("runs/tiny-manual-1/artifacts/")]
    assert uploaded, "kfp.local's pipeline root was not uploaded"
    assert (tmp_path / "models" / "tiny" / "1" / "saved_model.pb").exists()


def test_a_failing_step_is_a_failed_state_and_a_failed_exit(tmp_path: Path, s3_server: StorageServer) -> None:
    code, output, root = run_pod(tmp_path, s3_server, fail=True)
    assert code == 1, output[-3000:]
    state = json.loads(open_store(root, s3_server.credentials).read_bytes("runs/tiny-manual-1/state.json"))
    assert state["phase"] == "Failed"
    assert "RuntimeError" in state["message"], state["message"]
    assert "loss is NaN" in output


@pytest.mark.tensorflow
def test_the_penguins_pipeline_trains_from_s3_to_s3_as_in_the_pod(
    tmp_path: Path, s3_server: StorageServer
) -> None:
    """The built-in pipeline on real TensorFlow, with data, artifacts and models on S3 and the credentials
    only in the environment: what the e2e's Job runs, minus the container."""
    bucket = s3_server.new_bucket()
    store = open_store(f"s3://{bucket}", s3_server.credentials)
    store.write_bytes("data/penguins.csv", PENGUINS_CSV.read_bytes())
    started = time.monotonic()
    code, output, root = run_pod(
        tmp_path,
        s3_server,
        ir=PENGUINS,
        root=f"s3://{bucket}/artifacts/ml/penguins",
        data_uri=f"s3://{bucket}/data/penguins.csv",
        model_store_uri=f"s3://{bucket}/models",
        model_name="penguins",
        model_version=1,
        pipeline_digest="sha256:test",
        run_id="penguins-manual-1",
    )
    seconds = time.monotonic() - started
    assert code == 0, output[-5000:]
    state = json.loads(store.read_bytes("artifacts/ml/penguins/runs/tiny-manual-1/state.json"))
    assert state["phase"] == "Succeeded", state
    push = json.loads(state["outputs"]["push_result"])
    assert push["pushed"] is True and push["version"] == 1, push
    assert store.exists("models/penguins/1/saved_model.pb")
    manifest = json.loads(store.read_bytes("models/penguins/1/slipway-manifest.json"))
    artifacts = f"{root}/runs/tiny-manual-1/artifacts/"
    statistics_uri, schema_uri = manifest["lineage"]["statisticsUri"], manifest["lineage"]["schemaUri"]
    assert statistics_uri.startswith(artifacts) and schema_uri.startswith(artifacts), manifest["lineage"]
    # What drift detection does with a Validated version's manifest: its training statistics, from S3.
    stats = statistics.parse(blobs.read_bytes(statistics_uri, s3_server.credentials))
    assert stats.num_examples > 200
    print(f"penguins through job_run, S3 to S3: {seconds:.0f} s")

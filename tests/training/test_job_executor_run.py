"""The job executor's in-pod entry, `python3 -m slipway.training.job_run <dir>`, run as the pod runs it (a
process with the ConfigMap's two files in a directory and the store's credentials in its environment): it
runs the real tiny pipeline with kfp.local and leaves its outcome and artifacts on S3 (moto)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from fixtures.storage import StorageServer
from slipway.storage import open_store
from slipway.training import job_executor as jobs

TINY = Path(__file__).resolve().parent / "pipelines" / "tiny" / "pipeline.yaml"


def run_pod(tmp_path: Path, server: StorageServer, **arguments: Any) -> tuple[int, str, str]:
    """(exit code, output, the run's root on S3)."""
    root = f"s3://{server.new_bucket()}/ml/tiny"
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
    request = {**jobs.request("tiny-manual-1", {**standard, **arguments}, root)}
    request["pipelineRoot"] = str(tmp_path / "work" / "pipeline-root")  # the emptyDir
    (run_dir / "request.json").write_text(json.dumps(request))
    (run_dir / "pipeline.yaml").write_text(TINY.read_text())
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLIPWAY_"))},
        **server.credentials.to_env(),
        "HOME": str(tmp_path / "work" / "home"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "slipway.training.job_run", str(run_dir)],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
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

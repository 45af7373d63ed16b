"""Pieces of the TrainingPipeline reconcile that need no API server: sources, credentials, run timeouts."""

from __future__ import annotations

import base64
import json
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from slipway.api.common import StorageLocation, now
from slipway.training.controller import reconcile_body
from slipway.training.credentials import storage_credentials
from slipway.training.local_executor import read_state, write_state
from slipway.training.observe import Memory
from slipway.training.source import SourceError, parse_ir

PIPELINES = Path(__file__).resolve().parent / "pipelines"


@pytest.mark.parametrize(
    "text",
    ["just: a mapping\n", "- a\n- list\n", "{unclosed", "apiVersion: v1\nkind: ConfigMap\n"],
)
def test_an_ir_that_is_not_a_pipeline_names_the_field(text: str) -> None:
    with pytest.raises(SourceError) as raised:
        parse_ir(text, "spec.pipeline.specUri")
    assert raised.value.reason == "InvalidPipelineSpec"
    assert str(raised.value).startswith("spec.pipeline.specUri: ")


def test_storage_credentials_from_the_secret_and_endpoint() -> None:
    secret = {"AWS_ACCESS_KEY_ID": base64.b64encode(b"AKIA").decode()}
    secret["AWS_SECRET_ACCESS_KEY"] = base64.b64encode(b"sekrit").decode()
    location = StorageLocation(uri="s3://models", secret_ref={"name": "creds"}, endpoint="http://minio:9000")
    found = storage_credentials(location, "spec.modelStore", lambda name: secret if name == "creds" else None)
    assert found.aws_access_key_id == "AKIA" and found.aws_secret_access_key == "sekrit"
    assert found.aws_endpoint_url == "http://minio:9000"
    assert "sekrit" not in repr(found)
    assert storage_credentials(StorageLocation(uri="file:///m"), "spec.modelStore", lambda _: None) is None
    with pytest.raises(SourceError) as raised:
        storage_credentials(location, "spec.modelStore", lambda _: None)
    assert (raised.value.field, raised.value.reason) == ("spec.modelStore.secretRef", "SecretNotFound")


def test_a_run_past_its_timeout_is_terminated_and_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLIPWAY_PIPELINES_DIR", str(PIPELINES))
    run_dir = tmp_path / "artifacts" / "ns" / "slow" / "runs" / "slow-manual-1"
    run_dir.mkdir(parents=True)
    child = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        (run_dir / "pid").write_text(str(child.pid))
        write_state(run_dir, phase="Running", started="2026-01-01T00:00:00Z")
        started = now() - timedelta(seconds=3600)
        body: dict[str, Any] = {
            "metadata": {
                "namespace": "ns",
                "name": "slow",
                "generation": 1,
                "creationTimestamp": "2026-01-01T00:00:00Z",
            },
            "spec": {
                "pipeline": {"builtin": "tiny"},
                "modelName": "slow",
                "data": {"uri": f"file://{tmp_path}/data"},
                "artifactRoot": {"uri": f"file://{tmp_path}/artifacts"},
                "modelStore": {"uri": f"file://{tmp_path}/models"},
                "runTimeoutSeconds": 600,
            },
            "status": {
                "runs": [
                    {
                        "id": "slow-manual-1",
                        "trigger": "Manual",
                        "phase": "Running",
                        "startTime": started.isoformat(),
                    }
                ]
            },
        }
        outcome = reconcile_body(body, [], None, memory=Memory())
        assert child.wait(timeout=10) != 0, "the run's process group was terminated"
    finally:
        child.kill()
    (record,) = outcome.status.runs
    assert record.phase == "Failed" and "timed out after 600 s" in record.message
    assert ("Warning", "RunFailed") in [(t, r) for t, r, _ in outcome.events]
    state = read_state(run_dir)
    assert state is not None and state.phase == "Cancelled"
    assert json.loads((run_dir / "state.json").read_text())["message"] == "terminated"

"""The job executor's pod: `python3 -m slipway.training.job_run <dir>`, where <dir> holds the ConfigMap's
pipeline.yaml and request.json.

Runs the pipeline with kfp.local exactly as the local executor's child does (its pipeline root on the pod's
emptyDir), uploads that root to the artifact store, and writes the outcome and the pipeline's outputs as a
JSON state object at the request's `stateUri`, where the operator reads it. Storage credentials come from
the environment (the Job's secretKeyRefs) or the pod's workload identity."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from slipway.storage import StorageError, open_store, upload_tree
from slipway.training.local_executor import now_text
from slipway.training.pipeline_run import run_pipeline


def _split(uri: str) -> tuple[str, str]:
    parent, _, key = uri.rstrip("/").rpartition("/")
    return parent, key


def record(state_uri: str, **state: Any) -> None:
    parent, key = _split(state_uri)
    open_store(parent).write_bytes(key, json.dumps(state).encode())


def upload_artifacts(pipeline_root: str, artifacts_uri: str) -> str:
    """Copies what the steps wrote under kfp.local's root to the artifact store; says so if it could not."""
    if not Path(pipeline_root).is_dir():
        return ""
    try:
        upload_tree(pipeline_root, open_store(artifacts_uri))
    except (StorageError, OSError) as error:
        return f"artifacts not uploaded to {artifacts_uri}: {error}"
    return ""


def relocated(manifest: dict[str, Any], pipeline_root: str, artifacts_uri: str) -> dict[str, Any]:
    """The manifest with lineage URIs under the pod's pipeline root pointed at their uploaded copies (the
    emptyDir is gone when the pod is): drift detection reads the training statistics from there."""
    local = "file://" + pipeline_root.rstrip("/") + "/"
    lineage = dict(manifest.get("lineage") or {})
    for key in ("schemaUri", "statisticsUri"):
        value = lineage.get(key)
        if isinstance(value, str) and value.startswith(local):
            lineage[key] = artifacts_uri.rstrip("/") + "/" + value[len(local) :]
    return {**manifest, "lineage": lineage}


def relocate_lineage(outputs: dict[str, Any] | None, pipeline_root: str, artifacts_uri: str) -> str:
    """Rewrites the pushed model's manifest (see `relocated`); says so if it could not."""
    pushed = (outputs or {}).get("push_result") or (outputs or {}).get("Output")
    try:
        result = json.loads(pushed) if isinstance(pushed, str) else pushed
    except ValueError:
        return ""
    manifest_uri = result.get("manifestUri") if isinstance(result, dict) and result.get("pushed") else None
    if not isinstance(manifest_uri, str):
        return ""
    parent, key = _split(manifest_uri)
    try:
        store = open_store(parent)
        manifest = json.loads(store.read_bytes(key))
        moved = relocated(manifest, pipeline_root, artifacts_uri)
        if moved != manifest:
            store.write_bytes(key, json.dumps(moved, indent=2).encode())
    except (StorageError, OSError, ValueError) as error:
        return f"lineage not relocated in {manifest_uri}: {error}"
    return ""


def run(request_dir: Path) -> int:
    request = json.loads((request_dir / "request.json").read_text())
    state_uri, started = request["stateUri"], now_text()
    record(state_uri, phase="Running", started=started)
    outcome = run_pipeline(request_dir / "pipeline.yaml", request["arguments"], request["pipelineRoot"])
    problem = upload_artifacts(request["pipelineRoot"], request["artifactsUri"])
    if not problem and outcome.phase == "Succeeded":
        problem = relocate_lineage(outcome.outputs, request["pipelineRoot"], request["artifactsUri"])
    message = "; ".join(m for m in (outcome.message, problem) if m)
    record(
        state_uri,
        phase=outcome.phase,
        message=message[:2000],
        started=started,
        finished=now_text(),
        outputs=outcome.outputs,
        artifactsUri=request["artifactsUri"],
    )
    return 0 if outcome.phase == "Succeeded" else 1


if __name__ == "__main__":
    code = run(Path(sys.argv[1]))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the outcome is recorded: skip tearing down kfp and TensorFlow

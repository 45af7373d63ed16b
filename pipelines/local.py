"""Running a compiled pipeline (KFP IR YAML) with kfp.local, the way the operator's `local` executor does:
offline, in this interpreter (SubprocessRunner(use_venv=False): each step is a child process of it)."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any


def ir_digest(ir_path: Path) -> str:
    """The `pipeline_digest` parameter: sha256 of the compiled IR's bytes."""
    return "sha256:" + hashlib.sha256(ir_path.read_bytes()).hexdigest()


def run_compiled_locally(ir_path: Path, arguments: dict[str, Any], pipeline_root: Path) -> dict[str, Any]:
    """Runs the IR to completion and returns its outputs; `push_result` is decoded from JSON.

    Raises RuntimeError (from kfp.local) when a step fails, e.g. ExampleValidator on anomalies."""
    from kfp import components

    from slipway.training import kfp_local

    kfp_local.init(str(pipeline_root))
    pipeline = components.load_component_from_file(str(ir_path))
    with warnings.catch_warnings():
        # kfp.local warns once per step that the step names a base image; this interpreter stands in for it.
        warnings.filterwarnings("ignore", message="You may be attemping to run a task that uses custom")
        task = pipeline(**arguments)
    outputs = dict(task.outputs or {})
    if isinstance(outputs.get("push_result"), str):
        outputs["push_result"] = json.loads(outputs["push_result"])
    return outputs

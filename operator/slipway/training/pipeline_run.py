"""Running a compiled pipeline to its outcome with kfp.local in this interpreter (each step a child process
of it): shared by the local executor's child process (`local_run`) and the job executor's pod (`job_run`)."""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# kfp.local colours its messages for a terminal; a status message and an Event are not one.
TERMINAL_COLOURS = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Outcome:
    phase: str  # Succeeded | Failed
    message: str = ""
    outputs: dict[str, Any] | None = None


def plain(value: Any) -> Any:
    """An output as JSON: artifacts become {"uri": ...}."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    uri = getattr(value, "uri", None)
    return {"uri": uri} if uri is not None else str(value)


def run_pipeline(ir_path: Path, arguments: dict[str, Any], pipeline_root: str) -> Outcome:
    """Runs the IR to completion; a failing step is a Failed outcome (its traceback goes to stderr)."""
    from kfp import components

    from slipway.training import kfp_local

    try:
        kfp_local.init(pipeline_root)
        pipeline = components.load_component_from_file(str(ir_path))
        task = pipeline(**arguments)
        outputs = {name: plain(value) for name, value in (task.outputs or {}).items()}
    except Exception as error:
        traceback.print_exc()
        message = TERMINAL_COLOURS.sub("", f"{type(error).__name__}: {error}")
        return Outcome("Failed", message[:2000])
    return Outcome("Succeeded", outputs=outputs)

"""Running a compiled pipeline to its outcome with kfp.local in this interpreter (each step a child process
of it): shared by the local executor's child process (`local_run`) and the job executor's pod (`job_run`)."""

from __future__ import annotations

import collections
import contextlib
import io
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

# kfp.local colours its messages for a terminal; a status message and an Event are not one.
TERMINAL_COLOURS = re.compile(r"\x1b\[[0-9;]*m")
# The last line of a Python traceback: what a failing step raised (kfp.local echoes the step's output).
RAISED = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception)): (.+)$")


class Tail(io.TextIOBase):
    """stdout, passed through, with its last lines kept: kfp.local prints a step's output there, and says
    only that the step failed; the step's own error is the last exception line it printed."""

    def __init__(self, target: TextIO, keep: int = 400) -> None:
        self.target, self.lines, self.partial = target, collections.deque[str](maxlen=keep), ""

    def write(self, text: str) -> int:
        self.target.write(text)
        *complete, self.partial = (self.partial + text).split("\n")
        self.lines.extend(complete)
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def step_error(self) -> str:
        for line in reversed([*self.lines, self.partial]):
            found = RAISED.match(TERMINAL_COLOURS.sub("", line).strip())
            if found:
                return f"{found.group(1)}: {found.group(3)}"
        return ""


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
    """Runs the IR to completion; a failing step is a Failed outcome whose message ends with what the step
    raised (e.g. `RuntimeError: module file s3://m/model.py: it defines no run_fn()`); its traceback goes
    to stderr."""
    from kfp import components

    from slipway.training import kfp_local

    tail = Tail(sys.stdout)
    try:
        kfp_local.init(pipeline_root)
        pipeline = components.load_component_from_file(str(ir_path))
        with contextlib.redirect_stdout(tail):
            task = pipeline(**arguments)
        outputs = {name: plain(value) for name, value in (task.outputs or {}).items()}
    except Exception as error:
        traceback.print_exc()
        message = TERMINAL_COLOURS.sub("", f"{type(error).__name__}: {error}")
        cause = tail.step_error()
        if cause and cause not in message:
            message = f"{message} {cause}"
        return Outcome("Failed", message[:2000])
    return Outcome("Succeeded", outputs=outputs)

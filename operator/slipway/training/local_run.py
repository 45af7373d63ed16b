"""The child process of the local executor: `python -m slipway.training.local_run <run-dir>`.

Runs the compiled pipeline in the run directory with kfp.local (subprocess runner, no venv, offline) and
records the outcome and the pipeline's outputs in state.json."""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from slipway.training.local_executor import REQUEST, now_text, read_state, write_state


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    uri = getattr(value, "uri", None)
    return {"uri": uri} if uri is not None else str(value)


def run(run_dir: Path) -> int:
    from kfp import components

    from slipway.training import kfp_local

    request = json.loads((run_dir / REQUEST).read_text())
    previous = read_state(run_dir)
    started = previous.started if previous else now_text()
    write_state(run_dir, phase="Running", started=started)
    try:
        kfp_local.init(request["pipelineRoot"])
        pipeline = components.load_component_from_file(str(run_dir / "pipeline.yaml"))
        task = pipeline(**request["arguments"])
        outputs = {name: _plain(value) for name, value in (task.outputs or {}).items()}
    except Exception as error:
        traceback.print_exc()
        message = f"{type(error).__name__}: {error}"
        write_state(run_dir, phase="Failed", message=message[:2000], started=started, finished=now_text())
        return 1
    write_state(run_dir, phase="Succeeded", started=started, finished=now_text(), outputs=outputs)
    return 0


if __name__ == "__main__":
    code = run(Path(sys.argv[1]))
    # The outcome is in state.json already; skip tearing down kfp and its imports (a few hundred ms) so
    # the operator, which waits on this process, registers the run at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

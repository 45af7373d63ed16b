"""The child process of the local executor: `python -m slipway.training.local_run <run-dir>`.

Runs the compiled pipeline in the run directory with kfp.local (subprocess runner, no venv, offline) and
records the outcome and the pipeline's outputs in state.json. The run and its steps run at a lower CPU
priority than the operator (NICENESS)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from slipway.training.local_executor import REQUEST, now_text, read_state, write_state
from slipway.training.pipeline_run import run_pipeline


def run(run_dir: Path) -> int:
    request = json.loads((run_dir / REQUEST).read_text())
    previous = read_state(run_dir)
    started = previous.started if previous else now_text()
    write_state(run_dir, phase="Running", started=started)
    outcome = run_pipeline(run_dir / "pipeline.yaml", request["arguments"], request["pipelineRoot"])
    write_state(
        run_dir,
        phase=outcome.phase,
        message=outcome.message,
        started=started,
        finished=now_text(),
        outputs=outcome.outputs,
    )
    return 0 if outcome.phase == "Succeeded" else 1


# Runs share the operator's CPUs: at full load they would starve the reconciles that register them.
NICENESS = 10


if __name__ == "__main__":
    os.nice(NICENESS)
    code = run(Path(sys.argv[1]))
    # The outcome is in state.json already; skip tearing down kfp and its imports (a few hundred ms) so
    # the operator, which waits on this process, registers the run at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

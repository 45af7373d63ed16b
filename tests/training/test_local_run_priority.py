"""A local run shares the operator's CPUs: it runs at a lower priority, so ten runs at full load do not
starve the reconciles that register them."""

from __future__ import annotations

import os
import time
from pathlib import Path

from slipway.training.local_executor import LocalExecutor
from slipway.training.local_run import NICENESS

PIPELINES = Path(__file__).resolve().parent / "pipelines"


def niceness(pid: int) -> int | None:
    """The process's nice value; None once it has exited."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # proc(5) fields 3 (state) and 19 (nice): the split starts at field 3
    return None if fields[0] in ("Z", "X") else int(fields[16])


def test_a_local_run_runs_below_the_operators_priority(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("x,y\n1,2\n")
    executor = LocalExecutor(tmp_path / "runs")
    arguments = {
        "data_uri": f"file://{tmp_path}/data",
        "model_store_uri": f"file://{tmp_path}/models",
        "model_name": "tiny",
        "model_version": 1,
        "run_id": "tiny-manual-1",
    }
    ir_text = (PIPELINES / "tiny" / "pipeline.yaml").read_text()
    started = executor.submit("tiny-manual-1", ir_text, arguments, str(tmp_path / "root"))
    assert started.pid is not None
    seen: set[int] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (value := niceness(started.pid)) is None:
            break
        seen.add(value)
        if os.nice(0) + NICENESS in seen:
            break
        time.sleep(0.01)
    try:
        assert os.nice(0) + NICENESS in seen, f"the run's niceness: {sorted(seen)}"
    finally:
        executor.terminate("tiny-manual-1")

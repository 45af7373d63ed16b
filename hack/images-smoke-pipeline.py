"""Smoke test of the pipelines image (run inside it by hack/images.sh): compiles a two-step KFP pipeline whose
steps import the image's TensorFlow stack and slipway, and runs it with `python -m slipway.training.local_run`
exactly as the local and job executors do (kfp.local, SubprocessRunner without a venv, offline)."""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from kfp import compiler, dsl


@dsl.component(base_image="localhost/slipway-pipelines:dev", install_kfp_package=False)
def tensor_sum(values: str) -> float:
    import tensorflow as tf

    return float(tf.reduce_sum(tf.constant([float(v) for v in values.split(",")])).numpy())


@dsl.component(base_image="localhost/slipway-pipelines:dev", install_kfp_package=False)
def check(total: float) -> str:
    import tensorflow_model_analysis  # noqa: F401
    import tensorflow_transform  # noqa: F401

    import slipway.datastats  # noqa: F401  (the steps share it with the operator)

    assert total == 6.0, total
    return f"sum={total}"


@dsl.pipeline(name="slipway-image-smoke")
def smoke(values: str = "1,2,3") -> str:
    return check(total=tensor_sum(values=values).output).output


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="smoke-"))
    run_dir = work / "run"
    run_dir.mkdir()
    compiler.Compiler().compile(smoke, str(run_dir / "pipeline.yaml"))
    request = {"arguments": {"values": "1,2,3"}, "pipelineRoot": str(work / "root")}
    (run_dir / "request.json").write_text(json.dumps(request))
    completed = subprocess.run(
        [sys.executable, "-m", "slipway.training.local_run", str(run_dir)], capture_output=True, text=True
    )
    state = json.loads((run_dir / "state.json").read_text())
    if completed.returncode != 0 or state.get("phase") != "Succeeded":
        print(completed.stdout[-3000:], completed.stderr[-3000:], state, file=sys.stderr)
        return 1
    print("pipelines: local_run Succeeded:", json.dumps(state.get("outputs")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

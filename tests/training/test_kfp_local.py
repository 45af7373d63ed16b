"""kfp.local points steps at this interpreter without corrupting arguments that contain `python3`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pipelines.local import run_compiled_locally

from slipway.training.kfp_local import replace_python_executable

TINY = Path(__file__).resolve().parent / "pipelines" / "tiny" / "pipeline.yaml"


def test_only_the_command_word_is_replaced() -> None:
    executor_input = json.dumps(
        {"inputs": {"parameterValues": {"data_uri": "file:///v/lib/python3.11/d.csv"}}}
    )
    command = [
        "sh",
        "-ec",
        'program_path=$(mktemp -d)\nprintf "%s" "$0" > "$program_path/ephemeral_component.py"\n'
        "python3 -m kfp.dsl.executor_main "
        '--component_module_path "$program_path/ephemeral_component.py" "$@"\n',
        "def train(): ...",
        "--executor_input",
        executor_input,
        "--function_to_execute",
        "train",
        "/opt/lib/python3.11/site-packages/extra.txt",
    ]
    replaced = replace_python_executable(command, sys.executable)
    assert f"{sys.executable} -m kfp.dsl.executor_main" in replaced[2]
    assert replaced[5] == executor_input and replaced[8] == command[8]


def test_a_run_whose_data_lives_under_a_python3_path_reads_it(tmp_path: Path) -> None:
    data = tmp_path / "venv" / "lib" / "python3.11" / "data"
    data.mkdir(parents=True)
    (data / "batch.csv").write_text("x,y\n1,2\n")
    outputs = run_compiled_locally(
        TINY,
        {
            "data_uri": f"file://{data}",
            "model_store_uri": f"file://{tmp_path / 'models'}",
            "model_name": "m",
            "model_version": 1,
        },
        tmp_path / "root",
    )
    assert json.loads(outputs["Output"])["pushed"] is True
    manifest = json.loads((tmp_path / "models" / "m" / "1" / "slipway-manifest.json").read_text())
    assert manifest["lineage"]["data"][0]["uri"] == f"file://{data}"

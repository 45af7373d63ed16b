"""How a step gets the helpers it calls (pipelines.penguins.components.base): found from the code, shipped in
the compiled IR, and refused when the step could not run them. No TensorFlow: only the programs' definitions
run, their imports sit inside the functions."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from pipelines.penguins import components
from pipelines.penguins.components.base import helpers_of
from pipelines.penguins.pipeline import IR_PATH


def load_as_pipelines_module(path: Path, source: str) -> ModuleType:
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("pipelines.penguins.under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_helpers_are_found_through_each_other() -> None:
    names = [f.__name__ for f in helpers_of(components.infra_validator.python_func)]
    assert names == [
        "answer_problems",
        "complete_instances",
        "label_is_numeric",
        "parse_tfrecords",  # called by read_tfrecords only
        "probe_in_fresh_process",
        "read_split",
        "read_tfrecords",  # called by read_split only
    ]
    assert helpers_of(components.example_validator.python_func) == []


def test_a_helper_reading_a_module_level_constant_is_refused(tmp_path: Path) -> None:
    module = load_as_pipelines_module(
        tmp_path / "constant.py",
        "LIMIT = 3\n\n\ndef helper(x: int) -> int:\n    return x + LIMIT\n\n\n"
        "def step(x: int) -> int:\n    return helper(x)\n",
    )
    with pytest.raises(TypeError, match="helper uses the module-level name 'LIMIT'"):
        helpers_of(module.step)


def test_an_unquoted_library_annotation_is_refused(tmp_path: Path) -> None:
    module = load_as_pipelines_module(
        tmp_path / "annotation.py",
        "import json\n\n\ndef helper(codec: json.JSONDecoder) -> None:\n    pass\n\n\n"
        'def quoted(codec: "json.JSONDecoder") -> None:\n    pass\n\n\n'
        "def step() -> None:\n    helper(None)\n\n\ndef fine() -> None:\n    quoted(None)\n",
    )
    with pytest.raises(TypeError, match="helper's signature names 'json'"):
        helpers_of(module.step)
    assert [f.__name__ for f in helpers_of(module.fine)] == ["quoted"]


def test_every_step_program_in_the_ir_defines_its_function_and_helpers() -> None:
    executors = yaml.safe_load(IR_PATH.read_text())["deploymentSpec"]["executors"]
    for name in components.__all__:
        component = getattr(components, name)
        (program,) = (
            e["container"]["command"][3]
            for e in executors.values()
            if e["container"]["args"][-1] == component.python_func.__name__
        )
        namespace: dict[str, object] = {}
        exec(compile(program, name, "exec"), namespace)  # defines only: every import is inside a function
        expected = {name, *(f.__name__ for f in helpers_of(component.python_func))}
        assert expected <= set(namespace), name

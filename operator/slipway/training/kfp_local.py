"""kfp.local set up the way Slipway runs pipelines: offline, each step a child process of this interpreter
(SubprocessRunner(use_venv=False)).

kfp.local (2.17.0) points a step at this interpreter by replacing the text `python3` in every element of
its command line, the executor input included, so an argument such as `file:///.../lib/python3.11/...`
reaches the step corrupted. Only the command word is replaced here; the JSON executor input and paths that
merely contain `python3.` are left as they are."""

from __future__ import annotations

import json
import re
from typing import Any

from kfp import local
from kfp.local import subprocess_task_handler

COMMAND_WORD = re.compile(r"\bpython3\b(?!\.)")
_kfp_replace = subprocess_task_handler.replace_python_executable


def is_executor_input(element: str) -> bool:
    if not element.lstrip().startswith("{"):
        return False
    try:
        json.loads(element)
    except ValueError:
        return False
    return True


def replace_python_executable(full_command: list[str], new_executable: str) -> list[str]:
    replaced = _kfp_replace(full_command, new_executable)
    return [
        new if COMMAND_WORD.search(old) and not is_executor_input(old) else old
        for old, new in zip(full_command, replaced, strict=True)
    ]


def init(pipeline_root: str, **options: Any) -> None:
    subprocess_task_handler.replace_python_executable = replace_python_executable
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=pipeline_root, **options)

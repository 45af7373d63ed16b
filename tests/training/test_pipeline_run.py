"""The outcome of a pipeline run as the operator shows it."""

from __future__ import annotations

import io
from pathlib import Path

from slipway.training.pipeline_run import TERMINAL_COLOURS, Tail, run_pipeline


def test_kfp_locals_terminal_colours_never_reach_a_status_message() -> None:
    coloured = "RuntimeError: Pipeline \x1b[95m'penguins'\x1b[0m finished with status \x1b[91mFAILURE\x1b[0m."
    plain = "RuntimeError: Pipeline 'penguins' finished with status FAILURE."
    assert TERMINAL_COLOURS.sub("", coloured) == plain


def test_a_pipeline_that_cannot_run_is_a_failed_outcome_naming_why(tmp_path: Path) -> None:
    outcome = run_pipeline(tmp_path / "missing.yaml", {}, str(tmp_path / "root"))
    assert outcome.phase == "Failed"
    assert "missing.yaml" in outcome.message and "\x1b[" not in outcome.message


def test_the_failed_steps_own_error_is_found_in_what_kfp_local_printed() -> None:
    tail = Tail(io.StringIO())
    tail.write('step output\nTraceback (most recent call last):\n  File "x", line 1\n')
    tail.write(
        "RuntimeError: module file s3://m/model.py: it defines no run_fn() (TFX's module-file contract)\n"
    )
    tail.write("\x1b[91mERROR\x1b[0m Task 'transform' finished with status FAILURE\n")
    assert tail.step_error() == (
        "RuntimeError: module file s3://m/model.py: it defines no run_fn() (TFX's module-file contract)"
    )
    assert Tail(io.StringIO()).step_error() == ""

"""The operator's own hooks for the fault suite (slipway.crashpoints) and its retry of failed API requests."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from slipway.crashpoints import FILE_ENV, parse
from slipway.handlers import RetryForever

CRASH_TWICE = """
import sys
from slipway.crashpoints import crash_point
crash_point("serving.after-status")
print("not armed yet", flush=True)
open(sys.argv[1], "w").write("serving.after-status@2")
crash_point("serving.after-status")
print("first hit", flush=True)
crash_point("serving.after-status")
print("second hit", flush=True)
"""


def test_a_point_armed_through_the_file_kills_the_running_process_at_its_nth_hit(tmp_path: Path) -> None:
    arming = tmp_path / "crash-at"
    done = subprocess.run(
        [sys.executable, "-c", CRASH_TWICE, str(arming)],
        env={**os.environ, FILE_ENV: str(arming)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -9
    assert done.stdout.split("\n")[:2] == ["not armed yet", "first hit"]


def test_an_unknown_point_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"unknown crash point 'serving\.nowhere'"):
        parse("serving.nowhere")
    assert parse(" serving.after-status@3, training.after-submit ") == {
        "serving.after-status": 3,
        "training.after-submit": 1,
    }


def test_failed_api_requests_are_retried_for_ever_and_each_request_starts_over() -> None:
    delays = RetryForever()
    first = list(itertools.islice(delays, 1000))
    assert len(first) == 1000 and max(first) <= 10
    assert list(itertools.islice(delays, 3)) == first[:3]

"""The operator killed exactly between two of its writes (the crash hook in its own code, armed through
SLIPWAY_CRASH_AT_FILE), through rollouts that promote and roll back: no invariant breaks while it is down,
and after a restart every rollout ends as asked and every outcome is announced (twice at most, when the
crash fell between posting an Event and recording that it was posted). The long form crashes at every
CRASH_EVERY-th rollout; the others are decided with the operator up.

Recovery time: from the restart to the end of the rollout the crash interrupted."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import time
from pathlib import Path

import pytest
from invariants import InvariantWatcher
from kubernetes import client
from scenario import ROLLOUTS, Scenario, rollouts, wait_for, write_results

from slipway.crashpoints import FILE_ENV
from slipway.devcluster.operator_process import OperatorProcess

pytestmark = pytest.mark.cluster  # a control plane of its own (conftest.py)
RESULTS = os.environ.get("SLIPWAY_FAULT_RESULTS")
DOWN_SECONDS = 1.0
CRASH_EVERY = 5 if ROLLOUTS else 1
POINTS = ["serving.before-status", "serving.after-status", "serving.after-delete", "events.after-post"]
# The short form (in `make test`): one rollout at each of the two points the issue was about, in one test.
SCENARIOS = POINTS if ROLLOUTS else ["status-and-events"]
SHORT_FORM = ["serving.after-status", "events.after-post"]


def crash_between_writes(
    operator: OperatorProcess, arming: Path, scenario: Scenario, point: str, promote: bool
) -> bool:
    """Arms `point` in the running operator, decides the paused rollout, and waits for the operator to kill
    itself there; disarmed again before the restart. True when it died at the point."""
    arming.write_text(point)
    scenario.decide(scenario.version, promote)
    assert operator.popen is not None
    with contextlib.suppress(subprocess.TimeoutExpired):  # never reached the point: counted below
        operator.popen.wait(timeout=60)
    arming.write_text("")
    operator.stop()
    time.sleep(DOWN_SECONDS)  # down: the watchers sample what the crash left behind
    return operator.popen is not None and operator.popen.returncode == -9


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_crash_between_two_writes_breaks_no_invariant(
    name: str, scenario: Scenario, operator: OperatorProcess, direct_api: client.ApiClient, tmp_path: Path
) -> None:
    points = [name] if name in POINTS else SHORT_FORM
    count = rollouts(len(points))
    crashes: dict[str, int] = dict.fromkeys(points, 0)
    recoveries: list[float] = []
    arming = tmp_path / "crash-at"
    operator.env[FILE_ENV] = str(arming)
    with InvariantWatcher(direct_api, scenario.namespace) as watcher:
        operator.start()
        scenario.first_version()
        for index in range(count):
            point, promote = points[index % len(points)], index % 3 != 2
            version = scenario.start_rollout()
            scenario.paused(version)
            if (index // len(points)) % CRASH_EVERY:
                scenario.decide(version, promote)
                status = scenario.finished(version)
            else:
                crashes[point] += crash_between_writes(operator, arming, scenario, point, promote)
                operator.start()
                restarted = time.monotonic()
                status = scenario.finished(version)
                recoveries.append(time.monotonic() - restarted)
            outcome = next(r["outcome"] for r in reversed(status["history"]) if r["version"] == version)
            assert outcome == ("Promoted" if promote else "RolledBack"), f"v{version}: {outcome}"
        wait_for(lambda: not scenario.unannounced(), "every outcome announced", 30)
    struck = len(range(0, count // len(points), CRASH_EVERY))
    assert crashes == dict.fromkeys(points, struck), "the operator did not die at each point"
    assert scenario.wrong == [], scenario.wrong
    assert watcher.violations == [], watcher.violations[:5]
    assert scenario.model_versions() == [("penguins", v) for v in range(1, scenario.version + 1)]
    duplicates = scenario.duplicate_announcements()
    assert len(duplicates) <= crashes.get("events.after-post", 0), duplicates
    if RESULTS:
        write_results(
            Path(RESULTS),
            f"crash-at-{name}",
            {
                "rollouts": count,
                "faults_injected": sum(crashes.values()),
                "violations": len(watcher.violations),
                "samples": watcher.samples,
                "duplicate_events": len(duplicates),
                "recovery_seconds": {
                    "median": round(statistics.median(recoveries), 2),
                    "max": round(max(recoveries), 2),
                },
            },
        )

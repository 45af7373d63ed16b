"""The operator killed exactly between two of its writes (the crash hook in its own code, SLIPWAY_CRASH_AT),
through rollouts that promote and roll back: no invariant breaks while it is down, and after a restart every
rollout ends as asked and every outcome is announced (twice at most, when the crash fell between posting
an Event and recording that it was posted).

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

from slipway.crashpoints import ENV
from slipway.devcluster.operator_process import OperatorProcess

pytestmark = pytest.mark.cluster  # a control plane of its own (conftest.py)
RESULTS = os.environ.get("SLIPWAY_FAULT_RESULTS")
DOWN_SECONDS = 1.0
POINTS = ["serving.before-status", "serving.after-status", "serving.after-delete", "events.after-post"]
# The short form (in `make test`): one rollout at each of the two points the issue was about, in one test.
SCENARIOS = POINTS if ROLLOUTS else ["status-and-events"]
SHORT_FORM = ["serving.after-status", "events.after-post"]


def crash_between_writes(operator: OperatorProcess, scenario: Scenario, point: str, promote: bool) -> bool:
    """Arms `point`, decides the paused rollout, and waits for the operator to kill itself there."""
    operator.stop()
    operator.env[ENV] = point
    try:
        operator.start()
    except RuntimeError:  # a write on its way up reached the point first: it is down all the same
        pass
    finally:
        operator.env.pop(ENV)
    scenario.decide(scenario.version, promote)
    assert operator.popen is not None
    with contextlib.suppress(subprocess.TimeoutExpired):  # never reached the point: counted below
        operator.popen.wait(timeout=60)
    operator.stop()
    time.sleep(DOWN_SECONDS)  # down: the watchers sample what the crash left behind
    return operator.popen is not None and operator.popen.returncode == -9


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_crash_between_two_writes_breaks_no_invariant(
    name: str, scenario: Scenario, operator: OperatorProcess, direct_api: client.ApiClient
) -> None:
    points = [name] if name in POINTS else SHORT_FORM
    count = rollouts(len(points))
    crashes: dict[str, int] = dict.fromkeys(points, 0)
    recoveries: list[float] = []
    with InvariantWatcher(direct_api, scenario.namespace) as watcher:
        operator.start()
        scenario.first_version()
        for index in range(count):
            point, promote = points[index % len(points)], index % 3 != 2
            version = scenario.start_rollout()
            scenario.paused(version)
            crashes[point] += crash_between_writes(operator, scenario, point, promote)
            operator.start()
            restarted = time.monotonic()
            status = scenario.finished(version)
            recoveries.append(time.monotonic() - restarted)
            outcome = next(r["outcome"] for r in reversed(status["history"]) if r["version"] == version)
            assert outcome == ("Promoted" if promote else "RolledBack"), f"v{version}: {outcome}"
        wait_for(lambda: not scenario.unannounced(), "every outcome announced", 30)
    assert crashes == dict.fromkeys(points, count // len(points)), "the operator did not die at each point"
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

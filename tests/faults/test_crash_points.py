"""The operator killed exactly between two of its writes (the crash hook in its own code), through
rollouts that promote and roll back: no invariant breaks while it is down, and after a restart every
rollout ends as asked and every outcome is announced."""

from __future__ import annotations

import time

import pytest
from invariants import InvariantWatcher
from kubernetes import client
from scenario import Scenario, wait_for

from conftest import rollouts
from slipway.crashpoints import ENV
from slipway.devcluster.operator_process import OperatorProcess

pytestmark = pytest.mark.cluster  # a control plane of its own (conftest.py)
DOWN_SECONDS = 1.0


def crash_between_writes(operator: OperatorProcess, scenario: Scenario, point: str, promote: bool) -> bool:
    """Arms `point`, decides the paused rollout, and waits for the operator to kill itself there; True if
    it did (a restart may also find nothing to write, and the decision's reconcile then crashes)."""
    version = scenario.version
    operator.stop()
    operator.env[ENV] = point
    operator.start()
    scenario.decide(version, promote)
    assert operator.popen is not None
    try:
        operator.popen.wait(timeout=30)
    except Exception:
        return False
    finally:
        operator.env.pop(ENV)
    time.sleep(DOWN_SECONDS)  # down: the watchers sample what the crash left behind
    return operator.popen.returncode == -9


@pytest.mark.parametrize("point", ["serving.before-status", "serving.after-status", "serving.after-delete"])
def test_a_crash_between_two_writes_breaks_no_invariant(
    point: str, scenario: Scenario, operator: OperatorProcess, direct_api: client.ApiClient
) -> None:
    crashes = 0
    with InvariantWatcher(direct_api, scenario.namespace) as watcher:
        operator.start()
        scenario.first_version()
        for index in range(rollouts(2)):
            promote = index % 2 == 0
            version = scenario.start_rollout()
            scenario.paused(version)
            crashes += crash_between_writes(operator, scenario, point, promote)
            operator.start()
            status = scenario.finished(version)
            assert status["history"][-1]["outcome"] == ("Promoted" if promote else "RolledBack")
    assert crashes == rollouts(2), "the operator did not die at the crash point"
    assert watcher.violations == [], watcher.violations[:5]
    wait_for(lambda: not scenario.unannounced(), "every outcome announced", 30)
    assert scenario.duplicate_announcements() == []
    assert scenario.model_versions() == [("penguins", v) for v in range(1, scenario.version + 1)]

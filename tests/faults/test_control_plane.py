"""The control plane fails under rollouts in progress: the API server restarted (and, once in the long form,
gone for 70 s), etcd stopped, every watch stream cut, watches answered "410 Gone", the API server answering
429 or 500 for a while. Each fault strikes while a rollout is paused at 50%; the rollout is then promoted
or aborted, and must end as asked, with no invariant broken at any sample, no ModelVersion lost or
duplicated, every outcome announced, and the same operator process throughout (it recovers by itself).
The long form injects each fault at every N-th of its turns (FAULTS), cheap ones at every rollout.

Recovery time: from the end of the fault to the end of the rollout decided right after it (a rollout
decided with no fault takes about a second here)."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import pytest
from apiproxy import ApiProxy
from control_plane import (
    LONG_OUTAGE,
    Fault,
    cut_watches,
    expire_watches,
    outage,
    restart_apiserver,
    stop_etcd,
    throttle,
)
from invariants import InvariantWatcher
from kubernetes import client
from scenario import ROLLOUTS, Scenario, rollouts, wait_for, write_results

from slipway.devcluster import DevCluster
from slipway.devcluster.operator_process import OperatorProcess

pytestmark = pytest.mark.cluster  # a control plane of its own (conftest.py)
RESULTS = os.environ.get("SLIPWAY_FAULT_RESULTS")  # the long form's bench/results/faults.json


# name -> (fault, in the long form: at every N-th of its turns; None: at its first turn only)
FAULTS: dict[str, tuple[Fault, int | None]] = {
    "apiserver-restart": (restart_apiserver, 5),
    "apiserver-unavailable-70s": (outage(LONG_OUTAGE), None),
    "etcd-stopped": (stop_etcd, 20),
    "watches-cut": (cut_watches, 1),
    "watches-410-gone": (expire_watches, 2),
    "apiserver-429": (throttle(429), 5),
    "apiserver-500": (throttle(500), 5),
}
# The long form's scenarios: the faults whose turns alternate through its rollouts.
LONG_FORM = {
    "apiserver-restart": ["apiserver-restart", "apiserver-unavailable-70s"],
    **{name: [name] for name in FAULTS if name not in ("apiserver-restart", "apiserver-unavailable-70s")},
}
# The short form (in `make test`): one rollout per fault but the 70 s outage, all with one operator.
SHORT_FORM = [name for name, (_, every) in FAULTS.items() if every is not None]
SCENARIOS = list(LONG_FORM) if ROLLOUTS else ["every-fault-once"]


def strikes(fault: str, turn: int) -> bool:
    """Whether `fault` is injected at its `turn`-th rollout (every rollout in the short form)."""
    every = FAULTS[fault][1]
    return not ROLLOUTS or (turn == 0 if every is None else turn % every == 0)


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_operator_recovers_by_itself_from_control_plane_faults(
    name: str,
    fault_cluster: DevCluster,
    proxy: ApiProxy,
    scenario: Scenario,
    operator: OperatorProcess,
    direct_api: client.ApiClient,
) -> None:
    faults = LONG_FORM.get(name, SHORT_FORM)
    count = rollouts(len(faults))
    recoveries: dict[str, list[float]] = {fault: [] for fault in faults}
    clean: list[float] = []
    with InvariantWatcher(direct_api, scenario.namespace) as watcher:
        operator.start()
        scenario.first_version()
        for index in range(count):
            fault = faults[index % len(faults)]
            struck = strikes(fault, index // len(faults))
            promote = index % 3 != 2
            version = scenario.start_rollout()
            scenario.paused(version)
            if struck:
                FAULTS[fault][0](fault_cluster, proxy)
            over = time.monotonic()
            scenario.decide(version, promote)
            scenario.finished(version, timeout=180)
            (recoveries[fault] if struck else clean).append(time.monotonic() - over)
            assert operator.popen is not None and operator.popen.poll() is None, "the operator died"
    assert operator.starts == 1, "the operator was restarted"
    assert scenario.wrong == [], scenario.wrong
    assert watcher.violations == [], watcher.violations[:5]
    assert scenario.model_versions() == [("penguins", v) for v in range(1, scenario.version + 1)]
    wait_for(lambda: not scenario.unannounced(), "every outcome announced", 30)
    if RESULTS:
        write_results(
            Path(RESULTS),
            name,
            {
                "rollouts": count,
                "faults_injected": sum(len(r) for r in recoveries.values()),
                "violations": len(watcher.violations),
                "samples": watcher.samples,
                "sample_gaps": watcher.gaps,
                "recovery_seconds": {
                    fault: {"median": round(statistics.median(r), 2), "max": round(max(r), 2)}
                    for fault, r in recoveries.items()
                    if r
                },
                "clean_rollout_decision_seconds": round(statistics.median(clean), 2) if clean else None,
                "proxy": {
                    "requests": proxy.counters.requests,
                    "errors_injected": proxy.counters.errors_injected,
                    "watches_cut": proxy.counters.watches_cut,
                    "gone_injected": proxy.counters.gone_injected,
                },
            },
        )

"""The control plane fails under rollouts in progress: the API server restarted, etcd stopped, every watch
stream cut, watches answered "410 Gone", the API server answering 429 or 500 for a while. Each fault strikes
while a rollout is paused at 50%; the rollout is then promoted or aborted, and must end as asked, with no
invariant broken at any sample, no ModelVersion lost or duplicated, every outcome announced, and the same
operator process throughout (it recovers by itself).

Recovery time: from the end of the fault to the end of the rollout decided right after it (a rollout
decided with no fault takes about a second here)."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from apiproxy import ApiProxy
from invariants import InvariantWatcher
from kubernetes import client
from scenario import ROLLOUTS, Scenario, rollouts, wait_for, write_results

from slipway.devcluster import DevCluster
from slipway.devcluster.operator_process import OperatorProcess

pytestmark = pytest.mark.cluster  # a control plane of its own (conftest.py)
RESULTS = os.environ.get("SLIPWAY_FAULT_RESULTS")  # the long form's bench/results/faults.json
ETCD_DOWN = 30.0 if ROLLOUTS else 5.0
ERROR_WINDOW = 5.0
Fault = Callable[[DevCluster, ApiProxy], None]


def restart_apiserver(cluster: DevCluster, _: ApiProxy) -> None:
    cluster.restart_component("kube-apiserver")


def stop_etcd(cluster: DevCluster, _: ApiProxy) -> None:
    cluster.restart_component("etcd", down_seconds=ETCD_DOWN)


def cut_watches(_: DevCluster, proxy: ApiProxy) -> None:
    assert proxy.cut_watches() > 0, "the operator had no watch open"


def expire_watches(_: DevCluster, proxy: ApiProxy) -> None:
    proxy.expire_watches(50)  # more than the operator's watches: each resumes into a 410 once


def throttle(status: int) -> Fault:
    def inject(_: DevCluster, proxy: ApiProxy) -> None:
        proxy.fail(status, ERROR_WINDOW)
        time.sleep(ERROR_WINDOW)

    return inject


# name -> (fault, in the long form: inject it every N-th rollout)
FAULTS: dict[str, tuple[Fault, int]] = {
    "apiserver-restart": (restart_apiserver, 5),
    "etcd-stopped": (stop_etcd, 10),
    "watches-cut": (cut_watches, 1),
    "watches-410-gone": (expire_watches, 1),
    "apiserver-429": (throttle(429), 2),
    "apiserver-500": (throttle(500), 2),
}
# The short form (in `make test`): one rollout per fault, all with one operator.
SCENARIOS = list(FAULTS) if ROLLOUTS else ["every-fault-once"]


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_operator_recovers_by_itself_from_control_plane_faults(
    name: str,
    fault_cluster: DevCluster,
    proxy: ApiProxy,
    scenario: Scenario,
    operator: OperatorProcess,
    direct_api: client.ApiClient,
) -> None:
    faults = list(FAULTS) if name not in FAULTS else [name]
    count = rollouts(len(faults))
    recoveries: dict[str, list[float]] = {fault: [] for fault in faults}
    clean: list[float] = []
    with InvariantWatcher(direct_api, scenario.namespace) as watcher:
        operator.start()
        scenario.first_version()
        for index in range(count):
            fault = faults[index % len(faults)]
            inject, every = FAULTS[fault]
            struck = not ROLLOUTS or index % every == 0
            promote = index % 3 != 2
            version = scenario.start_rollout()
            scenario.paused(version)
            if struck:
                inject(fault_cluster, proxy)
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

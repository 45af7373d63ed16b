"""Two operator replicas with kopf peering (the ClusterKopfPeering the manifests install): the one with the
higher priority works, the other stands by and writes nothing; killed (SIGKILL) in the middle of a rollout,
the active one is replaced by the standby within the peering lifetime, and the rollout ends as asked.

Handover time: from the kill to the end of the rollout decided at that moment (the standby must notice
the active one is gone, resume, list what it watches, and reconcile). The long form kills the active replica
at every KILL_EVERY-th rollout; the standby is checked for writes at every rollout."""

from __future__ import annotations

import os
import re
import statistics
import time
from pathlib import Path

import pytest
from invariants import InvariantWatcher
from kubernetes import client
from scenario import ROLLOUTS, Scenario, operator_env, rollouts, wait_for, write_results

from slipway.devcluster import DevCluster
from slipway.devcluster.operator_process import OperatorProcess

pytestmark = pytest.mark.cluster  # a control plane of its own (conftest.py)
RESULTS = os.environ.get("SLIPWAY_FAULT_RESULTS")
HANDOVER_TARGET = 10.0
KILL_EVERY = 10 if ROLLOUTS else 1
PAUSING = "Pausing operations"  # what kopf logs when a peer of higher priority is alive
WRITES = re.compile(r"^slipway_api_writes_total\{[^}]*\} ([0-9.e+]+)$", re.M)


def replica(cluster: DevCluster, directory: Path, priority: int) -> OperatorProcess:
    directory.mkdir(parents=True, exist_ok=True)
    env = operator_env({"SLIPWAY_PEERING_PRIORITY": str(priority)})
    return OperatorProcess(kubeconfig=cluster.kubeconfig, log_dir=directory, env=env, standalone=False)


def writes(process: OperatorProcess) -> float:
    return sum(float(value) for value in WRITES.findall(process.metrics()))


def settled_writes(process: OperatorProcess, quiet: float = 2.0) -> float:
    """The write count of a replica that just paused, once reconciles it had under way have finished."""
    count = writes(process)
    while time.sleep(quiet) is None and (latest := writes(process)) != count:
        count = latest
    return count


def test_killing_the_active_replica_hands_over_and_the_rollout_finishes(
    fault_cluster: DevCluster, scenario: Scenario, direct_api: client.ApiClient, tmp_path: Path
) -> None:
    count = rollouts(2)
    handovers: list[float] = []
    generation = 0
    replicas: list[OperatorProcess] = []

    def new_replica() -> OperatorProcess:
        nonlocal generation
        generation += 1
        process = replica(fault_cluster, tmp_path / f"replica-{generation}", priority=generation)
        process.start()
        replicas.append(process)
        return process

    try:
        with InvariantWatcher(direct_api, scenario.namespace) as watcher:
            standby = new_replica()
            active = new_replica()  # the higher priority: the standby pauses in its favour
            wait_for(lambda: PAUSING in standby.logs(), "the standby pausing", 30)
            paused_at = settled_writes(standby)
            scenario.first_version()
            for index in range(count):
                version = scenario.start_rollout()
                scenario.paused(version)
                assert writes(standby) == paused_at, "the standby wrote while the active replica lived"
                assert writes(active) > 0
                if index % KILL_EVERY:
                    scenario.decide(version, promote=index % 3 != 2)
                    scenario.finished(version, timeout=120)
                    continue
                active.stop(kill=True)
                killed = time.monotonic()
                scenario.decide(version, promote=index % 3 != 2)
                scenario.finished(version, timeout=120)
                handovers.append(time.monotonic() - killed)
                # The survivor is active now; a new replica with a higher priority takes over from it
                # gracefully, and is the one killed in the next round.
                pauses = standby.logs().count(PAUSING)
                active = new_replica()
                wait_for(lambda n=pauses: standby.logs().count(PAUSING) > n, "the survivor pausing", 30)
                paused_at = settled_writes(standby)
    finally:
        for process in replicas:
            process.stop()
    assert scenario.wrong == [], scenario.wrong
    assert watcher.violations == [], watcher.violations[:5]
    assert scenario.model_versions() == [("penguins", v) for v in range(1, scenario.version + 1)]
    assert max(handovers) < HANDOVER_TARGET, f"handover took {max(handovers):.1f} s"
    if RESULTS:
        write_results(
            Path(RESULTS),
            "active-replica-killed",
            {
                "rollouts": count,
                "faults_injected": len(handovers),
                "violations": len(watcher.violations),
                "samples": watcher.samples,
                "handover_seconds": {
                    "median": round(statistics.median(handovers), 2),
                    "max": round(max(handovers), 2),
                },
            },
        )

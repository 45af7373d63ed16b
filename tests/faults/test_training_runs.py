"""Training runs under the same faults as rollouts: the control plane failing while a run is in flight (the
API server restarted, etcd stopped, watches cut or answered "410 Gone", the API server answering 429 or
500), and the operator killed exactly between starting a run and recording it, between registering a
run's ModelVersion and recording the run as registered, or between posting a run's end as an Event and
recording it (SLIPWAY_CRASH_AT).

Each run comes from a trigger (a `slipway.dev/run` request; every fourth, a new file in the data) and runs
the tiny KFP pipeline for real with the local executor. Afterwards, counted from the executor's own files
(tests/faults/training.py): each trigger started exactly one run, once; each finished run registered exactly
one ModelVersion, which status records, and was announced by exactly one RunSucceeded Event; no run or
version is lost, none duplicated; and, for the control-plane faults, the same operator process throughout.

Recovery time: from the end of the fault (or the restart after a crash) to the run recorded as registered."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from apiproxy import ApiProxy
from control_plane import Fault, cut_watches, expire_watches, restart_apiserver, stop_etcd, throttle
from invariants import InvariantWatcher
from kubernetes import client
from pipeline_runs import Training, operator_training_env, wait_seconds_for_a_trigger
from scenario import ROLLOUTS, wait_for, write_results

from slipway.crashpoints import FILE_ENV
from slipway.devcluster import DevCluster
from slipway.devcluster.operator_process import OperatorProcess

pytestmark = pytest.mark.cluster  # a control plane of its own (conftest.py)
RESULTS = os.environ.get("SLIPWAY_FAULT_RESULTS")
# The long form's rounds through each family's faults (a run costs several seconds of real pipeline, more
# than a rollout): 2 of the control-plane faults (12 runs) and 5 of the crash points (10 runs) at 100.
CONTROL_PLANE_ROUNDS = max(2, ROLLOUTS // 50) if ROLLOUTS else 1
CRASH_ROUNDS = max(2, ROLLOUTS // 20) if ROLLOUTS else 1
DOWN_SECONDS = 1.0

CONTROL_PLANE: dict[str, Fault] = {
    "apiserver-restart": restart_apiserver,
    "etcd-stopped": stop_etcd,
    "watches-cut": cut_watches,
    "watches-410-gone": expire_watches,
    "apiserver-429": throttle(429),
    "apiserver-500": throttle(500),
}
CRASH_POINTS = ["training.after-submit", "training.after-register", "training.after-event"]
# The long form: one scenario per family, its runs cycling through the family's faults. The short form
# (in `make test`): one run per crash point, and one run with every control-plane fault in turn.
SCENARIOS = ["training-control-plane", "training-crash"]


def in_flight(training: Training, count: int, timeout: float) -> None:
    wait_for(lambda: training.running(count), f"run {count} in flight", timeout)


def recorded(training: Training, count: int) -> None:
    wait_for(lambda: training.recorded(count), f"run {count} registered and recorded", 120)


def crash_at(operator: OperatorProcess, arming: Path, point: str, act: Callable[[], None]) -> bool:
    """Arms `point` in the running operator, does `act`, waits for the operator to kill itself there, and
    keeps it down a moment, disarmed; True when it died at the point."""
    arming.write_text(point)
    act()
    assert operator.popen is not None
    with contextlib.suppress(subprocess.TimeoutExpired):
        operator.popen.wait(timeout=90)
    arming.write_text("")
    operator.stop()
    time.sleep(DOWN_SECONDS)
    return operator.popen.returncode == -9


@pytest.mark.parametrize("name", SCENARIOS)
def test_no_run_starts_twice_and_no_model_version_is_lost_under_faults(
    name: str,
    fault_cluster: DevCluster,
    proxy: ApiProxy,
    operator: OperatorProcess,
    direct_api: client.ApiClient,
    tmp_path: Path,
) -> None:
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(direct_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    training = Training(direct_api, namespace, tmp_path / "training")
    arming = tmp_path / "crash-at"
    operator.env.update({**operator_training_env(), FILE_ENV: str(arming)})
    recoveries: dict[str, list[float]] = {}
    faults_injected = 0
    try:
        with InvariantWatcher(direct_api, namespace) as watcher:
            operator.start()
            training.create()
            wait_for(training.watching_data, "the data's first poll", 60)
            if name == "training-crash":
                plan = CRASH_POINTS * CRASH_ROUNDS
            else:
                plan = list(CONTROL_PLANE) * CONTROL_PLANE_ROUNDS
            if not ROLLOUTS and name == "training-control-plane":
                plan = ["every-control-plane-fault"]
            for index, fault in enumerate(plan):
                count = index + 1
                kind = "NewData" if index % 4 == 3 else "Manual"
                if fault in CRASH_POINTS:
                    if fault == "training.after-submit":
                        died = crash_at(operator, arming, fault, lambda i=index: training.trigger(i))
                    else:
                        training.trigger(index)
                        in_flight(training, count, wait_seconds_for_a_trigger(kind))
                        died = crash_at(operator, arming, fault, lambda: None)
                    assert died, f"the operator did not die at {fault}"
                    faults_injected += 1
                    operator.start()
                    over = time.monotonic()
                else:
                    training.trigger(index)
                    in_flight(training, count, wait_seconds_for_a_trigger(kind))
                    faults = list(CONTROL_PLANE) if fault == "every-control-plane-fault" else [fault]
                    for each in faults:
                        CONTROL_PLANE[each](fault_cluster, proxy)
                        faults_injected += 1
                    over = time.monotonic()
                recorded(training, count)
                recoveries.setdefault(fault, []).append(time.monotonic() - over)
                if fault not in CRASH_POINTS:
                    assert operator.popen is not None and operator.popen.poll() is None, "the operator died"
            time.sleep(2)  # a run started twice would show by now (a run takes longer than this to finish)
    finally:
        operator.stop()
    if name == "training-control-plane":
        assert operator.starts == 1, "the operator was restarted"
    assert training.wrong() == []
    assert watcher.violations == [], watcher.violations[:5]
    core.delete_namespace(namespace)
    if RESULTS:
        write_results(
            Path(RESULTS),
            name,
            {
                "runs": len(training.triggers),
                "faults_injected": faults_injected,
                "violations": len(watcher.violations),
                "samples": watcher.samples,
                "recovery_seconds": {
                    fault: {"median": round(statistics.median(r), 2), "max": round(max(r), 2)}
                    for fault, r in recoveries.items()
                },
            },
        )

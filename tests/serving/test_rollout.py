"""The rollout state machine, driven as the controller drives it, with deployments that turn ready."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slipway.api.serving_endpoint import ServingEndpointSpec, ServingEndpointStatus
from slipway.serving.faults import PodFailure
from slipway.serving.rollout import (
    AnalysisResult,
    DeploymentInfo,
    Observed,
    Plan,
    Split,
    by_number,
    plan,
    replica_split,
)
from slipway.views import VersionInfo

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
STEPS = [
    {"setWeight": 25},
    {"analysis": {}},
    {"setWeight": 50},
    {"pause": {"duration": "30s"}},
    {"setWeight": 100},
]


def spec(**overrides: Any) -> ServingEndpointSpec:
    body: dict[str, Any] = {
        "modelName": "penguins",
        "replicas": 2,
        "rollout": {"steps": STEPS},
        "modelVolume": {"mountPath": "/m", "hostPath": "/srv/models"},
    }
    body.update(overrides)
    return ServingEndpointSpec.model_validate(body)


class Sim:
    """Deployments become ready as soon as they are asked for (unless `stuck`), time moves by hand."""

    def __init__(self, endpoint: ServingEndpointSpec) -> None:
        self.spec = endpoint
        self.status = ServingEndpointStatus()
        self.versions: dict[int, VersionInfo] = {}
        self.deployments: dict[int, DeploymentInfo] = {}
        self.now = T0
        self.generation = 1
        self.requests: dict[str, str] = {}
        self.stuck: set[int] = set()
        self.events: list[str] = []
        self.min_stable_ready: int | None = None
        self.failures: dict[int, PodFailure] = {}
        self.warnings: list[str] = []
        self.second_claims: list[VersionInfo] = []  # other ModelVersions claiming a version number

    def add(self, version: int, phase: str = "Validated") -> None:
        self.versions[version] = VersionInfo(f"penguins-v{version}", version, phase, f"file:///m/{version}")

    def observed(self) -> Observed:
        usable, contested = by_number([*self.versions.values(), *self.second_claims], "se")
        return Observed(
            self.generation,
            self.now,
            usable,
            dict(self.deployments),
            dict(self.requests),
            dict(self.failures),
            contested,
        )

    def served(self, version: int) -> None:
        """The ModelVersion lists this endpoint in servedBy (what the controller writes after a reconcile)."""
        self.versions[version] = replace(self.versions[version], served_by=("se",))

    def claim(self, version: int, name: str, phase: str = "Validated") -> None:
        self.second_claims.append(VersionInfo(name, version, phase, f"file:///other/{version}"))

    def step(self, analysis: dict[int, bool] | None = None) -> Plan:
        result = plan(self.spec, self.status, self.observed())
        if result.analysis_due:
            step = result.status.current_step
            assert step is not None
            passed = (analysis or {}).get(result.status.canary_version or 0, True)
            result = plan(self.spec, self.status, self.observed(), AnalysisResult(step, passed, "measured"))
        self.status = result.status
        self.events += [e.reason for e in result.events]
        self.warnings += [e.message for e in result.events if e.type == "Warning"]
        self.deployments = {
            v: DeploymentInfo(v, n, 0 if v in self.stuck or v in self.failures else n)
            for v, n in result.replicas.items()
        }
        stable = self.status.stable_version
        if stable is not None and stable in self.deployments and self.status.canary_version is not None:
            ready = self.deployments[stable].ready
            self.min_stable_ready = (
                ready if self.min_stable_ready is None else min(self.min_stable_ready, ready)
            )
        return result

    def settle(self, rounds: int = 20, **kwargs: Any) -> Plan:
        result = self.step(**kwargs)
        for _ in range(rounds):
            result = self.step(**kwargs)
        return result


def condition(status: ServingEndpointStatus, type_: str) -> str | None:
    return next((c.status for c in status.conditions if c.type == type_), None)


def test_nothing_validated_means_nothing_deployed() -> None:
    sim = Sim(spec())
    sim.add(1, phase="Pending")
    sim.add(2, phase="Rejected")
    result = sim.settle()
    assert result.replicas == {}
    assert condition(sim.status, "Ready") == "False"
    assert sim.status.phase == "Pending"


def test_first_version_goes_straight_to_stable() -> None:
    sim = Sim(spec())
    sim.add(1)
    result = sim.settle()
    assert sim.status.stable_version == 1 and sim.status.canary_version is None
    assert result.replicas == {1: 2}
    assert condition(sim.status, "Ready") == "True"
    assert "Promoted" in sim.events


def test_canary_walks_the_steps_and_promotes_keeping_stable_whole() -> None:
    sim = Sim(spec())
    sim.add(1)
    sim.settle()
    sim.add(2)
    weights = []
    for _ in range(6):
        sim.step()
        weights.append(sim.status.canary_weight)
    assert sim.status.canary_version == 2 and sim.status.current_step == 3  # waiting in the 30 s pause
    assert condition(sim.status, "Progressing") == "True"
    sim.now += timedelta(seconds=31)
    sim.settle()
    assert sim.status.stable_version == 2 and sim.status.previous_version == 1
    assert sim.status.canary_version is None and sim.status.canary_weight == 0
    assert 25 in weights and 50 in weights
    assert sim.min_stable_ready == 2
    assert [h.outcome for h in sim.status.history][-1] == "Promoted"
    assert sim.deployments.keys() == {2}


def test_failed_analysis_rolls_back_and_is_not_retried_until_asked() -> None:
    sim = Sim(spec())
    sim.add(1)
    sim.settle()
    sim.add(2)
    sim.settle(analysis={2: False})
    assert sim.status.stable_version == 1 and sim.status.canary_version is None
    assert sim.status.failed_versions == [2]
    assert sim.deployments.keys() == {1}
    assert condition(sim.status, "Degraded") == "True"
    assert sim.status.history[-1].outcome == "RolledBack"
    sim.requests["retry"] = "1"
    sim.step(analysis={2: True})
    assert sim.status.canary_version == 2 and sim.status.failed_versions == []
    sim.settle()
    sim.now += timedelta(minutes=1)
    sim.settle()
    assert sim.status.stable_version == 2
    assert condition(sim.status, "Degraded") == "False"


def test_a_spec_change_lets_a_failed_version_try_again() -> None:
    sim = Sim(spec())
    sim.add(1)
    sim.settle()
    sim.add(2)
    sim.settle(analysis={2: False})
    assert sim.status.failed_versions == [2]
    sim.generation = 2
    sim.step()
    assert sim.status.canary_version == 2


def test_newer_version_supersedes_a_running_canary() -> None:
    sim = Sim(spec())
    sim.add(1)
    sim.settle()
    sim.add(2)
    sim.step()
    assert sim.status.canary_version == 2
    sim.add(3)
    sim.step()
    assert sim.status.canary_version == 3
    assert sim.status.failed_versions == []
    assert sim.status.history[-1].outcome in ("Aborted", "RolledBack")


def test_withdrawn_canary_is_dropped() -> None:
    sim = Sim(spec())
    sim.add(1)
    sim.settle()
    sim.add(2)
    sim.step()
    sim.add(2, phase="Rejected")
    sim.step()
    assert sim.status.canary_version is None and sim.status.stable_version == 1


def test_stuck_canary_hits_the_progress_deadline() -> None:
    sim = Sim(spec(rollout={"steps": STEPS, "progressDeadlineSeconds": 60}))
    sim.add(1)
    sim.settle()
    sim.add(2)
    sim.stuck.add(2)
    sim.step()
    assert sim.status.canary_version == 2
    sim.now += timedelta(seconds=61)
    sim.step()
    assert sim.status.canary_version is None and sim.status.failed_versions == [2]
    assert "ProgressDeadlineExceeded" in sim.status.history[-1].message


def test_indefinite_pause_waits_for_promote_and_abort_requests() -> None:
    steps = [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]
    sim = Sim(spec(rollout={"steps": steps}))
    sim.add(1)
    sim.settle()
    sim.add(2)
    sim.settle()
    assert sim.status.current_step == 1 and sim.status.phase == "Paused"
    sim.now += timedelta(days=2)
    sim.settle()
    assert sim.status.current_step == 1
    sim.requests["promote"] = "go"
    sim.settle()
    assert sim.status.stable_version == 2
    assert sim.status.handled_requests["promote"] == "go"


def test_abort_request_rolls_back() -> None:
    sim = Sim(spec(rollout={"steps": [{"setWeight": 50}, {"pause": {}}]}))
    sim.add(1)
    sim.settle()
    sim.add(2)
    sim.settle()
    sim.requests["abort"] = "stop"
    sim.step()
    assert sim.status.canary_version is None and sim.status.failed_versions == [2]
    sim.settle()
    assert sim.status.canary_version is None, "an aborted version is not retried by itself"


def test_pinned_version_is_served_even_when_newer_exist() -> None:
    sim = Sim(spec(versionSelection={"policy": "Pinned", "version": 1}))
    sim.add(1)
    sim.add(2)
    sim.settle()
    assert sim.status.stable_version == 1 and sim.status.canary_version is None


def test_pinned_version_that_is_not_validated_is_never_deployed() -> None:
    sim = Sim(spec(versionSelection={"policy": "Pinned", "version": 3}))
    sim.add(3, phase="Pending")
    result = sim.settle()
    assert result.replicas == {}
    ready = next(c for c in sim.status.conditions if c.type == "Ready")
    assert ready.reason == "PinnedVersionNotValidated"


def test_blue_green_previews_at_full_size_then_switches() -> None:
    sim = Sim(spec(rollout={"strategy": "BlueGreen", "blueGreen": {"autoPromotionSeconds": 60}}))
    sim.add(1)
    sim.settle()
    sim.add(2)
    result = sim.settle()
    assert result.replicas == {1: 2, 2: 2}
    assert result.traffic_versions == [1]
    sim.now += timedelta(seconds=61)
    result = sim.settle()
    assert sim.status.stable_version == 2 and result.traffic_versions == [2]


def test_no_op_plan_changes_nothing() -> None:
    sim = Sim(spec())
    sim.add(1)
    sim.settle()
    before = sim.status.model_dump()
    result = plan(sim.spec, sim.status, sim.observed())
    assert result.status.model_dump() == before
    assert result.events == []


@pytest.mark.parametrize(
    ("replicas", "weight", "expected"),
    [(2, 25, 1), (2, 50, 2), (4, 25, 2), (10, 10, 2), (3, 0, 0), (3, 100, 3)],
)
def test_canary_replicas_follow_the_weight(replicas: int, weight: int, expected: int) -> None:
    split = replica_split(spec(replicas=replicas), weight)
    assert split is not None and split.canary == expected


def test_analysis_waits_for_a_warming_model_server_until_the_deadline() -> None:
    sim = Sim(spec(rollout={"steps": [{"setWeight": 50}, {"analysis": {}}], "progressDeadlineSeconds": 60}))
    sim.add(1)
    sim.settle()
    sim.add(2)
    sim.step()
    waiting = AnalysisResult(1, True, "waiting for the model server: timed out", complete=False, ready=False)
    result = plan(sim.spec, sim.status, sim.observed(), waiting)
    assert result.status.canary_version == 2 and result.status.analysis is not None
    assert not result.status.analysis.ready_checked
    sim.status = result.status
    sim.now += timedelta(seconds=61)
    result = plan(
        sim.spec, sim.status, sim.observed(), AnalysisResult(1, True, "waiting", complete=False, ready=False)
    )
    assert result.status.canary_version is None and result.status.failed_versions == [2]


def reason(status: ServingEndpointStatus, type_: str) -> tuple[str, str]:
    found = next(c for c in status.conditions if c.type == type_)
    return found.reason, found.message


def canary_at_first_weight(endpoint: ServingEndpointSpec) -> Sim:
    sim = Sim(endpoint)
    sim.add(1)
    sim.settle()
    sim.add(2)
    sim.settle()
    return sim


def test_status_shows_the_weight_the_replica_ratio_gives() -> None:
    sim = canary_at_first_weight(spec(rollout={"steps": [{"setWeight": 25}, {"pause": {}}]}))
    assert (sim.status.canary_weight, sim.status.effective_canary_weight) == (25, 33)  # 1 canary next to 2
    assert "effective 33%" in reason(sim.status, "Progressing")[1]
    sim.requests["promote"] = "1"
    sim.settle()
    assert (sim.status.canary_weight, sim.status.effective_canary_weight) == (0, 0)


def test_effective_weight_counts_only_ready_canary_replicas() -> None:
    sim = Sim(spec(rollout={"steps": [{"setWeight": 50}, {"pause": {}}]}))
    sim.add(1)
    sim.settle()
    sim.add(2)
    sim.stuck.add(2)
    sim.settle()
    assert (sim.status.canary_weight, sim.status.effective_canary_weight) == (50, 0)


def test_a_weight_the_replicas_cannot_approach_is_refused_with_the_reason() -> None:
    sim = canary_at_first_weight(spec(rollout={"steps": [{"setWeight": 10}, {"setWeight": 100}]}))
    assert sim.status.canary_version is None and sim.deployments.keys() == {1}
    assert condition(sim.status, "Ready") == "True", "stable keeps serving"
    why, message = reason(sim.status, "Degraded")
    assert why == "WeightNotAchievable"
    assert "rollout.steps[0].setWeight 10%" in message and "nearest replica ratio is 33%" in message
    assert "maxReplicasForWeight" in message
    assert sim.warnings == [message], "one Warning, not one per reconcile"
    assert sim.status.phase == "Degraded"


def test_a_wider_tolerance_accepts_the_nearest_ratio() -> None:
    steps = [{"setWeight": 10}, {"pause": {}}]
    sim = canary_at_first_weight(spec(rollout={"steps": steps, "weightTolerance": 25}))
    assert (sim.status.canary_weight, sim.status.effective_canary_weight) == (10, 33)


def test_a_weight_is_met_by_scaling_when_more_pods_are_allowed() -> None:
    steps = [{"setWeight": 10}, {"pause": {}}, {"setWeight": 100}]
    rollout = {"steps": steps, "maxReplicasForWeight": 12, "weightTolerance": 0}
    sim = canary_at_first_weight(spec(rollout=rollout))
    assert sim.deployments == {1: DeploymentInfo(1, 9, 9), 2: DeploymentInfo(2, 1, 1)}
    assert (sim.status.canary_weight, sim.status.effective_canary_weight) == (10, 10)
    sim.requests["promote"] = "1"
    sim.settle()
    assert sim.status.stable_version == 2 and sim.deployments == {2: DeploymentInfo(2, 2, 2)}


def test_a_scaled_step_waits_for_the_extra_stable_replicas() -> None:
    steps = [{"setWeight": 10}, {"pause": {}}]
    sim = Sim(spec(rollout={"steps": steps, "maxReplicasForWeight": 12, "weightTolerance": 0}))
    sim.add(1)
    sim.settle()
    sim.add(2)
    sim.step()
    sim.deployments = {1: DeploymentInfo(1, 9, 2), 2: DeploymentInfo(2, 1, 1)}  # stable still scaling up
    result = plan(sim.spec, sim.status, sim.observed())
    assert result.status.current_step == 0 and result.status.effective_canary_weight == 33


@pytest.mark.parametrize(
    ("replicas", "weight", "limit", "tolerance", "expected"),
    [
        (2, 10, None, 10, None),
        (2, 10, 12, 10, Split(4, 1, 20)),  # the fewest extra pods within the tolerance
        (2, 10, 12, 0, Split(9, 1, 10)),
        (2, 10, 8, 0, None),
        (2, 75, None, 10, None),  # the canary never outgrows stable unless allowed
        (2, 75, 8, 10, Split(2, 4, 67)),
        (2, 75, 8, 0, Split(2, 6, 75)),
        (5, 20, None, 10, Split(5, 2, 29)),
        (2, 100, None, 0, Split(2, 2, 100)),
    ],
)
def test_replica_split(
    replicas: int, weight: int, limit: int | None, tolerance: int, expected: Split | None
) -> None:
    rollout: dict[str, Any] = {"steps": STEPS, "weightTolerance": tolerance}
    if limit:
        rollout["maxReplicasForWeight"] = limit
    assert replica_split(spec(replicas=replicas, rollout=rollout), weight) == expected


def test_http_route_weights_are_exact_and_given_only_to_a_ready_canary() -> None:
    routing = {"httpRoute": {"parentRefs": [{"name": "gw"}]}}
    steps = [{"setWeight": 10}, {"pause": {}}]
    sim = Sim(spec(rollout={"steps": steps, "trafficRouting": routing}))
    sim.add(1)
    sim.settle()
    sim.add(2)
    sim.stuck.add(2)
    result = sim.settle()
    assert result.route_weights == {1: 100, 2: 0} and sim.status.effective_canary_weight == 0
    sim.stuck.clear()
    result = sim.settle()
    assert result.route_weights == {1: 90, 2: 10}
    assert (sim.status.canary_weight, sim.status.effective_canary_weight) == (10, 10)


FAULTS = [
    PodFailure(
        "web-v2-x", "pull-model", "Terminated", "Error (exit code 1): slipway pull: AccessDenied", True
    ),
    PodFailure("web-v2-x", "tensorflow-serving", "ErrImageNeverPull", 'image "tfs:bad" is not present', True),
    PodFailure("web-v2-x", "tensorflow-serving", "OOMKilled", "OOMKilled (exit code 137)", True),
]


@pytest.mark.parametrize("failure", FAULTS, ids=lambda f: f.reason)
def test_a_canary_pod_fault_aborts_at_once_with_the_containers_error(failure: PodFailure) -> None:
    sim = Sim(spec(rollout={"steps": STEPS, "progressDeadlineSeconds": 600}))
    sim.add(1)
    sim.settle()
    sim.add(2)
    sim.failures[2] = failure
    sim.settle()  # no time passes: the deadline is not what ends it
    assert sim.now == T0
    assert sim.status.stable_version == 1 and sim.status.canary_version is None
    assert sim.status.failed_versions == [2] and sim.deployments.keys() == {1}
    record = sim.status.history[-1]
    assert record.outcome == "Aborted", "the canary never had a ready replica, so never any traffic"
    expected = {"Terminated": "ModelPullFailed", "ErrImageNeverPull": "ImagePullFailed"}.get(
        failure.reason, "ModelServerFailed"
    )
    why, message = reason(sim.status, "Degraded")
    assert why == expected and failure.message in message and failure.container in message
    assert any(failure.message in warning for warning in sim.warnings)
    assert record.message.startswith(expected)
    assert condition(sim.status, "Ready") == "True"


def test_a_pull_error_fails_the_canary_only_once_it_lasts() -> None:
    sim = Sim(spec())
    sim.add(1)
    sim.settle()
    sim.add(2)
    sim.failures[2] = PodFailure(
        "web-v2-x", "tensorflow-serving", "ImagePullBackOff", "Back-off pulling image", False, T0
    )
    sim.settle()
    assert sim.status.canary_version == 2
    sim.now += timedelta(seconds=61)
    sim.step()
    assert sim.status.canary_version is None and sim.status.failed_versions == [2]
    assert reason(sim.status, "Degraded") == (
        "ImagePullFailed",
        "v2 aborted: pod web-v2-x container tensorflow-serving: ImagePullBackOff: Back-off pulling image",
    )


def test_a_faulty_first_version_is_recorded_failed_and_not_retried() -> None:
    sim = Sim(spec())
    sim.add(1)
    sim.failures[1] = FAULTS[0]
    sim.settle()
    assert sim.status.stable_version is None and sim.status.failed_versions == [1]
    assert sim.deployments == {}
    assert reason(sim.status, "Degraded")[0] == "ModelPullFailed"


def test_a_file_store_without_a_volume_is_refused_until_the_spec_names_one() -> None:
    endpoint = spec()
    sim = Sim(endpoint.model_copy(update={"model_volume": None}))
    sim.add(1)
    sim.settle()
    assert sim.deployments == {}
    why, message = reason(sim.status, "Ready")
    assert why == "ModelNotReachable" and "spec.modelVolume" in message
    assert reason(sim.status, "Degraded")[0] == "ModelNotReachable"
    sim.spec, sim.generation = endpoint, 2
    sim.settle()
    assert sim.status.stable_version == 1
    assert condition(sim.status, "Degraded") == "False"


def test_a_file_store_outside_the_volume_is_refused() -> None:
    sim = Sim(spec(modelVolume={"mountPath": "/elsewhere", "hostPath": "/srv"}))
    sim.add(1)
    sim.settle()
    assert sim.deployments == {}
    assert "outside spec.modelVolume.mountPath (/elsewhere)" in reason(sim.status, "Ready")[1]


def test_a_promoted_canary_scaling_down_is_not_reported_unavailable() -> None:
    steps = [{"setWeight": 75}, {"setWeight": 100}]
    sim = canary_at_first_weight(spec(rollout={"steps": steps, "maxReplicasForWeight": 8}))
    assert sim.status.stable_version == 2 and sim.deployments[2].replicas == 2
    # The Deployment controller has not yet observed the scale-down from 4 canary replicas to 2.
    sim.deployments = {2: DeploymentInfo(2, 2, 4, up_to_date=False)}
    result = plan(sim.spec, sim.status, sim.observed())
    assert condition(result.status, "Ready") == "True" and condition(result.status, "Degraded") == "False"


def test_pods_never_created_fail_the_canary_once_that_lasts() -> None:
    sim = Sim(spec())
    sim.add(1)
    sim.settle()
    sim.add(2)
    forbidden = 'pods "web-v2-x" is forbidden: violates PodSecurity "restricted:latest"'
    sim.failures[2] = PodFailure("web-v2", "", "FailedCreate", forbidden, False, T0)
    sim.settle()
    assert sim.status.canary_version == 2
    sim.now += timedelta(seconds=60)
    sim.step()
    assert sim.status.failed_versions == [2]
    assert reason(sim.status, "Degraded") == (
        "PodCreationFailed",
        f"v2 aborted: Deployment web-v2: FailedCreate: {forbidden}",
    )


# --- refusals: contested versions, missing versions, pins that cannot be met --------------------------------


def test_two_objects_claiming_a_version_keep_the_served_one_and_start_nothing() -> None:
    usable, contested = by_number(
        [
            VersionInfo("a", 1, "Validated", "file:///a", served_by=("se",)),
            VersionInfo("b", 1, "Validated", "file:///b"),
            VersionInfo("c", 2, "Validated", "file:///c"),
            VersionInfo("d", 2, "Validated", "file:///d"),
            VersionInfo("e", 3, "Validated", "file:///e"),
        ],
        "se",
    )
    assert {n: i.name for n, i in usable.items()} == {1: "a", 3: "e"}
    assert contested == {1: ("a", "b"), 2: ("c", "d")}


def test_a_second_claim_on_the_stable_version_changes_nothing_served() -> None:
    sim = Sim(spec())
    sim.add(1)
    before = sim.settle()
    sim.served(1)
    sim.claim(1, "intruder", phase="Validated")
    after = sim.settle()
    assert sim.status.stable_version == 1 and sim.status.canary_version is None
    assert after.replicas == before.replicas == {1: 2}
    assert "RolloutStarted" not in sim.events and condition(sim.status, "Ready") == "True"


def test_a_contested_newer_version_is_never_rolled_out() -> None:
    sim = Sim(spec())
    sim.add(1)
    sim.settle()
    sim.served(1)
    sim.add(2)
    sim.claim(2, "penguins-v2-copy")
    result = sim.settle()
    assert sim.status.stable_version == 1 and sim.status.canary_version is None and result.replicas == {1: 2}


def test_a_canary_whose_version_becomes_contested_is_aborted_and_stable_keeps_serving() -> None:
    sim = Sim(spec())
    sim.add(1)
    sim.settle()
    sim.served(1)
    sim.add(2)
    sim.step()
    assert sim.status.canary_version == 2
    sim.claim(2, "penguins-v2-copy")
    result = sim.step()
    assert sim.status.canary_version is None and sim.status.stable_version == 1 and result.replicas == {1: 2}
    assert sim.status.history[-1].message.startswith("VersionContested: ")


def test_a_stable_version_whose_model_version_is_gone_keeps_serving_and_says_so() -> None:
    sim = Sim(spec())
    sim.add(3)
    sim.settle()
    del sim.versions[3]
    result = sim.settle()
    assert sim.status.stable_version == 3 and result.replicas == {3: 2}, "what is served stays as it is"
    degraded = next(c for c in sim.status.conditions if c.type == "Degraded")
    assert (degraded.status, degraded.reason) == ("True", "StableVersionMissing")
    assert sim.events.count("StableVersionMissing") == 1, "one Warning, not one per reconcile"


def test_a_pin_to_a_version_that_does_not_exist_is_named_and_stable_stays() -> None:
    sim = Sim(spec())
    sim.add(1)
    sim.settle()
    sim.spec = spec(versionSelection={"policy": "Pinned", "version": 9})
    sim.generation = 2
    result = sim.settle()
    assert sim.status.stable_version == 1 and result.replicas == {1: 2}
    progressing = next(c for c in sim.status.conditions if c.type == "Progressing")
    assert progressing.reason == "PinnedVersionNotFound"
    assert progressing.message == "spec.versionSelection.version: no ModelVersion of penguins has version 9"
    assert sim.events.count("PinnedVersionNotFound") == 1


def test_a_pin_to_a_contested_version_is_named() -> None:
    sim = Sim(spec(versionSelection={"policy": "Pinned", "version": 2}))
    sim.add(2)
    sim.claim(2, "other")
    result = sim.settle()
    assert result.replicas == {}
    ready = next(c for c in sim.status.conditions if c.type == "Ready")
    assert ready.reason == "PinnedVersionContested" and "other, penguins-v2" in ready.message


def test_a_model_with_no_versions_is_named_with_one_warning() -> None:
    sim = Sim(spec())
    result = sim.settle()
    assert result.replicas == {}
    ready = next(c for c in sim.status.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "NoModelVersion")
    assert sim.events == ["NoModelVersion"]

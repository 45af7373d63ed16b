"""The rollout state machine, as pure functions of (spec, status, observed state, analysis result).

Everything it needs to resume lives in `status` (current step, when it started, analysis progress), so an
operator restart at any point continues from the same step. It never mutates its inputs.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from slipway.api.common import Condition, reconciled, set_condition
from slipway.api.serving_endpoint import (
    AnalysisProgress,
    AnalysisStep,
    Pause,
    RolloutRecord,
    RolloutStep,
    ServingEndpointSpec,
    ServingEndpointStatus,
)
from slipway.messages import sanitize
from slipway.serving.faults import PodFailure
from slipway.views import VersionInfo

HISTORY_LIMIT = 20
# A pull error or a missing Secret that lasts this long fails the canary before the progress deadline.
PERSISTENT_FAULT = timedelta(seconds=60)


@dataclass(frozen=True)
class DeploymentInfo:
    version: int
    replicas: int
    ready: int
    up_to_date: bool = True


@dataclass(frozen=True)
class Observed:
    generation: int
    now: datetime
    versions: dict[int, VersionInfo]
    deployments: dict[int, DeploymentInfo]
    requests: dict[str, str] = field(default_factory=dict)
    failures: dict[int, PodFailure] = field(default_factory=dict)  # version -> a failing pod of it
    contested: dict[int, tuple[str, ...]] = field(default_factory=dict)  # version -> the objects claiming it

    def ready(self, version: int | None) -> int:
        """Ready replicas of the Deployment as last specified (what a step may count on)."""
        info = self.deployments.get(version) if version is not None else None
        return info.ready if info is not None and info.up_to_date else 0

    def serving(self, version: int | None) -> int:
        """Ready replicas right now, while a scale change is still being observed too (what takes traffic)."""
        info = self.deployments.get(version) if version is not None else None
        return info.ready if info is not None else 0


@dataclass(frozen=True)
class AnalysisResult:
    """One measurement round of the current analysis step."""

    step: int
    passed: bool
    message: str
    failed_metrics: tuple[str, ...] = ()
    complete: bool = True
    ready: bool = True  # False while the model server is not answering yet: retried until the deadline


@dataclass(frozen=True)
class Event:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass
class Plan:
    status: ServingEndpointStatus
    replicas: dict[int, int]
    traffic_versions: list[int]
    route_weights: dict[int, int]
    events: list[Event]
    analysis_due: bool = False


def parse_duration(text: str) -> timedelta:
    match = re.fullmatch(r"([0-9]+)(s|m|h)", text)
    if match is None:
        raise ValueError(f"not a duration: {text!r}")
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(seconds=amount * {"s": 1, "m": 60, "h": 3600}[unit])


def effective_steps(spec: ServingEndpointSpec) -> list[RolloutStep]:
    """Canary uses the declared steps; BlueGreen is a preview at full size, analysed, then a pause."""
    if spec.rollout.strategy == "Canary":
        return list(spec.rollout.steps)
    seconds = spec.rollout.blue_green.auto_promotion_seconds if spec.rollout.blue_green else None
    pause = Pause(duration=f"{seconds}s" if seconds is not None else None)
    return [RolloutStep(analysis=AnalysisStep()), RolloutStep(pause=pause)]


def analysis_interval(spec: ServingEndpointSpec) -> timedelta:
    prometheus = spec.rollout.analysis.prometheus
    return (
        min((parse_duration(m.interval) for m in prometheus.metrics), default=timedelta(0))
        if prometheus
        else timedelta(0)
    )


def stable_replicas(spec: ServingEndpointSpec) -> int:
    return spec.autoscaling.min_replicas if spec.autoscaling else spec.replicas


@dataclass(frozen=True)
class Split:
    """Replicas of stable and canary for one weight, and the share of traffic the canary gets with them
    once all are ready."""

    stable: int
    canary: int
    weight: int


def routed(spec: ServingEndpointSpec) -> bool:
    return bool(spec.rollout.traffic_routing and spec.rollout.traffic_routing.http_route)


def ratio(stable: int, canary: int) -> int:
    return round(100 * canary / (stable + canary)) if stable + canary else 0


def replica_split(spec: ServingEndpointSpec, weight: int) -> Split | None:
    """How to give the canary `weight` percent of traffic next to a full-size stable set; None when the
    replica ratio cannot come within `weightTolerance` of it (and `maxReplicasForWeight` allows no more
    pods). HTTPRoute weights are exact; 0 and 100 are exact (100 is followed by promotion)."""
    base = stable_replicas(spec)
    if spec.rollout.strategy == "BlueGreen" or weight >= 100:
        return Split(base, base, 100 if spec.rollout.strategy == "Canary" and weight >= 100 else 0)
    if weight <= 0:
        return Split(base, 0, 0)
    if routed(spec):
        return Split(base, min(base, max(1, math.ceil(base * weight / 100))), weight)
    canary = min(base, max(1, math.ceil(base * weight / (100 - weight))))
    tolerance = spec.rollout.weight_tolerance
    if abs(ratio(base, canary) - weight) <= tolerance:
        return Split(base, canary, ratio(base, canary))
    limit = spec.rollout.max_replicas_for_weight
    if limit is None:
        return None
    for total in range(base + 1, limit + 1):
        # The autoscaler owns stable's replicas: only the canary may grow then.
        stables = [base] if spec.autoscaling else range(base, total)
        fits = [(abs(ratio(s, total - s) - weight), s) for s in stables if total - s >= 1]
        fits = [fit for fit in fits if fit[0] <= tolerance]
        if fits:
            stable = min(fits)[1]
            return Split(stable, total - stable, ratio(stable, total - stable))
    return None


def weight_problem(spec: ServingEndpointSpec) -> str | None:
    """Why the declared steps cannot be met by replica ratio (None when they can)."""
    if spec.rollout.strategy != "Canary" or routed(spec):
        return None
    base = stable_replicas(spec)
    for index, step in enumerate(spec.rollout.steps):
        if step.set_weight is None or replica_split(spec, step.set_weight) is not None:
            continue
        canary = min(base, max(1, math.ceil(base * step.set_weight / (100 - step.set_weight))))
        more = (
            f"up to {spec.rollout.max_replicas_for_weight} pods in all do not suffice"
            if spec.rollout.max_replicas_for_weight
            else "set rollout.maxReplicasForWeight to let the operator add pods"
        )
        return (
            f"rollout.steps[{index}].setWeight {step.set_weight}%: with {base} stable replicas the nearest "
            f"replica ratio is {ratio(base, canary)}% ({canary} canary), more than rollout.weightTolerance "
            f"({spec.rollout.weight_tolerance} points) away; {more}, raise replicas, widen the tolerance, "
            "or route with rollout.trafficRouting.httpRoute (exact weights)"
        )
    return None


def model_problem(spec: ServingEndpointSpec, info: VersionInfo) -> str | None:
    """Why the serving pods could not read this version's model (None when they can, as far as can be
    known without reading it)."""
    if not info.uri.startswith("file://"):
        return None
    path = info.uri.removeprefix("file://")
    volume = spec.model_volume
    if volume is None:
        return (
            f"v{info.version} is in a file:// store ({info.uri}), which the serving pods can only read "
            "from a volume: set spec.modelVolume"
        )
    mount = volume.mount_path.rstrip("/") + "/"
    if not path.startswith(mount):
        return f"v{info.version} is at {info.uri}, outside spec.modelVolume.mountPath ({volume.mount_path})"
    return None


def by_number(
    versions: Iterable[VersionInfo], endpoint: str
) -> tuple[dict[int, VersionInfo], dict[int, tuple[str, ...]]]:
    """The ModelVersions serving may use, by version number, and the numbers more than one object claims
    (with their names). A contested number is not used, so no second claim replaces what is served; the one
    claimant this endpoint already serves stays as deployed."""
    claims: dict[int, list[VersionInfo]] = defaultdict(list)
    for info in versions:
        claims[info.version].append(info)
    usable: dict[int, VersionInfo] = {}
    contested: dict[int, tuple[str, ...]] = {}
    for number, infos in claims.items():
        if len(infos) == 1:
            usable[number] = infos[0]
            continue
        contested[number] = tuple(sorted(info.name for info in infos))
        served = [info for info in infos if endpoint in info.served_by]
        if len(served) == 1:
            usable[number] = served[0]
    return usable, contested


def select_target(spec: ServingEndpointSpec, observed: Observed, failed: list[int]) -> int | None:
    selection = spec.version_selection
    excluded = {*failed, *observed.contested}
    if selection.policy == "Pinned":
        info = observed.versions.get(selection.version or 0)
        return info.version if info is not None and info.servable and info.version not in excluded else None
    candidates = [v.version for v in observed.versions.values() if v.servable and v.version not in excluded]
    return max(candidates, default=None)


def pin_problem(spec: ServingEndpointSpec, observed: Observed) -> tuple[str, str] | None:
    """Why the pinned version cannot be served, as (reason, message); None when it can or may yet be
    (a ModelVersion still being evaluated)."""
    selection = spec.version_selection
    if selection.policy != "Pinned" or selection.version is None:
        return None
    pinned, where = selection.version, "spec.versionSelection.version"
    if pinned in observed.contested:
        claimants = ", ".join(observed.contested[pinned])
        return (
            "PinnedVersionContested",
            f"{where}: v{pinned} is claimed by more than one ModelVersion ({claimants})",
        )
    info = observed.versions.get(pinned)
    if info is None:
        return "PinnedVersionNotFound", f"{where}: no ModelVersion of {spec.model_name} has version {pinned}"
    if info.phase == "Rejected":
        return "PinnedVersionRejected", f"{where}: v{pinned} ({info.name}) was Rejected by its gates"
    return None


def new_request(observed: Observed, status: ServingEndpointStatus, kind: str) -> str | None:
    value = observed.requests.get(kind)
    return value if value and status.handled_requests.get(kind) != value else None


class _Planner:
    def __init__(self, spec: ServingEndpointSpec, status: ServingEndpointStatus, observed: Observed) -> None:
        self.spec = spec
        self.status = status.model_copy(deep=True)
        self.observed = observed
        self.events: list[Event] = []
        self.steps = effective_steps(spec)
        self.degraded: tuple[str, str] | None = None
        self.blocked: tuple[str, str] | None = None  # why the target version cannot start
        self.healed = False
        self.effective_before = status.effective_canary_weight

    def emit(self, type_: str, reason: str, message: str) -> None:
        self.events.append(Event(type_, reason, message))

    # --- requests and target -----------------------------------------------------------------------------

    def handle_requests(self) -> None:
        status, observed = self.status, self.observed
        if status.observed_generation is not None and status.observed_generation != observed.generation:
            if status.failed_versions:
                failed = status.failed_versions
                self.emit("Normal", "SpecChanged", f"spec changed: failed versions {failed} may be retried")
            status.failed_versions = []
        retry = new_request(observed, status, "retry")
        if retry is not None:
            status.handled_requests["retry"] = retry
            if status.failed_versions:
                self.emit("Normal", "RetryRequested", f"retrying versions {status.failed_versions}")
            status.failed_versions = []

    # --- transitions --------------------------------------------------------------------------------------

    def start(self, version: int) -> None:
        status = self.status
        status.canary_version = version
        status.current_step = 0
        status.canary_weight = 0
        status.step_started_at = self.observed.now
        status.rollout_started_at = self.observed.now
        status.analysis = None
        if status.stable_version is None:
            self.emit("Normal", "Deploying", f"deploying v{version} as the first served version")
        else:
            self.emit(
                "Normal",
                "RolloutStarted",
                f"{self.spec.rollout.strategy} rollout v{status.stable_version} -> v{version} started",
            )

    def advance(self, done: RolloutStep) -> None:
        status = self.status
        assert status.current_step is not None
        status.current_step += 1
        status.step_started_at = self.observed.now
        status.analysis = None
        if done.set_weight is not None:
            effective = self.effective_weight()
            what = f"canary at {done.set_weight}% of traffic" + (
                f" ({effective}% by replica ratio)" if effective != done.set_weight else ""
            )
        elif done.pause is not None:
            what = "pause over"
        else:
            what = "analysis passed"
        self.emit(
            "Normal",
            "StepCompleted",
            f"v{status.canary_version} step {status.current_step}/{len(self.steps)}: {what}",
        )

    def promote(self) -> None:
        status = self.status
        version = status.canary_version
        assert version is not None
        previous = status.stable_version
        self.record(version, previous, "Promoted", "Promoted", f"v{version} serves 100% of traffic")
        status.previous_version = previous
        status.stable_version = version
        self.clear_rollout()
        self.healed = True
        self.emit("Normal", "Promoted", f"v{version} promoted" + (f" (was v{previous})" if previous else ""))

    def abort(self, reason: str, message: str, *, failed: bool) -> None:
        status = self.status
        version = status.canary_version
        assert version is not None
        had_traffic = status.effective_canary_weight > 0 or self.spec.rollout.strategy == "BlueGreen"
        outcome = "RolledBack" if had_traffic else "Aborted"
        self.record(version, status.stable_version, outcome, reason, f"{reason}: {message}")
        if failed and version not in status.failed_versions:
            status.failed_versions.append(version)
        self.clear_rollout()
        if failed:
            self.degraded = (reason, f"v{version} {'rolled back' if had_traffic else 'aborted'}: {message}")
        back = f"; all traffic back on v{status.stable_version}" if status.stable_version else ""
        self.emit("Warning" if failed else "Normal", outcome, f"v{version}: {message}{back}")

    def clear_rollout(self) -> None:
        status = self.status
        status.canary_version = None
        status.current_step = None
        status.canary_weight = 0
        status.effective_canary_weight = 0
        status.step_started_at = None
        status.rollout_started_at = None
        status.analysis = None

    def record(self, version: int, from_version: int | None, outcome: str, reason: str, message: str) -> None:
        record = RolloutRecord(
            version=version,
            from_version=from_version,
            outcome=outcome,
            reason=reason,
            started_at=self.status.rollout_started_at,
            finished_at=self.observed.now,
            message=sanitize(message, 1024),
        )
        self.status.history = [*self.status.history, record][-HISTORY_LIMIT:]

    # --- the step loop ------------------------------------------------------------------------------------

    def run(self, analysis: AnalysisResult | None) -> bool:
        """Advances through as many steps as are already satisfied; returns True if analysis is due."""
        status, observed = self.status, self.observed
        status.effective_canary_weight = self.effective_weight()  # what the canary gets as observed
        self.handle_requests()
        target = select_target(self.spec, observed, status.failed_versions)
        canary = status.canary_version
        if canary is not None:
            info = observed.versions.get(canary)
            if canary in observed.contested:
                claimants = ", ".join(observed.contested[canary])
                self.abort(
                    "VersionContested", f"claimed by more than one ModelVersion ({claimants})", failed=False
                )
            elif info is None or not info.servable:
                self.abort("VersionWithdrawn", "the ModelVersion is no longer Validated", failed=False)
            elif target is not None and target != canary:
                self.abort("Superseded", f"v{target} is now the version to serve", failed=False)
            elif (value := new_request(observed, status, "abort")) is not None:
                status.handled_requests["abort"] = value
                self.abort("AbortRequested", "aborted by request", failed=True)
            elif (value := new_request(observed, status, "promote")) is not None:
                status.handled_requests["promote"] = value
                status.current_step = len(self.steps)
                status.step_started_at = observed.now
                self.emit("Normal", "PromoteRequested", f"v{canary}: skipping to full promotion")
        target = select_target(self.spec, observed, status.failed_versions)
        if status.canary_version is not None and (problem := self.start_problem(status.canary_version)):
            self.abort(*problem, failed=False)
            self.blocked = problem
        if status.canary_version is None and target is not None and target != status.stable_version:
            self.blocked = self.start_problem(target)
            if self.blocked is None:
                self.start(target)
        pinned = self.spec.version_selection.version
        if self.blocked is None and status.canary_version is None and pinned != status.stable_version:
            self.blocked = pin_problem(self.spec, observed)
        if status.canary_version is None:
            return False
        return self.step_loop(analysis)

    def start_problem(self, version: int) -> tuple[str, str] | None:
        """What keeps a version from rolling out at all, as (reason, message); fixed by a spec change."""
        info = self.observed.versions.get(version)
        if info is not None and (problem := model_problem(self.spec, info)) is not None:
            return "ModelNotReachable", problem
        if self.status.stable_version is not None and (problem := weight_problem(self.spec)) is not None:
            return "WeightNotAchievable", problem
        return None

    def canary_failure(self, version: int) -> tuple[str, str] | None:
        """A fault of a canary pod that no waiting will cure, as (reason, the container's own error)."""
        failure = self.observed.failures.get(version)
        if failure is None:
            return None
        lasting = failure.since is not None and self.observed.now - failure.since >= PERSISTENT_FAULT
        if not (failure.certain or lasting):
            return None
        return failure.condition_reason, failure.describe()

    def step_loop(self, analysis: AnalysisResult | None) -> bool:
        status, observed = self.status, self.observed
        for _ in range(len(self.steps) + 2):
            version = status.canary_version
            step_index = status.current_step
            if version is None or step_index is None:
                return False
            if (failure := self.canary_failure(version)) is not None:
                self.abort(*failure, failed=True)
                return False
            if status.stable_version is None or step_index >= len(self.steps):
                if observed.ready(version) >= stable_replicas(self.spec):
                    self.promote()
                    return False
                if self.deadline_passed():
                    self.abort("ProgressDeadlineExceeded", "replicas not ready in time", failed=True)
                return False
            step = self.steps[step_index]
            if step.set_weight is not None:
                status.canary_weight = step.set_weight
                split = replica_split(self.spec, step.set_weight)
                if split is None:  # the spec changed under a running rollout
                    problem = weight_problem(self.spec) or f"setWeight {step.set_weight}% cannot be met"
                    self.abort("WeightNotAchievable", problem, failed=False)
                    return False
                surged = split.stable > stable_replicas(self.spec)  # stable scaled up for this weight
                if observed.ready(version) < split.canary or (
                    surged and observed.ready(status.stable_version) < split.stable
                ):
                    if self.deadline_passed():
                        self.abort("ProgressDeadlineExceeded", "canary not ready in time", failed=True)
                    return False
            elif step.pause is not None:
                if step.pause.duration is None or observed.now < self.step_started() + parse_duration(
                    step.pause.duration
                ):
                    return False
            elif step.analysis is not None:
                if analysis is None or analysis.step != step_index:
                    return self.measurement_due(step_index)
                outcome = self.apply_analysis(step_index, analysis)
                analysis = None
                if outcome != "passed":
                    return False
            self.advance(step)
        return False

    def measurement_due(self, step_index: int) -> bool:
        progress = self.status.analysis
        if progress is None or progress.step != step_index or progress.last_measured_at is None:
            return True
        return self.observed.now >= progress.last_measured_at + analysis_interval(self.spec)

    def apply_analysis(self, step_index: int, result: AnalysisResult) -> str:
        status = self.status
        progress = status.analysis or AnalysisProgress(step=step_index)
        progress.last_measured_at = self.observed.now
        progress.message = sanitize(result.message, 1024)
        status.analysis = progress
        if not result.ready:
            if self.deadline_passed():
                self.abort("ProgressDeadlineExceeded", result.message, failed=True)
                return "failed"
            return "pending"
        progress.ready_checked = True
        progress.measurements += 1
        for metric in result.failed_metrics:
            progress.failures[metric] = progress.failures.get(metric, 0) + 1
        progress.last_measured_at = self.observed.now
        progress.message = sanitize(result.message, 1024)
        status.analysis = progress
        if not result.passed:
            self.abort("AnalysisFailed", result.message, failed=True)
            return "failed"
        if not result.complete:
            return "pending"
        self.emit("Normal", "AnalysisPassed", f"v{status.canary_version}: {result.message}")
        return "passed"

    def step_started(self) -> datetime:
        return self.status.step_started_at or self.observed.now

    def deadline_passed(self) -> bool:
        limit = timedelta(seconds=self.spec.rollout.progress_deadline_seconds)
        return self.observed.now - self.step_started() > limit

    # --- the result ---------------------------------------------------------------------------------------

    def desired_replicas(self) -> dict[int, int]:
        status = self.status
        replicas: dict[int, int] = {}
        if status.stable_version is not None:
            replicas[status.stable_version] = stable_replicas(self.spec)
        if status.canary_version is not None:
            step = status.current_step or 0
            if status.stable_version is None or step >= len(self.steps):
                replicas[status.canary_version] = stable_replicas(self.spec)
            else:
                split = replica_split(self.spec, status.canary_weight) or Split(
                    stable_replicas(self.spec), 0, 0
                )
                replicas[status.canary_version] = split.canary
                if status.stable_version is not None:
                    replicas[status.stable_version] = split.stable
        return replicas

    def effective_weight(self) -> int:
        """The canary's share of traffic right now: the ratio of ready replicas behind the endpoint's
        Service, or the HTTPRoute weight, given only once the canary's replicas for it are ready."""
        status, observed = self.status, self.observed
        stable, canary = status.stable_version, status.canary_version
        if stable is None or canary is None or self.spec.rollout.strategy == "BlueGreen":
            return 0
        ready = observed.serving(canary)
        if not routed(self.spec):
            return ratio(observed.serving(stable), ready)
        split = replica_split(self.spec, status.canary_weight)
        if split is not None and split.canary > 0 and ready >= split.canary:
            return status.canary_weight
        return self.effective_before if ready > 0 else 0

    def traffic(self) -> tuple[list[int], dict[int, int]]:
        status = self.status
        stable, canary = status.stable_version, status.canary_version
        if stable is None:
            return ([canary] if canary is not None else []), ({canary: 100} if canary is not None else {})
        if canary is None or self.spec.rollout.strategy == "BlueGreen":
            return [stable], {stable: 100}
        weight = status.effective_canary_weight
        return [stable, canary], {stable: 100 - weight, canary: weight}

    def conditions(self) -> None:
        status, observed = self.status, self.observed

        def put(type_: str, value: Literal["True", "False"], reason: str, message: str) -> None:
            status.conditions = set_condition(
                status.conditions, type_, value, reason, message, observed.generation, observed.now
            )

        stable, canary = status.stable_version, status.canary_version
        stable_ready = observed.serving(stable)
        if stable is not None:
            if stable_ready > 0:
                put("Ready", "True", "Serving", f"v{stable} serving")
            else:
                put("Ready", "False", "StableUnavailable", f"no ready replica of v{stable}")
        else:
            why = self.blocked or self.no_version_reason()
            if why[0] == "NoModelVersion":
                self.warn_on_change("Ready", "False", why)
            put("Ready", "False", *why)
        if canary is not None:
            step = status.current_step or 0
            where = (
                f"v{canary} at step {step}/{len(self.steps)}, weight {status.canary_weight}% "
                f"(effective {status.effective_canary_weight}%)"
            )
            put("Progressing", "True", "Paused" if self.paused_until_promoted() else "RollingOut", where)
        elif self.blocked is not None:
            put("Progressing", "False", *self.blocked)
        else:
            put("Progressing", "False", "Idle", "no rollout in progress")
        missing = stable is not None and stable not in observed.versions
        if self.degraded is not None:
            put("Degraded", "True", *self.degraded)
        elif missing:
            problem = (
                "StableVersionMissing",
                f"v{stable} keeps serving as deployed, but no single ModelVersion of {self.spec.model_name} "
                f"records it (deleted, or claimed twice): roll out another version, or recreate it",
            )
            self.warn_on_change("Degraded", "True", problem)
            put("Degraded", "True", *problem)
        elif self.blocked is not None:
            self.warn_on_change("Degraded", "True", self.blocked)
            put("Degraded", "True", *self.blocked)
        elif stable is not None and stable_ready == 0:
            put("Degraded", "True", "StableUnavailable", "stable has no ready replica")
        elif self.healed or not status.failed_versions or _status_of(status.conditions, "Degraded") is None:
            put("Degraded", "False", "Healthy", "")
        status.conditions = reconciled(status.conditions, observed.generation, observed.now)
        status.phase = self.phase()

    def warn_on_change(self, type_: str, value: str, problem: tuple[str, str]) -> None:
        """A Warning Event when the condition is not already (value, reason, message)."""
        previous = next((c for c in self.status.conditions if c.type == type_), None)
        reason, message = problem
        if previous is None or (previous.status, previous.reason, previous.message) != (
            value,
            reason,
            sanitize(message),
        ):
            self.emit("Warning", reason, message)

    def no_version_reason(self) -> tuple[str, str]:
        if not self.observed.versions and not self.observed.contested:
            return "NoModelVersion", f"no ModelVersion of model {self.spec.model_name} in this namespace"
        if self.spec.version_selection.policy == "Pinned":
            return "PinnedVersionNotValidated", f"v{self.spec.version_selection.version} is not Validated"
        if self.status.canary_version is not None:
            return "Deploying", f"v{self.status.canary_version} is being deployed"
        return "NoValidatedVersion", "no Validated ModelVersion of this model yet"

    def phase(self) -> Literal["Pending", "Progressing", "Paused", "Healthy", "Degraded"]:
        status = self.status
        if _status_of(status.conditions, "Degraded") == "True":
            return "Degraded"
        if status.canary_version is not None:
            return "Paused" if self.paused_until_promoted() else "Progressing"
        return "Healthy" if status.stable_version is not None else "Pending"

    def paused_until_promoted(self) -> bool:
        step = self.status.current_step or 0
        pause = self.steps[step].pause if step < len(self.steps) else None
        return pause is not None and pause.duration is None


def _status_of(conditions: list[Condition], type_: str) -> str | None:
    return next((c.status for c in conditions if c.type == type_), None)


def plan(
    spec: ServingEndpointSpec,
    status: ServingEndpointStatus,
    observed: Observed,
    analysis: AnalysisResult | None = None,
) -> Plan:
    planner = _Planner(spec, status, observed)
    due = planner.run(analysis)
    planner.status.effective_canary_weight = planner.effective_weight()
    planner.conditions()
    planner.status.observed_generation = observed.generation
    traffic_versions, weights = planner.traffic()
    return Plan(
        status=planner.status,
        replicas=planner.desired_replicas(),
        traffic_versions=traffic_versions,
        route_weights=weights,
        events=planner.events,
        analysis_due=due,
    )

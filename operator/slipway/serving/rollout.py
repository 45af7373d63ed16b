"""The rollout state machine, as pure functions of (spec, status, observed state, analysis result).

Everything it needs to resume lives in `status` (current step, when it started, analysis progress), so an
operator restart at any point continues from the same step. It never mutates its inputs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from slipway.api.common import Condition, set_condition
from slipway.api.serving_endpoint import (
    AnalysisProgress,
    AnalysisStep,
    Pause,
    RolloutRecord,
    RolloutStep,
    ServingEndpointSpec,
    ServingEndpointStatus,
)

HISTORY_LIMIT = 20
REQUESTS = ("promote", "abort", "retry")


@dataclass(frozen=True)
class VersionInfo:
    """A ModelVersion of the endpoint's model, as the serving side needs it."""

    name: str
    version: int
    phase: str | None
    uri: str
    deleting: bool = False
    storage_secret: str | None = None
    served_by: tuple[str, ...] = ()
    resource_version: int = 0

    @property
    def servable(self) -> bool:
        return self.phase == "Validated" and not self.deleting


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

    def ready(self, version: int | None) -> int:
        info = self.deployments.get(version) if version is not None else None
        return info.ready if info is not None and info.up_to_date else 0


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
    seconds = spec.rollout.blue_green.auto_promotion_seconds if spec.rollout.blue_green else 0
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


def canary_replicas(spec: ServingEndpointSpec, weight: int) -> int:
    """Replicas that give the canary `weight` percent of traffic next to a full-size stable set."""
    total = stable_replicas(spec)
    if spec.rollout.strategy == "BlueGreen" or weight >= 100:
        return total
    if weight <= 0:
        return 0
    if spec.rollout.traffic_routing and spec.rollout.traffic_routing.http_route:
        return min(total, max(1, math.ceil(total * weight / 100)))
    return min(total, max(1, math.ceil(total * weight / (100 - weight))))


def select_target(spec: ServingEndpointSpec, observed: Observed, failed: list[int]) -> int | None:
    selection = spec.version_selection
    if selection.policy == "Pinned":
        info = observed.versions.get(selection.version or 0)
        return info.version if info is not None and info.servable and info.version not in failed else None
    candidates = [v.version for v in observed.versions.values() if v.servable and v.version not in failed]
    return max(candidates, default=None)


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
        self.healed = False

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
            what = f"canary at {done.set_weight}% of traffic"
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
        self.record(version, previous, "Promoted", f"v{version} serves 100% of traffic")
        status.previous_version = previous
        status.stable_version = version
        self.clear_rollout()
        self.healed = True
        self.emit("Normal", "Promoted", f"v{version} promoted" + (f" (was v{previous})" if previous else ""))

    def abort(self, reason: str, message: str, *, failed: bool) -> None:
        status = self.status
        version = status.canary_version
        assert version is not None
        had_traffic = status.canary_weight > 0 or self.spec.rollout.strategy == "BlueGreen"
        outcome = "RolledBack" if had_traffic else "Aborted"
        self.record(version, status.stable_version, outcome, f"{reason}: {message}")
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
        status.step_started_at = None
        status.rollout_started_at = None
        status.analysis = None

    def record(self, version: int, from_version: int | None, outcome: str, message: str) -> None:
        record = RolloutRecord(
            version=version,
            from_version=from_version,
            outcome=outcome,
            started_at=self.status.rollout_started_at,
            finished_at=self.observed.now,
            message=message[:1024],
        )
        self.status.history = [*self.status.history, record][-HISTORY_LIMIT:]

    # --- the step loop ------------------------------------------------------------------------------------

    def run(self, analysis: AnalysisResult | None) -> bool:
        """Advances through as many steps as are already satisfied; returns True if analysis is due."""
        status, observed = self.status, self.observed
        self.handle_requests()
        target = select_target(self.spec, observed, status.failed_versions)
        canary = status.canary_version
        if canary is not None:
            info = observed.versions.get(canary)
            if info is None or not info.servable:
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
        if status.canary_version is None and target is not None and target != status.stable_version:
            self.start(target)
        if status.canary_version is None:
            return False
        return self.step_loop(analysis)

    def step_loop(self, analysis: AnalysisResult | None) -> bool:
        status, observed = self.status, self.observed
        for _ in range(len(self.steps) + 2):
            version = status.canary_version
            step_index = status.current_step
            if version is None or step_index is None:
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
                if observed.ready(version) < canary_replicas(self.spec, step.set_weight):
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
        progress.message = result.message[:1024]
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
        progress.message = result.message[:1024]
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
                replicas[status.canary_version] = canary_replicas(self.spec, status.canary_weight)
        return replicas

    def traffic(self) -> tuple[list[int], dict[int, int]]:
        status = self.status
        stable, canary = status.stable_version, status.canary_version
        if stable is None:
            return ([canary] if canary is not None else []), ({canary: 100} if canary is not None else {})
        if canary is None or self.spec.rollout.strategy == "BlueGreen":
            return [stable], {stable: 100}
        return [stable, canary], {stable: 100 - status.canary_weight, canary: status.canary_weight}

    def conditions(self) -> None:
        status, observed = self.status, self.observed

        def put(type_: str, value: Literal["True", "False"], reason: str, message: str) -> None:
            status.conditions = set_condition(
                status.conditions, type_, value, reason, message, observed.generation, observed.now
            )

        stable, canary = status.stable_version, status.canary_version
        stable_ready = observed.ready(stable)
        if stable is not None:
            if stable_ready > 0:
                put("Ready", "True", "Serving", f"v{stable} serving")
            else:
                put("Ready", "False", "StableUnavailable", f"no ready replica of v{stable}")
        else:
            put("Ready", "False", *self.no_version_reason())
        if canary is not None:
            step = status.current_step or 0
            where = f"v{canary} at step {step}/{len(self.steps)}, weight {status.canary_weight}%"
            put("Progressing", "True", "Paused" if self.paused_until_promoted() else "RollingOut", where)
        else:
            put("Progressing", "False", "Idle", "no rollout in progress")
        if self.degraded is not None:
            put("Degraded", "True", *self.degraded)
        elif stable is not None and stable_ready == 0:
            put("Degraded", "True", "StableUnavailable", "stable has no ready replica")
        elif self.healed or not status.failed_versions or _status_of(status.conditions, "Degraded") is None:
            put("Degraded", "False", "Healthy", "")
        status.phase = self.phase()

    def no_version_reason(self) -> tuple[str, str]:
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

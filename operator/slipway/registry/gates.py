"""Validation gates as pure functions: one GateResult per gate, and the verdict."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from slipway.api.common import MetricThreshold, ValidationGates
from slipway.api.model_version import GateResult, ModelVersionSpec


@dataclass(frozen=True)
class Champion:
    """The version currently stable on an endpoint serving this model."""

    name: str
    version: int
    metrics: dict[str, str]


def _number(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def bounds_of(threshold: MetricThreshold) -> str:
    return " and ".join(
        f"{word} {value}"
        for word, value in (("min", threshold.min), ("max", threshold.max))
        if value is not None
    )


def threshold_result(gate: str, threshold: MetricThreshold, value: str | None) -> GateResult:
    """One metric's value against a threshold's bounds."""
    bounds = bounds_of(threshold)
    observed = _number(value)
    if observed is None:
        return GateResult(gate=gate, passed=False, threshold=bounds, message="metric not reported")
    low, high = _number(threshold.min), _number(threshold.max)
    failures = []
    if low is not None and observed < low:
        failures.append(f"{observed} < min {threshold.min}")
    if high is not None and observed > high:
        failures.append(f"{observed} > max {threshold.max}")
    return GateResult(
        gate=gate, passed=not failures, observed=str(observed), threshold=bounds, message="; ".join(failures)
    )


def slice_gate_name(metric: str, slice_name: str) -> str:
    """'metric:accuracy[island=Biscoe]', cut to the 128 characters a gate name may have."""
    name = f"metric:{metric}[{slice_name}]"
    return name if len(name) <= 128 else name[:124] + "...]"


def metric_gates(
    gates: ValidationGates, metrics: dict[str, str], slice_metrics: dict[str, dict[str, str]] | None = None
) -> list[GateResult]:
    """One result per threshold on the whole evaluation and, for an everySlice threshold, one per slice."""
    results = []
    for threshold in gates.metrics:
        results.append(threshold_result(f"metric:{threshold.name}", threshold, metrics.get(threshold.name)))
        if not threshold.every_slice:
            continue
        if not slice_metrics:
            results.append(
                GateResult(
                    gate=slice_gate_name(threshold.name, "*"),
                    passed=False,
                    threshold=bounds_of(threshold),
                    message="no slice metrics reported (set spec.evaluation.slicingSpecs)",
                )
            )
        for slice_name, values in sorted((slice_metrics or {}).items()):
            gate = slice_gate_name(threshold.name, slice_name)
            results.append(threshold_result(gate, threshold, values.get(threshold.name)))
    return results


def champion_gate(
    gates: ValidationGates, metrics: dict[str, str], champion: Champion | None
) -> list[GateResult]:
    rule = gates.must_beat_champion
    if rule is None:
        return []
    gate = f"champion:{rule.metric}"
    threshold = f"{'+' if rule.higher_is_better else '-'}{rule.min_delta} vs champion"
    if champion is None:
        return [GateResult(gate=gate, passed=True, threshold=threshold, message="no champion yet")]
    mine, theirs = _number(metrics.get(rule.metric)), _number(champion.metrics.get(rule.metric))
    if mine is None or theirs is None:
        missing = "this version" if mine is None else f"champion v{champion.version}"
        return [
            GateResult(
                gate=gate, passed=False, threshold=threshold, message=f"{rule.metric} missing on {missing}"
            )
        ]
    delta = mine - theirs if rule.higher_is_better else theirs - mine
    passed = delta >= Decimal(rule.min_delta)
    message = f"{rule.metric} {mine} vs champion v{champion.version} {theirs} (delta {delta})"
    return [GateResult(gate=gate, passed=passed, observed=str(mine), threshold=threshold, message=message)]


def blessing_gates(gates: ValidationGates, spec: ModelVersionSpec) -> list[GateResult]:
    rule = gates.require_blessings
    if rule is None:
        return []
    results = []
    for name, required, value in (
        ("evaluator", rule.evaluator, spec.blessings.evaluator),
        ("infraValidator", rule.infra_validator, spec.blessings.infra_validator),
    ):
        if required:
            observed = "BLESSED" if value else ("NOT_BLESSED" if value is False else "absent")
            passed = value is True
            message = "" if passed else f"{name} blessing is {observed}"
            results.append(
                GateResult(
                    gate=f"blessing:{name}",
                    passed=passed,
                    observed=observed,
                    threshold="BLESSED",
                    message=message,
                )
            )
    return results


def evaluate(spec: ModelVersionSpec, champion: Champion | None) -> tuple[bool, list[GateResult]]:
    gates = spec.gates or ValidationGates()
    results = [
        *metric_gates(gates, spec.metrics, spec.slice_metrics),
        *champion_gate(gates, spec.metrics, champion),
        *blessing_gates(gates, spec),
    ]
    return all(r.passed for r in results), results


def headline(spec: ModelVersionSpec) -> str | None:
    name = spec.headline_metric or next(iter(spec.metrics), None)
    if name is None or name not in spec.metrics:
        return None
    return f"{name}={spec.metrics[name]}"

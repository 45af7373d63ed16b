"""Validation gates: one result per gate, with the observed value and the verdict."""

from __future__ import annotations

from typing import Any

from slipway.api.model_version import ModelVersionSpec
from slipway.registry.gates import Champion, evaluate, headline


def spec(
    metrics: dict[str, str], gates: dict[str, Any], blessings: dict[str, bool] | None = None
) -> ModelVersionSpec:
    return ModelVersionSpec.model_validate(
        {
            "modelName": "penguins",
            "version": 3,
            "uri": "file:///m/3",
            "metrics": metrics,
            "gates": gates,
            "blessings": blessings or {},
            "headlineMetric": "accuracy",
        }
    )


def test_thresholds_pass_and_fail_with_observed_values() -> None:
    gates = {
        "metrics": [
            {"name": "accuracy", "min": "0.9"},
            {"name": "loss", "max": "0.2"},
            {"name": "auc", "min": "0.5"},
        ]
    }
    passed, results = evaluate(spec({"accuracy": "0.95", "loss": "0.3"}, gates), None)
    assert not passed
    by_gate = {r.gate: r for r in results}
    assert by_gate["metric:accuracy"].passed and by_gate["metric:accuracy"].observed == "0.95"
    assert not by_gate["metric:loss"].passed and by_gate["metric:loss"].message == "0.3 > max 0.2"
    assert not by_gate["metric:auc"].passed and by_gate["metric:auc"].message == "metric not reported"


def test_must_beat_champion_by_a_delta() -> None:
    gates = {"mustBeatChampion": {"metric": "accuracy", "minDelta": "0.01"}}
    champion = Champion("penguins-v2", 2, {"accuracy": "0.95"})
    assert evaluate(spec({"accuracy": "0.97"}, gates), champion)[0]
    passed, results = evaluate(spec({"accuracy": "0.955"}, gates), champion)
    assert not passed and "vs champion v2 0.95" in results[0].message
    assert evaluate(spec({"accuracy": "0.5"}, gates), None) == (
        True,
        evaluate(spec({"accuracy": "0.5"}, gates), None)[1],
    )
    assert evaluate(spec({"accuracy": "0.5"}, gates), None)[1][0].message == "no champion yet"
    lower = {"mustBeatChampion": {"metric": "loss", "minDelta": "0", "higherIsBetter": False}}
    assert evaluate(spec({"loss": "0.1"}, lower), Champion("v2", 2, {"loss": "0.2"}))[0]
    assert not evaluate(spec({"loss": "0.3"}, lower), Champion("v2", 2, {"loss": "0.2"}))[0]


def test_blessings_are_required_when_asked() -> None:
    gates = {"requireBlessings": {"evaluator": True, "infraValidator": True}}
    assert evaluate(spec({}, gates, {"evaluator": True, "infraValidator": True}), None)[0]
    passed, results = evaluate(spec({}, gates, {"evaluator": True, "infraValidator": False}), None)
    assert not passed
    assert [r.message for r in results if not r.passed] == ["infraValidator blessing is NOT_BLESSED"]


def test_no_gates_is_validated_and_headline_names_the_metric() -> None:
    passed, results = evaluate(spec({"accuracy": "0.97"}, {}), None)
    assert passed and results == []
    assert headline(spec({"accuracy": "0.97"}, {})) == "accuracy=0.97"

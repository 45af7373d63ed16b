"""Prometheus alert rules on the operator's metrics. Counters are born at 1 (a labelled series appears
with its first event), where increase() sees no change, so "happened" is `increase > 0` or "the series is
new within the window"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GROUP = "slipway"


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    summary: str
    severity: str = "warning"
    for_: str = "0m"


def happened(counter: str, by: str, window: str) -> str:
    grown = f"sum by ({by}) (increase({counter}[{window}])) > 0"
    appeared = f"sum by ({by}) ({counter} unless {counter} offset {window})"
    return f"({grown}) or ({appeared})"


ALERTS: tuple[Alert, ...] = (
    Alert(
        "SlipwayTrainingRunsFailing",
        'sum by (namespace, pipeline) (increase(slipway_runs_total{outcome=~"Failed|Cancelled"}[6h])) >= 3'
        ' or sum by (namespace, pipeline) (slipway_runs_total{outcome=~"Failed|Cancelled"}'
        ' unless slipway_runs_total{outcome=~"Failed|Cancelled"} offset 6h) >= 3',
        "TrainingPipeline {{ $labels.namespace }}/{{ $labels.pipeline }}: {{ $value }} runs failed in 6h",
    ),
    Alert(
        "SlipwayRollback",
        happened("slipway_rollbacks_total", "namespace, endpoint, reason", "15m"),
        "ServingEndpoint {{ $labels.namespace }}/{{ $labels.endpoint }} rolled back ({{ $labels.reason }})",
    ),
    Alert(
        "SlipwayDataDrift",
        happened(
            'slipway_drift_batches_total{outcome=~"Drifted|Blocked"}', "namespace, pipeline, outcome", "1h"
        ),
        "TrainingPipeline {{ $labels.namespace }}/{{ $labels.pipeline }}: a batch {{ $labels.outcome }} "
        "(drift over its thresholds)",
        severity="info",
    ),
    Alert(
        "SlipwayEndpointDegraded",
        'sum by (namespace) (slipway_serving_endpoints{phase="Degraded"}) > 0',
        "{{ $value }} ServingEndpoints in {{ $labels.namespace }} are Degraded (a rollout failed)",
        for_="5m",
    ),
)


def rule_groups(for_override: str | None = None) -> dict[str, Any]:
    """The rules file Prometheus loads (`rule_files`); `for_override` shortens `for` in tests."""
    return {
        "groups": [
            {
                "name": GROUP,
                "rules": [
                    {
                        "alert": alert.name,
                        "expr": alert.expr,
                        "for": for_override or alert.for_,
                        "labels": {"severity": alert.severity},
                        "annotations": {"summary": alert.summary},
                    }
                    for alert in ALERTS
                ],
            }
        ]
    }


def prometheus_rule() -> dict[str, Any]:
    """The same rules as a prometheus-operator PrometheusRule."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "slipway", "labels": {"app.kubernetes.io/name": "slipway"}},
        "spec": rule_groups(),
    }

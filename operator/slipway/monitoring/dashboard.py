"""The Grafana dashboard: one timeseries panel per row of PANELS, on a 24-column grid, three to a row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

UID = "slipway-overview"
NAMESPACE = 'namespace=~"$namespace"'


@dataclass(frozen=True)
class Panel:
    title: str
    expr: str
    legend: str
    unit: str = "short"
    description: str = ""


PANELS: tuple[Panel, ...] = (
    Panel(
        "Pipeline runs by outcome and trigger",
        f"sum by (outcome, trigger) (slipway_runs_total{{{NAMESPACE}}})",
        "{{outcome}} / {{trigger}}",
        description="Runs finished since the operator started (counter).",
    ),
    Panel(
        "Pipeline run duration (p50, p95)",
        "histogram_quantile(0.5, sum by (le) "
        f"(rate(slipway_run_duration_seconds_bucket{{{NAMESPACE}}}[30m])))",
        "p50",
        unit="s",
    ),
    Panel(
        "ModelVersions by phase",
        f"sum by (phase) (slipway_model_versions{{{NAMESPACE}}})",
        "{{phase}}",
    ),
    Panel(
        "Gate failures by gate",
        f"sum by (gate) (slipway_gate_failures_total{{{NAMESPACE}}})",
        "{{gate}}",
    ),
    Panel(
        "Drift score per feature (last batch)",
        f"max by (feature) (slipway_drift_score{{{NAMESPACE}}})",
        "{{feature}}",
        description="L-infinity (categorical) or Jensen-Shannon (numeric) against the baseline's training.",
    ),
    Panel(
        "Batches checked for drift by outcome",
        f"sum by (outcome) (slipway_drift_batches_total{{{NAMESPACE}}})",
        "{{outcome}}",
    ),
    Panel(
        "Rollouts by outcome",
        f"sum by (outcome) (slipway_rollouts_total{{{NAMESPACE}}})",
        "{{outcome}}",
    ),
    Panel(
        "Rollbacks by endpoint and reason",
        f"sum by (endpoint, reason) (slipway_rollbacks_total{{{NAMESPACE}}})",
        "{{endpoint}}: {{reason}}",
    ),
    Panel(
        "ServingEndpoints by phase",
        f"sum by (phase) (slipway_serving_endpoints{{{NAMESPACE}}})",
        "{{phase}}",
    ),
    Panel(
        "TF Serving requests per version pod",
        f"sum by (pod) (rate(:tensorflow:serving:request_count{{{NAMESPACE}}}[5m]))",
        "{{pod}}",
        unit="reqps",
        description="TF Serving labels by model, not version: per-version figures come from per-version pods",
    ),
    Panel(
        "TF Serving latency p99 per version pod",
        "histogram_quantile(0.99, sum by (le, pod) "
        f"(rate(:tensorflow:serving:request_latency_bucket{{{NAMESPACE}}}[5m])))",
        "{{pod}}",
        unit="µs",
    ),
    Panel(
        "Operator reconciles and API writes",
        "sum by (kind) (rate(slipway_reconciles_total[5m]))",
        "{{kind}} reconciles/s",
        unit="ops",
    ),
)

# Panels whose second query is drawn next to the first.
EXTRA_TARGETS: dict[str, tuple[tuple[str, str], ...]] = {
    "Pipeline run duration (p50, p95)": (
        (
            "histogram_quantile(0.95, sum by (le) "
            f"(rate(slipway_run_duration_seconds_bucket{{{NAMESPACE}}}[30m])))",
            "p95",
        ),
    ),
    "Operator reconciles and API writes": (
        ("sum by (kind, verb) (rate(slipway_api_writes_total[5m]))", "{{kind}} {{verb}} writes/s"),
    ),
}


def targets(panel: Panel) -> list[tuple[str, str]]:
    return [(panel.expr, panel.legend), *EXTRA_TARGETS.get(panel.title, ())]


def grid(index: int) -> dict[str, int]:
    return {"h": 8, "w": 8, "x": (index % 3) * 8, "y": (index // 3) * 8}


def dashboard() -> dict[str, Any]:
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    panels = []
    for index, panel in enumerate(PANELS):
        panels.append(
            {
                "id": index + 1,
                "type": "timeseries",
                "title": panel.title,
                "description": panel.description,
                "datasource": datasource,
                "gridPos": grid(index),
                "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                "targets": [
                    {
                        "refId": chr(ord("A") + i),
                        "expr": expr,
                        "legendFormat": legend,
                        "datasource": datasource,
                    }
                    for i, (expr, legend) in enumerate(targets(panel))
                ],
            }
        )
    return {
        "uid": UID,
        "title": "Slipway: training, registry, serving",
        "tags": ["slipway", "mlops"],
        "timezone": "utc",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
                {
                    "name": "namespace",
                    "type": "query",
                    "datasource": datasource,
                    "query": "label_values(slipway_model_versions, namespace)",
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {"text": "All", "value": "$__all"},
                },
            ]
        },
        "panels": panels,
    }


def concrete(expr: str) -> str:
    """The query as Prometheus runs it with every namespace selected (for tests and the rendered PNG)."""
    return expr.replace("$namespace", ".*")

"""Prometheus metrics the operator exports (served on settings.metrics_port at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter("slipway_reconciles_total", "Reconciles run", ["kind", "result"])
RECONCILE_SECONDS = Histogram("slipway_reconcile_duration_seconds", "Reconcile wall time", ["kind"])
API_WRITES = Counter(
    "slipway_api_writes_total", "Writes the operator made to the API server", ["kind", "verb"]
)
ROLLOUTS = Counter("slipway_rollouts_total", "Rollouts finished", ["outcome"])
ROLLOUT_SECONDS = Histogram(
    "slipway_rollout_duration_seconds",
    "From canary start to promotion or abort",
    buckets=(5, 15, 30, 60, 120, 300, 900, 3600),
)
ROLLBACKS = Counter("slipway_rollbacks_total", "Rollouts aborted and traffic returned to stable", ["reason"])
MODEL_VERSIONS_VALIDATED = Counter("slipway_model_versions_evaluated_total", "Gate verdicts", ["phase"])
GATE_FAILURES = Counter("slipway_gate_failures_total", "Failed validation gates", ["gate"])
RUNS = Counter("slipway_runs_total", "Pipeline runs finished", ["outcome", "trigger"])
RUN_SECONDS = Histogram(
    "slipway_run_duration_seconds",
    "Pipeline run wall time",
    buckets=(10, 30, 60, 120, 300, 900, 1800, 3600, 7200),
)
DRIFT_SCORE = Gauge(
    "slipway_drift_score",
    "Drift of the last checked batch against the baseline model's training statistics "
    "(L-infinity for categorical features, Jensen-Shannon for numeric)",
    ["namespace", "pipeline", "feature"],
)
DRIFT_BATCHES = Counter(
    "slipway_drift_batches_total",
    "Batches checked for drift, by outcome (Drifted, NoDrift, Anomalous, Blocked)",
    ["namespace", "pipeline", "outcome"],
)

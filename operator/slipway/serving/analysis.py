"""Analysis providers for a canary: TF Serving's model status, a smoke test of REST predictions, and
Prometheus queries with success conditions (like Argo Rollouts' AnalysisTemplate).

`measure` performs one round of I/O; deciding what the round means is `judge`, a pure function."""

from __future__ import annotations

import json
import operator
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slipway.api.serving_endpoint import Analysis, AnalysisProgress, AnalysisStep, PrometheusMetric
from slipway.serving.rollout import AnalysisResult

TIMEOUT_SECONDS = 10
_COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True)
class Target:
    """The canary under analysis: where its REST API answers and what to send it."""

    model: str
    version: int
    base_url: str
    sample_request: dict[str, Any] | None
    sample_problem: str | None = None  # why there is no sample request


@dataclass
class Round:
    """The outcome of one measurement round, before judgement."""

    problems: list[str] = field(default_factory=list)
    waiting: str | None = None  # the model server is not ready to be judged yet
    failed_metrics: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def rounds_required(analysis: Analysis, step: AnalysisStep) -> int:
    if step.prometheus and analysis.prometheus is not None:
        return max(metric.count for metric in analysis.prometheus.metrics)
    return 1


def evaluate_condition(condition: str, value: float) -> bool:
    match = re.fullmatch(r"result\s*(<=|>=|==|!=|<|>)\s*([-+]?[0-9]+(?:\.[0-9]+)?)", condition.strip())
    if match is None:
        raise ValueError(f"successCondition {condition!r} is not 'result <op> <number>'")
    return _COMPARATORS[match.group(1)](value, float(match.group(2)))


def _http_json(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read() or b"null")
        except ValueError:
            return error.code, None


def check_model_status(target: Target) -> str | None:
    """None when TF Serving reports the version AVAILABLE, else what is wrong."""
    url = f"{target.base_url}/v1/models/{target.model}/versions/{target.version}"
    try:
        code, payload = _http_json("GET", url)
    except (OSError, ValueError) as error:
        return f"model status unreachable: {error}"
    if code != 200:
        return f"model status answered HTTP {code}"
    states = [entry.get("state") for entry in (payload or {}).get("model_version_status", [])]
    if "AVAILABLE" not in states:
        return f"v{target.version} is {states or 'unknown'}, not AVAILABLE"
    return None


def smoke_test(target: Target, requests: int, max_latency_ms: int, expected_key: str | None) -> str | None:
    """Sends the model's sample request through the REST predict API; None when every answer is sane."""
    if target.sample_request is None:
        return target.sample_problem or "no sample request: the model's manifest has no sampleRequest"
    instances = target.sample_request.get("instances", [])
    url = f"{target.base_url}/v1/models/{target.model}/versions/{target.version}:predict"
    for attempt in range(requests):
        started = time.monotonic()
        try:
            code, payload = _http_json("POST", url, target.sample_request)
        except (OSError, ValueError) as error:
            return f"predict request {attempt + 1} failed: {error}"
        latency_ms = (time.monotonic() - started) * 1000
        if code != 200:
            detail = payload.get("error") if isinstance(payload, dict) else payload
            return f"predict answered HTTP {code}: {detail}"
        predictions = payload.get("predictions") if isinstance(payload, dict) else None
        if not isinstance(predictions, list) or len(predictions) != len(instances):
            return f"predict returned {_count(predictions)} predictions for {len(instances)} instances"
        if expected_key and not all(isinstance(p, dict) and expected_key in p for p in predictions):
            return f"predictions lack the key {expected_key!r}"
        if latency_ms > max_latency_ms:
            return f"predict took {latency_ms:.0f} ms (limit {max_latency_ms} ms)"
    return None


def _count(predictions: object) -> str:
    return str(len(predictions)) if isinstance(predictions, list) else "no"


def query_prometheus(address: str, metric: PrometheusMetric, target: Target) -> float:
    query = metric.query.replace("{{version}}", str(target.version)).replace("{{model}}", target.model)
    url = f"{address.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    code, payload = _http_json("GET", url)
    if code != 200 or not isinstance(payload, dict) or payload.get("status") != "success":
        raise ValueError(f"Prometheus answered HTTP {code}: {payload}")
    result = payload["data"]["result"]
    if payload["data"].get("resultType") == "scalar":
        return float(result[1])
    if not result:
        raise ValueError(f"query {metric.name!r} returned no series")
    return float(result[0]["value"][1])


def measure(analysis: Analysis, step: AnalysisStep, target: Target, first_round: bool) -> Round:
    found = Round()
    if first_round:
        if (problem := check_model_status(target)) is not None:
            # Not answering or still loading is not a verdict: TF Serving may be warming up.
            found.waiting = problem
            return found
        if step.smoke_test and analysis.smoke_test is not None:
            smoke = analysis.smoke_test
            problem = smoke_test(target, smoke.requests, smoke.max_latency_ms, smoke.expected_output_key)
            if problem is not None:
                found.problems.append(f"smoke test: {problem}")
            else:
                found.notes.append(f"smoke test passed ({smoke.requests} requests)")
    if step.prometheus and analysis.prometheus is not None and not found.problems:
        for metric in analysis.prometheus.metrics:
            try:
                value = query_prometheus(analysis.prometheus.address, metric, target)
            except (OSError, ValueError, KeyError, IndexError) as error:
                found.failed_metrics.append(metric.name)
                found.notes.append(f"{metric.name}: error {error}")
                continue
            if evaluate_condition(metric.success_condition, value):
                found.notes.append(f"{metric.name}={value:g}")
            else:
                found.failed_metrics.append(metric.name)
                found.notes.append(f"{metric.name}={value:g} fails '{metric.success_condition}'")
    return found


def judge(
    analysis: Analysis, step: AnalysisStep, step_index: int, progress: AnalysisProgress | None, found: Round
) -> AnalysisResult:
    """Turns a round into a verdict, counting failures across rounds against each metric's failureLimit."""
    if found.waiting is not None:
        return AnalysisResult(
            step_index, True, f"waiting for the model server: {found.waiting}", complete=False, ready=False
        )
    if found.problems:
        return AnalysisResult(step_index, False, "; ".join(found.problems))
    failures = dict(progress.failures) if progress is not None else {}
    for name in found.failed_metrics:
        failures[name] = failures.get(name, 0) + 1
    limits = {m.name: m.failure_limit for m in analysis.prometheus.metrics} if analysis.prometheus else {}
    over = [name for name, count in failures.items() if count > limits.get(name, 0)]
    message = "; ".join(found.notes) or "checks passed"
    if over:
        return AnalysisResult(step_index, False, f"{message} (over failure limit: {', '.join(sorted(over))})")
    done = (progress.measurements if progress else 0) + 1 >= rounds_required(analysis, step)
    return AnalysisResult(step_index, True, message, tuple(found.failed_metrics), complete=done)

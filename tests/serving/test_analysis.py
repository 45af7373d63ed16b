"""Analysis providers over real HTTP: TF Serving's REST API (loopback stand-in) and Prometheus' query API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from slipway.api.serving_endpoint import Analysis, AnalysisProgress, AnalysisStep
from slipway.serving import analysis

SAMPLE = {"instances": [{"x": 1}, {"x": 2}]}


@pytest.fixture
def prometheus() -> Iterator[dict[str, Any]]:
    """Answers /api/v1/query with the value set for the query text, in Prometheus' vector format."""
    values: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def do_GET(self) -> None:
            query = parse_qs(urlparse(self.path).query)["query"][0]
            values.setdefault("seen", []).append(query)
            value = values.get(query)
            result = [] if value is None else [{"metric": {}, "value": [1732280000.0, str(value)]}]
            data = json.dumps(
                {"status": "success", "data": {"resultType": "vector", "result": result}}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    values["address"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield values
    server.shutdown()


def target(fake: Any, version: int, sample: dict[str, Any] | None = SAMPLE) -> analysis.Target:
    return analysis.Target(
        "penguins", version, fake.url_template.format(namespace="ns", service="web-v1"), sample
    )


def test_model_status_and_smoke_test_pass_on_a_healthy_version(fake_tfserving: Any) -> None:
    healthy = target(fake_tfserving, 1)
    assert analysis.check_model_status(healthy) is None
    assert analysis.smoke_test(healthy, requests=3, max_latency_ms=2000, expected_key=None) is None
    assert fake_tfserving.requests.count(("predict", "penguins", 1)) == 3


def test_smoke_test_reports_what_failed(fake_tfserving: Any) -> None:
    fake_tfserving.broken_versions.add(2)
    problem = analysis.smoke_test(target(fake_tfserving, 2), 1, 2000, None)
    assert problem is not None and "HTTP 400" in problem and "reshape" in problem
    problem = analysis.smoke_test(target(fake_tfserving, 1), 1, 2000, expected_key="probabilities")
    assert problem == "predictions lack the key 'probabilities'"
    assert "no sample request" in (analysis.smoke_test(target(fake_tfserving, 1, None), 1, 2000, None) or "")


def test_unreachable_model_server_fails_the_status_check() -> None:
    dead = analysis.Target("penguins", 1, "http://127.0.0.1:9", SAMPLE)
    assert "unreachable" in (analysis.check_model_status(dead) or "")


@pytest.mark.parametrize(
    ("condition", "value", "expected"),
    [
        ("result < 0.05", 0.01, True),
        ("result < 0.05", 0.05, False),
        ("result >= 0.9", 0.95, True),
        ("result == 1", 1.0, True),
    ],
)
def test_success_conditions(condition: str, value: float, expected: bool) -> None:
    assert analysis.evaluate_condition(condition, value) is expected


def test_prometheus_failures_count_against_the_failure_limit(
    fake_tfserving: Any, prometheus: dict[str, Any]
) -> None:
    config = Analysis.model_validate(
        {
            "smokeTest": None,
            "prometheus": {
                "address": prometheus["address"],
                "metrics": [
                    {
                        "name": "error-rate",
                        "query": 'errors{version="{{version}}"}',
                        "successCondition": "result < 0.05",
                        "failureLimit": 1,
                        "count": 3,
                        "interval": "1s",
                    }
                ],
            },
        }
    )
    step = AnalysisStep()
    canary = target(fake_tfserving, 2)
    prometheus['errors{version="2"}'] = 0.2
    first = analysis.judge(config, step, 1, None, analysis.measure(config, step, canary, first_round=True))
    assert first.passed and not first.complete and first.failed_metrics == ("error-rate",)
    progress = AnalysisProgress(step=1, measurements=1, failures={"error-rate": 1})
    second = analysis.judge(
        config, step, 1, progress, analysis.measure(config, step, canary, first_round=False)
    )
    assert not second.passed and "over failure limit: error-rate" in second.message
    prometheus['errors{version="2"}'] = 0.01
    progress = AnalysisProgress(step=1, measurements=2, failures={"error-rate": 1})
    third = analysis.judge(
        config, step, 1, progress, analysis.measure(config, step, canary, first_round=False)
    )
    assert third.passed and third.complete
    assert 'errors{version="2"}' in prometheus["seen"]


def test_a_query_with_no_series_is_a_failure(fake_tfserving: Any, prometheus: dict[str, Any]) -> None:
    config = Analysis.model_validate(
        {
            "smokeTest": None,
            "prometheus": {
                "address": prometheus["address"],
                "metrics": [{"name": "latency", "query": "absent_metric", "successCondition": "result < 1"}],
            },
        }
    )
    found = analysis.measure(config, AnalysisStep(), target(fake_tfserving, 1), first_round=True)
    verdict = analysis.judge(config, AnalysisStep(), 0, None, found)
    assert not verdict.passed and "returned no series" in verdict.message


def test_a_model_server_not_answering_yet_is_waited_for_not_judged() -> None:
    config = Analysis()
    dead = analysis.Target("penguins", 1, "http://127.0.0.1:9", SAMPLE)
    verdict = analysis.judge(
        config, AnalysisStep(), 1, None, analysis.measure(config, AnalysisStep(), dead, True)
    )
    assert verdict.passed and not verdict.ready and not verdict.complete
    assert verdict.message.startswith("waiting for the model server")

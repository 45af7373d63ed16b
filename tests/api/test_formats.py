"""The formats admission enforces (slipway.formats), checked as the models' validators apply them; the same
checks run as CEL in the CRDs (tests/api/test_admission.py applies them to a real API server)."""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime
from typing import Any

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from slipway import formats
from slipway.api import ModelVersionSpec, ServingEndpointSpec, TrainingPipelineSpec
from slipway.api.crd import KINDS, crd
from slipway.storage import parse_uri
from slipway.timezones import TIME_ZONES

GOOD_URIS = [
    "s3://models/penguins/3",
    "s3://my.bucket-1/a/b.csv",
    "gs://my_bucket/x/",
    "gs://" + "a" * 63 + "." + "b" * 63 + "/x",
    "az://models@myaccount/penguins/",
    "az://models/penguins",
    "file:///var/models/x",
    "file://localhost/var/models/x",
    "s3://bucket/...hidden/..x/.x",
]
BAD_URIS = {
    "s3:///prefix": "missing bucket name",
    "gs:///prefix": "missing bucket name",
    "az:///prefix": "missing container name",
    "s3://Bad_Bucket/x": "invalid bucket name",
    "s3://ab/x": "invalid bucket name",
    "s3://a..b/x": "no two dots in a row",
    "s3://10.0.0.1/x": "no IP address",
    "s3://xn--bucket/x": "xn--",
    "gs://goog-models/x": "goog",
    "gs://" + "a" * 64 + "/x": "at most 63 characters",
    "az://ab/x": "invalid container name",
    "az://a--b/x": "invalid container name",
    "az://models@Not-An-Account/x": "invalid storage account",
    "file://../..": "take no host",
    "file://host/x": "take no host",
    "file:///a/../b": "'..'",
    "file:///a/./b": "'.'",
    "file:///%2e%2e/etc": "may not hold",
    "file:///a?x": "may not hold",
    "s3://bucket/a//b": "empty path segment",
    "s3://bucket/a b": "whitespace",
    "s3://bucket/caf\u00e9": "non-ASCII",
    "s3://bucket/x\n": "control",
    "ftp://host/x": "unsupported scheme",
}


@pytest.mark.parametrize("uri", GOOD_URIS)
def test_good_uris_pass_admission_and_parse(uri: str) -> None:
    assert formats.uri_problem(uri) is None
    assert str(parse_uri(uri)).rstrip("/") == uri.replace("file://localhost/", "file:///").rstrip("/")


@pytest.mark.parametrize(("uri", "names"), BAD_URIS.items())
def test_bad_uris_are_refused_by_the_model_and_the_parser_alike(uri: str, names: str) -> None:
    problem = formats.uri_problem(uri)
    assert problem is not None and names in problem, problem
    with pytest.raises(ValueError, match=re.escape(names)):
        parse_uri(uri)
    with pytest.raises(ValidationError) as refused:
        ModelVersionSpec.model_validate({"modelName": "m", "version": 1, "uri": uri})
    assert "uri" in str(refused.value) and problem in str(refused.value)


def test_a_model_uri_names_a_directory_not_a_bucket() -> None:
    for uri in ("s3://models", "s3://models/", "file:///", "gs://models"):
        assert formats.uri_problem(uri, needs_key=True) == formats.KEY_CHECK.message
        with pytest.raises(ValidationError, match="a key"):
            ModelVersionSpec.model_validate({"modelName": "m", "version": 1, "uri": uri})


@given(st.text(st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=40))
@settings(max_examples=400, deadline=None)
def test_whatever_admission_lets_through_parses(tail: str) -> None:
    for scheme in ("s3://", "gs://", "az://", "file://"):
        uri = scheme + tail
        if formats.uri_problem(uri) is None:
            parsed = parse_uri(uri)
            assert ".." not in parsed.prefix.split("/")
            assert not any(c.isspace() or not c.isprintable() for c in uri)
            if scheme != "file://":
                assert parsed.bucket


CRONS_OK = [
    "0 3 * * *",
    "*/5 * * * *",
    "0 0 29 2 *",
    "0 0 30 2 1",
    "0 0 31 1-12 *",
    "0 9 * * mon-fri",
    "@daily",
]
CRONS_BAD = {
    "0 0 30 2 *": "never fires",
    "0 0 31 4,6 *": "never fires",
    "0 0 30-31 feb *": "never fires",
    "0 0 1 1 * 5": "five-field",
    "61 * * * *": "five-field",
    "*/0 * * * *": "five-field",
    "@every 1h": "five-field",
    "every day": "five-field",
}


@pytest.mark.parametrize("cron", CRONS_OK)
def test_crons_that_fire_are_accepted(cron: str) -> None:
    assert formats.first_problem(cron, formats.CRON_CHECKS) is None
    croniter(cron, datetime(2026, 1, 1)).get_next(datetime)


@pytest.mark.parametrize(("cron", "names"), CRONS_BAD.items())
def test_crons_that_cannot_fire_or_are_not_five_fields_are_refused(cron: str, names: str) -> None:
    problem = formats.first_problem(cron, formats.CRON_CHECKS)
    assert problem is not None and names in problem


_FIELD_VALUES = [range(60), range(24), range(1, 32), range(1, 13), range(7)]


@st.composite
def cron_expression(draw: st.DrawFn) -> str:
    fields = []
    for values in _FIELD_VALUES:
        picked = draw(st.lists(st.sampled_from(list(values)), min_size=1, max_size=3))
        fields.append(draw(st.sampled_from(["*", ",".join(map(str, picked))])))
    return " ".join(fields)


@given(cron_expression())
@settings(max_examples=500, deadline=None)
def test_every_cron_admission_accepts_fires(cron: str) -> None:
    """croniter can tell when a schedule never fires: admission's regular expressions must agree."""
    if formats.first_problem(cron, formats.CRON_CHECKS) is None:
        croniter(cron, datetime(2026, 1, 1)).get_next(datetime)


def test_every_listed_time_zone_loads_here() -> None:
    assert len(TIME_ZONES) > 400 and "UTC" in TIME_ZONES and "Europe/Paris" in TIME_ZONES
    for name in TIME_ZONES:
        zoneinfo.ZoneInfo(name)


def pipeline(**fields: Any) -> dict[str, Any]:
    return {
        "pipeline": {"builtin": "penguins"},
        "modelName": "penguins",
        "data": {"uri": "s3://data/penguins.csv"},
        "artifactRoot": {"uri": "s3://artifacts/root"},
        "modelStore": {"uri": "s3://models"},
        **fields,
    }


@pytest.mark.parametrize(
    ("fields", "path", "message"),
    [
        ({"schedule": {"cron": "0 0 30 2 *"}}, "schedule.cron", "never fires"),
        ({"schedule": {"cron": "0 3 * * *", "timeZone": "Mars/Olympus"}}, "schedule.timeZone", "IANA"),
        ({"gates": {"metrics": [{"name": "auc", "min": "0.9", "max": "0.8"}]}}, "gates.metrics.0", "min"),
        (
            {"gates": {"metrics": [{"name": "auc", "min": "0.9"}, {"name": "auc", "max": "1"}]}},
            "gates.metrics",
            "duplicate",
        ),
        ({"gates": {"metrics": [{"name": "auc", "min": "NaN"}]}}, "gates.metrics.0.min", "pattern"),
        ({"gates": {"metrics": [{"name": "auc", "min": "1" * 40}]}}, "gates.metrics.0.min", "pattern"),
        ({"pipeline": {"specUri": "s3://bucket"}}, "pipeline.specUri", "a key"),
        (
            {
                "executor": {
                    "type": "job",
                    "job": {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}},
                }
            },
            "executor.job.resources",
            "request must not exceed",
        ),
        (
            {"executor": {"type": "job", "job": {"resources": {"requests": {"memory": "lots"}}}}},
            "executor.job.resources.requests.memory",
            "pattern",
        ),
        (
            {"triggers": {"onDrift": {"batches": {"uri": "s3://b/x"}}}},
            "triggers.onDrift.batches.uri",
            "bucket",
        ),
        ({"parameters": {f"p{i}": "1" for i in range(65)}}, "parameters", "64"),
    ],
)
def test_a_pipeline_refusal_names_the_field(fields: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        TrainingPipelineSpec.model_validate(pipeline(**fields))
    errors = refused.value.errors()
    assert any(".".join(map(str, e["loc"])).startswith(path) and message in e["msg"] for e in errors), errors


@pytest.mark.parametrize(
    ("fields", "path", "message"),
    [
        (
            {"rollout": {"steps": [{"pause": {"duration": "99999h"}}]}},
            "rollout.steps.0.pause.duration",
            "604800s",
        ),
        (
            {"rollout": {"steps": [{"pause": {"duration": "01s"}}]}},
            "rollout.steps.0.pause.duration",
            "pattern",
        ),
        (
            {
                "rollout": {
                    "analysis": {
                        "prometheus": {
                            "address": "http://prometheus:9090",
                            "metrics": [
                                {
                                    "name": "e",
                                    "query": "up",
                                    "successCondition": "result < 1",
                                    "interval": "0s",
                                }
                            ],
                        }
                    }
                }
            },
            "rollout.analysis.prometheus.metrics.0.interval",
            "from 1s",
        ),
        ({"runtime": {"resources": {"limits": {"cpu": "-1"}}}}, "runtime.resources.limits.cpu", "pattern"),
        ({"runtime": {"image": "repo/image:tag with space"}}, "runtime.image", "pattern"),
        (
            {
                "rollout": {
                    "trafficRouting": {"httpRoute": {"parentRefs": [{"name": "gw"}], "hostnames": ["A_B"]}}
                }
            },
            "rollout.trafficRouting.httpRoute.hostnames.0",
            "pattern",
        ),
        (
            {"modelVolume": {"mountPath": "/data/../etc", "hostPath": "/x"}},
            "modelVolume.mountPath",
            "pattern",
        ),
    ],
)
def test_an_endpoint_refusal_names_the_field(fields: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        ServingEndpointSpec.model_validate({"modelName": "penguins", **fields})
    errors = refused.value.errors()
    assert any(".".join(map(str, e["loc"])).startswith(path) and message in e["msg"] for e in errors), errors


def test_metrics_are_bounded_decimals_with_bounded_names() -> None:
    base = {"modelName": "m", "version": 1, "uri": "s3://models/m/1"}
    for metrics in ({"auc": "nan"}, {"auc": "inf"}, {"auc": "9" * 300}, {"a" * 64: "1"}, {"bad name": "1"}):
        with pytest.raises(ValidationError):
            ModelVersionSpec.model_validate({**base, "metrics": metrics})
    assert ModelVersionSpec.model_validate({**base, "metrics": {"loss/val": "1e-3"}}).metrics == {
        "loss/val": "1e-3"
    }


def test_quantities_compare_as_kubernetes_does() -> None:
    assert formats.quantity_value("500m") < formats.quantity_value("1") < formats.quantity_value("1Ki")
    assert formats.quantity_value("1Gi") > formats.quantity_value("1G")
    assert formats.quantity_value("1e3") == formats.quantity_value("1k")


def test_the_name_budget_fits_what_is_derived() -> None:
    registered = f"{'m' * formats.MODEL_NAME_MAX}-v{formats.MAX_VERSION}"
    assert len(registered) <= formats.NAME_MAX and re.fullmatch(formats.DNS_LABEL, registered)
    for kind in KINDS:
        (rule,) = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"]
        assert "metadata.name" in rule["message"] and f"<= {formats.NAME_MAX}" in rule["rule"]


def test_every_check_is_a_valid_cel_raw_string_and_python_regex() -> None:
    for check in (*formats.URI_CHECKS, formats.KEY_CHECK, *formats.CRON_CHECKS):
        re.compile(check.pattern)
        assert check.cel().count("r'") in (1, 2)

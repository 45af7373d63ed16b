"""Issue #16's bad-but-once-admitted input, applied to a real kube-apiserver: each is refused at admission by
the CRDs' schema and CEL rules (generated from slipway.formats through the models), naming the field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from api.test_api_server import MV, SE, SEP, TP, Mutation, create, load_sample, setter

TPJ = "trainingpipeline-job.yaml"


def rename(name: str) -> Mutation:
    return setter("metadata.name", name)


REFUSED: list[tuple[str, str, Mutation, list[str]]] = [
    ("no bucket", MV, setter("spec.uri", "s3:///penguins/1"), ["spec.uri", "missing bucket name"]),
    ("climbs out of the store", MV, setter("spec.uri", "file:///var/../../etc"), ["spec.uri", "'..'"]),
    ("relative file uri", MV, setter("spec.uri", "file://../.."), ["spec.uri", "take no host"]),
    ("space in the key", MV, setter("spec.uri", "s3://models/pen guins/1"), ["spec.uri", "whitespace"]),
    ("non-ASCII bucket", MV, setter("spec.uri", "s3://mödels/1"), ["spec.uri", "non-ASCII"]),
    ("bucket with capitals", MV, setter("spec.uri", "s3://Models/1"), ["spec.uri", "invalid bucket name"]),
    ("bucket is an IP", MV, setter("spec.uri", "s3://10.1.2.3/m/1"), ["spec.uri", "IP address"]),
    ("gcs goog prefix", MV, setter("spec.uri", "gs://google-models/1"), ["spec.uri", "goog"]),
    ("azure account", MV, setter("spec.uri", "az://models@Acct/1"), ["spec.uri", "storage account"]),
    ("azure container", MV, setter("spec.uri", "az://m--x/1"), ["spec.uri", "container name"]),
    ("model uri is a bucket", MV, setter("spec.uri", "s3://models"), ["spec.uri", "a key"]),
    ("metric NaN", MV, setter("spec.metrics.accuracy", "NaN"), ["spec.metrics.accuracy"]),
    ("metric 300 digits", MV, setter("spec.metrics.accuracy", "9" * 300), ["spec.metrics.accuracy"]),
    ("metric name too long", MV, setter("spec.metrics." + "m" * 80, "1"), ["spec.metrics", "63"]),
    (
        "name over 63",
        MV,
        rename("p" * 70),
        ["metadata.name", "at most 63"],
    ),
    ("endpoint name starts with a digit", SE, rename("1penguins"), ["metadata.name", "DNS-1035"]),
    ("endpoint name with a dot", SE, rename("pen.guins"), ["metadata.name", "DNS-1035"]),
    ("pipeline name over 63", TP, rename("t" * 64), ["metadata.name"]),
    ("six-field cron", TP, setter("spec.schedule.cron", "0 0 3 * * *"), ["spec.schedule.cron", "five-field"]),
    ("February 30", TP, setter("spec.schedule.cron", "0 3 30 2 *"), ["spec.schedule.cron", "never fires"]),
    ("time zone", TP, setter("spec.schedule.timeZone", "Mars/Olympus"), ["spec.schedule.timeZone"]),
    (
        "gate min above max",
        TP,
        setter("spec.gates.metrics.0", {"name": "accuracy", "min": "0.9", "max": "0.5"}),
        ["spec.gates.metrics[0].min", "must not exceed max"],
    ),
    (
        "duplicate gate",
        TP,
        setter("spec.gates.metrics", [{"name": "accuracy", "min": "0.9"}, {"name": "accuracy", "max": "1"}]),
        ["spec.gates.metrics[1]", "Duplicate"],
    ),
    (
        "drift fraction over 1",
        TP,
        setter("spec.triggers.onDrift", {"batches": {"uri": "s3://batches/x"}, "numericThreshold": "1.5"}),
        ["spec.triggers.onDrift.numericThreshold"],
    ),
    (
        "request above limit",
        TPJ,
        setter("spec.executor.job.resources.requests.memory", "8Gi"),
        ["request must"],
    ),
    ("quantity", TPJ, setter("spec.executor.job.resources.requests.cpu", "lots"), ["requests.cpu"]),
    ("pause of millennia", SE, setter("spec.rollout.steps.2.pause.duration", "99999h"), ["pause.duration"]),
    ("hostname", SEP, setter("spec.rollout.trafficRouting.httpRoute.hostnames.0", "A B"), ["hostnames[0]"]),
    ("parameters map", TP, setter("spec.parameters", {f"p{i}": "1" for i in range(70)}), ["spec.parameters"]),
]


@pytest.mark.parametrize(("case", "sample", "mutate", "expected"), REFUSED, ids=[r[0] for r in REFUSED])
def test_bad_input_is_refused_at_admission_naming_the_field(
    custom: client.CustomObjectsApi,
    namespace: str,
    case: str,
    sample: str,
    mutate: Mutation,
    expected: list[str],
) -> None:
    body: dict[str, Any] = copy.deepcopy(load_sample(sample))
    mutate(body)
    with pytest.raises(ApiException) as raised:
        create(custom, namespace, body, field_validation="Strict")
    assert raised.value.status in (400, 422), raised.value.body
    message = json.loads(raised.value.body)["message"]
    for fragment in expected:
        assert fragment in message, f"{case}: {fragment!r} not in {message}"


def test_the_longest_names_admitted_still_fit(custom: client.CustomObjectsApi, namespace: str) -> None:
    body = load_sample(MV)
    body["metadata"]["name"] = "m" * 63
    body["spec"]["modelName"] = "m" * 50
    body["spec"]["version"] = 2_147_483_647
    create(custom, namespace, body, field_validation="Strict")
    endpoint = load_sample(SE)
    endpoint["metadata"]["name"] = "e" * 63
    create(custom, namespace, endpoint, field_validation="Strict")

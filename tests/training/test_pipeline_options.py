"""spec.evaluation and spec.beam become the built-in pipeline's slicing_specs and beam_pipeline_args; a
pipeline without those parameters, or the same parameter set twice, is an error naming the field."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from fixtures.pipelines import training_spec
from slipway.manifest import Manifest
from slipway.training import registration
from slipway.training.pipeline_options import spec_options
from slipway.training.source import SourceError, parse_ir

ROOT = Path(__file__).resolve().parents[2]
PENGUINS = parse_ir((ROOT / "pipelines" / "penguins" / "pipeline.yaml").read_text(), "spec.pipeline.builtin")
TINY = parse_ir(
    (Path(__file__).resolve().parent / "pipelines" / "tiny" / "pipeline.yaml").read_text(),
    "spec.pipeline.builtin",
)
FLINK = ["--runner=PortableRunner", "--job_endpoint=localhost:8099", "--environment_type=LOOPBACK"]


def test_slices_and_beam_options_become_the_builtin_pipeline_s_arguments() -> None:
    spec = training_spec(
        evaluation={"slicingSpecs": [{"featureKeys": ["island"]}, {"featureKeys": ["island", "sex"]}]},
        beam={"pipelineArgs": [*FLINK, "--flink_conf_dir=/etc/flink conf"]},
    )
    options = spec_options(PENGUINS, spec)
    assert json.loads(options["slicing_specs"]) == [
        {"featureKeys": ["island"]},
        {"featureKeys": ["island", "sex"]},
    ]
    assert shlex.split(options["beam_pipeline_args"]) == [*FLINK, "--flink_conf_dir=/etc/flink conf"]
    assert spec_options(PENGUINS, training_spec()) == {}, "unset fields leave the pipeline's defaults"


def test_a_pipeline_without_the_parameter_is_told_which_field_it_cannot_take() -> None:
    with pytest.raises(SourceError) as raised:
        spec_options(TINY, training_spec(beam={"pipelineArgs": FLINK}))
    assert raised.value.field == "spec.beam.pipelineArgs" and "beam_pipeline_args" in str(raised.value)
    with pytest.raises(SourceError) as raised:
        spec_options(TINY, training_spec(evaluation={"slicingSpecs": [{"featureKeys": ["sex"]}]}))
    assert raised.value.field == "spec.evaluation.slicingSpecs"


def test_the_same_parameter_set_twice_is_refused() -> None:
    spec = training_spec(beam={"pipelineArgs": FLINK}, parameters={"beam_pipeline_args": "--runner=X"})
    with pytest.raises(SourceError) as raised:
        spec_options(PENGUINS, spec)
    assert raised.value.reason == "ConflictingParameter" and raised.value.field == "spec.beam.pipelineArgs"


def test_bad_slicing_specs_are_refused_by_the_schema() -> None:
    from pydantic import ValidationError

    for bad in ({"featureKeys": []}, {"featureKeys": ["has space"]}, {}):
        with pytest.raises(ValidationError):
            training_spec(evaluation={"slicingSpecs": [bad]})


def test_slice_metrics_in_the_manifest_reach_the_model_version() -> None:
    found = Manifest.model_validate(
        {
            "modelName": "tiny",
            "version": 1,
            "metrics": {"accuracy": 0.95},
            "sliceMetrics": {"island=Dream": {"accuracy": 0.875, "example_count": 40.0}},
        }
    )
    from slipway.api.training_pipeline import RunRecord

    record = RunRecord(id="r", trigger="Manual", phase="Succeeded")
    body = registration.model_version_body("ns", "tiny", training_spec(), record, found, "file:///m/1")
    assert body["spec"]["sliceMetrics"] == {"island=Dream": {"accuracy": "0.875", "example_count": "40"}}


def test_the_new_data_poll_lists_above_the_span_token() -> None:
    from slipway.training.pipeline_options import listing_root

    assert listing_root("s3://b/landing/span-{SPAN}/*.parquet") == "s3://b/landing"
    assert listing_root("az://acct/c/daily/{YYYY}/{MM}/{DD}") == "az://acct/c/daily"
    assert listing_root("file:///data/part-*.csv") == "file:///data"
    assert listing_root("gs://b/penguins.csv") == "gs://b/penguins.csv"

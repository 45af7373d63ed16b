"""Pipeline arguments that come from typed spec fields rather than spec.parameters: the Evaluator's slices
(spec.evaluation) and the Beam steps' options (spec.beam)."""

from __future__ import annotations

import json
import shlex

from slipway.api.training_pipeline import TrainingPipelineSpec
from slipway.training.source import PipelineSpec, SourceError

# spec field -> the pipeline parameter it sets (the built-in pipeline declares both).
PARAMETERS = {"spec.evaluation.slicingSpecs": "slicing_specs", "spec.beam.pipelineArgs": "beam_pipeline_args"}


def spec_options(pipeline: PipelineSpec, spec: TrainingPipelineSpec) -> dict[str, str]:
    """The arguments spec.evaluation and spec.beam set; a pipeline that declares no parameter for a field
    that is set, or a field also set through spec.parameters, is an error naming the field."""
    options: dict[str, str] = {}
    if spec.evaluation is not None and spec.evaluation.slicing_specs:
        options["spec.evaluation.slicingSpecs"] = json.dumps(
            [s.to_wire() for s in spec.evaluation.slicing_specs], separators=(",", ":")
        )
    if spec.beam is not None and spec.beam.pipeline_args:
        options["spec.beam.pipelineArgs"] = shlex.join(spec.beam.pipeline_args)
    arguments = {}
    for field, value in options.items():
        parameter = PARAMETERS[field]
        if parameter not in pipeline.parameters:
            raise SourceError(
                field, "UnsupportedField", f"the pipeline declares no {parameter!r} parameter to pass it to"
            )
        if parameter in spec.parameters:
            raise SourceError(
                field, "ConflictingParameter", f"set either {field} or spec.parameters.{parameter}, not both"
            )
        arguments[parameter] = value
    return arguments


def listing_root(data_uri: str) -> str:
    """Where the onNewData poll lists: spec.data's URI cut before its first span token or wildcard ({SPAN},
    {YYYY}, '*'...), so that a new span landing changes the listing."""
    first = min((data_uri.find(token) for token in ("{", "*") if token in data_uri), default=-1)
    return data_uri if first < 0 else data_uri[: data_uri.rfind("/", 0, first)]

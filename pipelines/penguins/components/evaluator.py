"""Evaluator: TensorFlow Model Analysis over the eval split, against thresholds and the champion."""

from typing import TYPE_CHECKING

from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from pipelines.penguins.components.base import component
from pipelines.penguins.uris import local_dir

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tensorflow_model_analysis.proto import config_pb2, metrics_for_slice_pb2, validation_result_pb2


def eval_config(
    label: str, has_baseline: bool, min_accuracy: float, max_accuracy_drop: float
) -> "config_pb2.EvalConfig":
    """Accuracy, loss, example count and a confusion matrix of the candidate (and the baseline when there
    is one) through `serving_examples`; accuracy must reach min_accuracy and, against a baseline, may not
    drop by more than max_accuracy_drop."""
    from tensorflow_model_analysis.proto import config_pb2

    model_specs = [config_pb2.ModelSpec(name="candidate", signature_name="serving_examples", label_key=label)]
    threshold = config_pb2.MetricThreshold()
    threshold.value_threshold.lower_bound.value = min_accuracy
    if has_baseline:
        model_specs.append(
            config_pb2.ModelSpec(
                name="baseline", signature_name="serving_examples", label_key=label, is_baseline=True
            )
        )
        threshold.change_threshold.direction = config_pb2.MetricDirection.HIGHER_IS_BETTER
        threshold.change_threshold.absolute.value = -max_accuracy_drop
    return config_pb2.EvalConfig(
        model_specs=model_specs,
        slicing_specs=[config_pb2.SlicingSpec()],
        metrics_specs=[
            config_pb2.MetricsSpec(
                metrics=[
                    config_pb2.MetricConfig(class_name="ExampleCount"),
                    config_pb2.MetricConfig(class_name="SparseCategoricalAccuracy", threshold=threshold),
                    config_pb2.MetricConfig(class_name="SparseCategoricalCrossentropy"),
                    config_pb2.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
                ]
            )
        ],
    )


def candidate_metrics(result: "Iterable[metrics_for_slice_pb2.MetricsForSlice]") -> dict[str, float]:
    """The candidate's unsliced metrics under the manifest's names: accuracy, loss, example_count."""
    values: dict[str, float] = {}
    for slice_metrics in result:
        if slice_metrics.slice_key.single_slice_keys:
            continue
        for key_and_value in slice_metrics.metric_keys_and_values:
            key = key_and_value.key
            if key.model_name not in ("candidate", "") or key.HasField("sub_key") or key.is_diff:
                continue
            value = key_and_value.value
            if value.HasField("double_value"):
                values[key.name] = value.double_value.value
    renamed = {
        "accuracy": values.get("sparse_categorical_accuracy"),
        "loss": values.get("sparse_categorical_crossentropy"),
        "example_count": values.get("example_count"),
    }
    return {k: v for k, v in renamed.items() if v is not None}


def failed_thresholds(validation: "validation_result_pb2.ValidationResult") -> list[str]:
    """One line per metric threshold TFMA's validation result says failed."""
    reasons = []
    for failure in validation.metric_validations_per_slice:
        for failed in failure.failures:
            name = failed.metric_key.name
            kind = "change against the baseline" if failed.metric_key.is_diff else "value"
            reasons.append(
                f"{name} {kind} {failed.metric_value.double_value.value:.4f} fails {failed.metric_threshold}"
            )
    if not validation.validation_ok and not reasons:
        reasons.append("TFMA validation failed: " + str(validation)[:300])
    return reasons


@component
def evaluator(
    examples: Input[Dataset],
    model: Input[Model],
    label: str,
    baseline_model_uri: str,
    min_accuracy: float,
    max_accuracy_drop: float,
    beam_pipeline_args: str,
    evaluation: Output[Artifact],
    blessing: Output[Artifact],
    metrics: Output[Metrics],
) -> str:
    """Evaluator: TensorFlow Model Analysis over the eval split -- accuracy, loss, AUC, example count --
    with a value threshold (accuracy >= min_accuracy) and, when a baseline (the champion) is given, a change
    threshold (accuracy may not drop by more than max_accuracy_drop). Writes BLESSED or NOT_BLESSED into the
    blessing artifact, as TFX does; returns {"blessed", "metrics", "reasons"} as JSON."""
    import json
    import os
    import shlex

    import tensorflow_model_analysis as tfma
    from apache_beam.options.pipeline_options import PipelineOptions

    has_baseline = bool(baseline_model_uri)
    config = eval_config(label, has_baseline, min_accuracy, max_accuracy_drop)
    shared = [
        tfma.default_eval_shared_model(
            os.path.join(model.path, "Format-Serving"), model_name="candidate", eval_config=config
        )
    ]
    if has_baseline:
        # The champion may sit on any store the operator reads (s3://, gs://, az://): TensorFlow gets a copy.
        baseline_dir = local_dir(baseline_model_uri)
        shared.append(tfma.default_eval_shared_model(baseline_dir, model_name="baseline", eval_config=config))
    os.makedirs(evaluation.path, exist_ok=True)
    tfma.run_model_analysis(
        eval_shared_model=shared if has_baseline else shared[0],
        eval_config=config,
        data_location=os.path.join(examples.path, "Split-eval", "*"),
        output_path=evaluation.path,
        pipeline_options=PipelineOptions(shlex.split(beam_pipeline_args)),
    )
    found = candidate_metrics(tfma.load_metrics(evaluation.path))
    validation = tfma.load_validation_result(evaluation.path)
    reasons = failed_thresholds(validation)
    blessed = bool(validation.validation_ok)
    for name, value in found.items():
        metrics.log_metric(name, value)
    os.makedirs(blessing.path, exist_ok=True)
    open(os.path.join(blessing.path, "BLESSED" if blessed else "NOT_BLESSED"), "w").close()
    blessing.metadata.update(
        {"tfx_type": "ModelBlessing", "blessed": int(blessed), "current_model": model.uri}
    )
    if has_baseline:
        blessing.metadata["baseline_model"] = baseline_model_uri
    print(f"evaluator: {'BLESSED' if blessed else 'NOT_BLESSED'} {found} {reasons}")
    return json.dumps(
        {"blessed": blessed, "metrics": found, "reasons": [" ".join(r.split()) for r in reasons]}
    )

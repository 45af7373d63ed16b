"""Evaluator: TensorFlow Model Analysis over the eval split, against thresholds and the champion."""

from typing import TYPE_CHECKING

from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from pipelines.penguins.components.base import component
from pipelines.penguins.labels import label_is_numeric
from pipelines.penguins.records import read_split, tfrecord
from pipelines.penguins.uris import local_dir, local_path

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tensorflow_model_analysis.proto import config_pb2, metrics_for_slice_pb2, validation_result_pb2


# TFMA's metric names -> the manifest's, for a class label and for a numeric one.
def metric_names(numeric: bool) -> dict[str, str]:
    if numeric:
        return {"mean_squared_error": "mse", "mean_absolute_error": "mae", "example_count": "example_count"}
    return {
        "sparse_categorical_accuracy": "accuracy",
        "sparse_categorical_crossentropy": "loss",
        "example_count": "example_count",
    }


def regression_output(export_dir: str, label: str) -> str:
    """The `serving_examples` output TFMA scores a numeric label with: one named like the label, else the
    only output; "" leaves TFMA its own lookup (`predictions`, `outputs`, ...). Read from saved_model.pb."""
    import os

    from tensorflow.core.protobuf import saved_model_pb2

    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as handle:
        saved = saved_model_pb2.SavedModel.FromString(handle.read())
    outputs = sorted(saved.meta_graphs[0].signature_def["serving_examples"].outputs)
    if label in outputs:
        return label
    return outputs[0] if len(outputs) == 1 else ""


def parse_slicing_specs(text: str) -> list[list[str]]:
    """The `slicing_specs` parameter -- JSON, a list of {"featureKeys": [...]} as the TrainingPipeline's
    spec.evaluation.slicingSpecs has them -- as lists of feature names; "" means no slices."""
    import json

    if not text.strip():
        return []
    specs = json.loads(text)
    if not isinstance(specs, list) or not all(
        isinstance(s, dict) and isinstance(s.get("featureKeys"), list) and s["featureKeys"] for s in specs
    ):
        raise ValueError(f"slicing_specs: expected a list of {{'featureKeys': [names]}}, got {text!r}")
    return [[str(key) for key in spec["featureKeys"]] for spec in specs]


def eval_config(
    label: str,
    numeric: bool,
    prediction_key: str,
    has_baseline: bool,
    min_accuracy: float,
    max_accuracy_drop: float,
    slices: "list[list[str]]",
) -> "config_pb2.EvalConfig":
    """The candidate (and the baseline when there is one) through `serving_examples`, overall and per slice.

    `prediction_key` names the model output to score ("" lets TFMA look). A class label: accuracy, loss,
    example count and a confusion matrix; accuracy must reach min_accuracy and, against a baseline, may not
    drop by more than max_accuracy_drop. A numeric label: mean squared and mean absolute error and example
    count; against a baseline, the mean squared error may not rise by more than max_accuracy_drop relative
    to the baseline's (min_accuracy names no regression metric)."""
    from tensorflow_model_analysis.proto import config_pb2

    model_specs = [
        config_pb2.ModelSpec(
            name="candidate",
            signature_name="serving_examples",
            label_key=label,
            prediction_key=prediction_key,
        )
    ]
    if has_baseline:
        model_specs.append(
            config_pb2.ModelSpec(
                name="baseline",
                signature_name="serving_examples",
                label_key=label,
                prediction_key=prediction_key,
                is_baseline=True,
            )
        )
    threshold = config_pb2.MetricThreshold()
    if numeric:
        if has_baseline:
            threshold.change_threshold.direction = config_pb2.MetricDirection.LOWER_IS_BETTER
            threshold.change_threshold.relative.value = max_accuracy_drop
        metrics = [
            config_pb2.MetricConfig(class_name="ExampleCount"),
            config_pb2.MetricConfig(
                class_name="MeanSquaredError", threshold=threshold if has_baseline else None
            ),
            config_pb2.MetricConfig(class_name="MeanAbsoluteError"),
        ]
    else:
        threshold.value_threshold.lower_bound.value = min_accuracy
        if has_baseline:
            threshold.change_threshold.direction = config_pb2.MetricDirection.HIGHER_IS_BETTER
            threshold.change_threshold.absolute.value = -max_accuracy_drop
        metrics = [
            config_pb2.MetricConfig(class_name="ExampleCount"),
            config_pb2.MetricConfig(class_name="SparseCategoricalAccuracy", threshold=threshold),
            config_pb2.MetricConfig(class_name="SparseCategoricalCrossentropy"),
            config_pb2.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
        ]
    return config_pb2.EvalConfig(
        model_specs=model_specs,
        slicing_specs=[
            config_pb2.SlicingSpec(),
            *(config_pb2.SlicingSpec(feature_keys=keys) for keys in slices),
        ],
        metrics_specs=[config_pb2.MetricsSpec(metrics=metrics)],
    )


def slice_name(slice_key: "metrics_for_slice_pb2.SliceKey") -> str:
    """'' for the whole eval split; 'island=Biscoe' or 'island=Biscoe,sex=male' for a slice."""
    parts = []
    for single in slice_key.single_slice_keys:
        kind = single.WhichOneof("kind")
        value = getattr(single, kind) if kind else ""
        parts.append(f"{single.column}={value.decode() if isinstance(value, bytes) else value}")
    return ",".join(parts)


def candidate_metrics(
    result: "Iterable[metrics_for_slice_pb2.MetricsForSlice]", numeric: bool
) -> dict[str, dict[str, float]]:
    """The candidate's metrics under the manifest's names (accuracy, loss, example_count for classes; mse,
    mae, example_count for numbers), per slice name ('' is the whole eval split)."""
    names = metric_names(numeric)
    found: dict[str, dict[str, float]] = {}
    for slice_metrics in result:
        values = found.setdefault(slice_name(slice_metrics.slice_key), {})
        for key_and_value in slice_metrics.metric_keys_and_values:
            key = key_and_value.key
            if key.model_name not in ("candidate", "") or key.HasField("sub_key") or key.is_diff:
                continue
            value = key_and_value.value
            if key.name in names and value.HasField("double_value"):
                values[names[key.name]] = value.double_value.value
    return found


def labelled_eval_split(examples_path: str, label: str, scratch: str) -> tuple[str, int]:
    """The file pattern of the eval examples that carry a label, and how many do not: TFMA fails on an
    example without one (a missing regression target is common), so those are left out, in a copy."""
    import os

    import tensorflow as tf

    records = read_split(examples_path, "eval")
    kept = []
    for record in records:
        feature = tf.train.Example.FromString(record).features.feature.get(label)
        kind = feature.WhichOneof("kind") if feature is not None else None
        if kind is not None and len(getattr(feature, kind).value) > 0:
            kept.append(record)
    if len(kept) == len(records):
        return os.path.join(examples_path, "Split-eval", "*"), 0
    os.makedirs(scratch, exist_ok=True)
    with open(os.path.join(scratch, "labelled_tfrecord-00000-of-00001"), "wb") as handle:
        for record in kept:
            handle.write(tfrecord(record))
    return os.path.join(scratch, "*"), len(records) - len(kept)


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
    slicing_specs: str,
    beam_pipeline_args: str,
    evaluation: Output[Artifact],
    blessing: Output[Artifact],
    metrics: Output[Metrics],
) -> str:
    """Evaluator: TensorFlow Model Analysis over the eval split, overall and per slice (`slicing_specs`),
    with metrics that fit the label (classes: accuracy, loss, example count; numbers: mse, mae, example
    count) and thresholds (see eval_config) against the candidate alone and, when a baseline (the champion)
    is given, against it. Writes BLESSED or NOT_BLESSED into the blessing artifact, as TFX does; returns
    {"blessed", "metrics", "slices", "unlabelled", "reasons"} as JSON, "slices" mapping a slice name to its
    metrics, "unlabelled" counting the eval examples left out for having no label."""
    import json
    import os
    import shlex
    import shutil
    import tempfile

    import tensorflow_model_analysis as tfma
    from apache_beam.options.pipeline_options import PipelineOptions

    has_baseline = bool(baseline_model_uri)
    numeric = label_is_numeric(examples.path, label)
    export_dir = os.path.join(model.path, "Format-Serving")
    config = eval_config(
        label,
        numeric,
        regression_output(export_dir, label) if numeric else "",
        has_baseline,
        min_accuracy,
        max_accuracy_drop,
        parse_slicing_specs(slicing_specs),
    )
    shared = [tfma.default_eval_shared_model(export_dir, model_name="candidate", eval_config=config)]
    baseline_dir = ""
    if has_baseline:
        # The champion may sit on any store the operator reads (s3://, gs://, az://): TensorFlow gets a copy.
        baseline_dir = local_dir(baseline_model_uri)
        shared.append(tfma.default_eval_shared_model(baseline_dir, model_name="baseline", eval_config=config))
    os.makedirs(evaluation.path, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="slipway-eval-")
    data_location, unlabelled = labelled_eval_split(examples.path, label, scratch)
    try:
        tfma.run_model_analysis(
            eval_shared_model=shared if has_baseline else shared[0],
            eval_config=config,
            data_location=data_location,
            output_path=evaluation.path,
            pipeline_options=PipelineOptions(shlex.split(beam_pipeline_args)),
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if baseline_dir and local_path(baseline_model_uri) is None:
            shutil.rmtree(os.path.dirname(baseline_dir), ignore_errors=True)  # the pulled copy
    per_slice = candidate_metrics(tfma.load_metrics(evaluation.path), numeric)
    found = per_slice.pop("", {})
    validation = tfma.load_validation_result(evaluation.path)
    # No threshold at all (a numeric label without a champion): nothing can fail, TFX's rubber stamp.
    rubber_stamp = validation.missing_thresholds and not any(
        v.failures for v in validation.metric_validations_per_slice
    )
    blessed = bool(validation.validation_ok or rubber_stamp)
    reasons = [] if blessed else failed_thresholds(validation)
    for name, value in found.items():
        metrics.log_metric(name, value)
    os.makedirs(blessing.path, exist_ok=True)
    open(os.path.join(blessing.path, "BLESSED" if blessed else "NOT_BLESSED"), "w").close()
    blessing.metadata.update(
        {"tfx_type": "ModelBlessing", "blessed": int(blessed), "current_model": model.uri}
    )
    if has_baseline:
        blessing.metadata["baseline_model"] = baseline_model_uri
    print(f"evaluator: {'BLESSED' if blessed else 'NOT_BLESSED'} {found} {reasons}; {unlabelled} unlabelled")
    return json.dumps(
        {
            "blessed": blessed,
            "metrics": found,
            "slices": dict(sorted(per_slice.items())),
            "unlabelled": unlabelled,
            "reasons": [" ".join(r.split()) for r in reasons],
        }
    )

"""The built-in pipeline: TFX's standard chain on the Palmer penguins (or any CSV, Parquet or TFRecord data),
training the model of a module file with TFX's contract (preprocessing_fn, run_fn, optionally tuner_fn); by
default model.py.

ExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator -> Transform -> Tuner -> Trainer -> Evaluator
and InfraValidator -> Pusher. `python -m pipelines.penguins.pipeline` rewrites pipeline.yaml (the compiled
IR)."""

from pathlib import Path
from typing import NamedTuple

from kfp import compiler, dsl

from pipelines.penguins.components import (
    evaluator,
    example_gen,
    example_validator,
    infra_validator,
    pusher,
    schema_gen,
    statistics_gen,
    trainer,
    transform,
    tuner,
)

PIPELINE_NAME = "penguins"
IR_PATH = Path(__file__).with_name("pipeline.yaml")
# Relative: the step reads it from the built-in pipelines' directory (SLIPWAY_PIPELINES_DIR in the image).
DEFAULT_MODULE_FILE = "penguins/model.py"


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="TFX-style tabular training of a module file (Palmer penguins by default).",
)
def penguins(
    data_uri: str,
    model_store_uri: str,
    model_name: str = "penguins",
    model_version: int = 0,
    pipeline_digest: str = "",
    baseline_model_uri: str = "",
    run_id: str = "",
    label: str = "species",
    # With {SPAN} or {YYYY}{MM}{DD} in data_uri: the span to read; -1 reads the newest.
    data_span: int = -1,
    curated_schema_uri: str = "",
    eval_buckets: int = 30,
    max_categories: int = 50,
    categorical_drift_threshold: float = 0.3,
    numeric_drift_threshold: float = 0.3,
    fail_on_anomalies: bool = True,
    epochs: int = 40,
    batch_size: int = 32,
    learning_rate: float = 0.01,
    hidden_units: int = 16,
    seed: int = 7,
    module_file: str = DEFAULT_MODULE_FILE,
    module_source: str = "",
    custom_config: dict = {},  # noqa: B006 -- KFP reads the default; nothing mutates it
    train_steps: int = 0,
    eval_steps: int = 0,
    tuner_max_trials: int = 10,
    min_accuracy: float = 0.9,
    max_accuracy_drop: float = 0.01,
    # JSON, e.g. [{"featureKeys": ["island"]}]: TFMA metrics per slice (spec.evaluation.slicingSpecs).
    slicing_specs: str = "",
    request_size: int = 3,
    max_latency_ms: float = 2000.0,
    # DirectRunner first tries Prism, which downloads a binary: name the in-process runner it falls back to.
    beam_pipeline_args: str = "--runner=apache_beam.runners.portability.fn_api_runner.FnApiRunner",
) -> NamedTuple("Outputs", push_result=str):
    examples = example_gen(data_uri=data_uri, data_span=data_span, eval_buckets=eval_buckets)
    statistics = statistics_gen(examples=examples.outputs["examples"])
    schema = schema_gen(
        statistics=statistics.outputs["statistics"],
        curated_schema_uri=curated_schema_uri,
        max_categories=max_categories,
    )
    validation = example_validator(
        statistics=statistics.outputs["statistics"],
        schema=schema.outputs["schema"],
        categorical_drift_threshold=categorical_drift_threshold,
        numeric_drift_threshold=numeric_drift_threshold,
        fail_on_anomalies=fail_on_anomalies,
    )
    module = {
        "label": label,
        "module_file": module_file,
        "module_source": module_source,
        "custom_config": custom_config,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "hidden_units": hidden_units,
        "seed": seed,
    }
    transformed = transform(
        examples=examples.outputs["examples"],
        schema=schema.outputs["schema"],
        beam_pipeline_args=beam_pipeline_args,
        **module,
    ).after(validation)
    tuned = tuner(
        transformed_examples=transformed.outputs["transformed_examples"],
        schema=schema.outputs["schema"],
        transform_graph=transformed.outputs["transform_graph"],
        train_steps=train_steps,
        eval_steps=eval_steps,
        max_trials=tuner_max_trials,
        **module,
    )
    trained = trainer(
        transformed_examples=transformed.outputs["transformed_examples"],
        schema=schema.outputs["schema"],
        transform_graph=transformed.outputs["transform_graph"],
        hyperparameters=tuned.outputs["best_hyperparameters"],
        train_steps=train_steps,
        eval_steps=eval_steps,
        **module,
    )
    evaluation = evaluator(
        examples=examples.outputs["examples"],
        model=trained.outputs["model"],
        label=label,
        baseline_model_uri=baseline_model_uri,
        min_accuracy=min_accuracy,
        max_accuracy_drop=max_accuracy_drop,
        slicing_specs=slicing_specs,
        beam_pipeline_args=beam_pipeline_args,
    )
    infra = infra_validator(
        examples=examples.outputs["examples"],
        model=trained.outputs["model"],
        label=label,
        request_size=request_size,
        max_latency_ms=max_latency_ms,
    )
    pushed = pusher(
        model=trained.outputs["model"],
        statistics=statistics.outputs["statistics"],
        schema=schema.outputs["schema"],
        evaluation=evaluation.outputs["Output"],
        infra_validation=infra.outputs["Output"],
        data_lineage=examples.outputs["Output"],
        model_store_uri=model_store_uri,
        model_name=model_name,
        model_version=model_version,
        pipeline_name=PIPELINE_NAME,
        pipeline_digest=pipeline_digest,
        run_id=run_id,
        pipeline_job_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
        data_uri=data_uri,
        eval_buckets=eval_buckets,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        hidden_units=hidden_units,
        seed=seed,
        min_accuracy=min_accuracy,
        max_accuracy_drop=max_accuracy_drop,
        baseline_model_uri=baseline_model_uri,
        curated_schema_uri=curated_schema_uri,
        module_file=module_file,
        custom_config=custom_config,
        tuner_max_trials=tuner_max_trials,
        tuning=tuned.outputs["Output"],
    )
    outputs = NamedTuple("Outputs", push_result=str)  # noqa: UP014
    return outputs(push_result=pushed.outputs["Output"])


def compile_to(path: Path) -> None:
    compiler.Compiler().compile(penguins, str(path))


if __name__ == "__main__":
    compile_to(IR_PATH)

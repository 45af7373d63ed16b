"""The built-in penguins pipeline: ExampleGen -> statistics and schema -> ExampleValidator -> Trainer ->
Evaluator and InfraValidator -> Pusher. `python pipelines/penguins/pipeline.py` writes pipeline.yaml."""

from pathlib import Path

from kfp import compiler, dsl

from pipelines.penguins.components import (
    evaluator,
    example_gen,
    example_validator,
    infra_validator,
    pusher,
    statistics_and_schema,
    trainer,
)


@dsl.pipeline(name="penguins", description="Tabular classification of Palmer penguins, TFX-style.")
def penguins(
    data_uri: str,
    model_store_uri: str,
    model_name: str = "penguins",
    model_version: int = 0,
    pipeline_digest: str = "",
    baseline_model_uri: str = "",
    run_id: str = "",
    eval_percent: int = 25,
    epochs: int = 60,
    learning_rate: float = 0.02,
    min_accuracy: float = 0.9,
    max_accuracy_drop: float = 0.02,
    numeric_drift_threshold: float = 0.3,
    categorical_drift_threshold: float = 0.3,
    fail_on_anomalies: bool = True,
    max_latency_ms: int = 2000,
) -> str:
    split = example_gen(data_uri=data_uri, eval_percent=eval_percent)
    described = statistics_and_schema(examples=split.outputs["examples"])
    validated = example_validator(
        examples=split.outputs["examples"],
        statistics=described.outputs["statistics"],
        schema=described.outputs["schema"],
        numeric_drift_threshold=numeric_drift_threshold,
        categorical_drift_threshold=categorical_drift_threshold,
        fail_on_anomalies=fail_on_anomalies,
    )
    trained = trainer(
        examples=split.outputs["examples"],
        schema=described.outputs["schema"],
        epochs=epochs,
        learning_rate=learning_rate,
    ).after(validated)
    evaluation = evaluator(
        examples=split.outputs["examples"],
        model=trained.outputs["model"],
        baseline_model_uri=baseline_model_uri,
        min_accuracy=min_accuracy,
        max_accuracy_drop=max_accuracy_drop,
    )
    infra = infra_validator(
        examples=split.outputs["examples"], model=trained.outputs["model"], max_latency_ms=max_latency_ms
    )
    pushed = pusher(
        model=trained.outputs["model"],
        statistics=described.outputs["statistics"],
        schema=described.outputs["schema"],
        evaluation=evaluation.outputs["Output"],
        infra=infra.output,
        data=split.outputs["Output"],
        model_store_uri=model_store_uri,
        model_name=model_name,
        model_version=model_version,
        pipeline_digest=pipeline_digest,
        run_id=run_id,
        epochs=epochs,
        learning_rate=learning_rate,
        min_accuracy=min_accuracy,
        eval_percent=eval_percent,
    )
    return pushed.output


def compile_to(path: Path) -> None:
    compiler.Compiler().compile(penguins, str(path))


if __name__ == "__main__":
    compile_to(Path(__file__).with_name("pipeline.yaml"))

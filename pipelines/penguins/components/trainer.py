"""Trainer: the module file's run_fn, called with TFX's FnArgs, and what it exported checked."""

from kfp.dsl import Artifact, Dataset, Input, Model, Output

from pipelines.penguins.components.base import component
from pipelines.penguins.module_file import (
    call_module_function,
    custom_config_of,
    fn_args,
    load_module,
    module_text,
)


@component
def trainer(
    transformed_examples: Input[Dataset],
    schema: Input[Artifact],
    transform_graph: Input[Artifact],
    hyperparameters: Input[Artifact],
    label: str,
    module_file: str,
    module_source: str,
    custom_config: dict,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    hidden_units: int,
    seed: int,
    train_steps: int,
    eval_steps: int,
    model: Output[Model],
    model_run: Output[Artifact],
) -> None:
    """Trainer: `run_fn(fn_args)` of the module file, with TFX's FnArgs (the Tuner's best hyperparameters
    in fn_args.hyperparameters, when it tuned). run_fn writes a SavedModel with the transform graph inside
    to fn_args.serving_model_dir (`Format-Serving/`); the model's metadata records the label's classes (a
    string label's domain in the schema), the module's name and digest and the hyperparameters, for the
    InfraValidator and the Pusher."""
    import hashlib
    import json
    import os

    from slipway.datastats import schema as datastats_schema

    name = module_file
    source = module_text(module_file, module_source)
    module = load_module(name, source, ["preprocessing_fn", "run_fn"])
    schema_path = os.path.join(schema.path, "schema.pbtxt")
    with open(schema_path) as handle:
        spec = datastats_schema.parse(handle.read())
    label_feature = next((f for f in spec.feature if f.name == label), None)
    if label_feature is None:
        raise ValueError(f"the label {label!r} is not a column of the data")
    domains = {d.name: list(d.value) for d in spec.string_domain}
    classes = sorted(label_feature.string_domain.value or domains.get(label_feature.domain, []))
    best_path = os.path.join(hyperparameters.path, "best_hyperparameters.txt")
    best = None
    if os.path.exists(best_path):
        with open(best_path) as handle:
            best = json.load(handle)
    serving_model_dir = os.path.join(model.path, "Format-Serving")
    os.makedirs(model_run.path, exist_ok=True)
    arguments = fn_args(
        transformed_examples.path,
        schema_path,
        transform_graph.path,
        model_run.path,
        serving_model_dir,
        train_steps,
        eval_steps,
        best,
        custom_config_of(label, epochs, batch_size, learning_rate, hidden_units, seed, custom_config),
    )
    try:
        call_module_function(name, module, "run_fn", arguments)
    except Exception as error:
        raise RuntimeError(f"module file {name}: run_fn failed: {type(error).__name__}: {error}") from error
    if not os.path.exists(os.path.join(serving_model_dir, "saved_model.pb")):
        raise RuntimeError(
            f"module file {name}: run_fn wrote no SavedModel to fn_args.serving_model_dir "
            f"({serving_model_dir})"
        )
    model.metadata.update(
        {
            "tfx_type": "Model",
            "classes": ",".join(classes),
            "module_file": name,
            "module_digest": "sha256:" + hashlib.sha256(source.encode()).hexdigest(),
            "hyperparameters": json.dumps((best or {}).get("values", {}), sort_keys=True),
        }
    )
    model_run.metadata.update({"tfx_type": "ModelRun"})

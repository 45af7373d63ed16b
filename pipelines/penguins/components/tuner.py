"""Tuner: the module file's tuner_fn, its KerasTuner search run within the spec's trial budget."""

from kfp.dsl import Artifact, Dataset, Input, Output

from pipelines.penguins.components.base import component
from pipelines.penguins.module_file import (
    call_module_function,
    check_module,
    custom_config_of,
    fn_args,
    load_module,
    module_text,
)


def search_result(result: object) -> tuple:
    """(tuner, fit_kwargs) of what tuner_fn returned: TFX's TunerFnResult (or any object with those two
    attributes), a mapping with those keys, or a pair."""
    if isinstance(result, dict):
        return result["tuner"], dict(result.get("fit_kwargs") or {})
    if hasattr(result, "tuner"):
        return result.tuner, dict(getattr(result, "fit_kwargs", None) or {})
    tuner, fit_kwargs = result
    return tuner, dict(fit_kwargs or {})


@component
def tuner(
    transformed_examples: Input[Dataset],
    schema: Input[Artifact],
    transform_graph: Input[Artifact],
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
    max_trials: int,
    best_hyperparameters: Output[Artifact],
) -> str:
    """Tuner: when the module file defines `tuner_fn(fn_args)` and max_trials > 0, runs the KerasTuner
    search it returns (TFX's TunerFnResult: `tuner`, `fit_kwargs`) with at most max_trials trials, and
    writes the best hyperparameters (`best_hyperparameters.txt`, KerasTuner's HyperParameters config as
    TFX writes it), which the Trainer passes to run_fn as fn_args.hyperparameters. Otherwise writes
    nothing (the module is only parsed: no TensorFlow). Returns {"trials", "values", "score"} as JSON."""
    import json
    import os
    import tempfile
    import time

    name = module_file
    source = module_text(module_file, module_source)
    functions = check_module(name, source, ["preprocessing_fn", "run_fn"])
    os.makedirs(best_hyperparameters.path, exist_ok=True)
    if "tuner_fn" not in functions or max_trials <= 0:
        best_hyperparameters.metadata.update({"tfx_type": "HyperParameters", "trials": 0})
        print(f"tuner: no search ({'max_trials is 0' if max_trials <= 0 else 'the module has no tuner_fn'})")
        return json.dumps({"trials": 0, "values": {}, "score": None})
    module = load_module(name, source, ["preprocessing_fn", "run_fn", "tuner_fn"])
    arguments = fn_args(
        transformed_examples.path,
        os.path.join(schema.path, "schema.pbtxt"),
        transform_graph.path,
        tempfile.mkdtemp(prefix="slipway-tuner-"),
        "",
        train_steps,
        eval_steps,
        None,
        custom_config_of(label, epochs, batch_size, learning_rate, hidden_units, seed, custom_config),
    )
    try:
        found, fit_kwargs = search_result(call_module_function(name, module, "tuner_fn", arguments))
        oracle = found.oracle
        oracle.max_trials = min(oracle.max_trials or max_trials, max_trials)
        started = time.perf_counter()
        found.search(**fit_kwargs)
        elapsed = time.perf_counter() - started
        best = found.get_best_hyperparameters(1)[0]
    except Exception as error:
        raise RuntimeError(
            f"module file {name}: tuner_fn's search failed: {type(error).__name__}: {error}"
        ) from error
    trials = [t for t in oracle.trials.values() if t.score is not None]
    score = oracle.get_best_trials(1)[0].score if trials else None
    with open(os.path.join(best_hyperparameters.path, "best_hyperparameters.txt"), "w") as handle:
        json.dump(best.get_config(), handle)
    summary = {"trials": len(oracle.trials), "values": best.values, "score": score}
    best_hyperparameters.metadata.update(
        {
            "tfx_type": "HyperParameters",
            "trials": len(oracle.trials),
            "search_seconds": round(elapsed, 3),
            **({"best_score": float(score)} if score is not None else {}),
        }
    )
    print(f"tuner: {len(oracle.trials)} trials in {elapsed:.1f} s, best {best.values} (score {score})")
    return json.dumps(summary, default=str)

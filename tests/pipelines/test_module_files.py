"""Module files of the user's own through the built-in pipeline's steps, with kfp.local on real TensorFlow,
TF Transform, KerasTuner and Beam: a regression model of a different shape, tuned within the budget; and
module files that cannot be used failing the run, named, with nothing pushed.

The regression run stops at the InfraValidator: the Evaluator's metrics for a numeric label are the
Evaluator's business (tests/pipelines/test_penguins.py runs the whole chain)."""

import hashlib
import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from kfp import dsl
from pipelines.local import ir_digest
from pipelines.penguins.components import (
    example_gen,
    infra_validator,
    schema_gen,
    statistics_gen,
    trainer,
    transform,
    tuner,
)
from pipelines.penguins.pipeline import IR_PATH

from slipway.training import kfp_local
from slipway.training.pipeline_run import run_pipeline

pytestmark = pytest.mark.tensorflow

PENGUINS_CSV = Path(str(resources.files("palmerpenguins") / "data" / "penguins.csv"))
BODY_MASS = Path(__file__).resolve().parents[2] / "pipelines" / "penguins" / "modules" / "body_mass.py"


@dsl.pipeline(name="module-file-steps")
def up_to_infra_validation(
    data_uri: str, label: str, module_file: str, epochs: int, max_trials: int
) -> NamedTuple("Outputs", tuning=str, verdict=str):
    """The chain from ExampleGen to the InfraValidator, as pipelines/penguins/pipeline.py wires it."""
    examples = example_gen(data_uri=data_uri, data_span=-1, eval_buckets=30)
    statistics = statistics_gen(examples=examples.outputs["examples"])
    schema = schema_gen(statistics=statistics.outputs["statistics"], curated_schema_uri="", max_categories=50)
    module = {
        "label": label,
        "module_file": module_file,
        "module_source": "",
        "custom_config": {},
        "epochs": epochs,
        "batch_size": 16,
        "learning_rate": 0.01,
        "hidden_units": 16,
        "seed": 7,
    }
    transformed = transform(
        examples=examples.outputs["examples"],
        schema=schema.outputs["schema"],
        beam_pipeline_args="--runner=apache_beam.runners.portability.fn_api_runner.FnApiRunner",
        **module,
    )
    tuned = tuner(
        transformed_examples=transformed.outputs["transformed_examples"],
        schema=schema.outputs["schema"],
        transform_graph=transformed.outputs["transform_graph"],
        train_steps=0,
        eval_steps=0,
        max_trials=max_trials,
        **module,
    )
    trained = trainer(
        transformed_examples=transformed.outputs["transformed_examples"],
        schema=schema.outputs["schema"],
        transform_graph=transformed.outputs["transform_graph"],
        hyperparameters=tuned.outputs["best_hyperparameters"],
        train_steps=0,
        eval_steps=0,
        **module,
    )
    infra = infra_validator(
        examples=examples.outputs["examples"],
        model=trained.outputs["model"],
        label=label,
        request_size=3,
        max_latency_ms=2000.0,
    )
    outputs = NamedTuple("Outputs", tuning=str, verdict=str)  # noqa: UP014
    return outputs(tuning=tuned.outputs["Output"], verdict=infra.outputs["Output"])


@pytest.fixture(scope="module")
def regression(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("regression")
    kfp_local.init(str(root / "pipeline-root"))
    task = up_to_infra_validation(
        data_uri=f"file://{PENGUINS_CSV}",
        label="body_mass_g",
        module_file=f"file://{BODY_MASS}",
        epochs=30,
        max_trials=2,
    )
    (model_dir,) = (root / "pipeline-root").glob("*/trainer/model")
    return {
        "tuning": json.loads(task.outputs["tuning"]),
        "verdict": json.loads(task.outputs["verdict"]),
        "model_dir": model_dir,
        "root": root / "pipeline-root",
    }


def test_the_tuner_searches_within_the_specs_budget_and_the_trainer_uses_the_best(
    regression: dict[str, Any],
) -> None:
    tuning = regression["tuning"]
    assert tuning["trials"] == 2, "the module asks for 20 trials; the budget is 2"
    assert set(tuning["values"]) == {"units", "learning_rate"}
    assert 0 < tuning["score"] < 0.5, "the best trial's val_loss (kg²): every trial trained"
    (best,) = regression["root"].glob("*/tuner/best_hyperparameters/best_hyperparameters.txt")
    config = json.loads(best.read_text())
    assert config["values"] == tuning["values"], "KerasTuner's HyperParameters config, as TFX writes it"
    (trainer_output,) = regression["root"].glob("*/trainer/executor_output.json")
    recorded = json.loads(trainer_output.read_text())["artifacts"]["model"]["artifacts"][0]["metadata"]
    assert json.loads(recorded["hyperparameters"]) == tuning["values"]
    assert recorded["module_file"] == f"file://{BODY_MASS}"
    assert recorded["module_digest"] == "sha256:" + hashlib.sha256(BODY_MASS.read_bytes()).hexdigest()
    assert recorded["classes"] == "", "a numeric label has no classes"


def test_a_regression_module_of_another_shape_is_blessed_by_the_infra_validator(
    regression: dict[str, Any],
) -> None:
    verdict = regression["verdict"]
    assert verdict["blessed"] is True, verdict["reason"]
    assert verdict["signature"]["outputs"] == {"body_mass_g": "float32"}
    assert "body_mass_g" not in verdict["signature"]["inputs"]
    assert verdict["signature"]["inputs"]["species"] == "string"


def test_the_regressor_answers_grams_from_raw_features_with_its_own_transform_inside(
    regression: dict[str, Any],
) -> None:
    export_dir = regression["model_dir"] / "Format-Serving"
    assert (export_dir / "saved_model.pb").is_file()
    predict = (
        "import json, sys\n"
        "import tensorflow as tf\n"
        "serve = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
        "rows = [dict(species='Gentoo', island='Biscoe', sex='male', bill_length_mm=50.0, year=2008.0,\n"
        "             bill_depth_mm=15.9, flipper_length_mm=225.0),\n"
        "        dict(species='Adelie', island='Torgersen', sex='female', bill_length_mm=36.7, year=2008.0,\n"
        "             bill_depth_mm=18.5, flipper_length_mm=185.0)]\n"
        "specs = serve.structured_input_signature[1]\n"
        "answer = serve(**{k: tf.constant([r[k] for r in rows], s.dtype) for k, s in specs.items()})\n"
        "print(json.dumps(answer['body_mass_g'].numpy().tolist()))\n"
    )
    answer = subprocess.run(
        [sys.executable, "-c", predict, str(export_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    gentoo, adelie = json.loads(answer.stdout.strip().splitlines()[-1])
    # Gentoo males weigh about 5.5 kg, Adelie females about 3.4 kg: a model that learned anything puts more
    # than a kilogram between them (a few epochs with the tuned hyperparameters do not reach the exact means).
    assert 1000 < adelie < gentoo < 8000 and gentoo - adelie > 1000


@pytest.mark.parametrize(
    ("module", "error"),
    [
        (
            "def preprocessing_fn(inputs):\n    return inputs\n\n\ndef train(fn_args):\n    pass\n",
            "it defines no run_fn()",
        ),
        (
            "def preprocessing_fn(inputs):\n    return inputs\n\n\ndef run_fn(fn_args)\n    pass\n",
            "syntax error at line 5: expected ':'",
        ),
    ],
    ids=["missing-run_fn", "syntax-error"],
)
def test_a_module_file_that_cannot_be_used_fails_the_run_naming_it_and_pushes_nothing(
    tmp_path: Path, module: str, error: str
) -> None:
    (tmp_path / "team_model.py").write_text(module)
    store = tmp_path / "models"
    arguments = {
        "data_uri": f"file://{PENGUINS_CSV}",
        "model_store_uri": f"file://{store}",
        "model_name": "penguins",
        "pipeline_digest": ir_digest(IR_PATH),
        "module_file": f"file://{tmp_path}/team_model.py",
    }
    outcome = run_pipeline(IR_PATH, arguments, str(tmp_path / "root"))
    assert outcome.phase == "Failed"
    assert f"RuntimeError: module file file://{tmp_path}/team_model.py: {error}" in outcome.message
    assert "transform" in outcome.message, "the step that failed"
    assert not store.exists()

"""Wall time of each component of the built-in pipeline and of the whole chain, run from the compiled IR with
kfp.local as the operator runs it: on the Palmer penguins (344 rows, the default module file) and on a
synthetic penguin-like table of 1,000,000 rows, to show how cost grows with data; and the Tuner's cost per
trial (the regression module file pipelines/penguins/modules/body_mass.py) next to its floor, one bare
`fit` of the same model on the same data.

`python bench/pipeline_bench.py [--rows N] [--skip-penguins] [--skip-large] [--skip-tuner] [--trials N]
[--portable]`: figures to stdout and bench/results/pipeline.json. `--portable` runs the large table's
Beam steps on Beam's portable runner (the Job API a Flink or Spark job server speaks) instead of in-process.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from importlib import resources
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from pipelines.beam_service import portable_job_service  # noqa: E402

from beam_runner_bench import PORTABLE  # noqa: E402

RESULTS = REPO / "bench" / "results" / "pipeline.json"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
TASK_EVENT = re.compile(
    r"^(\d\d:\d\d:\d\d\.\d+) - \w+ - (?:Executing task '([\w-]+)'|Task '([\w-]+)' finished)"
)

# The step that runs one chain: a child process, so its kfp.local log lines can be read back with their times.
RUN_CHAIN = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from pipelines.local import run_compiled_locally
outputs = run_compiled_locally(Path(sys.argv[2]), json.loads(sys.argv[3]), Path(sys.argv[4]))
print("PUSH_RESULT " + json.dumps(outputs["push_result"]))
"""


def task_durations(log: str) -> dict[str, float]:
    """{task: seconds} from kfp.local's "Executing task 'x'" / "Task 'x' finished" lines."""
    started: dict[str, datetime] = {}
    durations: dict[str, float] = {}
    for line in ANSI.sub("", log).splitlines():
        match = TASK_EVENT.match(line)
        if match is None:
            continue
        stamp = datetime.strptime(match[1], "%H:%M:%S.%f")
        if match[2]:
            started[match[2]] = stamp
        elif match[3] in started:
            durations[match[3]] = (stamp - started[match[3]]).total_seconds()
    return durations


def synthetic_penguins(rows: int, path: Path, seed: int = 0) -> None:
    """Penguin-like rows: species-conditional measurements, islands and sexes, a few missing values."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    species = np.array(["Adelie", "Chinstrap", "Gentoo"])[rng.choice(3, rows, p=[0.44, 0.2, 0.36])]
    means = {
        "Adelie": (38.8, 18.3, 190.0, 3700.0),
        "Chinstrap": (48.8, 18.4, 195.8, 3733.0),
        "Gentoo": (47.5, 15.0, 217.2, 5076.0),
    }
    spreads = (2.7, 1.2, 6.7, 480.0)
    table = {"species": species}
    islands = {"Adelie": ["Torgersen", "Biscoe", "Dream"], "Chinstrap": ["Dream"], "Gentoo": ["Biscoe"]}
    table["island"] = np.array([islands[s][rng.integers(len(islands[s]))] for s in species])
    for index, column in enumerate(["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]):
        centre = np.array([means[s][index] for s in species])
        values = rng.normal(centre, spreads[index])
        table[column] = np.round(values, 1) if index < 2 else np.round(values).astype(int)
    table["sex"] = np.where(rng.random(rows) < 0.5, "male", "female")
    table["year"] = rng.integers(2007, 2010, rows)
    frame = pd.DataFrame(table)
    frame.loc[rng.random(rows) < 0.01, "sex"] = None
    frame.to_csv(path, index=False, na_rep="NA")


# One trial's floor: the module's own model built and fitted once on the run's transformed examples, as a
# trial does, without KerasTuner (no oracle, no trial directory, no checkpoints).
BARE_FIT = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from pipelines.penguins.module_file import custom_config_of, fn_args, load_module
root, module_path, epochs = Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
module = load_module(str(module_path), module_path.read_text(), ["preprocessing_fn", "run_fn"])
(examples,) = root.glob("*/transform/transformed_examples")
(graph,) = root.glob("*/transform/transform_graph")
(schema,) = root.glob("*/schema-gen/schema/schema.pbtxt")
config = custom_config_of("body_mass_g", epochs, 16, 0.01, 16, 7, {})
args = fn_args(str(examples), str(schema), str(graph), str(root / "bare"), "", 0, 0, None, config)
result = module.tuner_fn(args)
import tensorflow_transform as tft
output = tft.TFTransformOutput(str(graph))
fits = []
for _ in range(3):
    started = time.perf_counter()
    net = module._model(module._hyperparameters(), output)
    net.fit(**result.fit_kwargs)
    fits.append(time.perf_counter() - started)
print("BARE_FIT " + json.dumps(sorted(fits)[1]))
"""


def tuner_trials(data: Path, workdir: Path, trials: int, epochs: int) -> dict[str, object]:
    """The chain with the regression module and `trials` Tuner trials; per trial from the Tuner's own clock
    (`search_seconds`), next to a bare fit (median of 3). The chain may stop after the Trainer: what the
    Evaluator makes of a numeric label is not measured here."""
    module = REPO / "pipelines" / "penguins" / "modules" / "body_mass.py"
    arguments = {
        "data_uri": f"file://{data}",
        "model_store_uri": f"file://{workdir / 'models'}",
        "model_name": "body-mass",
        "label": "body_mass_g",
        "module_file": f"file://{module}",
        "epochs": epochs,
        "tuner_max_trials": trials,
    }
    ir = REPO / "pipelines" / "penguins" / "pipeline.yaml"
    root = workdir / "root"
    command = [sys.executable, "-c", RUN_CHAIN, str(REPO), str(ir), json.dumps(arguments), str(root)]
    log = subprocess.run(command, capture_output=True, text=True)
    durations = task_durations(log.stdout + log.stderr)
    (output,) = root.glob("*/tuner/executor_output.json")
    tuned = json.loads(output.read_text())["artifacts"]["best_hyperparameters"]["artifacts"][0]["metadata"]
    bare = subprocess.run(
        [sys.executable, "-c", BARE_FIT, str(REPO), str(root), str(module), str(epochs)],
        capture_output=True,
        text=True,
        check=True,
    )
    bare_s = json.loads(next(x for x in bare.stdout.splitlines() if x.startswith("BARE_FIT "))[9:])
    per_trial = tuned["search_seconds"] / tuned["trials"]
    return {
        "trials": int(tuned["trials"]),
        "epochs": epochs,
        "tuner_step_s": round(durations["tuner"], 1),
        "search_s": round(tuned["search_seconds"], 1),
        "per_trial_s": round(per_trial, 2),
        "floor_bare_fit_s": round(bare_s, 2),
        "overhead_per_trial_s": round(per_trial - bare_s, 2),
        "trainer_s": round(durations.get("trainer", 0.0), 1),
    }


def run_chain(name: str, data: Path, workdir: Path, overrides: dict[str, object]) -> dict[str, object]:
    arguments = {
        "data_uri": f"file://{data}",
        "model_store_uri": f"file://{workdir / 'models'}",
        "model_name": name,
        **overrides,
    }
    ir = REPO / "pipelines" / "penguins" / "pipeline.yaml"
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-c", RUN_CHAIN, str(REPO), str(ir), json.dumps(arguments), str(workdir / "root")],
        capture_output=True,
        text=True,
    )
    wall = time.monotonic() - started
    log = completed.stdout + completed.stderr
    if completed.returncode != 0:
        print(log[-4000:], file=sys.stderr)
        raise SystemExit(f"{name}: the chain failed")
    push_line = next(line for line in log.splitlines() if line.startswith("PUSH_RESULT "))
    return {
        "components_s": {task: round(s, 1) for task, s in task_durations(log).items()},
        "chain_s": round(wall, 1),
        "push_result": json.loads(push_line.removeprefix("PUSH_RESULT ")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-penguins", action="store_true", help="keep the recorded penguins figure")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--skip-tuner", action="store_true")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument(
        "--portable", action="store_true", help="the large table's Beam steps on Beam's portable runner"
    )
    args = parser.parse_args()
    # Keep the other table's figures when only one is re-measured.
    results: dict[str, object] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as temporary:
        root = Path(temporary)
        penguins = root / "penguins.csv"
        penguins.write_bytes((resources.files("palmerpenguins") / "data" / "penguins.csv").read_bytes())
        if not args.skip_penguins:
            results["penguins_344_rows"] = run_chain("penguins", penguins, root / "penguins", {})
            results["penguins_344_rows"]["load_average"] = [round(x, 2) for x in os.getloadavg()]  # type: ignore[index]
            print(json.dumps({"penguins_344_rows": results["penguins_344_rows"]}, indent=2), flush=True)
        if not args.skip_tuner:
            results["tuner_body_mass"] = tuner_trials(penguins, root / "tuner", args.trials, epochs=30)
            results["tuner_body_mass"]["load_average"] = [round(x, 2) for x in os.getloadavg()]  # type: ignore[index]
            print(json.dumps({"tuner_body_mass": results["tuner_body_mass"]}, indent=2), flush=True)
        if not args.skip_large:
            synthetic = root / "synthetic.csv"
            started = time.monotonic()
            synthetic_penguins(args.rows, synthetic)
            generated = time.monotonic() - started
            # One pass over the data: the point is how each step's cost grows with rows, not a better model.
            overrides: dict[str, object] = {"epochs": 1, "batch_size": 1024, "eval_buckets": 10}
            key = f"synthetic_{args.rows}_rows"
            if args.portable:
                # The same chain with its Beam steps (Transform, Evaluator) submitted to Beam's portable job
                # service, as they would be to a Flink or Spark job server.
                key += "_portable"
                with portable_job_service(root / "job-service.log") as endpoint:
                    overrides["beam_pipeline_args"] = (
                        f"--runner=PortableRunner --job_endpoint={endpoint} {PORTABLE}"
                    )
                    results[key] = run_chain("synthetic", synthetic, root / "synthetic", overrides)
            else:
                results[key] = run_chain("synthetic", synthetic, root / "synthetic", overrides)
            results[key]["beam_pipeline_args"] = overrides.get("beam_pipeline_args", "(default: in-process)")  # type: ignore[index]
            results[key]["csv_mb"] = round(synthetic.stat().st_size / 1e6, 1)  # type: ignore[index]
            results[key]["generate_csv_s"] = round(generated, 1)  # type: ignore[index]
            results[key]["load_average"] = [round(x, 2) for x in os.getloadavg()]  # type: ignore[index]
            print(json.dumps({key: results[key]}, indent=2), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

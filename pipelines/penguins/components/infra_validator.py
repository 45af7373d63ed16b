"""InfraValidator: the exported model loaded in a fresh process and asked what TF Serving would be asked."""

from kfp.dsl import Artifact, Dataset, Input, Model, Output

from pipelines.penguins.components.base import component
from pipelines.penguins.labels import label_is_numeric
from pipelines.penguins.records import read_split


def complete_instances(records: list[bytes], label: str, wanted: int) -> list[dict]:
    """The first examples with every feature present, as REST instances of raw features (no label)."""
    import numpy as np
    from tfx_bsl.coders import example_coder

    instances = []
    for record in records:
        example = example_coder.ExampleToNumpyDict(record)
        if any(v is None or len(v) != 1 for v in example.values()):
            continue
        instance = {}
        for name, value in sorted(example.items()):
            if name == label:
                continue
            item = value[0]
            if isinstance(item, bytes):
                instance[name] = item.decode()
            elif isinstance(item, np.floating):
                instance[name] = float(f"{item:.7g}")  # the CSV's decimal, not float32 noise
            else:
                instance[name] = int(item)
        instances.append(instance)
        if len(instances) == wanted:
            break
    return instances


def probe_in_fresh_process(export_dir: str, request: dict) -> tuple[dict | None, str]:
    """Loads the SavedModel in a new Python process and calls `serving_default` with the request's
    instances (once to warm up, then timed). Returns (answer, "") or (None, the process's error)."""
    import json
    import subprocess
    import sys

    probe = r"""
import json, sys, time
import tensorflow as tf
export_dir = sys.argv[1]
request = json.loads(sys.stdin.read())
serve = tf.saved_model.load(export_dir).signatures["serving_default"]
specs = serve.structured_input_signature[1]
columns = {name: [instance[name] for instance in request["instances"]] for name in specs}
arguments = {name: tf.constant(values, dtype=specs[name].dtype) for name, values in columns.items()}
serve(**arguments)  # warm-up: the first call traces
start = time.perf_counter()
outputs = serve(**arguments)
latency_ms = (time.perf_counter() - start) * 1000
print(json.dumps({
    "latencyMs": latency_ms,
    "outputs": {k: v.numpy().tolist() for k, v in outputs.items()},
    "inputs": {k: v.dtype.name for k, v in specs.items()},
    "outputDtypes": {k: v.dtype.name for k, v in serve.structured_outputs.items()},
}, default=lambda b: b.decode()))
"""
    completed = subprocess.run(
        [sys.executable, "-c", probe, export_dir],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if completed.returncode != 0:
        return None, completed.stderr[-800:]
    return json.loads(completed.stdout.strip().splitlines()[-1]), ""


def answer_problems(
    answer: dict, instances: int, label: str, kind: str, classes: set[str], max_latency_ms: float
) -> list[str]:
    """What is wrong with the model's answer: a count, probabilities, classes, values or latency off. Every
    output has one row per instance; a classifier's `probabilities` sum to 1 and its `<label>` is a known
    class; a regressor's `<label>` (or its only output) is a finite number per instance."""
    import math

    outputs = answer["outputs"]
    problems = []
    if not outputs:
        problems.append("the serving signature returns nothing")
    for name, rows in sorted(outputs.items()):
        if len(rows) != instances:
            problems.append(f"{len(rows)} rows of {name} for {instances} instances")
    if kind == "classification":
        if any(abs(sum(row) - 1.0) > 1e-3 for row in outputs.get("probabilities", [])):
            problems.append("probabilities do not sum to 1")
        if label not in outputs:
            problems.append(f"no {label} output (the predicted class)")
        elif not set(outputs[label]) <= classes:
            problems.append(f"unknown classes {sorted(set(outputs[label]) - classes)}")
    else:
        predicted = outputs.get(label) or (next(iter(outputs.values())) if len(outputs) == 1 else None)
        if predicted is None:
            problems.append(f"no {label} output (the predicted value)")
        else:
            values = [row[0] if isinstance(row, list) and len(row) == 1 else row for row in predicted]
            if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
                problems.append(f"{label} predictions are not finite numbers")
    if answer["latencyMs"] > max_latency_ms:
        problems.append(f"latency {answer['latencyMs']:.1f} ms > {max_latency_ms} ms")
    return problems


@component
def infra_validator(
    examples: Input[Dataset],
    model: Input[Model],
    label: str,
    request_size: int,
    max_latency_ms: float,
    infra_blessing: Output[Artifact],
) -> str:
    """InfraValidator: loads the exported SavedModel in a fresh process, sends it real eval examples in TF
    Serving's REST request format (`{"instances": [...]}`) through `serving_default`, and checks that one
    prediction comes back per instance within max_latency_ms: a known class with probabilities summing to
    1 for a classifier, a finite number for a regressor (the label's type in the examples).
    Writes INFRA_BLESSED or INFRA_NOT_BLESSED; returns {"blessed", "reason",
    "sampleRequest", "signature"} as JSON."""
    import json
    import os

    request = {"instances": complete_instances(read_split(examples.path, "eval")[:500], label, request_size)}
    answer, error = probe_in_fresh_process(os.path.join(model.path, "Format-Serving"), request)
    verdict: dict = {"blessed": False, "reason": "", "sampleRequest": request, "signature": None}
    if answer is None:
        verdict["reason"] = "the model did not load or answer in a fresh process: " + error
    else:
        classes = set(model.metadata.get("classes", "").split(","))
        kind = "regression" if label_is_numeric(examples.path, label) else "classification"
        problems = answer_problems(answer, len(request["instances"]), label, kind, classes, max_latency_ms)
        verdict.update(
            blessed=not problems and bool(request["instances"]),
            reason="; ".join(problems) or ("" if request["instances"] else "no complete eval example"),
            latencyMs=answer["latencyMs"],
            signature={
                "name": "serving_default",
                "inputs": answer["inputs"],
                "outputs": answer["outputDtypes"],
            },
        )
    outcome = "INFRA_BLESSED" if verdict["blessed"] else "INFRA_NOT_BLESSED"
    os.makedirs(infra_blessing.path, exist_ok=True)
    open(os.path.join(infra_blessing.path, outcome), "w").close()
    infra_blessing.metadata.update({"tfx_type": "InfraBlessing", "blessed": int(verdict["blessed"])})
    print(f"infra_validator: {outcome} {verdict['reason']}")
    return json.dumps(verdict)

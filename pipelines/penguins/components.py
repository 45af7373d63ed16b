"""The penguins pipeline's components: KFP v2 lightweight components on real TensorFlow.

Each function is self-contained (KFP ships its source to the step), imports inside. They run offline under
`kfp.local` (subprocess runner, no venv) in an environment with the `pipelines` extra, or on a Kubeflow
cluster with the image in BASE_IMAGE.
"""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

BASE_IMAGE = "ghcr.io/slipway-dev/slipway-pipelines:0.1.0"
LABEL = "species"


@dsl.component(base_image=BASE_IMAGE)
def example_gen(data_uri: str, eval_percent: int, examples: Output[Dataset]) -> str:
    """CSV from a URI -> deterministic hash-based train/eval split (a row's content decides its side)."""
    import csv
    import hashlib
    import io
    import json
    import os
    import urllib.parse

    def read(uri: str) -> bytes:
        if uri.startswith("file://"):
            path = urllib.parse.urlparse(uri).path
            if os.path.isdir(path):
                parts = [os.path.join(path, n) for n in sorted(os.listdir(path)) if n.endswith(".csv")]
                chunks = [open(p, "rb").read() for p in parts]
                header = chunks[0].split(b"\n", 1)[0]
                return chunks[0] + b"".join(c.split(b"\n", 1)[1] for c in chunks[1:] if c.startswith(header))
            return open(path, "rb").read()
        from slipway import objects

        return objects.read_bytes(uri)

    raw = read(data_uri)
    rows = list(csv.DictReader(io.StringIO(raw.decode())))
    os.makedirs(examples.path, exist_ok=True)
    fieldnames = list(rows[0].keys()) if rows else []
    splits: dict[str, list[dict[str, str]]] = {"train": [], "eval": []}
    for row in rows:
        key = hashlib.sha256(json.dumps(row, sort_keys=True).encode()).digest()[0] % 100
        splits["eval" if key < eval_percent else "train"].append(row)
    for name, part in splits.items():
        with open(os.path.join(examples.path, f"{name}.csv"), "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerows(part)
    fingerprint = "sha256:" + hashlib.sha256(raw).hexdigest()
    examples.metadata.update(
        {"train": len(splits["train"]), "eval": len(splits["eval"]), "fingerprint": fingerprint}
    )
    return json.dumps({"uri": data_uri, "fingerprint": fingerprint})


@dsl.component(base_image=BASE_IMAGE)
def statistics_and_schema(
    examples: Input[Dataset], statistics: Output[Artifact], schema: Output[Artifact]
) -> None:
    """Per-feature statistics of the train split, and the schema inferred from them (types, domains,
    presence)."""
    import csv
    import json
    import math
    import os

    rows = list(csv.DictReader(open(os.path.join(examples.path, "train.csv"))))
    stats: dict[str, dict] = {}
    feature_schema: dict[str, dict] = {}
    for name in rows[0]:
        values = [r[name] for r in rows if r[name] not in ("", "NA")]
        try:
            numbers = [float(v) for v in values]
        except ValueError:
            numbers = []
        present = len(values) / len(rows)
        if numbers and len(numbers) == len(values):
            mean = sum(numbers) / len(numbers)
            std = math.sqrt(sum((x - mean) ** 2 for x in numbers) / max(1, len(numbers) - 1))
            counts, low, high = [0] * 10, min(numbers), max(numbers)
            for x in numbers:
                counts[min(9, int((x - low) / ((high - low) or 1) * 10))] += 1
            stats[name] = {
                "type": "FLOAT",
                "mean": mean,
                "std": std,
                "min": low,
                "max": high,
                "histogram": counts,
                "presence": present,
            }
            feature_schema[name] = {"type": "FLOAT", "min": low, "max": high, "required": present > 0.9}
        else:
            frequencies: dict[str, int] = {}
            for v in values:
                frequencies[v] = frequencies.get(v, 0) + 1
            stats[name] = {"type": "BYTES", "frequencies": frequencies, "presence": present}
            feature_schema[name] = {"type": "BYTES", "domain": sorted(frequencies), "required": present > 0.9}
    os.makedirs(statistics.path, exist_ok=True)
    os.makedirs(schema.path, exist_ok=True)
    json.dump(
        {"numExamples": len(rows), "features": stats}, open(os.path.join(statistics.path, "stats.json"), "w")
    )
    json.dump({"features": feature_schema}, open(os.path.join(schema.path, "schema.json"), "w"))


@dsl.component(base_image=BASE_IMAGE)
def example_validator(
    examples: Input[Dataset],
    statistics: Input[Artifact],
    schema: Input[Artifact],
    numeric_drift_threshold: float,
    categorical_drift_threshold: float,
    fail_on_anomalies: bool,
    anomalies: Output[Artifact],
) -> int:
    """Eval split against the schema (missing columns, unknown categories, out-of-range values) and its
    skew from train: Jensen-Shannon for numeric histograms, L-infinity for categorical frequencies."""
    import csv
    import json
    import math
    import os

    spec = json.load(open(os.path.join(schema.path, "schema.json")))["features"]
    train = json.load(open(os.path.join(statistics.path, "stats.json")))["features"]
    rows = list(csv.DictReader(open(os.path.join(examples.path, "eval.csv"))))
    found: list[dict] = []
    columns = set(rows[0]) if rows else set()
    for name, feature in spec.items():
        if name not in columns:
            found.append({"feature": name, "kind": "MISSING_COLUMN", "detail": "column absent"})
            continue
        values = [r[name] for r in rows if r[name] not in ("", "NA")]
        if feature["type"] == "BYTES":
            unknown = sorted(set(values) - set(feature["domain"]))
            if unknown:
                found.append({"feature": name, "kind": "UNKNOWN_CATEGORY", "detail": ", ".join(unknown[:5])})
            total = max(1, len(values))
            train_freq = train[name]["frequencies"]
            train_total = max(1, sum(train_freq.values()))
            keys = set(train_freq) | set(values)
            linf = max(
                (abs(values.count(k) / total - train_freq.get(k, 0) / train_total) for k in keys), default=0.0
            )
            if linf > categorical_drift_threshold:
                found.append({"feature": name, "kind": "DRIFT", "detail": f"L-infinity {linf:.3f}"})
        else:
            try:
                numbers = [float(v) for v in values]
            except ValueError:
                found.append({"feature": name, "kind": "WRONG_TYPE", "detail": "non-numeric values"})
                continue
            span = (feature["max"] - feature["min"]) or 1.0
            outside = [x for x in numbers if x < feature["min"] - span or x > feature["max"] + span]
            if outside:
                found.append({"feature": name, "kind": "OUT_OF_RANGE", "detail": f"{len(outside)} values"})
            low, high = train[name]["min"], train[name]["max"]
            counts = [0] * 10
            for x in numbers:
                counts[min(9, max(0, int((x - low) / ((high - low) or 1) * 10)))] += 1
            p = [c / max(1, sum(counts)) for c in counts]
            q = [c / max(1, sum(train[name]["histogram"])) for c in train[name]["histogram"]]
            m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]

            def kl(a: list, b: list) -> float:
                return sum(x * math.log2(x / y) for x, y in zip(a, b, strict=True) if x > 0 and y > 0)

            js = (kl(p, m) + kl(q, m)) / 2
            if js > numeric_drift_threshold:
                found.append({"feature": name, "kind": "DRIFT", "detail": f"Jensen-Shannon {js:.3f}"})
    os.makedirs(anomalies.path, exist_ok=True)
    json.dump({"anomalies": found}, open(os.path.join(anomalies.path, "anomalies.json"), "w"))
    if found and fail_on_anomalies:
        raise RuntimeError(f"{len(found)} anomalies: {found[:5]}")
    return len(found)


@dsl.component(base_image=BASE_IMAGE)
def trainer(
    examples: Input[Dataset],
    schema: Input[Artifact],
    epochs: int,
    learning_rate: float,
    model: Output[Model],
) -> None:
    """A Keras classifier whose preprocessing (z-score for numbers, vocabularies for strings) lives inside the
    exported SavedModel, so TF Serving takes raw features: no training/serving skew."""
    import csv
    import json
    import os

    import numpy as np
    import tensorflow as tf

    label = "species"
    spec = json.load(open(os.path.join(schema.path, "schema.json")))["features"]
    rows = [
        r
        for r in csv.DictReader(open(os.path.join(examples.path, "train.csv")))
        if r[label] not in ("", "NA")
    ]
    numeric = sorted(n for n, f in spec.items() if f["type"] == "FLOAT" and n != label and n != "year")
    categorical = sorted(n for n, f in spec.items() if f["type"] == "BYTES" and n != label)
    classes = sorted(spec[label]["domain"])
    tf.keras.utils.set_random_seed(7)

    def column(name: str, kind: str) -> np.ndarray:
        if kind == "FLOAT":
            values = [float(r[name]) if r[name] not in ("", "NA") else float("nan") for r in rows]
            array = np.array(values, dtype="float32")
            return np.where(np.isnan(array), np.nanmean(array), array).reshape(-1, 1)
        return np.array([r[name] or "NA" for r in rows]).reshape(-1, 1)

    inputs, encoded, data = {}, [], {}
    for name in numeric:
        inputs[name] = tf.keras.Input(shape=(1,), name=name, dtype="float32")
        data[name] = column(name, "FLOAT")
        norm = tf.keras.layers.Normalization()
        norm.adapt(data[name])
        encoded.append(norm(inputs[name]))
    for name in categorical:
        inputs[name] = tf.keras.Input(shape=(1,), name=name, dtype="string")
        data[name] = column(name, "BYTES")
        lookup = tf.keras.layers.StringLookup(output_mode="one_hot")
        lookup.adapt(data[name])
        encoded.append(lookup(inputs[name]))
    hidden = tf.keras.layers.Dense(16, activation="relu")(tf.keras.layers.Concatenate()(encoded))
    outputs = tf.keras.layers.Dense(len(classes), activation="softmax")(hidden)
    net = tf.keras.Model(inputs, outputs)
    net.compile(optimizer=tf.keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy")
    labels = np.array([classes.index(r[label]) for r in rows])
    net.fit(data, labels, epochs=epochs, batch_size=32, verbose=0)

    signature_inputs = {
        name: tf.TensorSpec([None], tf.float32 if name in numeric else tf.string, name=name)
        for name in numeric + categorical
    }

    @tf.function(input_signature=[signature_inputs])
    def serve(features: dict) -> dict:
        batch = {k: tf.reshape(v, [-1, 1]) for k, v in features.items()}
        probabilities = net(batch)
        index = tf.argmax(probabilities, axis=1)
        return {"probabilities": probabilities, "species": tf.gather(tf.constant(classes), index)}

    tf.saved_model.save(net, model.path, signatures={"serving_default": serve})
    model.metadata.update({"numeric": numeric, "categorical": categorical, "classes": classes})


@dsl.component(base_image=BASE_IMAGE)
def evaluator(
    examples: Input[Dataset],
    model: Input[Model],
    baseline_model_uri: str,
    min_accuracy: float,
    max_accuracy_drop: float,
    metrics: Output[Metrics],
) -> str:
    """Accuracy on the eval split against an absolute threshold and, when a champion exists, against the
    champion on the same examples; the blessing is BLESSED or NOT_BLESSED, as TFX writes it."""
    import csv
    import json
    import os
    import urllib.parse

    import numpy as np
    import tensorflow as tf

    rows = [
        r
        for r in csv.DictReader(open(os.path.join(examples.path, "eval.csv")))
        if r["species"] not in ("", "NA")
    ]

    def accuracy(path: str) -> float:
        loaded = tf.saved_model.load(path)
        serve = loaded.signatures["serving_default"]
        args = {}
        for name, spec in serve.structured_input_signature[1].items():
            if spec.dtype == tf.string:
                args[name] = tf.constant([r.get(name) or "NA" for r in rows])
            else:
                values = np.array(
                    [float(r[name]) if r.get(name) not in (None, "", "NA") else np.nan for r in rows]
                )
                args[name] = tf.constant(
                    np.where(np.isnan(values), np.nanmean(values), values), dtype=tf.float32
                )
        predicted = [p.decode() for p in serve(**args)["species"].numpy()]
        return float(np.mean([p == r["species"] for p, r in zip(predicted, rows, strict=True)]))

    mine = accuracy(model.path)
    metrics.log_metric("accuracy", mine)
    metrics.log_metric("example_count", len(rows))
    verdict = {"accuracy": mine, "exampleCount": len(rows), "blessed": mine >= min_accuracy, "reasons": []}
    if mine < min_accuracy:
        verdict["reasons"].append(f"accuracy {mine:.3f} < {min_accuracy}")
    if baseline_model_uri:
        baseline_path = (
            urllib.parse.urlparse(baseline_model_uri).path if baseline_model_uri.startswith("file://") else ""
        )
        if baseline_path and os.path.exists(os.path.join(baseline_path, "saved_model.pb")):
            theirs = accuracy(baseline_path)
            verdict["baselineAccuracy"] = theirs
            if mine < theirs - max_accuracy_drop:
                verdict["blessed"] = False
                verdict["reasons"].append(f"accuracy {mine:.3f} below champion {theirs:.3f}")
    open(os.path.join(os.path.dirname(metrics.path), "blessing.json"), "w").write(json.dumps(verdict))
    return json.dumps(verdict)


@dsl.component(base_image=BASE_IMAGE)
def infra_validator(examples: Input[Dataset], model: Input[Model], max_latency_ms: int) -> str:
    """Loads the SavedModel in a fresh process and calls its serving signature with real examples in TF
    Serving's REST request format; checks the outputs and the latency."""
    import csv
    import json
    import os
    import subprocess
    import sys

    rows = list(csv.DictReader(open(os.path.join(examples.path, "eval.csv"))))[:3]
    numeric = set(model.metadata.get("numeric", []))
    instances = [
        {
            name: (float(r[name]) if r[name] not in ("", "NA") else 0.0)
            if name in numeric
            else (r[name] or "NA")
            for name in [*model.metadata.get("numeric", []), *model.metadata.get("categorical", [])]
        }
        for r in rows
    ]
    probe = (
        "import json, sys, time\n"
        "import tensorflow as tf\n"
        "request = json.loads(sys.stdin.read())\n"
        "serve = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
        "columns = {k: [i[k] for i in request['instances']] for k in request['instances'][0]}\n"
        "specs = serve.structured_input_signature[1]\n"
        "args = {k: tf.constant(v, dtype=specs[k].dtype) for k, v in columns.items()}\n"
        "start = time.monotonic(); out = serve(**args); ms = (time.monotonic() - start) * 1000\n"
        "print(json.dumps({'n': int(out['probabilities'].shape[0]), 'ms': ms}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, model.path],
        input=json.dumps({"instances": instances}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    verdict = {"blessed": False, "sampleRequest": {"instances": instances}}
    if result.returncode != 0:
        verdict["reason"] = result.stderr[-500:]
    else:
        answer = json.loads(result.stdout.strip().splitlines()[-1])
        verdict["latencyMs"] = answer["ms"]
        verdict["blessed"] = answer["n"] == len(instances) and answer["ms"] <= max_latency_ms
        verdict["reason"] = "" if verdict["blessed"] else f"{answer['n']} outputs in {answer['ms']:.0f} ms"
    return json.dumps(verdict)


@dsl.component(base_image=BASE_IMAGE)
def pusher(
    model: Input[Model],
    statistics: Input[Artifact],
    schema: Input[Artifact],
    evaluation: str,
    infra: str,
    data: str,
    model_store_uri: str,
    model_name: str,
    model_version: int,
    pipeline_digest: str,
    run_id: str,
    epochs: int,
    learning_rate: float,
    min_accuracy: float,
    eval_percent: int,
) -> str:
    """Only when both blessings hold: copies the SavedModel to <store>/<model>/<version>/ with saved_model.pb
    written last (TF Serving loads a version once that file appears) and writes slipway-manifest.json."""
    import datetime
    import json
    import os
    import shutil
    import urllib.parse

    evaluated, validated = json.loads(evaluation), json.loads(infra)
    if not (evaluated["blessed"] and validated["blessed"]):
        reasons = evaluated.get("reasons", []) + (
            [validated.get("reason", "")] if not validated["blessed"] else []
        )
        return json.dumps(
            {
                "pushed": False,
                "reason": "; ".join(r for r in reasons if r),
                "version": None,
                "manifestUri": None,
            }
        )
    if not model_store_uri.startswith("file://"):
        raise ValueError(
            f"{model_store_uri}: this pusher writes file:// stores; use the storage-aware image for others"
        )
    root = os.path.join(urllib.parse.urlparse(model_store_uri).path, model_name)
    os.makedirs(root, exist_ok=True)
    if model_version <= 0:
        existing = [int(n) for n in os.listdir(root) if n.isdigit()]
        model_version = max(existing, default=0) + 1
    target = os.path.join(root, str(model_version))
    staging = target + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(model.path, staging, ignore=shutil.ignore_patterns("saved_model.pb"))
    uri = f"{model_store_uri.rstrip('/')}/{model_name}/{model_version}"
    manifest = {
        "schemaVersion": 1,
        "modelName": model_name,
        "version": model_version,
        "uri": uri,
        "format": "SavedModel",
        "createdAt": datetime.datetime.now(datetime.UTC)
        .replace(microsecond=0)
        .isoformat()
        .replace("+00:00", "Z"),
        "metrics": {"accuracy": round(evaluated["accuracy"], 6), "example_count": evaluated["exampleCount"]},
        "blessings": {"evaluator": True, "infraValidator": True},
        "signature": {
            "name": "serving_default",
            "outputs": {"probabilities": "float32", "species": "string"},
        },
        "sampleRequest": validated["sampleRequest"],
        "lineage": {
            "pipeline": "penguins",
            "pipelineDigest": pipeline_digest,
            "runId": run_id,
            "parameters": {
                "epochs": str(epochs),
                "learning_rate": str(learning_rate),
                "min_accuracy": str(min_accuracy),
                "eval_percent": str(eval_percent),
            },
            "data": [json.loads(data)],
            "schemaUri": "file://" + os.path.join(schema.path, "schema.json"),
            "statisticsUri": "file://" + os.path.join(statistics.path, "stats.json"),
        },
    }
    json.dump(manifest, open(os.path.join(staging, "slipway-manifest.json"), "w"), indent=2)
    os.replace(staging, target)
    shutil.copyfile(os.path.join(model.path, "saved_model.pb"), os.path.join(target, "saved_model.pb.tmp"))
    os.replace(os.path.join(target, "saved_model.pb.tmp"), os.path.join(target, "saved_model.pb"))
    return json.dumps(
        {
            "pushed": True,
            "reason": "",
            "version": model_version,
            "manifestUri": uri + "/slipway-manifest.json",
        }
    )

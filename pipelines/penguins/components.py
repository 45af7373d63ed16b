"""The TFX standard chain as KFP v2 lightweight components on TensorFlow, TF Transform, TFMA and tfx-bsl.

KFP ships each function's source on its own to the step, so every component is self-contained: imports and
helpers live inside the function, except what the operator shares with the steps: `slipway.storage` (remote
URIs) and `slipway.datastats` (statistics and their comparison, also behind the operator's drift trigger),
which the step image has installed. Artifacts keep TFX's on-disk layout (`Split-train/`, `Format-Serving/`,
`schema.pbtxt`, `FeatureStats.pb`, `SchemaDiff.pb`, `BLESSED`/`NOT_BLESSED`), so TFX tooling can read them.

No component installs anything at run time (`install_kfp_package=False`, no `packages_to_install`): under
`kfp.local` (SubprocessRunner(use_venv=False)) they run in the caller's interpreter, which has the
`pipelines` extra; on a cluster they run in BASE_IMAGE, which has the same pins.
"""

from collections.abc import Callable

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output
from kfp.dsl.python_component import PythonComponent

BASE_IMAGE = "ghcr.io/slipway-dev/slipway-pipelines:0.1.0"


def component(func: Callable) -> PythonComponent:
    """A lightweight component that runs as it is: no `pip install kfp` before it (the image has kfp)."""
    return dsl.component(func, base_image=BASE_IMAGE, install_kfp_package=False)


@component
def example_gen(data_uri: str, eval_buckets: int, examples: Output[Dataset]) -> str:
    """ExampleGen: CSV at a file://, s3://, gs:// or az:// URI (one file, or a prefix of *.csv files) ->
    `tf.train.Example` TFRecords split train/eval by a hash of each row's values (deterministic: a
    row's content alone decides its side, out of 100 buckets). Returns the data lineage as JSON:
    [{"uri", "fingerprint"}]."""
    import hashlib
    import json
    import os
    import struct
    import urllib.parse

    import google_crc32c
    import pyarrow as pa
    import pyarrow.compute as pc
    from tfx_bsl.coders import example_coder

    from slipway.datastats import statistics  # shared with the operator's drift trigger

    def read_sources(uri: str) -> list[tuple[str, bytes]]:
        if uri.startswith("file://") or "://" not in uri:
            path = urllib.parse.urlparse(uri).path if uri.startswith("file://") else uri
            if os.path.isdir(path):
                names = sorted(n for n in os.listdir(path) if n.endswith(".csv"))
                return [
                    (f"file://{os.path.join(path, n)}", open(os.path.join(path, n), "rb").read())
                    for n in names
                ]
            return [(f"file://{path}", open(path, "rb").read())]
        from slipway.storage import open_store  # s3://, gs://, az://: the operator's storage layer

        if uri.endswith(".csv"):
            parent, name = uri.rsplit("/", 1)
            return [(uri, open_store(parent).read_bytes(name))]
        store = open_store(uri)
        return [(info.uri, store.read_bytes(info.key)) for info in store.list() if info.key.endswith(".csv")]

    def tfrecord(payload: bytes) -> bytes:
        def masked_crc(data: bytes) -> bytes:
            crc = google_crc32c.value(data)
            return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)

        length = struct.pack("<Q", len(payload))
        return length + masked_crc(length) + payload + masked_crc(payload)

    sources = read_sources(data_uri)
    if not sources:
        raise ValueError(f"{data_uri}: no CSV files")
    table = statistics.read_csv([raw for _, raw in sources])
    batch = statistics.as_record_batch(table)
    serialized = example_coder.RecordBatchToExamplesEncoder().encode(batch)
    counts = {"train": 0, "eval": 0}
    handles = {}
    for split in counts:
        os.makedirs(os.path.join(examples.path, f"Split-{split}"), exist_ok=True)
        handles[split] = open(
            os.path.join(examples.path, f"Split-{split}", "data_tfrecord-00000-of-00001"), "wb"
        )
    # Hash the row's text, not the serialized example: a tf.Example's feature map has no fixed byte order.
    row_text = pc.binary_join_element_wise(
        *[pc.fill_null(table.column(name).cast(pa.string()), "") for name in table.column_names], "\x1f"
    )
    for record, text in zip(serialized, row_text.to_pylist(), strict=True):
        bucket = int.from_bytes(hashlib.md5(text.encode()).digest()[:8], "big") % 100
        split = "eval" if bucket < eval_buckets else "train"
        handles[split].write(tfrecord(record))
        counts[split] += 1
    for handle in handles.values():
        handle.close()
    lineage = [
        {"uri": uri, "fingerprint": "sha256:" + hashlib.sha256(raw).hexdigest()} for uri, raw in sources
    ]
    examples.metadata.update(
        {"split_names": '["train", "eval"]', "tfx_type": "Examples", "payload_format": "FORMAT_TF_EXAMPLE"}
    )
    examples.metadata.update({f"{split}_count": n for split, n in counts.items()})
    return json.dumps(lineage)


@component
def statistics_gen(examples: Input[Dataset], statistics: Output[Artifact]) -> None:
    """StatisticsGen: a tensorflow-metadata `DatasetFeatureStatisticsList` per split
    (`Split-*/FeatureStats.pb`): presence, numeric moments with a 10-bucket histogram, string top values;
    decoded with tfx-bsl."""
    import os
    import struct

    from tfx_bsl.coders import example_coder

    from slipway.datastats import statistics as datastats  # shared with the operator's drift trigger

    def read_tfrecords(path: str) -> list[bytes]:
        records, data, offset = [], open(path, "rb").read(), 0
        while offset < len(data):
            (length,) = struct.unpack_from("<Q", data, offset)
            records.append(data[offset + 12 : offset + 12 + length])
            offset += 12 + length + 4
        return records

    decoder = example_coder.ExamplesToRecordBatchDecoder()
    for split in ("train", "eval"):
        directory = os.path.join(examples.path, f"Split-{split}")
        records = [
            r for n in sorted(os.listdir(directory)) for r in read_tfrecords(os.path.join(directory, n))
        ]
        dataset = datastats.dataset_statistics(decoder.DecodeBatch(records), split)
        os.makedirs(os.path.join(statistics.path, f"Split-{split}"), exist_ok=True)
        with open(os.path.join(statistics.path, f"Split-{split}", "FeatureStats.pb"), "wb") as handle:
            handle.write(datastats.serialize(dataset))
    statistics.metadata.update({"split_names": '["train", "eval"]', "tfx_type": "ExampleStatistics"})


@component
def schema_gen(
    statistics: Input[Artifact], curated_schema_uri: str, max_categories: int, schema: Output[Artifact]
) -> None:
    """SchemaGen: a tensorflow-metadata `Schema` (`schema.pbtxt`) inferred from the train statistics -- type,
    presence, shape, a string domain for categorical features, and a numeric domain (the observed range
    widened by half its span) -- or, when curated_schema_uri is set, that curated schema as it is."""
    import os
    import urllib.parse

    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    if curated_schema_uri:
        if curated_schema_uri.startswith("file://") or "://" not in curated_schema_uri:
            path = urllib.parse.urlparse(curated_schema_uri).path or curated_schema_uri
            text = open(path).read()
        else:
            from slipway.storage import open_store

            parent, name = curated_schema_uri.rsplit("/", 1)
            text = open_store(parent).read_bytes(name).decode()
        curated = text_format.Parse(text, schema_pb2.Schema())
        os.makedirs(schema.path, exist_ok=True)
        open(os.path.join(schema.path, "schema.pbtxt"), "w").write(text_format.MessageToString(curated))
        schema.metadata.update({"tfx_type": "Schema", "curated": True})
        return

    from slipway.datastats import schema as datastats_schema  # shared with the operator's drift trigger
    from slipway.datastats import statistics as datastats

    train = datastats.parse(
        open(os.path.join(statistics.path, "Split-train", "FeatureStats.pb"), "rb").read()
    )
    os.makedirs(schema.path, exist_ok=True)
    inferred = datastats_schema.infer(train, max_categories)
    open(os.path.join(schema.path, "schema.pbtxt"), "w").write(datastats_schema.to_text(inferred))
    schema.metadata.update({"tfx_type": "Schema", "curated": False})


@component
def example_validator(
    statistics: Input[Artifact],
    schema: Input[Artifact],
    categorical_drift_threshold: float,
    numeric_drift_threshold: float,
    fail_on_anomalies: bool,
    anomalies: Output[Artifact],
) -> int:
    """ExampleValidator: each split's statistics against the schema (missing columns, unknown categories,
    values outside the domain, type changes) and eval against train (L-infinity distance of categorical
    frequencies, Jensen-Shannon divergence of numeric histograms). Writes `Split-*/SchemaDiff.pb`
    (tensorflow-metadata `Anomalies`); fails the run on anomalies unless fail_on_anomalies is false."""
    import json
    import os

    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

    from slipway.datastats import compare  # shared with the operator's drift trigger
    from slipway.datastats import statistics as datastats

    def load_statistics(split: str) -> statistics_pb2.DatasetFeatureStatistics:
        return datastats.parse(
            open(os.path.join(statistics.path, f"Split-{split}", "FeatureStats.pb"), "rb").read()
        )

    spec = text_format.Parse(open(os.path.join(schema.path, "schema.pbtxt")).read(), schema_pb2.Schema())
    train, evaluation = load_statistics("train"), load_statistics("eval")
    per_split = {
        "train": compare.schema_anomalies(train, spec),
        "eval": compare.schema_anomalies(evaluation, spec),
    }
    scores = compare.drift(evaluation, train, categorical_drift_threshold, numeric_drift_threshold)
    for name, reasons in compare.drift_anomalies(scores, "eval/train").items():
        per_split["eval"].setdefault(name, []).extend(reasons)
    summary = []
    for split, found in per_split.items():
        os.makedirs(os.path.join(anomalies.path, f"Split-{split}"), exist_ok=True)
        with open(os.path.join(anomalies.path, f"Split-{split}", "SchemaDiff.pb"), "wb") as handle:
            handle.write(compare.as_proto(found, spec).SerializeToString())
        for name, reasons in sorted(found.items()):
            summary.extend(f"{split}/{name}: {compare.reason_name(kind)} ({text})" for kind, text in reasons)
    anomalies.metadata.update({"tfx_type": "ExampleAnomalies", "anomalies": json.dumps(summary)})
    if summary:
        print("anomalies:\n  " + "\n  ".join(summary))
    if summary and fail_on_anomalies:
        raise RuntimeError(f"ExampleValidator found {len(summary)} anomalies: " + "; ".join(summary[:8]))
    return len(summary)


@component
def transform(
    examples: Input[Dataset],
    schema: Input[Artifact],
    label: str,
    beam_pipeline_args: str,
    transform_graph: Output[Artifact],
) -> None:
    """Transform: a TF Transform preprocessing_fn -- z-score for numeric features (missing -> 0, the mean),
    a vocabulary for categorical ones -- analysed over the train split on Beam. The transform graph it
    writes is embedded into the exported model by the Trainer, so serving takes raw features."""
    import os
    import shlex
    import tempfile

    import apache_beam as beam
    import tensorflow as tf
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io
    from tfx_bsl.public import tfxio

    spec = text_format.Parse(open(os.path.join(schema.path, "schema.pbtxt")).read(), schema_pb2.Schema())
    numeric = sorted(
        f.name for f in spec.feature if f.type in (schema_pb2.INT, schema_pb2.FLOAT) and f.name != label
    )
    categorical = sorted(f.name for f in spec.feature if f.type == schema_pb2.BYTES and f.name != label)

    def dense(value: tf.Tensor | tf.SparseTensor, default: tf.Tensor | float | str) -> tf.Tensor:
        """[batch, 1] dense or sparse (missing values) -> [batch], absent values replaced by default."""
        if isinstance(value, tf.SparseTensor):
            value = tf.sparse.to_dense(
                tf.SparseTensor(value.indices, value.values, [value.dense_shape[0], 1]),
                default_value=tf.cast(default, value.dtype),
            )
        return tf.reshape(value, [-1])

    def preprocessing_fn(inputs: dict) -> dict:
        outputs = {}
        for name in numeric:
            value = inputs[name]
            if isinstance(value, tf.SparseTensor):
                value = tf.SparseTensor(value.indices, tf.cast(value.values, tf.float32), value.dense_shape)
            else:
                value = tf.cast(value, tf.float32)
            # z-score over the present values, then missing -> 0 (the mean): one analysis pass, not two.
            outputs[f"{name}_xf"] = dense(tft.scale_to_z_score(value), 0.0)
        for name in categorical:
            outputs[f"{name}_xf"] = tft.compute_and_apply_vocabulary(
                dense(inputs[name], ""), num_oov_buckets=1, vocab_filename=name
            )
        if label in inputs:
            outputs[label] = dense(inputs[label], "")
        return outputs

    train_pattern = os.path.join(examples.path, "Split-train", "*")
    options = PipelineOptions(shlex.split(beam_pipeline_args))
    with beam.Pipeline(options=options) as pipeline, tft_beam.Context(temp_dir=tempfile.mkdtemp()):
        source = tfxio.TFExampleRecord(file_pattern=train_pattern, schema=spec)
        raw = pipeline | "ReadTrain" >> source.BeamSource()
        transform_fn = (raw, source.TensorAdapterConfig()) | tft_beam.AnalyzeDataset(preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(transform_graph.path)
    # TFTransformOutput reads the raw (input) schema from metadata/, beside transform_fn/.
    metadata_io.write_metadata(
        dataset_metadata.DatasetMetadata(spec), os.path.join(transform_graph.path, "metadata")
    )
    transform_graph.metadata.update(
        {"tfx_type": "TransformGraph", "numeric": ",".join(numeric), "categorical": ",".join(categorical)}
    )


@component
def trainer(
    examples: Input[Dataset],
    schema: Input[Artifact],
    transform_graph: Input[Artifact],
    label: str,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    hidden_units: int,
    seed: int,
    model: Output[Model],
) -> None:
    """Trainer: a Keras classifier on the transformed features. The exported SavedModel (`Format-Serving/`)
    embeds the transform graph and has two signatures: `serving_default` takes raw features as batched 1-D
    tensors (TF Serving REST `{"instances": [{feature: value}, ...]}`) and returns `probabilities` and the
    predicted `<label>`; `serving_examples` takes serialized tf.Examples (what TFMA feeds it)."""
    import os

    import tensorflow as tf
    import tensorflow_transform as tft
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    tf.keras.utils.set_random_seed(seed)
    spec = text_format.Parse(open(os.path.join(schema.path, "schema.pbtxt")).read(), schema_pb2.Schema())
    domains = {d.name: list(d.value) for d in spec.string_domain}
    label_feature = next(f for f in spec.feature if f.name == label)
    classes = sorted(domains[label_feature.domain])
    transform_output = tft.TFTransformOutput(transform_graph.path)
    raw_spec = transform_output.raw_feature_spec()
    feature_names = sorted(n for n in raw_spec if n != label)
    class_table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(classes), tf.range(len(classes), dtype=tf.int64)), -1
    )

    def dataset(split: str, shuffle: bool) -> tf.data.Dataset:
        files = tf.io.gfile.glob(os.path.join(examples.path, f"Split-{split}", "*"))
        layer = transform_output.transform_features_layer()

        def to_features(serialized: tf.Tensor) -> tuple:
            transformed = layer(tf.io.parse_example(serialized, raw_spec))
            target = class_table.lookup(transformed.pop(label))
            return transformed, target

        # Transform once (in large batches), keep the transformed rows in memory for every epoch.
        data = tf.data.TFRecordDataset(files).batch(4096).map(to_features).unbatch()
        data = data.filter(lambda _, y: y >= 0).cache()
        if shuffle:
            data = data.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
        return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    transformed_spec = transform_output.transformed_feature_spec()
    inputs = {
        name: tf.keras.Input(shape=(), name=name, dtype=transformed_spec[name].dtype)
        for name in sorted(transformed_spec)
        if name != label
    }
    vocabulary_sizes = {
        name: transform_output.vocabulary_size_by_name(name[: -len("_xf")]) + 1
        for name, value in inputs.items()
        if value.dtype == tf.int64
    }
    encoded = [
        tf.keras.layers.CategoryEncoding(vocabulary_sizes[name], output_mode="one_hot")(value)
        if name in vocabulary_sizes
        else tf.keras.layers.Reshape((1,))(value)
        for name, value in inputs.items()
    ]
    hidden = tf.keras.layers.Dense(hidden_units, activation="relu")(tf.keras.layers.Concatenate()(encoded))
    hidden = tf.keras.layers.Dense(hidden_units, activation="relu")(hidden)
    probabilities = tf.keras.layers.Dense(len(classes), activation="softmax")(hidden)
    net = tf.keras.Model(inputs, probabilities)
    net.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["sparse_categorical_accuracy"],
    )
    history = net.fit(dataset("train", shuffle=True), epochs=epochs, verbose=0)

    class ServingModule(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.tft_layer = transform_output.transform_features_layer()
            self.classes = tf.constant(classes)

        def predict(self, raw: dict) -> dict:
            transformed = self.tft_layer(raw)
            transformed.pop(label, None)
            scores = self.net(transformed)
            batch = tf.shape(scores)[0]
            return {
                "probabilities": scores,
                label: tf.gather(self.classes, tf.argmax(scores, axis=1)),
                "all_classes": tf.tile(tf.expand_dims(self.classes, 0), [batch, 1]),
            }

    module = ServingModule()

    def raw_tensor(name: str, value: tf.Tensor) -> tf.Tensor | tf.SparseTensor:
        """A batched 1-D input -> the representation the transform graph was analysed with."""
        feature_spec = raw_spec[name]
        value = tf.cast(value, feature_spec.dtype)
        if isinstance(feature_spec, tf.io.VarLenFeature):
            count = tf.shape(value, out_type=tf.int64)[0]
            indices = tf.stack([tf.range(count), tf.zeros([count], tf.int64)], axis=1)
            return tf.SparseTensor(indices, value, tf.stack([count, tf.constant(1, tf.int64)]))
        return tf.reshape(value, [-1, 1])

    serving_inputs = {
        name: tf.TensorSpec([None], tf.string if raw_spec[name].dtype == tf.string else tf.float32, name=name)
        for name in feature_names
    }

    @tf.function(input_signature=[serving_inputs])
    def serve_raw(features: dict) -> dict:
        outputs = module.predict({name: raw_tensor(name, value) for name, value in features.items()})
        return {"probabilities": outputs["probabilities"], label: outputs[label]}

    example_spec = {name: value for name, value in raw_spec.items() if name != label}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(serialized: tf.Tensor) -> dict:
        return module.predict(tf.io.parse_example(serialized, example_spec))

    export_dir = os.path.join(model.path, "Format-Serving")
    tf.saved_model.save(
        module,
        export_dir,
        signatures={
            "serving_default": serve_raw.get_concrete_function(),
            "serving_examples": serve_examples.get_concrete_function(),
        },
    )
    model.metadata.update(
        {
            "tfx_type": "Model",
            "classes": ",".join(classes),
            "train_accuracy": float(history.history["sparse_categorical_accuracy"][-1]),
            "train_loss": float(history.history["loss"][-1]),
        }
    )


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
    import urllib.parse

    import tensorflow_model_analysis as tfma
    from apache_beam.options.pipeline_options import PipelineOptions
    from tensorflow_model_analysis.proto import config_pb2

    def local_model_dir(uri: str) -> str:
        if uri.startswith("file://") or "://" not in uri:
            return urllib.parse.urlparse(uri).path if uri.startswith("file://") else uri
        return uri  # gs:// and s3:// are read by TensorFlow's own file systems

    def threshold(lower: float | None, change: float | None) -> config_pb2.MetricThreshold:
        result = config_pb2.MetricThreshold()
        if lower is not None:
            result.value_threshold.lower_bound.value = lower
        if change is not None:
            result.change_threshold.direction = config_pb2.MetricDirection.HIGHER_IS_BETTER
            result.change_threshold.absolute.value = -change
        return result

    has_baseline = bool(baseline_model_uri)
    model_specs = [config_pb2.ModelSpec(name="candidate", signature_name="serving_examples", label_key=label)]
    if has_baseline:
        model_specs.append(
            config_pb2.ModelSpec(
                name="baseline", signature_name="serving_examples", label_key=label, is_baseline=True
            )
        )
    accuracy = config_pb2.MetricConfig(
        class_name="SparseCategoricalAccuracy",
        threshold=threshold(min_accuracy, max_accuracy_drop if has_baseline else None),
    )
    config = config_pb2.EvalConfig(
        model_specs=model_specs,
        slicing_specs=[config_pb2.SlicingSpec()],
        metrics_specs=[
            config_pb2.MetricsSpec(
                metrics=[
                    config_pb2.MetricConfig(class_name="ExampleCount"),
                    accuracy,
                    config_pb2.MetricConfig(class_name="SparseCategoricalCrossentropy"),
                    config_pb2.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
                ]
            )
        ],
    )
    shared = [
        tfma.default_eval_shared_model(
            os.path.join(model.path, "Format-Serving"), model_name="candidate", eval_config=config
        )
    ]
    if has_baseline:
        shared.append(
            tfma.default_eval_shared_model(
                local_model_dir(baseline_model_uri), model_name="baseline", eval_config=config
            )
        )
    os.makedirs(evaluation.path, exist_ok=True)
    tfma.run_model_analysis(
        eval_shared_model=shared if has_baseline else shared[0],
        eval_config=config,
        data_location=os.path.join(examples.path, "Split-eval", "*"),
        output_path=evaluation.path,
        pipeline_options=PipelineOptions(shlex.split(beam_pipeline_args)),
    )
    result = tfma.load_metrics(evaluation.path)
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
    renamed = {k: v for k, v in renamed.items() if v is not None}
    validation = tfma.load_validation_result(evaluation.path)
    reasons = []
    for failure in validation.metric_validations_per_slice:
        for failed in failure.failures:
            name = failed.metric_key.name
            kind = "change against the baseline" if failed.metric_key.is_diff else "value"
            reasons.append(
                f"{name} {kind} {failed.metric_value.double_value.value:.4f} fails {failed.metric_threshold}"
            )
    blessed = bool(validation.validation_ok)
    if not blessed and not reasons:
        reasons.append("TFMA validation failed: " + str(validation)[:300])
    for name, value in renamed.items():
        metrics.log_metric(name, value)
    os.makedirs(blessing.path, exist_ok=True)
    open(os.path.join(blessing.path, "BLESSED" if blessed else "NOT_BLESSED"), "w").close()
    blessing.metadata.update(
        {"tfx_type": "ModelBlessing", "blessed": int(blessed), "current_model": model.uri}
    )
    if has_baseline:
        blessing.metadata["baseline_model"] = baseline_model_uri
    print(f"evaluator: {'BLESSED' if blessed else 'NOT_BLESSED'} {renamed} {reasons}")
    return json.dumps(
        {"blessed": blessed, "metrics": renamed, "reasons": [" ".join(r.split()) for r in reasons]}
    )


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
    prediction with a known class and probabilities summing to 1 comes back per instance within
    max_latency_ms. Writes INFRA_BLESSED or INFRA_NOT_BLESSED; returns {"blessed", "reason",
    "sampleRequest", "signature"} as JSON."""
    import json
    import os
    import struct
    import subprocess
    import sys

    import numpy as np
    from tfx_bsl.coders import example_coder

    def read_tfrecords(path: str) -> list[bytes]:
        records, data, offset = [], open(path, "rb").read(), 0
        while offset < len(data):
            (length,) = struct.unpack_from("<Q", data, offset)
            records.append(data[offset + 12 : offset + 12 + length])
            offset += 12 + length + 4
        return records

    def complete_instances(records: list[bytes], wanted: int) -> list[dict]:
        """The first examples with every feature present, as REST instances of raw features (no label)."""
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

    directory = os.path.join(examples.path, "Split-eval")
    records = [r for n in sorted(os.listdir(directory)) for r in read_tfrecords(os.path.join(directory, n))][
        :500
    ]
    request = {"instances": complete_instances(records, request_size)}
    probe = r"""
import json, sys, time
import tensorflow as tf
export_dir, label = sys.argv[1], sys.argv[2]
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
    export_dir = os.path.join(model.path, "Format-Serving")
    completed = subprocess.run(
        [sys.executable, "-c", probe, export_dir, label],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=300,
    )
    verdict: dict = {"blessed": False, "reason": "", "sampleRequest": request, "signature": None}
    if completed.returncode != 0:
        verdict["reason"] = "the model did not load or answer in a fresh process: " + completed.stderr[-800:]
    else:
        answer = json.loads(completed.stdout.strip().splitlines()[-1])
        classes = set(model.metadata.get("classes", "").split(","))
        probabilities = answer["outputs"].get("probabilities", [])
        predicted = answer["outputs"].get(label, [])
        problems = []
        if len(probabilities) != len(request["instances"]) or len(predicted) != len(request["instances"]):
            problems.append(f"{len(predicted)} predictions for {len(request['instances'])} instances")
        if any(abs(sum(row) - 1.0) > 1e-3 for row in probabilities):
            problems.append("probabilities do not sum to 1")
        if not set(predicted) <= classes:
            problems.append(f"unknown classes {sorted(set(predicted) - classes)}")
        if answer["latencyMs"] > max_latency_ms:
            problems.append(f"latency {answer['latencyMs']:.1f} ms > {max_latency_ms} ms")
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
    os.makedirs(infra_blessing.path, exist_ok=True)
    open(
        os.path.join(infra_blessing.path, "INFRA_BLESSED" if verdict["blessed"] else "INFRA_NOT_BLESSED"), "w"
    ).close()
    infra_blessing.metadata.update({"tfx_type": "InfraBlessing", "blessed": int(verdict["blessed"])})
    outcome = "INFRA_BLESSED" if verdict["blessed"] else "INFRA_NOT_BLESSED"
    print(f"infra_validator: {outcome} {verdict['reason']}")
    return json.dumps(verdict)


@component
def pusher(
    model: Input[Model],
    statistics: Input[Artifact],
    schema: Input[Artifact],
    evaluation: str,
    infra_validation: str,
    data_lineage: str,
    model_store_uri: str,
    model_name: str,
    model_version: int,
    pipeline_name: str,
    pipeline_digest: str,
    run_id: str,
    pipeline_job_name: str,
    data_uri: str,
    eval_buckets: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    hidden_units: int,
    seed: int,
    min_accuracy: float,
    max_accuracy_drop: float,
    baseline_model_uri: str,
    curated_schema_uri: str,
    pushed_model: Output[Artifact],
) -> str:
    """Pusher: only when the evaluator and the infra validator both blessed the model, copies the SavedModel
    to <model_store_uri>/<model_name>/<version>/ (version = model_version, or the next free integer when
    0), writing saved_model.pb LAST (TF Serving loads a version once it appears) after slipway-manifest.json.
    Otherwise pushes nothing. Either way returns push_result JSON: {"pushed", "reason", "version",
    "manifestUri"}."""
    import datetime
    import json
    import os
    import urllib.parse

    evaluated, validated = json.loads(evaluation), json.loads(infra_validation)
    parameters = {
        "data_uri": data_uri,
        "model_name": model_name,
        "eval_buckets": eval_buckets,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "hidden_units": hidden_units,
        "seed": seed,
        "min_accuracy": min_accuracy,
        "max_accuracy_drop": max_accuracy_drop,
        "baseline_model_uri": baseline_model_uri,
        "curated_schema_uri": curated_schema_uri,
    }

    def as_uri(uri_or_path: str) -> str:
        return uri_or_path if "://" in uri_or_path else f"file://{uri_or_path}"

    def not_pushed(reason: str) -> str:
        result = {"pushed": False, "reason": reason, "version": None, "manifestUri": None}
        pushed_model.metadata.update({"tfx_type": "PushedModel", "pushed": 0, "reason": reason})
        print(f"pusher: not pushed: {reason}")
        return json.dumps(result)

    reasons = []
    if not evaluated["blessed"]:
        reasons.append(
            "evaluator did not bless the model: " + ("; ".join(evaluated["reasons"]) or "NOT_BLESSED")
        )
    if not validated["blessed"]:
        reasons.append(
            "infra validator did not bless the model: " + (validated["reason"] or "INFRA_NOT_BLESSED")
        )
    if reasons:
        return not_pushed(" | ".join(reasons))

    class FileStore:
        def __init__(self, root: str) -> None:
            self.root = urllib.parse.urlparse(root).path if root.startswith("file://") else root

        def list_versions(self, name: str) -> list[int]:
            directory = os.path.join(self.root, name)
            return [int(n) for n in os.listdir(directory) if n.isdigit()] if os.path.isdir(directory) else []

        def write(self, key: str, data: bytes) -> None:
            path = os.path.join(self.root, key)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path + ".partial", "wb") as handle:
                handle.write(data)
            os.replace(path + ".partial", path)

    class ObjectStore:
        def __init__(self, root: str) -> None:
            from slipway.storage import open_store  # s3://, gs://, az://: the operator's storage layer

            self.store = open_store(root.rstrip("/"))

        def list_versions(self, name: str) -> list[int]:
            names = {info.key[len(name) + 1 :].split("/", 1)[0] for info in self.store.list(f"{name}/")}
            return [int(n) for n in names if n.isdigit()]

        def write(self, key: str, data: bytes) -> None:
            self.store.write_bytes(key, data)

    local = model_store_uri.startswith("file://") or "://" not in model_store_uri
    store = FileStore(model_store_uri) if local else ObjectStore(model_store_uri)
    version = model_version if model_version > 0 else max(store.list_versions(model_name), default=0) + 1
    if version in store.list_versions(model_name):
        return not_pushed(f"version {version} of {model_name} already exists in the store")
    root_uri = (
        model_store_uri.rstrip("/") if "://" in model_store_uri else f"file://{model_store_uri.rstrip('/')}"
    )
    version_uri = f"{root_uri}/{model_name}/{version}"
    export_dir = os.path.join(model.path, "Format-Serving")
    files = sorted(
        os.path.relpath(os.path.join(directory, name), export_dir)
        for directory, _, names in os.walk(export_dir)
        for name in names
    )
    manifest = {
        "schemaVersion": 1,
        "modelName": model_name,
        "version": version,
        "uri": version_uri,
        "format": "SavedModel",
        "createdAt": datetime.datetime.now(datetime.UTC)
        .replace(microsecond=0)
        .isoformat()
        .replace("+00:00", "Z"),
        "metrics": evaluated["metrics"],
        "blessings": {"evaluator": True, "infraValidator": True},
        "signature": validated["signature"],
        "sampleRequest": validated["sampleRequest"],
        "lineage": {
            "pipeline": pipeline_name,
            "pipelineDigest": pipeline_digest,
            "runId": run_id or pipeline_job_name,
            "parameters": {k: str(v) for k, v in parameters.items()},
            "data": json.loads(data_lineage),
            "schemaUri": as_uri(schema.uri.rstrip("/") + "/schema.pbtxt"),
            "statisticsUri": as_uri(statistics.uri.rstrip("/") + "/Split-train/FeatureStats.pb"),
        },
    }
    for relative in [f for f in files if f != "saved_model.pb"]:
        store.write(
            f"{model_name}/{version}/{relative}", open(os.path.join(export_dir, relative), "rb").read()
        )
    store.write(f"{model_name}/{version}/slipway-manifest.json", json.dumps(manifest, indent=2).encode())
    store.write(
        f"{model_name}/{version}/saved_model.pb",
        open(os.path.join(export_dir, "saved_model.pb"), "rb").read(),
    )
    pushed_model.metadata.update({"tfx_type": "PushedModel", "pushed": 1, "pushed_destination": version_uri})
    print(f"pusher: pushed {version_uri}")
    return json.dumps(
        {
            "pushed": True,
            "reason": "",
            "version": version,
            "manifestUri": f"{version_uri}/slipway-manifest.json",
        }
    )

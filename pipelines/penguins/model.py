"""The penguins model: the built-in pipeline's default module file, with TFX's module-file contract --
`preprocessing_fn` (TF Transform) and `run_fn` (the Trainer) -- and the Keras classifier with the serving
signatures it is exported with. Any CSV with a string label trains the same way: the label's name comes from
custom_config, the features' kinds from their types.

The pipeline passes this file's text to its steps as the `module_source` parameter's default (a module file
of your own replaces it: spec.pipeline.builtin.moduleFile); they run it as TFX runs a module file."""

from __future__ import annotations

from typing import TYPE_CHECKING

import tensorflow as tf
import tensorflow_transform as tft
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx_bsl.public import tfxio

if TYPE_CHECKING:
    from types import SimpleNamespace as FnArgs


def dense(value: tf.Tensor | tf.SparseTensor, default: tf.Tensor | float | str) -> tf.Tensor:
    """[batch, 1] dense or sparse (missing values) -> [batch], absent values replaced by default."""
    if isinstance(value, tf.SparseTensor):
        value = tf.sparse.to_dense(
            tf.SparseTensor(value.indices, value.values, [value.dense_shape[0], 1]),
            default_value=tf.cast(default, value.dtype),
        )
    return tf.reshape(value, [-1])


def preprocessing_fn(inputs: dict, custom_config: dict) -> dict:
    """z-score for numeric features (missing -> 0, the mean), a vocabulary for string ones (one OOV bucket);
    the label (custom_config["label"]) passes through. Outputs are named `<feature>_xf`."""
    label = custom_config["label"]
    outputs = {}
    for name, value in sorted(inputs.items()):
        if name == label:
            outputs[label] = dense(value, "" if value.dtype == tf.string else 0)
        elif value.dtype == tf.string:
            outputs[f"{name}_xf"] = tft.compute_and_apply_vocabulary(
                dense(value, ""), num_oov_buckets=1, vocab_filename=name
            )
        else:
            if isinstance(value, tf.SparseTensor):
                value = tf.SparseTensor(value.indices, tf.cast(value.values, tf.float32), value.dense_shape)
            else:
                value = tf.cast(value, tf.float32)
            # z-score over the present values, then missing -> 0 (the mean): one analysis pass, not two.
            outputs[f"{name}_xf"] = dense(tft.scale_to_z_score(value), 0.0)
    return outputs


def run_fn(fn_args: FnArgs) -> None:
    """Trains the classifier on fn_args.train_files, Transform's output (custom_config: label, epochs,
    batch_size, learning_rate, hidden_units, seed; a tuner's hyperparameters win over the last two) and
    exports it to fn_args.serving_model_dir with the transform graph inside."""
    config = fn_args.custom_config
    label = config["label"]
    tf.keras.utils.set_random_seed(int(config["seed"]))
    with open(fn_args.schema_path) as handle:
        schema = text_format.Parse(handle.read(), schema_pb2.Schema())
    feature = next(f for f in schema.feature if f.name == label)
    domains = {d.name: list(d.value) for d in schema.string_domain}
    classes = sorted(feature.string_domain.value or domains[feature.domain])
    tuned = (fn_args.hyperparameters or {}).get("values", {})
    transform_output = tft.TFTransformOutput(fn_args.transform_output)
    net = classifier(
        transform_output,
        label,
        len(classes),
        int(tuned.get("hidden_units", config["hidden_units"])),
        float(tuned.get("learning_rate", config["learning_rate"])),
    )
    train = training_data(
        fn_args, transform_output, label, classes, int(config["batch_size"]), int(config["seed"])
    )
    net.fit(train, epochs=int(config["epochs"]), verbose=0)
    export_serving_model(net, transform_output, label, classes, fn_args.serving_model_dir)


def training_data(
    fn_args: FnArgs,
    transform_output: tft.TFTransformOutput,
    label: str,
    classes: list[str],
    batch_size: int,
    seed: int,
) -> tf.data.Dataset:
    """The transformed train examples (what Transform wrote) and class indices, shuffled; rows whose label is
    not a known class are dropped."""
    class_table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(classes), tf.range(len(classes), dtype=tf.int64)), -1
    )
    data = fn_args.data_accessor.tf_dataset_factory(
        fn_args.train_files,
        tfxio.TensorFlowDatasetOptions(batch_size=4096, num_epochs=1, shuffle=False, label_key=label),
        transform_output.transformed_metadata.schema,
    )
    data = data.map(lambda features, target: (features, class_table.lookup(target))).unbatch()
    # Keep the transformed rows in memory for every epoch.
    data = data.filter(lambda _, y: y >= 0).cache()
    data = data.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def classifier(
    transform_output: tft.TFTransformOutput,
    label: str,
    class_count: int,
    hidden_units: int,
    learning_rate: float,
) -> tf.keras.Model:
    """Two hidden ReLU layers on the transformed features (one-hot for vocabularies), softmax over classes."""
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
    probabilities = tf.keras.layers.Dense(class_count, activation="softmax")(hidden)
    net = tf.keras.Model(inputs, probabilities)
    net.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["sparse_categorical_accuracy"],
    )
    return net


def raw_tensor(
    feature_spec: tf.io.FixedLenFeature | tf.io.VarLenFeature, value: tf.Tensor
) -> tf.Tensor | tf.SparseTensor:
    """A batched 1-D input -> the representation the transform graph was analysed with."""
    value = tf.cast(value, feature_spec.dtype)
    if isinstance(feature_spec, tf.io.VarLenFeature):
        count = tf.shape(value, out_type=tf.int64)[0]
        indices = tf.stack([tf.range(count), tf.zeros([count], tf.int64)], axis=1)
        return tf.SparseTensor(indices, value, tf.stack([count, tf.constant(1, tf.int64)]))
    return tf.reshape(value, [-1, 1])


def export_serving_model(
    net: tf.keras.Model,
    transform_output: tft.TFTransformOutput,
    label: str,
    classes: list[str],
    export_dir: str,
) -> None:
    """A SavedModel with the transform graph inside and two signatures: `serving_default` takes raw features
    as batched 1-D tensors (TF Serving REST `{"instances": [{feature: value}, ...]}`) and returns
    `probabilities` and the predicted `<label>`; `serving_examples` takes serialized tf.Examples (what TFMA
    feeds it) and also returns `all_classes`."""
    raw_spec = transform_output.raw_feature_spec()
    feature_names = sorted(n for n in raw_spec if n != label)

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
    serving_inputs = {
        name: tf.TensorSpec([None], tf.string if raw_spec[name].dtype == tf.string else tf.float32, name=name)
        for name in feature_names
    }

    @tf.function(input_signature=[serving_inputs])
    def serve_raw(features: dict) -> dict:
        raw = {name: raw_tensor(raw_spec[name], value) for name, value in features.items()}
        outputs = module.predict(raw)
        return {"probabilities": outputs["probabilities"], label: outputs[label]}

    example_spec = {name: value for name, value in raw_spec.items() if name != label}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(serialized: tf.Tensor) -> dict:
        return module.predict(tf.io.parse_example(serialized, example_spec))

    tf.saved_model.save(
        module,
        export_dir,
        signatures={
            "serving_default": serve_raw.get_concrete_function(),
            "serving_examples": serve_examples.get_concrete_function(),
        },
    )

"""A regression module file: a penguin's body mass in grams from its species, island, sex and bill and
flipper measurements, with a KerasTuner search over the network's width and learning rate.

Written as for TFX's Transform, Tuner and Trainer, with its `from tfx import v1 as tfx` removed: the
`tfx.components` it names are what Slipway puts in a module file's globals. Run it with
spec.pipeline.builtin.moduleFile and `spec.parameters: {label: body_mass_g}`."""

import keras_tuner
import tensorflow as tf
import tensorflow_transform as tft
from tfx_bsl.public import tfxio

LABEL = "body_mass_g"
TARGET = "body_mass_kg"  # the label, transformed: the network learns kilograms, serving answers grams
NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]
CATEGORICAL = ["species", "island", "sex"]
FLIPPER_BUCKETS = 4
BATCH_SIZE = 16


def _dense(value, default):
    """[batch, 1] dense or sparse (missing values) -> [batch], absent values replaced by default."""
    if isinstance(value, tf.SparseTensor):
        value = tf.sparse.to_dense(
            tf.SparseTensor(value.indices, value.values, [value.dense_shape[0], 1]),
            default_value=tf.cast(default, value.dtype),
        )
    return tf.reshape(value, [-1])


def _as_float(value):
    if isinstance(value, tf.SparseTensor):
        return tf.SparseTensor(value.indices, tf.cast(value.values, tf.float32), value.dense_shape)
    return tf.cast(value, tf.float32)


def preprocessing_fn(inputs):
    """z-scores of the measurements, the flipper length in quartile buckets, vocabularies of the
    categories; the label in kilograms (missing -> 0, dropped from training)."""
    outputs = {}
    for name in NUMERIC:
        outputs[f"{name}_xf"] = _dense(tft.scale_to_z_score(_as_float(inputs[name])), 0.0)
    outputs["flipper_bucket_xf"] = tft.bucketize(outputs["flipper_length_mm_xf"], FLIPPER_BUCKETS)
    for name in CATEGORICAL:
        outputs[f"{name}_xf"] = tft.compute_and_apply_vocabulary(
            _dense(inputs[name], ""), num_oov_buckets=1, vocab_filename=name
        )
    if LABEL in inputs:
        outputs[TARGET] = _dense(_as_float(inputs[LABEL]), 0.0) / 1000.0
    return outputs


def _dataset(file_pattern, data_accessor, tf_transform_output):
    dataset = data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=256, label_key=TARGET, num_epochs=1, shuffle=False),
        tf_transform_output.transformed_metadata.schema,
    )
    dataset = dataset.unbatch().filter(lambda _, mass: mass > 0)
    return dataset.cache().batch(BATCH_SIZE)


def _hyperparameters():
    hp = keras_tuner.HyperParameters()
    hp.Int("units", 8, 32, step=8, default=16)
    hp.Choice("learning_rate", [0.003, 0.01, 0.03], default=0.01)
    return hp


def _model(hp, tf_transform_output):
    spec = tf_transform_output.transformed_feature_spec()
    inputs = {
        name: tf.keras.Input(shape=(), name=name, dtype=spec[name].dtype)
        for name in sorted(spec)
        if name != TARGET
    }
    sizes = {f"{name}_xf": tf_transform_output.vocabulary_size_by_name(name) + 1 for name in CATEGORICAL}
    sizes["flipper_bucket_xf"] = FLIPPER_BUCKETS
    encoded = [
        tf.keras.layers.CategoryEncoding(sizes[name], output_mode="one_hot")(value)
        if name in sizes
        else tf.keras.layers.Reshape((1,))(value)
        for name, value in inputs.items()
    ]
    hidden = tf.keras.layers.Dense(hp.get("units"), activation="relu")(tf.keras.layers.Concatenate()(encoded))
    net = tf.keras.Model(inputs, tf.keras.layers.Dense(1)(hidden))
    net.compile(optimizer=tf.keras.optimizers.Adam(hp.get("learning_rate")), loss="mse", metrics=["mae"])
    return net


def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    tuner = keras_tuner.RandomSearch(
        lambda hp: _model(hp, tf_transform_output),
        max_trials=20,
        hyperparameters=_hyperparameters(),
        allow_new_entries=False,
        objective=keras_tuner.Objective("val_loss", "min"),
        directory=fn_args.working_dir,
        project_name="body_mass",
        seed=int(fn_args.custom_config["seed"]),
    )
    return tfx.components.TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "x": _dataset(fn_args.train_files, fn_args.data_accessor, tf_transform_output),
            "validation_data": _dataset(fn_args.eval_files, fn_args.data_accessor, tf_transform_output),
            "epochs": int(fn_args.custom_config["epochs"]),
            "verbose": 0,
        },
    )


def _raw_tensor(feature_spec, value):
    """A batched 1-D serving input -> the representation the transform graph was analysed with."""
    value = tf.cast(value, feature_spec.dtype)
    if isinstance(feature_spec, tf.io.VarLenFeature):
        count = tf.shape(value, out_type=tf.int64)[0]
        indices = tf.stack([tf.range(count), tf.zeros([count], tf.int64)], axis=1)
        return tf.SparseTensor(indices, value, tf.stack([count, tf.constant(1, tf.int64)]))
    return tf.reshape(value, [-1, 1])


def _export(net, tf_transform_output, export_dir):
    """`serving_default` on raw features (batched 1-D tensors), `serving_examples` on serialized
    tf.Examples; both answer `body_mass_g` in grams, the transform graph inside."""
    raw_spec = {name: spec for name, spec in tf_transform_output.raw_feature_spec().items() if name != LABEL}

    class Serving(tf.Module):
        def __init__(self):
            super().__init__()
            self.net = net
            self.tft_layer = tf_transform_output.transform_features_layer()

        def predict(self, raw):
            transformed = self.tft_layer(raw)
            transformed.pop(TARGET, None)
            return {LABEL: tf.reshape(self.net(transformed), [-1]) * 1000.0}

    serving = Serving()
    inputs = {
        name: tf.TensorSpec([None], tf.string if spec.dtype == tf.string else tf.float32, name=name)
        for name, spec in sorted(raw_spec.items())
    }

    @tf.function(input_signature=[inputs])
    def serve_raw(features):
        return serving.predict({name: _raw_tensor(raw_spec[name], value) for name, value in features.items()})

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(serialized):
        return serving.predict(tf.io.parse_example(serialized, raw_spec))

    tf.saved_model.save(
        serving,
        export_dir,
        signatures={
            "serving_default": serve_raw.get_concrete_function(),
            "serving_examples": serve_examples.get_concrete_function(),
        },
    )


def run_fn(fn_args: tfx.components.FnArgs):
    tf.keras.utils.set_random_seed(int(fn_args.custom_config["seed"]))
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    if fn_args.hyperparameters:
        hp = keras_tuner.HyperParameters.from_config(fn_args.hyperparameters)
    else:
        hp = _hyperparameters()
    net = _model(hp, tf_transform_output)
    net.fit(
        _dataset(fn_args.train_files, fn_args.data_accessor, tf_transform_output),
        validation_data=_dataset(fn_args.eval_files, fn_args.data_accessor, tf_transform_output),
        epochs=int(fn_args.custom_config["epochs"]),
        verbose=0,
    )
    _export(net, tf_transform_output, fn_args.serving_model_dir)

"""Trainer: the model's Keras classifier trained on the transformed examples and exported for serving."""

from kfp.dsl import Artifact, Dataset, Input, Model, Output

from pipelines.penguins.components.base import component
from pipelines.penguins.model import classifier, export_serving_model, training_data


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

    from slipway.datastats import schema as datastats_schema

    tf.keras.utils.set_random_seed(seed)
    with open(os.path.join(schema.path, "schema.pbtxt")) as handle:
        spec = datastats_schema.parse(handle.read())
    domains = {d.name: list(d.value) for d in spec.string_domain}
    label_feature = next(f for f in spec.feature if f.name == label)
    classes = sorted(domains[label_feature.domain])
    transform_output = tft.TFTransformOutput(transform_graph.path)
    net = classifier(transform_output, label, len(classes), hidden_units, learning_rate)
    train = training_data(
        os.path.join(examples.path, "Split-train", "*"), transform_output, label, classes, batch_size, seed
    )
    history = net.fit(train, epochs=epochs, verbose=0)
    export_serving_model(net, transform_output, label, classes, os.path.join(model.path, "Format-Serving"))
    model.metadata.update(
        {
            "tfx_type": "Model",
            "classes": ",".join(classes),
            "train_accuracy": float(history.history["sparse_categorical_accuracy"][-1]),
            "train_loss": float(history.history["loss"][-1]),
        }
    )

"""Transform: the model's preprocessing_fn analysed over the train split on Beam (TF Transform)."""

from kfp.dsl import Artifact, Dataset, Input, Output

from pipelines.penguins.components.base import component
from pipelines.penguins.model import preprocessing_fn


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
    import tensorflow_transform.beam as tft_beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io
    from tfx_bsl.public import tfxio

    from slipway.datastats import schema as datastats_schema

    with open(os.path.join(schema.path, "schema.pbtxt")) as handle:
        spec = datastats_schema.parse(handle.read())
    numeric = sorted(
        f.name for f in spec.feature if f.type in (schema_pb2.INT, schema_pb2.FLOAT) and f.name != label
    )
    categorical = sorted(f.name for f in spec.feature if f.type == schema_pb2.BYTES and f.name != label)

    def analysed(inputs: dict) -> dict:
        return preprocessing_fn(inputs, numeric, categorical, label)

    train_pattern = os.path.join(examples.path, "Split-train", "*")
    options = PipelineOptions(shlex.split(beam_pipeline_args))
    with beam.Pipeline(options=options) as pipeline, tft_beam.Context(temp_dir=tempfile.mkdtemp()):
        source = tfxio.TFExampleRecord(file_pattern=train_pattern, schema=spec)
        raw = pipeline | "ReadTrain" >> source.BeamSource()
        transform_fn = (raw, source.TensorAdapterConfig()) | tft_beam.AnalyzeDataset(analysed)
        _ = transform_fn | tft_beam.WriteTransformFn(transform_graph.path)
    # TFTransformOutput reads the raw (input) schema from metadata/, beside transform_fn/.
    metadata_io.write_metadata(
        dataset_metadata.DatasetMetadata(spec), os.path.join(transform_graph.path, "metadata")
    )
    transform_graph.metadata.update(
        {"tfx_type": "TransformGraph", "numeric": ",".join(numeric), "categorical": ",".join(categorical)}
    )

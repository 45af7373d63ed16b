"""Transform: the module file's preprocessing_fn analysed over the train split on Beam (TF Transform)."""

from kfp.dsl import Artifact, Dataset, Input, Output

from pipelines.penguins.components.base import component
from pipelines.penguins.module_file import (
    call_module_function,
    check_module,
    custom_config_of,
    load_module,
    module_text,
)


@component
def transform(
    examples: Input[Dataset],
    schema: Input[Artifact],
    label: str,
    module_file: str,
    module_source: str,
    custom_config: dict,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    hidden_units: int,
    seed: int,
    beam_pipeline_args: str,
    transform_graph: Output[Artifact],
    transformed_examples: Output[Dataset],
) -> None:
    """Transform: the module file's `preprocessing_fn(inputs[, custom_config])` analysed over the train
    split on Beam. The module is checked first (a syntax error, or no preprocessing_fn or run_fn, fails
    the run here, naming both). Writes the transform graph and, as TFX does, the transformed examples of
    both splits, which the Trainer and Tuner hand run_fn and tuner_fn (fn_args.train_files, eval_files);
    run_fn embeds the transform graph in the exported model, so serving takes raw features."""
    import os
    import shlex
    import tempfile

    import apache_beam as beam
    import tensorflow_transform.beam as tft_beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io
    from tfx_bsl.coders import example_coder
    from tfx_bsl.public import tfxio

    from slipway.datastats import schema as datastats_schema

    name = module_file
    source = module_text(module_file, module_source)
    check_module(name, source, ["preprocessing_fn", "run_fn"])
    module = load_module(name, source, ["preprocessing_fn", "run_fn"])
    config = custom_config_of(label, epochs, batch_size, learning_rate, hidden_units, seed, custom_config)
    with open(os.path.join(schema.path, "schema.pbtxt")) as handle:
        spec = datastats_schema.parse(handle.read())

    def analysed(inputs: dict) -> dict:
        return call_module_function(name, module, "preprocessing_fn", inputs, config)

    def encoded(transformed: tuple) -> list:
        return example_coder.RecordBatchToExamplesEncoder().encode(transformed[0])

    options = PipelineOptions(shlex.split(beam_pipeline_args))
    with beam.Pipeline(options=options) as pipeline, tft_beam.Context(temp_dir=tempfile.mkdtemp()):
        records = {
            split: tfxio.TFExampleRecord(
                file_pattern=os.path.join(examples.path, f"Split-{split}", "*"), schema=spec
            )
            for split in ("train", "eval")
        }
        raw = {
            split: pipeline | f"Read{split.title()}" >> source.BeamSource()
            for split, source in records.items()
        }
        analysed_input = (raw["train"], records["train"].TensorAdapterConfig())
        transform_fn = analysed_input | tft_beam.AnalyzeDataset(analysed)
        _ = transform_fn | tft_beam.WriteTransformFn(transform_graph.path)
        # TFX's transformed_examples (gzipped TFRecords per split): what fn_args.train_files/eval_files name.
        for split, source in records.items():
            transformed, _ = (
                (raw[split], source.TensorAdapterConfig()),
                transform_fn,
            ) | f"Transform{split.title()}" >> tft_beam.TransformDataset(output_record_batches=True)
            prefix = os.path.join(transformed_examples.path, f"Split-{split}", "transformed_examples")
            _ = (
                transformed
                | f"Encode{split.title()}" >> beam.FlatMap(encoded)
                | f"Write{split.title()}" >> beam.io.WriteToTFRecord(prefix, file_name_suffix=".gz")
            )
    # TFTransformOutput reads the raw (input) schema from metadata/, beside transform_fn/.
    metadata_io.write_metadata(
        dataset_metadata.DatasetMetadata(spec), os.path.join(transform_graph.path, "metadata")
    )
    transform_graph.metadata.update({"tfx_type": "TransformGraph", "module_file": name})
    transformed_examples.metadata.update(
        {"split_names": '["train", "eval"]', "tfx_type": "Examples", "payload_format": "FORMAT_TF_EXAMPLE"}
    )

"""StatisticsGen, SchemaGen and ExampleValidator: the data's statistics, the schema they imply (or a curated
one), and the anomalies of each split against it. The computations are `slipway.datastats`, which the
operator's drift trigger uses too."""

from kfp.dsl import Artifact, Dataset, Input, Output

from pipelines.penguins.components.base import component
from pipelines.penguins.records import read_split
from pipelines.penguins.uris import read_uri


@component
def statistics_gen(examples: Input[Dataset], statistics: Output[Artifact]) -> None:
    """StatisticsGen: a tensorflow-metadata `DatasetFeatureStatisticsList` per split
    (`Split-*/FeatureStats.pb`): presence, numeric moments with a 10-bucket histogram, string top values;
    decoded with tfx-bsl."""
    import os

    from tfx_bsl.coders import example_coder

    from slipway.datastats import statistics as datastats  # shared with the operator's drift trigger

    decoder = example_coder.ExamplesToRecordBatchDecoder()
    for split in ("train", "eval"):
        dataset = datastats.dataset_statistics(decoder.DecodeBatch(read_split(examples.path, split)), split)
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

    from slipway.datastats import schema as datastats_schema  # shared with the operator's drift trigger
    from slipway.datastats import statistics as datastats

    if curated_schema_uri:
        chosen = datastats_schema.parse(read_uri(curated_schema_uri).decode())
    else:
        with open(os.path.join(statistics.path, "Split-train", "FeatureStats.pb"), "rb") as handle:
            chosen = datastats_schema.infer(datastats.parse(handle.read()), max_categories)
    os.makedirs(schema.path, exist_ok=True)
    with open(os.path.join(schema.path, "schema.pbtxt"), "w") as handle:
        handle.write(datastats_schema.to_text(chosen))
    schema.metadata.update({"tfx_type": "Schema", "curated": bool(curated_schema_uri)})


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

    from slipway.datastats import compare  # shared with the operator's drift trigger
    from slipway.datastats import schema as datastats_schema
    from slipway.datastats import statistics as datastats

    def load_statistics(split: str) -> "datastats.statistics_pb2.DatasetFeatureStatistics":
        with open(os.path.join(statistics.path, f"Split-{split}", "FeatureStats.pb"), "rb") as handle:
            return datastats.parse(handle.read())

    with open(os.path.join(schema.path, "schema.pbtxt")) as handle:
        spec = datastats_schema.parse(handle.read())
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

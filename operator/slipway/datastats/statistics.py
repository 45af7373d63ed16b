"""tensorflow-metadata `FeatureNameStatistics` from Arrow columns: presence, numeric moments with a
10-bucket histogram, string top values. Columns are lists of values per row (a tf.Example's shape); CSV
tables are converted to that shape first, so CSV batches and TFRecord splits give the same statistics."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from tensorflow_metadata.proto.v0 import statistics_pb2

CSV_NULLS = ["", "NA", "NaN"]


def read_csv(payloads: list[bytes]) -> pa.Table:
    """One table from CSV files that share a header (columns missing from some files become null)."""
    options = pcsv.ConvertOptions(null_values=CSV_NULLS, strings_can_be_null=True)
    tables = [pcsv.read_csv(pa.BufferReader(raw), convert_options=options) for raw in payloads]
    return pa.concat_tables(tables, promote_options="permissive")


def as_list_column(column: pa.ChunkedArray) -> pa.Array:
    """One value per row -> the list-of-values column a tf.Example encoding wants; null = absent."""
    values = column.combine_chunks()
    if pa.types.is_boolean(values.type):
        values = values.cast(pa.int64())
    if pa.types.is_floating(values.type):
        values = values.cast(pa.float32())
    elif pa.types.is_integer(values.type):
        values = values.cast(pa.int64())
    else:
        values = values.cast(pa.large_binary())
    present = pc.is_valid(values)
    counts = np.cumsum(present.to_numpy(zero_copy_only=False), dtype=np.int32)
    offsets = pa.array(np.concatenate([np.zeros(1, np.int32), counts]))
    return pa.ListArray.from_arrays(offsets, values.drop_null(), mask=pc.invert(present))


def as_record_batch(table: pa.Table) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [as_list_column(table.column(name)) for name in table.column_names], names=table.column_names
    )


def feature_statistics(name: str, column: pa.Array, rows: int) -> statistics_pb2.FeatureNameStatistics:
    feature = statistics_pb2.FeatureNameStatistics()
    feature.path.step.append(name)
    lengths = pc.list_value_length(column).fill_null(0).to_numpy(zero_copy_only=False)
    values = pc.list_flatten(column)
    present = int((lengths > 0).sum())
    common = statistics_pb2.CommonStatistics(
        num_non_missing=present,
        num_missing=rows - present,
        min_num_values=int(lengths[lengths > 0].min()) if present else 0,
        max_num_values=int(lengths.max()) if rows else 0,
        avg_num_values=float(lengths[lengths > 0].mean()) if present else 0.0,
        tot_num_values=int(lengths.sum()),
    )
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        feature.type = statistics_pb2.FeatureNameStatistics.INT
        if pa.types.is_floating(values.type):
            feature.type = statistics_pb2.FeatureNameStatistics.FLOAT
        numbers = values.to_numpy(zero_copy_only=False).astype("float64")
        numbers = numbers[~np.isnan(numbers)]
        stats = feature.num_stats
        stats.common_stats.CopyFrom(common)
        if numbers.size:
            stats.mean, stats.std_dev = float(numbers.mean()), float(numbers.std())
            stats.min, stats.max = float(numbers.min()), float(numbers.max())
            stats.median = float(np.median(numbers))
            stats.num_zeros = int((numbers == 0).sum())
            counts, edges = np.histogram(numbers, bins=10)
            histogram = stats.histograms.add(type=statistics_pb2.Histogram.STANDARD)
            for count, low, high in zip(counts, edges[:-1], edges[1:], strict=True):
                histogram.buckets.add(low_value=float(low), high_value=float(high), sample_count=float(count))
    else:
        feature.type = statistics_pb2.FeatureNameStatistics.STRING
        string_stats = feature.string_stats
        string_stats.common_stats.CopyFrom(common)
        frequencies = pc.value_counts(values).to_pylist()
        frequencies.sort(key=lambda item: (-item["counts"], item["values"]))
        string_stats.unique = len(frequencies)
        for rank, item in enumerate(frequencies):
            value = item["values"].decode() if isinstance(item["values"], bytes) else str(item["values"])
            string_stats.top_values.add(value=value, frequency=float(item["counts"]))
            string_stats.rank_histogram.buckets.add(
                low_rank=rank, high_rank=rank, label=value, sample_count=float(item["counts"])
            )
        if len(values):
            string_stats.avg_length = float(pc.mean(pc.binary_length(values)).as_py())
    return feature


def dataset_statistics(batch: pa.RecordBatch, name: str) -> statistics_pb2.DatasetFeatureStatistics:
    dataset = statistics_pb2.DatasetFeatureStatistics(name=name, num_examples=batch.num_rows)
    for feature_name, column in zip(batch.schema.names, batch.columns, strict=True):
        dataset.features.append(feature_statistics(feature_name, column, batch.num_rows))
    return dataset


def csv_statistics(payloads: list[bytes], name: str) -> statistics_pb2.DatasetFeatureStatistics:
    return dataset_statistics(as_record_batch(read_csv(payloads)), name)


def serialize(dataset: statistics_pb2.DatasetFeatureStatistics) -> bytes:
    """The `FeatureStats.pb` file TFX writes per split: a list holding one dataset."""
    return statistics_pb2.DatasetFeatureStatisticsList(datasets=[dataset]).SerializeToString()


def parse(raw: bytes) -> statistics_pb2.DatasetFeatureStatistics:
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    stats.ParseFromString(raw)
    if not stats.datasets:
        raise ValueError("no dataset in the statistics")
    return stats.datasets[0]

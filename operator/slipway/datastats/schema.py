"""A tensorflow-metadata `Schema` inferred from statistics, as the pipeline's SchemaGen does: type,
presence, shape, a string domain for categorical features (up to `max_categories` values), and a numeric
domain (the observed range widened by half its span)."""

from __future__ import annotations

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2


def infer_feature(
    feature_stats: statistics_pb2.FeatureNameStatistics, max_categories: int
) -> schema_pb2.Feature:
    name = feature_stats.path.step[0]
    feature = schema_pb2.Feature(name=name)
    kind = feature_stats.WhichOneof("stats")
    common = getattr(feature_stats, kind).common_stats
    feature.presence.min_count = 1
    if common.num_missing == 0 and common.max_num_values == 1:
        feature.presence.min_fraction = 1.0
        feature.shape.dim.add(size=1)
    else:
        feature.value_count.min = 1
        feature.value_count.max = max(1, common.max_num_values)
    if kind == "num_stats":
        low, high = feature_stats.num_stats.min, feature_stats.num_stats.max
        margin = (high - low) / 2
        if feature_stats.type == statistics_pb2.FeatureNameStatistics.INT:
            feature.type = schema_pb2.INT
            feature.int_domain.min, feature.int_domain.max = int(low - margin), int(high + margin + 1)
        else:
            feature.type = schema_pb2.FLOAT
            feature.float_domain.min, feature.float_domain.max = low - margin, high + margin
    else:
        feature.type = schema_pb2.BYTES
        values = [v.value for v in feature_stats.string_stats.top_values]
        if len(values) <= max_categories:
            feature.domain = name
    return feature


def infer(dataset: statistics_pb2.DatasetFeatureStatistics, max_categories: int) -> schema_pb2.Schema:
    inferred = schema_pb2.Schema()
    for feature_stats in dataset.features:
        feature = inferred.feature.add()
        feature.CopyFrom(infer_feature(feature_stats, max_categories))
        if feature.domain:
            inferred.string_domain.add(
                name=feature.name, value=sorted(v.value for v in feature_stats.string_stats.top_values)
            )
    return inferred


def to_text(schema: schema_pb2.Schema) -> str:
    """`schema.pbtxt`, as TFX writes it."""
    return str(text_format.MessageToString(schema))


def parse(text: str) -> schema_pb2.Schema:
    return text_format.Parse(text, schema_pb2.Schema())

"""Statistics against a schema (anomalies) and against reference statistics (drift): L-infinity distance
of categorical frequencies and Jensen-Shannon divergence of numeric histograms re-bucketed onto shared
edges. Reasons use tensorflow-metadata's `AnomalyInfo.Type` codes, as TFX's ExampleValidator does."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

Reason = anomalies_pb2.AnomalyInfo
Found = dict[str, list[tuple[int, str]]]
SHARED_BUCKETS = 20


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    measure: str  # "L-infinity" (categorical) or "Jensen-Shannon" (numeric)
    score: float
    threshold: float

    @property
    def drifted(self) -> bool:
        return self.score > self.threshold

    def describe(self) -> str:
        relation = ">" if self.drifted else "<="
        return f"{self.measure} {self.score:.3f} {relation} {self.threshold:g}"


def frequencies(feature: statistics_pb2.FeatureNameStatistics) -> dict[str, float]:
    total = sum(v.frequency for v in feature.string_stats.top_values) or 1.0
    return {v.value: v.frequency / total for v in feature.string_stats.top_values}


def l_infinity(current: dict[str, float], reference: dict[str, float]) -> float:
    return max(
        (abs(current.get(k, 0.0) - reference.get(k, 0.0)) for k in {*current, *reference}), default=0.0
    )


def histogram_mass(feature: statistics_pb2.FeatureNameStatistics, edges: list[float]) -> list[float]:
    """Spreads each bucket's count uniformly over its range and re-buckets onto shared edges."""
    mass = [0.0] * (len(edges) - 1)
    for bucket in feature.num_stats.histograms[0].buckets if feature.num_stats.histograms else []:
        width = bucket.high_value - bucket.low_value
        for i in range(len(mass)):
            if width <= 0:
                inside = 1.0 if edges[i] <= bucket.low_value <= edges[i + 1] else 0.0
            else:
                overlap = min(bucket.high_value, edges[i + 1]) - max(bucket.low_value, edges[i])
                inside = max(0.0, overlap) / width
            mass[i] += bucket.sample_count * inside
    total = sum(mass) or 1.0
    return [m / total for m in mass]


def jensen_shannon(p: list[float], q: list[float]) -> float:
    m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]

    def kl(a: list[float], b: list[float]) -> float:
        return sum(x * math.log2(x / y) for x, y in zip(a, b, strict=True) if x > 0 and y > 0)

    return (kl(p, m) + kl(q, m)) / 2


def shared_edges(
    a: statistics_pb2.FeatureNameStatistics, b: statistics_pb2.FeatureNameStatistics
) -> list[float]:
    low = min(a.num_stats.min, b.num_stats.min)
    high = max(a.num_stats.max, b.num_stats.max)
    if high <= low:
        return [low, low + 1.0]
    return [low + (high - low) * i / SHARED_BUCKETS for i in range(SHARED_BUCKETS + 1)]


def drift(
    current: statistics_pb2.DatasetFeatureStatistics,
    reference: statistics_pb2.DatasetFeatureStatistics,
    categorical_threshold: float,
    numeric_threshold: float,
    per_feature: dict[str, float] | None = None,
) -> list[FeatureDrift]:
    """The distance of every feature present in both with the same kind of statistics, by name."""
    per_feature = per_feature or {}
    reference_by_name = {f.path.step[0]: f for f in reference.features}
    scores: list[FeatureDrift] = []
    for feature in current.features:
        name = feature.path.step[0]
        baseline = reference_by_name.get(name)
        if baseline is None or feature.WhichOneof("stats") != baseline.WhichOneof("stats"):
            continue
        if feature.WhichOneof("stats") == "string_stats":
            score = l_infinity(frequencies(feature), frequencies(baseline))
            scores.append(
                FeatureDrift(name, "L-infinity", score, per_feature.get(name, categorical_threshold))
            )
        else:
            edges = shared_edges(feature, baseline)
            score = jensen_shannon(histogram_mass(feature, edges), histogram_mass(baseline, edges))
            scores.append(
                FeatureDrift(name, "Jensen-Shannon", score, per_feature.get(name, numeric_threshold))
            )
    return sorted(scores, key=lambda d: d.feature)


def drift_anomalies(scores: list[FeatureDrift], label: str) -> Found:
    reason = {
        "L-infinity": Reason.COMPARATOR_L_INFTY_HIGH,
        "Jensen-Shannon": Reason.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH,
    }
    return {d.feature: [(reason[d.measure], f"{d.describe()} ({label})")] for d in scores if d.drifted}


def schema_anomalies(dataset: statistics_pb2.DatasetFeatureStatistics, spec: schema_pb2.Schema) -> Found:
    found: Found = {}
    by_name = {f.path.step[0]: f for f in dataset.features}
    domains = {d.name: set(d.value) for d in spec.string_domain}
    for feature in spec.feature:
        stats = by_name.get(feature.name)
        reasons = found.setdefault(feature.name, [])
        if stats is None:
            reasons.append((Reason.SCHEMA_MISSING_COLUMN, "Column dropped: the feature is absent"))
            continue
        kind = stats.WhichOneof("stats")
        common = getattr(stats, kind).common_stats
        total = common.num_non_missing + common.num_missing
        if (
            feature.presence.min_fraction
            and total
            and common.num_non_missing / total < feature.presence.min_fraction
        ):
            reasons.append(
                (
                    Reason.FEATURE_TYPE_LOW_FRACTION_PRESENT,
                    f"present in {common.num_non_missing}/{total} examples",
                )
            )
        expected_numeric = feature.type in (schema_pb2.INT, schema_pb2.FLOAT)
        if expected_numeric != (kind == "num_stats") or (
            feature.type == schema_pb2.INT and stats.type == statistics_pb2.FeatureNameStatistics.FLOAT
        ):
            reasons.append(
                (Reason.UNEXPECTED_DATA_TYPE, f"expected {schema_pb2.FeatureType.Name(feature.type)}")
            )
            continue
        domain = domains.get(feature.domain) if feature.domain else None
        if feature.HasField("string_domain"):
            domain = set(feature.string_domain.value)
        if domain is not None and kind == "string_stats":
            unknown = sorted({v.value for v in stats.string_stats.top_values} - domain)
            if unknown:
                reasons.append(
                    (
                        Reason.ENUM_TYPE_UNEXPECTED_STRING_VALUES,
                        "Unexpected values: " + ", ".join(unknown[:10]),
                    )
                )
        if kind == "num_stats" and common.num_non_missing:
            bounds = feature.int_domain if feature.type == schema_pb2.INT else feature.float_domain
            big, small = (
                (Reason.INT_TYPE_BIG_INT, Reason.INT_TYPE_SMALL_INT)
                if feature.type == schema_pb2.INT
                else (Reason.FLOAT_TYPE_BIG_FLOAT, Reason.FLOAT_TYPE_SMALL_FLOAT)
            )
            if bounds.HasField("max") and stats.num_stats.max > bounds.max:
                reasons.append((big, f"max {stats.num_stats.max:g} above the domain's {bounds.max:g}"))
            if bounds.HasField("min") and stats.num_stats.min < bounds.min:
                reasons.append((small, f"min {stats.num_stats.min:g} below the domain's {bounds.min:g}"))
    return {name: reasons for name, reasons in found.items() if reasons}


def reason_name(kind: int) -> str:
    return Reason.Type.Name(kind)


def as_proto(found: Found, spec: schema_pb2.Schema) -> anomalies_pb2.Anomalies:
    result = anomalies_pb2.Anomalies(anomaly_name_format=anomalies_pb2.Anomalies.SERIALIZED_PATH)
    result.baseline.CopyFrom(spec)
    for name, reasons in found.items():
        info = result.anomaly_info[name]
        info.path.step.append(name)
        info.severity = anomalies_pb2.AnomalyInfo.ERROR
        info.short_description = reasons[0][1] if len(reasons) == 1 else "Multiple errors"
        info.description = "; ".join(text for _, text in reasons)
        for kind, text in reasons:
            info.reason.add(type=kind, short_description=reason_name(kind), description=text)
    return result

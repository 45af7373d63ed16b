"""The onDrift trigger's decisions, free of I/O: which batches under the prefix are new, how a batch's
statistics compare with the stable model's training statistics and schema, and what follows (a Drift run,
nothing, or a block). The statistics and distances are `slipway.datastats`, the pipeline's own code."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from slipway.api.training_pipeline import CheckedBatch, DriftOutcome, DriftStatus, OnDrift
from slipway.datastats import compare
from slipway.messages import sanitize
from slipway.storage import ObjectInfo

BATCH_SUFFIX = ".csv"
KEPT_BATCHES = 50
DETAIL_FEATURES = 24
KEY_LIMIT = 1024  # status.drift.batches[].batch
ETAG_LIMIT = 256  # status.drift.batches[].etag


@dataclass(frozen=True)
class Baseline:
    version: int
    statistics_uri: str
    statistics: statistics_pb2.DatasetFeatureStatistics
    schema: schema_pb2.Schema | None


@dataclass(frozen=True)
class Verdict:
    batch: ObjectInfo
    outcome: DriftOutcome
    scores: list[compare.FeatureDrift] = field(default_factory=list)
    anomalies: compare.Found = field(default_factory=dict)
    why: str = ""  # Unjudgeable: why the batch could not be judged

    @property
    def drifted(self) -> list[compare.FeatureDrift]:
        return sorted((d for d in self.scores if d.drifted), key=lambda d: -d.score)

    def anomaly_text(self) -> str:
        return "; ".join(
            f"{name} {compare.reason_name(kind)} ({text})"
            for name, reasons in sorted(self.anomalies.items())
            for kind, text in reasons
        )

    def summary(self) -> str:
        if self.outcome == "Unjudgeable":
            return f"not judged: {self.why}"
        if self.drifted:
            text = ", ".join(f"{d.feature} {d.describe()}" for d in self.drifted)
        elif self.scores:
            top = max(self.scores, key=lambda d: d.score / d.threshold if d.threshold else d.score)
            text = f"within thresholds (closest: {top.feature} {top.describe()})"
        else:
            text = "no feature in common with the training statistics"
        if self.anomalies:
            text += f"; anomalies: {self.anomaly_text()}"
        return text

    def details(self, baseline_version: int) -> dict[str, str]:
        """The figures behind the decision, for the run's status entry."""
        ranked = sorted(self.scores, key=lambda d: -d.score)[:DETAIL_FEATURES]
        # Keys and feature names come from the data: sanitized like every message status keeps.
        details = {"batch": sanitize(self.batch.key, 256), "baselineVersion": str(baseline_version)}
        details |= {sanitize(f"drift.{d.feature}", 128): sanitize(d.describe(), 256) for d in ranked}
        if self.anomalies:
            details["anomalies"] = sanitize(self.anomaly_text(), 256)
        return details


def is_batch(info: ObjectInfo) -> bool:
    return info.key.endswith(BATCH_SUFFIX)


def bounded(text: str, limit: int) -> str:
    """A key or etag as status can hold it: itself when it fits, else a prefix and a digest of the whole
    (still one per batch, and the same at every poll)."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{text[: limit - 17]}~{digest}"


def identity(info: ObjectInfo) -> tuple[str, str]:
    """A batch as status records it: (key, etag), each bounded to its field's limit."""
    return bounded(info.key, KEY_LIMIT), bounded(info.etag, ETAG_LIMIT)


def first_sight(listing: list[ObjectInfo], now: datetime) -> DriftStatus:
    """What is under the prefix when the trigger is first seen is the starting point, not new data."""
    batches = sorted(filter(is_batch, listing), key=_age)[-KEPT_BATCHES:]
    return DriftStatus(
        watermark=max((b.updated for b in batches if b.updated), default=now),
        last_check_time=now,
        batches=[
            CheckedBatch(
                batch=identity(b)[0],
                etag=identity(b)[1],
                updated=b.updated,
                checked_time=now,
                outcome="Baseline",
            )
            for b in batches
        ],
    )


def new_batches(listing: list[ObjectInfo], status: DriftStatus) -> list[ObjectInfo]:
    """Batches not checked yet, oldest first. A rewritten batch (new etag) is new; one older than the
    watermark was seen before and fell off the kept list."""
    seen = {(b.batch, b.etag) for b in status.batches}
    fresh = [
        b
        for b in filter(is_batch, listing)
        if identity(b) not in seen
        and (status.watermark is None or b.updated is None or b.updated >= status.watermark)
    ]
    return sorted(fresh, key=_age)


def judge(
    batch: ObjectInfo, statistics: statistics_pb2.DatasetFeatureStatistics, baseline: Baseline, rule: OnDrift
) -> Verdict:
    if statistics.num_examples == 0:
        return unjudgeable(batch, "the batch has no rows")
    if baseline.statistics.num_examples == 0:
        return unjudgeable(batch, f"the baseline statistics ({baseline.statistics_uri}) count no rows")
    scores = compare.drift(
        statistics,
        baseline.statistics,
        float(rule.categorical_threshold),
        float(rule.numeric_threshold),
        {name: float(value) for name, value in rule.feature_thresholds.items()},
    )
    anomalies = compare.schema_anomalies(statistics, baseline.schema) if baseline.schema is not None else {}
    outcome: DriftOutcome
    if anomalies and rule.block_on_anomalies:
        outcome = "Blocked"
    elif any(d.drifted for d in scores):
        outcome = "Drifted"
    elif anomalies:
        outcome = "Anomalous"
    else:
        outcome = "NoDrift"
    return Verdict(batch, outcome, scores, anomalies)


def unjudgeable(batch: ObjectInfo, why: str) -> Verdict:
    """A batch that cannot be judged (unreadable, unparsable, no rows): recorded so, starts nothing."""
    return Verdict(batch, "Unjudgeable", why=sanitize(why, 500))


def record(
    status: DriftStatus, verdict: Verdict, baseline: Baseline, now: datetime, run: str | None
) -> DriftStatus:
    key, etag = identity(verdict.batch)
    entry = CheckedBatch(
        batch=key,
        etag=etag,
        updated=verdict.batch.updated,
        checked_time=now,
        outcome=verdict.outcome,
        baseline_version=baseline.version,
        summary=sanitize(verdict.summary(), 1024),
        run=run,
    )
    kept = [b for b in status.batches if b.batch != entry.batch] + [entry]
    kept = sorted(kept, key=lambda b: (b.updated or now, b.checked_time or now))[-KEPT_BATCHES:]
    watermark = status.watermark
    oldest_kept = min((b.updated for b in kept if b.updated), default=None)
    if len(kept) == KEPT_BATCHES and oldest_kept is not None:
        # Batches older than every kept entry are no longer remembered one by one: the watermark says so.
        watermark = max(filter(None, [watermark, oldest_kept]))
    return status.model_copy(
        update={
            "batches": kept,
            "watermark": watermark,
            "last_check_time": now,
            "baseline": baseline.statistics_uri,
            "baseline_version": baseline.version,
        }
    )


def prune(status: DriftStatus, listing: list[ObjectInfo]) -> DriftStatus:
    """Forget batches that are gone from the prefix (they cannot come back as the same etag)."""
    present = {identity(b) for b in listing}
    kept = [b for b in status.batches if (b.batch, b.etag) in present]
    return status if len(kept) == len(status.batches) else status.model_copy(update={"batches": kept})


def _age(info: ObjectInfo) -> tuple[str, str]:
    return (info.updated.isoformat() if info.updated else "", info.key)

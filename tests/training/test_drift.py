"""The onDrift decisions on the penguins data: statistics by the pipeline's own code, L-infinity and
Jensen-Shannon per feature, schema anomalies, and the bookkeeping that keeps a batch from counting twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fixtures.penguins import HEADER, PENGUINS, resample, shifted
from slipway.api.training_pipeline import OnDrift, TrainingPipeline
from slipway.datastats import schema as datastats_schema
from slipway.datastats import statistics as datastats
from slipway.storage import ObjectInfo
from slipway.training import drift
from slipway.training.controller import newest_validated_uri
from slipway.views import VersionInfo

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def baseline() -> drift.Baseline:
    stats = datastats.csv_statistics([PENGUINS], "train")
    return drift.Baseline(1, "file:///stats/FeatureStats.pb", stats, datastats_schema.infer(stats, 10))


def batch(key: str, etag: str = "e1", minutes: int = 0) -> ObjectInfo:
    return ObjectInfo(
        key=key, size=1, etag=etag, uri=f"file:///batches/{key}", updated=T0 + timedelta(minutes=minutes)
    )


def rule(**fields: object) -> OnDrift:
    return OnDrift.model_validate({"batches": {"uri": "file:///batches"}, **fields})


def judge(raw: bytes, baseline: drift.Baseline, **fields: object) -> drift.Verdict:
    return drift.judge(batch("b.csv"), datastats.csv_statistics([raw], "b.csv"), baseline, rule(**fields))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_resample_of_the_training_data_does_not_drift(baseline: drift.Baseline, seed: int) -> None:
    verdict = judge(resample(200, seed), baseline)
    assert verdict.outcome == "NoDrift", verdict.summary()
    assert {d.feature for d in verdict.scores} == set(HEADER.split(","))
    assert max(d.score for d in verdict.scores) < 0.1


def test_a_shifted_batch_drifts_on_the_shifted_features_only(baseline: drift.Baseline) -> None:
    verdict = judge(shifted(200, 1), baseline)
    assert verdict.outcome == "Drifted"
    assert [d.feature for d in verdict.drifted] == ["body_mass_g", "island"]
    mass = next(d for d in verdict.scores if d.feature == "body_mass_g")
    assert mass.measure == "Jensen-Shannon" and mass.score > 0.3
    island = next(d for d in verdict.scores if d.feature == "island")
    assert island.measure == "L-infinity" and island.score == pytest.approx(0.25, abs=0.05)
    # The unknown island and the heavier penguins are also anomalies against the training schema.
    assert "ENUM_TYPE_UNEXPECTED_STRING_VALUES" in verdict.anomaly_text()
    assert "Atlantis" in verdict.anomaly_text()
    details = verdict.details(baseline_version=1)
    assert details["batch"] == "b.csv" and details["baselineVersion"] == "1"
    assert details["drift.body_mass_g"].startswith("Jensen-Shannon 0.")
    assert all(len(value) <= 256 for value in details.values())


def test_per_feature_thresholds_override_the_defaults(baseline: drift.Baseline) -> None:
    verdict = judge(shifted(200, 1), baseline, featureThresholds={"body_mass_g": "0.9", "island": "0.5"})
    assert verdict.outcome == "Anomalous"  # nothing over its threshold, but Atlantis is still unknown


def test_anomalies_block_the_run_when_declared(baseline: drift.Baseline) -> None:
    assert judge(shifted(200, 1), baseline, blockOnAnomalies=True).outcome == "Blocked"
    missing_column = "\n".join(line.rsplit(",", 1)[0] for line in resample(50, 4).decode().splitlines())
    verdict = judge(missing_column.encode(), baseline)
    assert "year SCHEMA_MISSING_COLUMN" in verdict.anomaly_text()


def test_an_unreadable_batch_is_unjudgeable_and_says_why() -> None:
    verdict = drift.unjudgeable(batch("b.csv"), "CSV parse error: \x1b[31mExpected 8 columns\x1b[0m, got 3")
    assert verdict.outcome == "Unjudgeable"
    assert verdict.summary() == "not judged: CSV parse error: Expected 8 columns, got 3"


def test_batches_with_no_rows_or_against_an_empty_baseline_are_unjudgeable(baseline: drift.Baseline) -> None:
    empty = datastats.csv_statistics([b"size,colour\n"], "empty")
    verdict = drift.judge(batch("e.csv"), empty, baseline, rule())
    assert (verdict.outcome, verdict.why) == ("Unjudgeable", "the batch has no rows")
    hollow = drift.Baseline(1, "file:///s.pb", empty, None)
    verdict = drift.judge(batch("f.csv"), baseline.statistics, hollow, rule())
    assert verdict.outcome == "Unjudgeable" and "count no rows" in verdict.why


def test_an_over_long_key_is_recorded_bounded_and_recognised_at_the_next_poll(
    baseline: drift.Baseline,
) -> None:
    long = batch("k" * 5000 + ".csv", minutes=5)
    status = drift.first_sight([], T0)
    assert drift.new_batches([long], status) == [long]
    checked = drift.record(status, drift.Verdict(long, "NoDrift"), baseline, T0, None)
    (entry,) = checked.batches
    assert len(entry.batch) == drift.KEY_LIMIT and entry.batch.startswith("kkk")
    assert drift.new_batches([long], checked) == []
    assert drift.prune(checked, [long]) == checked


def test_what_is_there_at_first_sight_is_the_baseline_and_only_later_batches_are_new(
    baseline: drift.Baseline,
) -> None:
    listing = [batch("2026-11-01.csv", minutes=-60), batch("2026-11-02.csv", minutes=-30), batch("notes.txt")]
    status = drift.first_sight(listing, T0)
    assert [b.outcome for b in status.batches] == ["Baseline", "Baseline"]
    assert drift.new_batches(listing, status) == []
    new = batch("2026-11-03.csv", minutes=5)
    assert drift.new_batches([*listing, new], status) == [new]
    checked = drift.record(status, drift.Verdict(new, "NoDrift"), baseline, T0, None)
    assert drift.new_batches([*listing, new], checked) == []  # an operator restart reads the same status
    rewritten = batch("2026-11-03.csv", etag="e2", minutes=9)
    assert drift.new_batches([*listing, rewritten], checked) == [rewritten]


def test_the_kept_list_is_bounded_and_the_watermark_remembers_what_fell_off(baseline: drift.Baseline) -> None:
    status = drift.first_sight([], T0)
    listing = [batch(f"{i:03}.csv", minutes=i) for i in range(drift.KEPT_BATCHES + 10)]
    for info in listing:
        status = drift.record(status, drift.Verdict(info, "NoDrift"), baseline, T0, None)
    assert len(status.batches) == drift.KEPT_BATCHES
    assert drift.new_batches(listing, status) == []
    assert status.watermark == T0 + timedelta(minutes=10)


def test_batches_gone_from_the_prefix_are_forgotten(baseline: drift.Baseline) -> None:
    listing = [batch("a.csv"), batch("b.csv")]
    status = drift.first_sight(listing, T0)
    assert [b.batch for b in drift.prune(status, listing[1:]).batches] == ["b.csv"]


def test_the_status_round_trips_through_the_api_model(baseline: drift.Baseline) -> None:
    status = drift.record(drift.first_sight([], T0), judge(shifted(200, 1), baseline), baseline, T0, "run-1")
    body = {
        "apiVersion": "slipway.dev/v1alpha1",
        "kind": "TrainingPipeline",
        "metadata": {"name": "p"},
        "spec": {
            "pipeline": {"builtin": "penguins"},
            "modelName": "p",
            "data": {"uri": "file:///d"},
            "artifactRoot": {"uri": "file:///a"},
            "modelStore": {"uri": "file:///m"},
        },
        "status": {"drift": status.to_wire()},
    }
    again = TrainingPipeline.model_validate(body).status.drift
    assert again is not None and again.batches[-1].outcome == "Drifted" and again.batches[-1].run == "run-1"
    assert "body_mass_g Jensen-Shannon" in again.batches[-1].summary


def test_the_baseline_is_the_newest_validated_version_when_no_endpoint_serves_one() -> None:
    infos = [
        VersionInfo("m-v1", 1, "Validated", "file:///m/1"),
        VersionInfo("m-v2", 2, "Validated", "file:///m/2"),
        VersionInfo("m-v3", 3, "Rejected", "file:///m/3"),
    ]
    assert newest_validated_uri(infos) == "file:///m/2"
    assert newest_validated_uri(infos[2:]) is None


def test_what_status_keeps_of_a_batch_is_sanitized(baseline: drift.Baseline) -> None:
    raw = b"\x1b[31mspecies\x1b[0m,island\nAdelie,Biscoe\n"
    verdict = judge(raw, baseline)
    checked = drift.record(drift.first_sight([], T0), verdict, baseline, T0, None)
    kept = checked.batches[0].summary + "".join(f"{k}{v}" for k, v in verdict.details(1).items())
    assert "\x1b" not in kept and "species" in kept

"""The TrainingPipeline planner on a simulated clock, executor and model store, without a cluster:
schedules, triggers, concurrency, restarts, registration. `Sim.step` does what the controller does:
observe, plan, read what the plan asks for, plan again, carry out the intents."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fixtures.pipelines import training_spec as spec
from slipway.api.training_pipeline import RunRecord, TrainingPipelineStatus
from slipway.datastats import schema as datastats_schema
from slipway.datastats import statistics as datastats
from slipway.manifest import Manifest
from slipway.storage import ObjectInfo
from slipway.training import drift, registration
from slipway.training.local_executor import RunState
from slipway.training.plan import (
    DriftCheck,
    Event,
    Observed,
    Plan,
    Polled,
    Start,
    Terminate,
    executor_refused,
    followed,
    needs_log_tail,
    plan,
    registration_refused,
    run_id,
    submitted,
)
from slipway.training.source import SourceError, parse_ir

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
TINY = Path(__file__).resolve().parent / "pipelines" / "tiny" / "pipeline.yaml"
PIPELINE = parse_ir(TINY.read_text(), "spec.pipeline.builtin")


class Sim:
    """One pipeline, an executor that runs what it is given until told otherwise, a model store the runs
    push to, the registry the ModelVersions land in, a clock moved by hand."""

    def __init__(self, **fields: Any) -> None:
        self.spec = spec(**fields)
        self.status = TrainingPipelineStatus()
        self.now = T0
        self.created = T0 - timedelta(minutes=30)
        self.generation = 1
        self.token: str | None = None
        self.problem: SourceError | None = None
        self.executor_down: str | None = None
        self.runs: dict[str, RunState] = {}  # the executor's runs
        self.submits: list[str] = []
        self.terminated: list[str] = []
        self.tails: dict[str, str] = {}
        self.store: dict[int, Manifest] = {}  # pushed manifests (with their SavedModel), by version
        self.store_unreadable: str | None = None
        self.registry: dict[str, dict[str, Any]] = {}  # created ModelVersions, by name
        self.creates: list[str] = []
        self.events: list[Event] = []
        self.data: Polled | None = None  # what the data poll sees at the next step (None: not due)
        self.batches: Polled | None = None
        self.statistics: dict[str, Any] = {}  # batch key -> statistics or a read error
        self.baseline: drift.Baseline | None = None
        self.stable_uri: str | None = None
        self.plans: list[Plan] = []
        self.ui: str | None = None  # the executor's UI, when it links runs (KFP)

    # --- the world ----------------------------------------------------------------------------------

    def request(self, token: str) -> None:
        self.token = token

    def end(self, run: str, phase: str = "Succeeded", message: str = "", **push: Any) -> None:
        """The run's process ends; a succeeded run pushes like the pipeline's pusher unless told not to."""
        record = next(r for r in self.status.runs if r.id == run)
        version = int(record.details["version"])
        outputs = None
        if phase == "Succeeded":
            pushed = push.get("pushed", True)
            outputs = {"push_result": {"pushed": pushed, "version": version, "reason": push.get("reason")}}
            if pushed:
                self.store[version] = Manifest(
                    model_name=self.spec.model_name,
                    version=version,
                    metrics={"accuracy": push.get("accuracy", 0.95), "loss": 0.05},
                    lineage={"pipeline": "tiny", "runId": run, "statisticsUri": "file:///a/stats.pb"},
                )
            if push.get("outputs") is False:  # a KFP run: the operator learns what was pushed from the store
                outputs = None
        self.runs[run] = RunState(phase, message, outputs=outputs, url=self.runs[run].url)

    def observed(self) -> Observed:
        runs = {}
        if self.executor_down is None:
            for record in followed(self.status):
                runs[record.id] = self.runs.get(record.id, RunState("Failed", "the run's state is gone"))
        return Observed(
            namespace="ns",
            name="tiny",
            generation=self.generation,
            created=self.created,
            spec=self.spec,
            status=self.status,
            run_request=self.token,
            pipeline=None if self.problem else PIPELINE,
            problem=self.problem,
            existing_versions=tuple(int(b["spec"]["version"]) for b in self.registry.values()),
            stable_uri=self.stable_uri,
            runs=runs,
            log_tails={k: v for k, v in self.tails.items() if k in runs and needs_log_tail(runs[k])},
            executor_error=self.executor_down,
            data=self.data,
            batches=self.batches,
        )

    def read(self, planned: Plan, observed: Observed) -> Observed:
        pushes = {}
        for run in planned.reads.pushes:
            record = next(r for r in self.status.runs if r.id == run)
            version = registration.pushed_version(record, observed.runs[run])
            uri = registration.model_dir(self.spec, version)
            if self.store_unreadable is not None:
                pushes[run] = registration.Pushed(version, uri, unreadable=self.store_unreadable)
            elif version in self.store:
                pushes[run] = registration.Pushed(version, uri, found=self.store[version])
            else:
                missing = f"not pushed: no slipway-manifest.json under {uri}"
                pushes[run] = registration.Pushed(version, uri, missing=missing)
        check = None
        if planned.reads.batches:
            check = DriftCheck(
                self.baseline,
                batches={(b.key, b.etag): self.statistics.get(b.key, "gone") for b in planned.reads.batches},
            )
        return replace(observed, pushes=pushes, drift_check=check)

    def step(self, minutes: float = 0) -> Plan:
        self.now += timedelta(minutes=minutes)
        observed = self.observed()
        planned = plan(observed, self.now)
        if planned.reads:
            observed = self.read(planned, observed)
            planned = plan(observed, self.now)
        assert not planned.reads, "one round of reads is enough"
        states = {}
        for intent in planned.runs:
            if isinstance(intent, Start):
                self.submits.append(intent.record.id)
                url = f"{self.ui}/#/runs/details/{len(self.runs)}" if self.ui else None
                states[intent.record.id] = self.runs.setdefault(
                    intent.record.id, RunState("Running", url=url)
                )
            else:
                self.terminated.append(intent.run_id)
                if self.runs[intent.run_id].phase in ("Pending", "Running"):
                    self.runs[intent.run_id] = RunState("Cancelled", "terminated")
        for intent in planned.register:
            name = intent.body["metadata"]["name"]
            self.creates.append(name)
            self.registry.setdefault(name, intent.body)
        planned = submitted(observed, planned, states, self.now)
        self.status = planned.status
        self.events += planned.events
        self.plans.append(planned)
        return planned

    # --- what tests read ------------------------------------------------------------------------------

    def reasons(self) -> list[str]:
        return [e.reason for e in self.events]

    def run(self, index: int = -1) -> RunRecord:
        return self.status.runs[index]

    def condition(self, type_: str) -> tuple[str, str]:
        found = next(c for c in self.status.conditions if c.type == type_)
        return found.status, found.reason

    def restart(self) -> Sim:
        """A new operator process: the same cluster (status, executor, store, registry), nothing else."""
        again = Sim()
        again.__dict__.update(
            {k: v for k, v in self.__dict__.items() if k not in ("events", "plans", "submits", "terminated")}
        )
        again.events, again.plans, again.submits, again.terminated = [], [], [], []
        return again


# --- manual requests ------------------------------------------------------------------------------------


def test_a_manual_request_starts_one_run_and_a_new_token_another() -> None:
    sim = Sim()
    sim.step()
    assert sim.status.runs == [] and sim.condition("Ready") == ("True", "Valid")
    sim.request("first")
    started = sim.step()
    (record,) = sim.status.runs
    assert record.id == run_id("tiny", "Manual", "first") and record.trigger == "Manual"
    assert record.phase == "Running" and record.start_time == T0 and record.details["version"] == "1"
    assert sim.status.handled_run_request == "first"
    (intent,) = started.start
    assert intent.arguments["model_version"] == 1 and intent.arguments["run_id"] == record.id
    assert intent.arguments["pipeline_digest"] == PIPELINE.digest
    assert "baseline_model_uri" not in intent.arguments, "only parameters the pipeline declares"
    assert sim.condition("Running") == ("True", "RunInProgress")
    sim.step(1)
    sim.end(record.id)
    sim.step(1)
    assert sim.submits == [record.id], "the same token never starts a second run"
    sim.request("second")
    sim.step(1)
    assert [r.details["version"] for r in sim.status.runs] == ["1", "2"]
    assert sim.reasons().count("RunStarted") == 2


def test_a_manual_request_with_the_run_already_in_status_is_only_marked_handled() -> None:
    sim = Sim()
    sim.request("once")
    sim.step()
    sim.status.handled_run_request = None  # as if the status write had kept the run but not the token
    sim.step(1)
    assert sim.submits == [sim.run().id] and sim.status.handled_run_request == "once"


# --- schedules ------------------------------------------------------------------------------------------


def test_a_schedule_runs_once_at_each_time_and_says_when_next() -> None:
    sim = Sim(schedule={"cron": "0 * * * *"})
    sim.now = T0 + timedelta(seconds=20)
    sim.step()
    (record,) = sim.status.runs
    assert record.trigger == "Schedule" and record.details["triggerKey"] == T0.isoformat()
    assert sim.status.last_schedule_time == T0
    assert sim.status.next_schedule_time == T0 + timedelta(hours=1)
    sim.end(record.id)
    sim.step(5)
    assert len(sim.submits) == 1
    sim.step(60)
    assert len(sim.submits) == 2 and sim.status.last_schedule_time == T0 + timedelta(hours=1)


@pytest.mark.parametrize(("late_minutes", "runs"), [(9, True), (11, False)])
def test_a_missed_schedule_runs_late_inside_its_deadline_and_is_skipped_outside_it(
    late_minutes: int, runs: bool
) -> None:
    """The operator was down at 12:00; it comes back 9 or 11 minutes late with a 10-minute deadline."""
    sim = Sim(schedule={"cron": "0 * * * *", "startingDeadlineSeconds": 600})
    sim.status.last_schedule_time = T0 - timedelta(hours=1)
    sim.now = T0 + timedelta(minutes=late_minutes)
    sim.step()
    assert sim.status.last_schedule_time == T0
    assert sim.status.next_schedule_time == T0 + timedelta(hours=1)
    if runs:
        assert [r.trigger for r in sim.status.runs] == ["Schedule"] and "MissedSchedule" not in sim.reasons()
    else:
        assert sim.status.runs == [] and sim.reasons() == ["MissedSchedule"]
        (event,) = sim.events
        assert event.type == "Warning" and T0.isoformat() in event.message
    sim.step(1)
    sim.step(1)
    assert sim.reasons().count("MissedSchedule") == (0 if runs else 1) and len(sim.submits) == int(runs)


def test_of_many_missed_times_only_the_latest_runs() -> None:
    sim = Sim(schedule={"cron": "*/5 * * * *"})
    sim.status.last_schedule_time = T0 - timedelta(hours=5)
    sim.step()
    (record,) = sim.status.runs
    assert record.details["triggerKey"] == T0.isoformat()


def test_a_suspended_schedule_starts_nothing_but_still_says_when_next() -> None:
    sim = Sim(schedule={"cron": "*/5 * * * *", "suspend": True})
    sim.step(60)
    assert sim.status.runs == [] and sim.status.next_schedule_time == T0 + timedelta(minutes=65)


# --- concurrency ----------------------------------------------------------------------------------------


def test_forbid_skips_a_scheduled_run_while_one_is_going_and_a_manual_request_waits() -> None:
    sim = Sim(schedule={"cron": "0 * * * *", "concurrencyPolicy": "Forbid"})
    sim.now = T0 - timedelta(minutes=1)
    sim.request("long")
    sim.step()
    first = sim.run()
    sim.step(2)  # 12:01: the 12:00 schedule finds the manual run going
    assert len(sim.status.runs) == 1 and sim.reasons()[-1] == "RunSkipped"
    assert sim.status.last_schedule_time == T0, "a skipped time is not run later"
    sim.request("waits")
    sim.step(1)
    sim.step(1)
    assert len(sim.status.runs) == 1 and sim.status.handled_run_request == "long"
    assert sim.reasons().count("RunSkipped") == 1, "a waiting manual request is not skipped"
    sim.end(first.id)
    sim.step(1)
    assert [r.id for r in sim.status.runs] == [first.id, run_id("tiny", "Manual", "waits")]
    assert sim.status.handled_run_request == "waits"


def test_replace_terminates_the_run_in_progress_and_starts_the_new_one() -> None:
    sim = Sim(schedule={"cron": "0 0 1 1 *", "suspend": True, "concurrencyPolicy": "Replace"})
    sim.request("a")
    sim.step()
    first = sim.run()
    sim.request("b")
    replaced = sim.step(1)
    assert replaced.runs == [Terminate(first.id, "Replace"), replaced.start[0]], "terminate, then submit"
    assert sim.terminated == [first.id] and sim.runs[first.id].phase == "Cancelled"
    old, new = sim.status.runs
    assert (old.id, old.phase, old.message) == (first.id, "Cancelled", "terminated")
    assert new.phase == "Running" and new.details["version"] == "2"
    assert sim.reasons()[-3:] == ["RunReplaced", "RunCancelled", "RunStarted"]
    assert sim.condition("Succeeded") == ("False", "RunCancelled")


def test_allow_runs_side_by_side_with_versions_of_their_own() -> None:
    sim = Sim(schedule={"cron": "0 * * * *", "concurrencyPolicy": "Allow"})
    sim.status.last_schedule_time = T0 - timedelta(hours=1)
    sim.request("also")
    both = sim.step()
    assert [s.record.trigger for s in both.start] == ["Manual", "Schedule"]
    assert [r.details["version"] for r in sim.status.runs] == ["1", "2"]
    assert all(r.phase == "Running" for r in sim.status.runs)


def test_without_a_schedule_the_policy_is_forbid() -> None:
    sim = Sim(triggers={"onNewData": {}})
    sim.request("a")
    sim.data = Polled(fingerprint="sha256:one")
    sim.step()
    sim.data = Polled(fingerprint="sha256:two")
    sim.step(1)
    assert [r.trigger for r in sim.status.runs] == ["Manual"] and sim.reasons()[-1] == "RunSkipped"


# --- new data and drift ---------------------------------------------------------------------------------


def test_new_data_starts_a_run_when_the_fingerprint_changes_not_at_first_sight() -> None:
    sim = Sim(triggers={"onNewData": {"pollIntervalSeconds": 60}})
    sim.data = Polled(fingerprint="sha256:one")
    sim.step()
    assert sim.status.runs == [] and sim.status.data_fingerprint == "sha256:one"
    assert sim.condition("DataReachable") == ("True", "Listed")
    sim.step(1)
    sim.data = None  # the poll is not due: nothing is known, nothing changes
    sim.step(0.5)
    assert sim.status.runs == []
    sim.data = Polled(error="cannot list file:///data: gone")
    sim.step(1)
    assert sim.condition("DataReachable") == ("False", "DataUnreadable")
    assert sim.status.data_fingerprint == "sha256:one" and sim.status.runs == []
    sim.data = Polled(fingerprint="sha256:two")
    sim.step(1)
    (record,) = sim.status.runs
    assert record.trigger == "NewData" and record.details["triggerKey"] == "sha256:two"
    assert record.id == run_id("tiny", "NewData", "sha256:two")


def csv(rows: list[tuple[float, str]]) -> bytes:
    return ("size,colour\n" + "".join(f"{size},{colour}\n" for size, colour in rows)).encode()


TRAINING = csv([(float(i % 50), "red" if i % 2 else "blue") for i in range(200)])
SAME = csv([(float(i % 50), "red" if i % 2 else "blue") for i in range(150)])
SHIFTED = csv([(float(i % 50) + 200, "green" if i % 2 else "blue") for i in range(150)])


def batch(key: str, minutes: int) -> ObjectInfo:
    return ObjectInfo(key, 1, "e1", f"file:///batches/{key}", updated=T0 + timedelta(minutes=minutes))


@pytest.fixture(scope="module")
def baseline() -> drift.Baseline:
    stats = datastats.csv_statistics([TRAINING], "train")
    return drift.Baseline(1, "file:///a/stats.pb", stats, datastats_schema.infer(stats, 10))


def drifting(baseline: drift.Baseline | None, **rule: Any) -> Sim:
    sim = Sim(triggers={"onDrift": {"batches": {"uri": "file:///batches"}, **rule}})
    sim.baseline = baseline
    sim.batches = Polled(listing=(batch("old.csv", -60),))
    sim.step()
    return sim


def land(sim: Sim, key: str, raw: bytes | str, minutes: int) -> None:
    sim.batches = Polled(listing=(*(sim.batches.listing if sim.batches else ()), batch(key, minutes)))
    sim.statistics[key] = datastats.csv_statistics([raw], key) if isinstance(raw, bytes) else raw


def test_drift_a_run_for_each_drifted_batch_and_none_for_the_rest(baseline: drift.Baseline) -> None:
    sim = drifting(baseline)
    assert sim.condition("DriftWatch") == ("True", "Watching")
    assert [b.outcome for b in sim.status.drift.batches] == ["Baseline"]  # type: ignore[union-attr]
    land(sim, "same.csv", SAME, 1)
    sim.step(5)
    assert sim.status.runs == [] and sim.reasons()[-1] == "NoDrift"
    land(sim, "shifted.csv", SHIFTED, 2)
    land(sim, "broken.csv", "CSV parse error: Expected 2 columns, got 3", 3)
    land(sim, "empty.csv", b"size,colour\n", 4)
    land(sim, "long" * 300 + ".csv", SHIFTED, 5)
    planned = sim.step(5)
    (record,) = sim.status.runs
    assert record.trigger == "Drift" and record.details["batch"] == "shifted.csv"
    assert record.details["baselineVersion"] == "1" and record.details["drift.size"].startswith("Jensen")
    outcomes = {b.batch: (b.outcome, b.run) for b in sim.status.drift.batches}  # type: ignore[union-attr]
    assert outcomes["shifted.csv"] == ("Drifted", record.id)
    assert outcomes["broken.csv"] == ("Unjudgeable", None) and outcomes["same.csv"] == ("NoDrift", None)
    assert outcomes["empty.csv"] == ("Unjudgeable", None), "a header and no rows is not drift"
    (long_key,) = [key for key in outcomes if key.startswith("longlong")]
    assert len(long_key) == drift.KEY_LIMIT and outcomes[long_key][0] == "Drifted"
    assert [v.outcome for v in planned.verdicts] == ["Drifted", "Unjudgeable", "Unjudgeable", "Drifted"]
    assert {"DriftDetected", "DriftUnjudgeable"} <= set(sim.reasons())
    sim.step(5)
    sim.restart().step(5)
    assert len(sim.submits) == 1, "a checked batch is not checked again, nor after a restart"


def test_drift_anomalies_block_the_run_when_declared(baseline: drift.Baseline) -> None:
    sim = drifting(baseline, blockOnAnomalies=True)
    land(sim, "shifted.csv", SHIFTED, 1)
    sim.step(5)
    assert sim.status.runs == [] and "DriftRunBlocked" in sim.reasons()


def test_batches_wait_for_a_baseline_and_are_checked_once_there_is_one(baseline: drift.Baseline) -> None:
    sim = drifting(None)
    land(sim, "shifted.csv", SHIFTED, 1)
    sim.step(5)
    assert sim.condition("DriftWatch") == ("False", "NoBaseline") and sim.status.runs == []
    sim.baseline = baseline
    sim.step(5)
    assert [r.trigger for r in sim.status.runs] == ["Drift"]


def test_an_unreadable_baseline_or_prefix_is_a_condition_not_a_run(baseline: drift.Baseline) -> None:
    sim = drifting(baseline)
    land(sim, "shifted.csv", SHIFTED, 1)
    observed = replace(sim.observed(), drift_check=DriftCheck(None, baseline_error="no statisticsUri"))
    assert plan(observed, T0).reads.batches == ()
    result = plan(observed, T0)
    assert result.start == [] and ("BaselineUnreadable", "False") in [
        (c.reason, c.status) for c in result.status.conditions
    ]
    sim.batches = Polled(error="spec.triggers.onDrift.batches: cannot list file:///batches: denied")
    sim.step(5)
    assert sim.condition("DriftWatch") == ("False", "BatchesUnreadable") and sim.status.runs == []


# --- following runs and registering what they pushed ------------------------------------------------


def started(sim: Sim, token: str = "go") -> RunRecord:
    sim.request(token)
    sim.step()
    return sim.run()


def test_a_pushed_manifest_becomes_one_model_version() -> None:
    sim = Sim(gates={"metrics": [{"name": "accuracy", "min": "0.9"}]}, parameters={"accuracy": "0.95"})
    record = started(sim)
    sim.end(record.id)
    planned = sim.step(3)
    (body,) = [r.body for r in planned.register]
    assert body["metadata"]["name"] == "tiny-v1" and body["metadata"]["namespace"] == "ns"
    assert body["metadata"]["labels"] == {
        "slipway.dev/model": "tiny",
        "slipway.dev/pipeline": "tiny",
        "slipway.dev/run": record.id,
        "app.kubernetes.io/managed-by": "slipway",
    }
    assert "ownerReferences" not in body["metadata"], "deleting a pipeline must not delete the registry"
    assert body["spec"]["metrics"] == {"accuracy": "0.95", "loss": "0.05"}
    assert body["spec"]["headlineMetric"] == "accuracy" and body["spec"]["uri"] == "file:///models/tiny/1"
    lineage = body["spec"]["lineage"]
    assert (lineage["runId"], lineage["trigger"], lineage["pipelineDigest"]) == (
        record.id,
        "Manual",
        PIPELINE.digest,
    )
    done = sim.run()
    assert (done.phase, done.pushed, done.model_version, done.message) == (
        "Succeeded",
        True,
        "tiny-v1",
        "pushed v1",
    )
    assert done.finish_time == T0 + timedelta(minutes=3)
    assert [(r.id, r.phase, r.trigger) for r in planned.ended] == [(record.id, "Succeeded", "Manual")]
    assert sim.reasons()[-2:] == ["RunSucceeded", "ModelVersionCreated"]
    assert sim.condition("Succeeded") == ("True", "RunSucceeded") and sim.condition("Running")[1] == "Idle"
    for _ in range(3):
        sim.step(1)
    sim.restart().step(1)
    assert sim.creates == ["tiny-v1"], "registered once, and not again after a restart"


def test_versions_count_on_from_the_registry_and_the_runs_in_status() -> None:
    sim = Sim()
    sim.registry = {f"tiny-v{v}": {"spec": {"version": v}} for v in (1, 2, 7)}
    first = started(sim, "a")
    assert first.details["version"] == "8"
    sim.end(first.id, "Failed", "boom")
    sim.step(1)
    second = started(sim, "b")
    assert second.details["version"] == "9", "a failed run's version is not handed out again"


def test_a_run_that_pushed_nothing_is_recorded_so_and_registers_nothing() -> None:
    sim = Sim()
    record = started(sim)
    sim.end(record.id, pushed=False, reason="NOT_BLESSED")
    sim.step(1)
    done = sim.run()
    assert (done.pushed, done.message, done.model_version) == (False, "not pushed: NOT_BLESSED", None)
    assert sim.reasons()[-1] == "NothingPushed" and sim.creates == []


def test_without_a_push_result_the_store_says_whether_a_model_was_pushed() -> None:
    """A KFP run reports no outputs: the manifest in the model store is the word."""
    sim = Sim()
    one = started(sim, "one")
    sim.end(one.id, outputs=False)
    sim.step(1)
    two = started(sim, "two")
    sim.end(two.id, pushed=False, outputs=False)
    sim.step(1)
    assert [(r.pushed, r.model_version) for r in sim.status.runs] == [(True, "tiny-v1"), (False, None)]
    assert "slipway-manifest.json" in sim.run().message


def test_registration_waits_while_the_store_cannot_be_read_and_then_happens_once() -> None:
    sim = Sim()
    record = started(sim)
    sim.end(record.id)
    sim.store_unreadable = "cannot read file:///models/tiny/1/slipway-manifest.json: timeout"
    sim.step(1)
    assert (sim.run().phase, sim.run().pushed) == ("Succeeded", None)
    assert sim.run().message.startswith("registration pending (attempt 1/5): ") and sim.creates == []
    sim.store_unreadable = None
    sim.step(1)
    sim.step(1)
    assert sim.creates == ["tiny-v1"] and sim.reasons().count("RunSucceeded") == 1


def test_a_manifest_that_stays_unreadable_ends_the_registration_after_bounded_attempts() -> None:
    sim = Sim()
    record = started(sim)
    sim.end(record.id)
    sim.store_unreadable = "file:///models/tiny/1/slipway-manifest.json: not a valid slipway-manifest.json"
    for _ in range(registration.MAX_ATTEMPTS + 3):
        sim.step(1)
    done = sim.run()
    assert (done.phase, done.pushed, done.model_version) == ("Succeeded", False, None)
    assert done.message.startswith("RegistrationFailed: gave up after 5 attempts: ")
    assert done.details[registration.ATTEMPTS] == "5"
    assert sim.reasons().count("RegistrationFailed") == 1 and sim.creates == []
    assert next(e for e in sim.events if e.reason == "RegistrationFailed").type == "Warning"
    assert followed(sim.status) == [], "a run whose registration ended is no longer asked about"


def test_a_run_that_says_it_pushed_with_no_manifest_in_the_store_is_a_failed_registration() -> None:
    sim = Sim()
    record = started(sim)
    sim.end(record.id)
    del sim.store[1]
    sim.step(1)
    done = sim.run()
    assert (done.pushed, done.model_version) == (False, None) and sim.creates == []
    assert done.message.startswith("RegistrationFailed: not pushed: no slipway-manifest.json")
    assert sim.reasons()[-1] == "RegistrationFailed"


@pytest.mark.parametrize(
    ("manifest", "said"),
    [
        ({"version": 7}, "names version 7, not 8"),
        ({"model_name": "other"}, "names model 'other', not 'tiny'"),
    ],
)
def test_a_manifest_naming_another_version_or_model_registers_nothing(manifest: Any, said: str) -> None:
    sim = Sim()
    sim.registry = {"tiny-v7": {"spec": {"version": 7}}}
    record = started(sim)
    assert record.details["version"] == "8"
    sim.end(record.id)
    sim.store[8] = sim.store.pop(8).model_copy(update=manifest)
    sim.step(1)
    done = sim.run()
    assert (done.pushed, done.model_version) == (False, None) and sim.creates == []
    assert (
        done.message.startswith("ManifestMismatch: file:///models/tiny/8: the manifest ")
        and said in done.message
    )
    assert "ModelVersionCreated" not in sim.reasons() and sim.reasons()[-1] == "ManifestMismatch"


def test_a_version_taken_by_another_run_is_recorded_as_not_pushed() -> None:
    """The API server refused the ModelVersion (its name belongs to another run's): the plan as applied."""
    sim = Sim()
    record = started(sim)
    sim.end(record.id)
    pushed = sim.step(1)
    assert [r.body["metadata"]["name"] for r in pushed.register] == ["tiny-v1"]
    refused = registration_refused(pushed, record.id, "VersionTaken", "tiny-v1 records run other-run")
    done = next(r for r in refused.status.runs if r.id == record.id)
    assert (done.pushed, done.model_version) == (False, None)
    assert done.message == "VersionTaken: tiny-v1 records run other-run"
    assert refused.status.last_run == done
    assert [e.reason for e in refused.events][-1] == "VersionTaken"
    assert "ModelVersionCreated" not in [e.reason for e in refused.events]
    assert pushed.status.runs[-1].pushed is True, "the plan itself is not changed"


def test_a_failed_run_is_reported_with_its_message_or_its_log() -> None:
    sim = Sim()
    one = started(sim, "one")
    sim.end(one.id, "Failed", "RuntimeError: loss is NaN")
    sim.step(1)
    two = started(sim, "two")
    sim.end(two.id, "Failed")
    sim.tails[two.id] = "Traceback ...\nMemoryError"
    sim.step(1)
    assert [e.message for e in sim.events if e.reason == "RunFailed"] == [
        f"run {one.id} failed: RuntimeError: loss is NaN",
        f"run {two.id} failed: Traceback ...\nMemoryError",
    ]
    assert sim.condition("Succeeded") == ("False", "RunFailed") and sim.creates == []


def test_a_run_past_its_timeout_is_terminated_and_recorded_failed() -> None:
    sim = Sim(runTimeoutSeconds=600)
    record = started(sim)
    sim.step(10)
    assert sim.run().phase == "Running"
    planned = sim.step(1)
    assert planned.runs == [Terminate(record.id, "Timeout")] and sim.terminated == [record.id]
    assert sim.run().phase == "Failed" and "timed out after 600 s" in sim.run().message


def test_a_run_links_to_the_executor_s_page_for_it() -> None:
    sim = Sim()
    sim.ui = "https://kfp.example.com"
    record = started(sim)
    assert record.url == "https://kfp.example.com/#/runs/details/0"
    sim.runs[record.id] = RunState("Running", url="https://kfp.example.com/#/runs/details/moved")
    sim.step(1)
    assert sim.run().url == "https://kfp.example.com/#/runs/details/moved"
    sim.end(record.id)
    sim.step(1)
    assert sim.run().url == "https://kfp.example.com/#/runs/details/moved" and sim.run().pushed


def test_the_history_keeps_the_newest_runs_within_the_limits() -> None:
    sim = Sim(successfulRunsHistoryLimit=2, failedRunsHistoryLimit=1)
    for token, phase in [
        ("a", "Succeeded"),
        ("b", "Failed"),
        ("c", "Succeeded"),
        ("d", "Failed"),
        ("e", "Succeeded"),
    ]:
        record = started(sim, token)
        sim.end(record.id, phase)
        sim.step(1)
    assert [r.details["triggerKey"] for r in sim.status.runs] == ["c", "d", "e"]
    assert sim.status.last_run == sim.status.runs[-1]


# --- restarts -------------------------------------------------------------------------------------------


def test_after_a_restart_a_run_in_status_is_followed_not_started_again() -> None:
    sim = Sim()
    record = started(sim, "once")
    again = sim.restart()
    again.step(1)
    again.end(record.id)
    again.step(1)
    assert again.submits == [] and [r.id for r in again.status.runs] == [record.id]
    assert again.creates == ["tiny-v1"]


def test_a_run_submitted_but_lost_from_status_is_adopted_by_its_deterministic_id() -> None:
    """The operator died between submitting and writing status: the same request names the same run,
    and the executor answers with the run it has (here already finished)."""
    sim = Sim()
    record = started(sim, "once")
    sim.end(record.id)
    sim.status = TrainingPipelineStatus()
    again = sim.restart()
    again.step(1)
    assert list(again.runs) == [record.id], "no second run on the executor"
    assert again.run().id == record.id and again.run().phase == "Succeeded"
    again.step(1)
    assert again.creates == ["tiny-v1"] and again.run().pushed is True


# --- what stops a plan ----------------------------------------------------------------------------------


def test_an_unusable_spec_is_one_condition_and_one_event_and_decides_nothing_else() -> None:
    sim = Sim(schedule={"cron": "* * * * *"})
    sim.problem = SourceError("spec.pipeline.builtin", "UnknownBuiltin", "no built-in pipeline 'nope'")
    sim.request("go")
    sim.step()
    sim.step(1)
    assert sim.condition("Ready") == ("False", "UnknownBuiltin") and sim.reasons() == ["UnknownBuiltin"]
    assert sim.status.runs == [] and sim.status.last_schedule_time is None
    (ready,) = [c for c in sim.status.conditions if c.type == "Ready"]
    assert ready.message == "spec.pipeline.builtin: no built-in pipeline 'nope'"
    sim.problem = None
    sim.step(1)
    assert sim.condition("Ready") == ("True", "Valid") and len(sim.status.runs) == 1


def test_an_unreachable_executor_changes_nothing_but_its_condition_and_says_so_once() -> None:
    sim = Sim(executor={"type": "kfp", "kfp": {"endpoint": "http://kfp:8888"}})
    record = started(sim)
    assert sim.condition("ExecutorReachable") == ("True", "Reachable")
    before = sim.status.model_copy(deep=True)
    sim.executor_down = "KFP API at http://kfp:8888: list runs: HTTP 503"
    sim.request("another")
    sim.step(1)
    sim.step(1)
    assert sim.condition("ExecutorReachable") == ("False", "ExecutorUnreachable")
    assert sim.reasons().count("ExecutorUnreachable") == 1
    assert sim.status.runs == before.runs and sim.submits == [record.id]
    sim.end(record.id)
    sim.executor_down = None
    sim.step(1)
    assert sim.condition("ExecutorReachable") == ("True", "Reachable") and len(sim.submits) == 2
    assert sim.creates == ["tiny-v1"] and sim.reasons().count("ExecutorUnreachable") == 1


def test_a_submit_refused_sets_the_plan_aside() -> None:
    sim = Sim(executor={"type": "kfp", "kfp": {"endpoint": "http://kfp:8888"}})
    sim.request("go")
    observed = sim.observed()
    refused = executor_refused(observed, "KFP API at http://kfp:8888: create run: HTTP 500", T0)
    assert refused.status.runs == [] and refused.status.handled_run_request is None
    assert [e.reason for e in refused.events] == ["ExecutorUnreachable"] and refused.runs == []


def test_planning_never_changes_what_it_was_given(baseline: drift.Baseline) -> None:
    sim = drifting(baseline, pollIntervalSeconds=60)
    sim.request("go")
    land(sim, "shifted.csv", SHIFTED, 1)
    observed = sim.observed()
    wire = observed.status.to_wire()
    plan(observed, T0)
    assert observed.status.to_wire() == wire

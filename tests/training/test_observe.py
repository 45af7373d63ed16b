"""What the training controller observes and how it carries out a plan, without an API server: the spec's
validation with Secrets and ConfigMaps given as plain readers, pushes and batches read from a file://
store, the executor table, and a plan set aside when the executor refuses it."""

from __future__ import annotations

import base64
import json
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fixtures.pipelines import training_spec as spec
from slipway.api.training_pipeline import Executor as ExecutorSpec
from slipway.api.training_pipeline import RunRecord, TrainingPipelineStatus
from slipway.datastats import statistics as datastats
from slipway.refusals import Refused
from slipway.training import apply as applier
from slipway.training.credentials import run_environment
from slipway.training.executors import EXECUTORS, UNREACHABLE, Target, executor_for
from slipway.training.kfp_executor import KfpError
from slipway.training.local_executor import LocalExecutor, RunState
from slipway.training.observe import Memory, Session, check_batches, read_push, validate
from slipway.training.plan import Observed, plan
from slipway.training.source import SourceError, parse_ir

PIPELINES = Path(__file__).resolve().parent / "pipelines"
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def nothing(_: str) -> dict[str, str] | None:
    return None


@pytest.fixture(autouse=True)
def builtin_pipelines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPWAY_PIPELINES_DIR", str(PIPELINES))


@pytest.mark.parametrize(
    ("fields", "reason", "field"),
    [
        ({"pipeline": {"builtin": "nope"}}, "UnknownBuiltin", "spec.pipeline.builtin"),
        ({"parameters": {"epochz": "3"}}, "UnknownParameter", "spec.parameters.epochz"),
        ({"parameters": {"accuracy": "high"}}, "InvalidParameter", "spec.parameters.accuracy"),
        (
            {"pipeline": {"specUri": "file:///nonexistent/p.yaml"}},
            "PipelineSpecUnreadable",
            "spec.pipeline.specUri",
        ),
        (
            {"pipeline": {"configMapRef": {"name": "missing"}}},
            "ConfigMapNotFound",
            "spec.pipeline.configMapRef",
        ),
        (
            {
                "executor": {"type": "kfp", "kfp": {"endpoint": "http://kfp:8888"}},
                "artifactRoot": {"uri": "az://acct/c/root"},
            },
            "UnsupportedPipelineRoot",
            "spec.artifactRoot.uri",
        ),
        (
            {
                "executor": {
                    "type": "kfp",
                    "kfp": {"endpoint": "http://kfp:8888", "tokenSecretRef": {"name": "x"}},
                },
                "artifactRoot": {"uri": "gs://bucket/root"},
            },
            "SecretNotFound",
            "spec.executor.kfp.tokenSecretRef",
        ),
        (
            {"modelStore": {"uri": "s3://models", "secretRef": {"name": "no-such-secret"}}},
            "SecretNotFound",
            "spec.modelStore.secretRef",
        ),
    ],
)
def test_an_unusable_spec_names_the_field_and_the_reason(
    fields: dict[str, Any], reason: str, field: str
) -> None:
    with pytest.raises(Refused) as raised:
        validate("ns", spec(**fields), nothing, nothing)
    assert (
        raised.value.reason == reason
        and raised.value.field == field
        and str(raised.value).startswith(f"{field}: ")
    )


def test_a_usable_spec_resolves_its_pipeline_from_a_config_map() -> None:
    ir = (PIPELINES / "tiny" / "pipeline.yaml").read_text()
    maps = {"ir": {"pipeline.yaml": ir}}
    found = validate("ns", spec(pipeline={"configMapRef": {"name": "ir"}}), maps.get, nothing)
    assert found.name == "tiny" and found.digest == parse_ir(ir, "x").digest


def encoded(**values: str) -> dict[str, str]:
    return {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}


def test_two_locations_with_different_keys_cannot_share_one_local_run() -> None:
    secrets = {"a": encoded(AWS_ACCESS_KEY_ID="AKIA-ONE"), "b": encoded(AWS_ACCESS_KEY_ID="AKIA-TWO")}
    same = spec(
        data={"uri": "s3://data", "secretRef": {"name": "a"}},
        modelStore={"uri": "s3://models", "secretRef": {"name": "a"}},
    )
    assert run_environment(same, secrets.get) == {"AWS_ACCESS_KEY_ID": "AKIA-ONE"}
    apart = spec(
        data={"uri": "s3://data", "secretRef": {"name": "a"}},
        modelStore={"uri": "s3://models", "secretRef": {"name": "b"}},
    )
    with pytest.raises(SourceError) as raised:
        run_environment(apart, secrets.get)
    assert raised.value.reason == "ConflictingCredentials"
    assert "spec.modelStore and spec.data give different AWS_ACCESS_KEY_ID" in str(raised.value)
    assert "AKIA" not in str(raised.value)


def test_every_executor_type_of_the_api_has_an_entry_in_the_table(tmp_path: Path) -> None:
    declared = typing.get_args(ExecutorSpec.model_fields["type"].annotation)
    assert set(declared) == set(EXECUTORS)
    assert KfpError in UNREACHABLE
    local = spec(artifactRoot={"uri": f"file://{tmp_path}/artifacts"})
    executor, root = executor_for(Target("ns", "p", local, nothing))
    assert isinstance(executor, LocalExecutor) and root == f"{tmp_path}/artifacts/ns/p/pipeline-root"
    remote = spec(
        executor={"type": "kfp", "kfp": {"endpoint": "http://kfp:8888", "tokenSecretRef": {"name": "t"}}},
        artifactRoot={"uri": "s3://bucket/root"},
    )
    executor, root = executor_for(Target("ns", "p", remote, {"t": encoded(token="s3cr3t")}.get))
    assert root == "s3://bucket/root/ns/p" and executor.target.token == "s3cr3t"  # type: ignore[attr-defined]


def test_polls_are_due_once_per_interval_per_pipeline_and_trigger() -> None:
    memory = Memory()
    assert memory.poll_due(("ns", "p"), "NewData", 60, T0)
    assert not memory.poll_due(("ns", "p"), "NewData", 60, T0 + timedelta(seconds=59))
    assert memory.poll_due(("ns", "p"), "Drift", 60, T0 + timedelta(seconds=59))
    assert memory.poll_due(("ns", "q"), "NewData", 60, T0 + timedelta(seconds=59))
    assert memory.poll_due(("ns", "p"), "NewData", 60, T0 + timedelta(seconds=60))


def push(store: Path, version: int, saved_model: bool = True, manifest: str | None = None) -> None:
    directory = store / "tiny" / str(version)
    directory.mkdir(parents=True)
    body = {"modelName": "tiny", "version": version, "metrics": {"accuracy": 0.9}, "lineage": {}}
    (directory / "slipway-manifest.json").write_text(manifest or json.dumps(body))
    if saved_model:
        (directory / "saved_model.pb").write_bytes(b"\x08\x01")


def test_what_a_run_pushed_is_read_from_the_model_store(tmp_path: Path) -> None:
    store = spec(modelStore={"uri": f"file://{tmp_path}"})
    push(tmp_path, 1)
    push(tmp_path, 2, saved_model=False)
    push(tmp_path, 3, manifest="{not json")

    def pushed(version: int, outputs: dict[str, Any] | None = None) -> Any:
        record = RunRecord(
            id=f"r{version}", trigger="Manual", phase="Succeeded", details={"version": str(version)}
        )
        return read_push(store, record, RunState("Succeeded", outputs=outputs), nothing)

    found = pushed(1)
    assert found.found is not None and found.found.metrics == {"accuracy": 0.9}
    assert found.uri == f"file://{tmp_path}/tiny/1"
    assert "no saved_model.pb" in (pushed(2).missing or "")
    assert "not a valid slipway-manifest.json" in (pushed(3).unreadable or "")
    assert "no slipway-manifest.json" in (pushed(4).missing or "")
    # Without a push_result output (a KFP run), the pusher's record says why nothing was pushed.
    results = tmp_path / "tiny" / "slipway-push-results"
    results.mkdir()
    reason = "evaluator did not bless the model: accuracy value 0.4000 fails lower_bound { value: 0.9 }"
    (results / "5.json").write_text(json.dumps({"pushed": False, "reason": reason, "version": 5}))
    assert pushed(5).missing == f"not pushed: {reason}"
    (results / "6.json").write_text("{not json")
    assert "not a valid push result" in (pushed(6).unreadable or "")
    told = pushed(9, {"push_result": json.dumps({"pushed": True, "version": 1})})
    assert told.version == 1 and told.found is not None, "the run's push_result names the version"


def test_new_batches_are_read_against_the_baseline_model_s_training_statistics(tmp_path: Path) -> None:
    training = b"size,colour\n" + b"".join(
        f"{i % 50},{'red' if i % 2 else 'blue'}\n".encode() for i in range(100)
    )
    (tmp_path / "stats.pb").write_bytes(datastats.serialize(datastats.csv_statistics([training], "train")))
    lineage = {"statisticsUri": f"file://{tmp_path}/stats.pb"}
    model = tmp_path / "models" / "tiny" / "1"
    model.mkdir(parents=True)
    (model / "slipway-manifest.json").write_text(
        json.dumps({"modelName": "tiny", "version": 1, "lineage": lineage})
    )
    batches = tmp_path / "batches"
    batches.mkdir()
    (batches / "a.csv").write_bytes(training)
    (batches / "b.csv").write_bytes(b"size,colour\n1,2,3\n")
    drifting = spec(
        modelStore={"uri": f"file://{tmp_path}/models"},
        triggers={"onDrift": {"batches": {"uri": f"file://{batches}"}}},
    )
    from slipway import blobs

    listing = tuple(blobs.list_objects(f"file://{batches}"))
    memory = Memory()
    session = Session("ns", "tiny", nothing, nothing, memory, baseline_uri=f"file://{model}")
    check = check_batches(drifting, listing, session)
    assert check.baseline is not None and check.baseline.version == 1 and check.baseline.schema is None
    read = {key: value for (key, _), value in check.batches.items()}
    assert read["a.csv"].num_examples == 100  # type: ignore[union-attr]
    assert isinstance(read["b.csv"], str)
    assert list(memory.baselines) == [lineage["statisticsUri"]], "the baseline is read once"
    assert check_batches(drifting, listing, Session("ns", "tiny", nothing, nothing, memory)).baseline is None


class Refusing:
    """An executor whose API is down."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def submit(self, run_id: str, ir_text: str, arguments: dict[str, Any], pipeline_root: str) -> RunState:
        self.calls.append(run_id)
        raise KfpError("KFP API at http://kfp:8888: create run: HTTP 503")

    def state(self, run_id: str) -> RunState:
        return RunState("Running")

    def terminate(self, run_id: str) -> None:
        pass

    def log_tail(self, run_id: str, lines: int = 20) -> str:
        return ""


def test_a_plan_the_executor_refuses_is_set_aside_and_only_its_condition_is_written() -> None:
    pipeline = parse_ir((PIPELINES / "tiny" / "pipeline.yaml").read_text(), "x")
    remote = spec(
        executor={"type": "kfp", "kfp": {"endpoint": "http://kfp:8888"}}, artifactRoot={"uri": "s3://bkt/r"}
    )
    observed = Observed(
        "ns", "tiny", 1, T0, remote, TrainingPipelineStatus(), run_request="go", pipeline=pipeline
    )
    planned = plan(observed, T0)
    assert len(planned.start) == 1
    executor = Refusing()
    session = Session("ns", "tiny", nothing, nothing, Memory(), executor=executor)
    done = applier.apply(planned, observed, session, T0)
    assert executor.calls == [planned.start[0].record.id]
    assert done.status.runs == [] and done.status.handled_run_request is None
    assert [e.reason for e in done.events] == ["ExecutorUnreachable"]
    reachable = next(c for c in done.status.conditions if c.type == "ExecutorReachable")
    assert (reachable.status, reachable.message) == (
        "False",
        "KFP API at http://kfp:8888: create run: HTTP 503",
    )

"""The kfp executor through the real kfp.Client against the real KFP API server (2.0.5) and its persistence
agent; the tests play Argo's part by writing the Workflow's status (tests/fixtures/kfp_backend.py)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from fixtures.kfp_backend import KfpBackend, LogNode
from fixtures.storage import free_port
from fixtures.waiting import wait_for
from slipway.training import kfp_executor
from slipway.training.kfp_executor import KfpError, KfpExecutor, KfpTarget
from slipway.training.kfp_platform import SecretEnv
from slipway.training.kfp_pods import NODE_NAME, WORKFLOW_LABEL, kubernetes_step_logs, pod_for_node, tail
from slipway.training.source import SourceError, coerce, parse_ir

IR = (Path(__file__).resolve().parent / "pipelines" / "tiny" / "pipeline.yaml").read_text()
ROOT = "s3://artifacts/root"


def arguments(version: int = 1) -> dict[str, Any]:
    """What the controller passes the tiny pipeline: its required parameters (the server refuses a run
    without them)."""
    return {
        "data_uri": "s3://data/batch.csv",
        "model_store_uri": "s3://models",
        "model_name": "tiny",
        "model_version": version,
    }


def executor(backend: KfpBackend, name: str, token: str | None = "t0ken") -> KfpExecutor:
    return KfpExecutor(
        KfpTarget(
            endpoint=backend.url,
            token=token,
            experiment="slipway",
            namespace=None,
            service_account="pipeline-runner",
            ui_url="https://kfp.example.com",
            pipeline_name=name,
        )
    )


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_uploads_once_per_digest_and_names_runs_deterministically(kfp_backend: KfpBackend) -> None:
    name = fresh("ns-tiny")
    first = executor(kfp_backend, name)
    run_name = fresh("tiny-manual")
    state = first.submit(run_name, IR, arguments(), ROOT)
    assert state.phase == "Pending"
    assert state.url is not None and state.url.startswith("https://kfp.example.com/#/runs/details/")
    (run,) = kfp_backend.runs_named(run_name)
    assert state.url.endswith(run.run_id)
    assert run.runtime_config.pipeline_root == ROOT
    assert run.runtime_config.parameters == {**arguments(), "model_version": 1}
    assert run.service_account == "pipeline-runner"
    workflow = kfp_backend.workflow(run.run_id)
    assert workflow["spec"]["serviceAccountName"] == "pipeline-runner"
    versions = kfp_backend.pipeline_versions(name)
    assert len(versions) == 2  # the pipeline's own first version + the one named by the digest

    # A restarted operator (a new executor, no memory) asking for the same run adopts it.
    again = executor(kfp_backend, name).submit(run_name, IR, arguments(), ROOT)
    assert again.url == state.url
    assert len(kfp_backend.runs_named(run_name)) == 1

    # Another run of the same IR reuses the version; a changed IR adds exactly one version.
    second = fresh("tiny-manual")
    first.submit(second, IR, arguments(2), ROOT)
    (run2,) = kfp_backend.runs_named(second)
    assert run2.pipeline_version_reference == run.pipeline_version_reference
    assert len(kfp_backend.pipeline_versions(name)) == 2
    first.submit(fresh("tiny-manual"), IR + "\n# changed\n", arguments(3), ROOT)
    assert len(kfp_backend.pipeline_versions(name)) == 3
    assert len(kfp_backend.client().list_experiments(page_size=100).experiments or []) >= 1
    assert sum(e.display_name == "slipway" for e in kfp_backend.client().list_experiments().experiments) == 1


def test_each_terminal_state_maps_with_a_useful_message(kfp_backend: KfpBackend) -> None:
    ex = executor(kfp_backend, fresh("ns-states"))
    ok, failed = fresh("ok"), fresh("failed")
    ex.submit(ok, IR, arguments(), ROOT)
    ex.submit(failed, IR, arguments(), ROOT)
    (ok_run,) = kfp_backend.runs_named(ok)
    (failed_run,) = kfp_backend.runs_named(failed)

    kfp_backend.play_argo(ok_run.run_id, "Running")
    wait_for(lambda: ex.state(ok).phase == "Running", "Running reported by the persistence agent")
    kfp_backend.play_argo(ok_run.run_id, "Succeeded")
    assert wait_for(lambda: (s := ex.state(ok)).phase != "Running" and s, "succeeded").phase == "Succeeded"

    kfp_backend.play_argo(
        failed_run.run_id, "Failed", "Error (exit code 1): training diverged", failed_step="train-and-push"
    )
    state = wait_for(
        lambda: (s := executor(kfp_backend, "x").state(failed)).phase != "Pending" and s, "failed"
    )
    assert state.phase == "Failed"
    assert "train-and-push" in state.message and "training diverged" in state.message


def test_a_failed_step_says_why_with_the_tail_of_its_pod_log(
    kfp_backend: KfpBackend, log_node: LogNode, api_client: Any
) -> None:
    """The step's pod as Argo 3.3 names and annotates it, bound to a node whose kubelet log endpoint
    answers: the message is the Workflow's reason and the last lines of the step's own output."""
    ex = KfpExecutor(
        KfpTarget(
            kfp_backend.url,
            None,
            "slipway",
            None,
            None,
            None,
            fresh("ns-logs"),
            step_logs=kubernetes_step_logs(lambda: api_client),
        )
    )
    with_log, without_log = fresh("failed"), fresh("failed")
    for name in (with_log, without_log):
        ex.submit(name, IR, arguments(), ROOT)
    (run,) = kfp_backend.runs_named(with_log)
    namespace, workflow, pod, node_name = kfp_backend.step_node(run.run_id, "train-and-push")
    log_node.pod(api_client, namespace, pod, {WORKFLOW_LABEL: workflow}, {NODE_NAME: node_name})
    output = "".join(f"epoch {i}: loss {1 / i:.3f}\n" for i in range(1, 9))
    log_node.logs[(namespace, pod, "main")] = output + "RuntimeError: training diverged: loss is NaN\n"
    kfp_backend.play_argo(run.run_id, "Failed", "Error (exit code 1)", failed_step="train-and-push")
    state = wait_for(lambda: (s := ex.state(with_log)).phase == "Failed" and s, "failed")
    assert state.message == (
        "step train-and-push failed: Error (exit code 1)\n"
        f"last lines of pod {namespace}/{pod}:\n"
        "epoch 5: loss 0.200\nepoch 6: loss 0.167\nepoch 7: loss 0.143\nepoch 8: loss 0.125\n"
        "RuntimeError: training diverged: loss is NaN"
    )
    assert any(f"/containerLogs/{namespace}/{pod}/main?" in r for r in log_node.requests)

    # A pod whose log the node cannot give (gone, rotated): named, with why; no pod at all: KFP's reason.
    (run2,) = kfp_backend.runs_named(without_log)
    namespace, workflow, pod2, node_name = kfp_backend.step_node(run2.run_id, "train-and-push")
    log_node.pod(api_client, namespace, pod2, {WORKFLOW_LABEL: workflow}, {NODE_NAME: node_name})
    kfp_backend.play_argo(run2.run_id, "Failed", "OOMKilled", failed_step="train-and-push")
    state = wait_for(lambda: (s := ex.state(without_log)).phase == "Failed" and s, "failed")
    assert state.message.startswith(
        f"step train-and-push failed: OOMKilled (pod {namespace}/{pod2}; its log cannot be read: HTTP "
    )
    core = client.CoreV1Api(api_client)
    core.delete_namespaced_pod(pod2, namespace, grace_period_seconds=0)
    wait_for(
        lambda: not core.list_namespaced_pod(namespace, label_selector=f"{WORKFLOW_LABEL}={workflow}").items,
        "gone",
    )
    assert ex.state(without_log).message == "step train-and-push failed: OOMKilled"


def test_the_pod_of_a_workflow_node_is_found_by_annotation_or_name() -> None:
    node = {"id": "wf-123", "name": "wf.root-driver.train"}
    by_id = [{"name": "wf-train-9", "annotations": {"workflows.argoproj.io/node-id": "wf-123"}}]
    by_name = [{"name": "wf-train-9", "annotations": {NODE_NAME: "wf.root-driver.train"}}]
    v1_names = [{"name": "wf-9", "annotations": {NODE_NAME: "wf.root-driver.ingest"}}, {"name": "wf-123"}]
    assert pod_for_node(by_id, node) == pod_for_node(by_name, node) == "wf-train-9"
    assert pod_for_node(v1_names, node) == "wf-123"
    assert pod_for_node([{"name": "other", "annotations": {}}], node) is None
    assert tail("a\n\n  \nb\n" + "x" * 400 + "\n", 2) == "b\n" + "x" * 300


def test_terminate_ends_cancelled_even_though_the_server_says_failed(kfp_backend: KfpBackend) -> None:
    ex = executor(kfp_backend, fresh("ns-terminate"))
    name = fresh("r")
    ex.submit(name, IR, arguments(), ROOT)
    (run,) = kfp_backend.runs_named(name)
    kfp_backend.play_argo(run.run_id, "Running")
    kfp_backend.wait_state(run.run_id, "RUNNING")
    ex.terminate(name)
    assert kfp_backend.run(run.run_id).state == "CANCELING"
    assert kfp_backend.workflow(run.run_id)["spec"]["activeDeadlineSeconds"] == 0
    assert ex.state(name).phase == "Running"  # still canceling
    # What Argo does with activeDeadlineSeconds 0: the Workflow fails; KFP 2.0.5 then says FAILED.
    kfp_backend.play_argo(run.run_id, "Failed", "Stopped with strategy 'Terminate'")
    kfp_backend.wait_state(run.run_id, "FAILED")
    cancelled = ex.state(name)
    assert cancelled.phase == "Cancelled", cancelled
    ex.terminate(name)  # finished: nothing to do, no error


def test_refusals_name_what_the_server_said(kfp_backend: KfpBackend) -> None:
    ex = executor(kfp_backend, fresh("ns-bad"))
    with pytest.raises(KfpError) as missing:
        ex.submit(fresh("r"), IR, {"model_name": "tiny"}, ROOT)
    assert "is not optional, yet has neither default value nor user provided value" in str(missing.value)
    assert (missing.value.reason, missing.value.status) == ("RunRejected", 400)

    broken = IR.replace("schemaVersion: 2.1.0", "schemaVersion: 2.1.0\nnotAField: 1")
    assert broken != IR
    with pytest.raises(KfpError) as rejected:
        executor(kfp_backend, fresh("ns-broken")).submit(fresh("r"), broken, arguments(), ROOT)
    assert "pipeline spec is invalid" in str(rejected.value)
    assert (rejected.value.reason, rejected.value.status) == ("PipelineRejected", 500)


def test_a_run_deleted_behind_the_operators_back_is_reported_not_resubmitted(kfp_backend: KfpBackend) -> None:
    ex = executor(kfp_backend, fresh("ns-deleted"))
    name = fresh("r")
    ex.submit(name, IR, arguments(), ROOT)
    (run,) = kfp_backend.runs_named(name)
    kfp_backend.client().delete_run(run.run_id)
    gone = ex.state(name)
    assert gone.phase == "Failed" and "not found" in gone.message
    assert executor(kfp_backend, "x").state(fresh("never-submitted")).phase == "Failed"


def test_unreachable_api_is_a_clear_error_once_then_backs_off_without_the_token() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    down = KfpExecutor(KfpTarget(url, "s3cr3t-token", "slipway", None, None, None, "ns-down"))
    with pytest.raises(KfpError) as raised:
        down.submit("r", IR, arguments(), ROOT)
    assert url in str(raised.value) and "s3cr3t-token" not in str(raised.value)
    assert raised.value.reason == "ExecutorUnreachable"
    failures, until, _ = down.connections.backoff[kfp_executor.client_key(down.target)]
    assert failures == 1 and 4 < until - time.monotonic() <= 5
    with pytest.raises(KfpError) as again:
        down.state("r")
    assert str(again.value) == str(raised.value), "backed off: the same error at once, no call"
    assert down.connections.backoff[kfp_executor.client_key(down.target)][0] == 1


def test_a_server_error_backs_off_then_the_run_is_adopted_not_started_again(kfp_backend: KfpBackend) -> None:
    """The real server answering 500 (its database lost a table): a clear error naming the call, backoff,
    and once the server is back, the run it already had is found by name, not created twice."""
    ex = executor(kfp_backend, fresh("ns-500"))
    name = fresh("r")
    ex.submit(name, IR, arguments(), ROOT)
    ex.connections.run_ids.clear()  # a restarted operator: it knows the run by its name only
    key = kfp_executor.client_key(ex.target)
    with kfp_backend.table_gone("run_details"):
        with pytest.raises(KfpError) as raised:
            ex.submit(name, IR, arguments(), ROOT)
        assert (raised.value.reason, raised.value.status) == ("ExecutorUnreachable", 500)
        assert str(raised.value).startswith(f"KFP API at {kfp_backend.url}: list runs: HTTP 500")
        assert ex.connections.backoff[key][0] == 1
        with pytest.raises(KfpError) as again:
            ex.state(name)
        assert str(again.value) == str(raised.value), "backed off: no call, the same error"
    failures, _, error = ex.connections.backoff[key]
    ex.connections.backoff[key] = (failures, time.monotonic(), error)  # the backoff has run out
    assert ex.submit(name, IR, arguments(), ROOT).phase == "Pending"
    assert len(kfp_backend.runs_named(name)) == 1, "adopted, not started twice"
    assert key not in ex.connections.backoff, "a call that works ends the backoff"


# --- pure functions: no server --------------------------------------------------------------------------


def test_server_messages_are_read_from_both_error_shapes_and_never_the_stack() -> None:
    gateway = '{"error":"x","code":3,"message":"parameter model_version is not optional","details":[]}'
    upload = '{"error_message":"unknown template format: pipeline spec is invalid","error_details":"trace"}'
    assert kfp_executor.server_message(gateway) == "parameter model_version is not optional"
    assert kfp_executor.server_message(upload.encode()) == "unknown template format: pipeline spec is invalid"
    assert kfp_executor.server_message("upstream connect error") == "upstream connect error"
    assert kfp_executor.server_message(None) == ""


@pytest.mark.parametrize(
    ("what", "status", "message", "reason"),
    [
        ("upload pipeline", 500, "pipeline spec is invalid", kfp_executor.PIPELINE_REJECTED),
        ("upload pipeline version", 400, "bad", kfp_executor.PIPELINE_REJECTED),
        ("upload pipeline", 500, "database is locked", kfp_executor.UNREACHABLE),
        ("create run", 400, "not optional", kfp_executor.RUN_REJECTED),
        ("create run", 401, "", kfp_executor.UNAUTHORIZED),
        ("list runs", 403, "", kfp_executor.UNAUTHORIZED),
        ("list runs", 503, "", kfp_executor.UNREACHABLE),
        ("list runs", None, "", kfp_executor.UNREACHABLE),
    ],
)
def test_failures_are_classified_into_one_reason_each(
    what: str, status: int | None, message: str, reason: str
) -> None:
    assert kfp_executor.classify(what, status, message) == reason


def test_backoff_grows_to_five_minutes() -> None:
    assert [kfp_executor.backoff_seconds(n) for n in (1, 2, 3, 7, 50)] == [5, 10, 20, 300, 300]


def test_a_failed_workflow_names_its_step_and_a_terminated_one_says_so() -> None:
    failed = {
        "spec": {},
        "status": {
            "message": "child failed",
            "nodes": {
                "a": {"displayName": "root-driver", "type": "DAG", "phase": "Failed", "message": "child"},
                "b": {"displayName": "train", "type": "Pod", "phase": "Failed", "message": "OOMKilled"},
                "c": {"displayName": "ingest", "type": "Pod", "phase": "Succeeded"},
            },
        },
    }
    assert kfp_executor.failure_from_workflow(failed) == (False, "step train failed: OOMKilled")
    terminated = {"spec": {"activeDeadlineSeconds": 0}, "status": {"message": "Stopped"}}
    assert kfp_executor.failure_from_workflow(terminated) == (True, "Stopped")
    assert kfp_executor.failure_from_workflow({}) == (False, "")


def tfx_pipeline_job(old_style: bool) -> str:
    """The tiny pipeline as a PipelineJob JSON the way TFX's KubeflowV2DagRunner writes it: schemaVersion
    2.0.0 with `type: INT|DOUBLE|STRING` and `runtimeConfig.parameters` (old), or 2.1.0 with
    `parameterValues` (new)."""
    ir = yaml.safe_load(IR)
    values: dict[str, Any] = {"model_name": "from-tfx", "accuracy": 0.9}
    if not old_style:
        return json.dumps(
            {"displayName": "tiny", "pipelineSpec": ir, "runtimeConfig": {"parameterValues": values}}
        )
    ir["schemaVersion"] = "2.0.0"
    old = {"NUMBER_INTEGER": "INT", "NUMBER_DOUBLE": "DOUBLE", "STRING": "STRING"}
    for component in [ir["root"], *ir["components"].values()]:
        for side in ("inputDefinitions", "outputDefinitions"):
            for declared in (component.get(side) or {}).get("parameters", {}).values():
                if declared["parameterType"] in old and "defaultValue" not in declared:
                    declared["type"] = old[declared.pop("parameterType")]
    task_inputs = ir["root"]["dag"]["tasks"]["train-and-push"]["inputs"]["parameters"]
    task_inputs["sleep_seconds"] = {"runtimeValue": {"constantValue": {"intValue": "0"}}}  # 2.0.0 constants
    runtime = {"parameters": {"model_name": {"stringValue": "from-tfx"}, "accuracy": {"doubleValue": 0.9}}}
    return json.dumps(
        {
            "displayName": "tiny",
            "labels": {"tfx_version": "1-15-0"},
            "pipelineSpec": ir,
            "runtimeConfig": runtime,
        }
    )


@pytest.mark.parametrize(
    "old_style", [True, False], ids=["schema-2.0.0-parameters", "schema-2.1.0-parameterValues"]
)
def test_a_tfx_pipeline_job_is_read_with_its_runtime_config_as_defaults(old_style: bool) -> None:
    pipeline = parse_ir(tfx_pipeline_job(old_style), "spec.pipeline.specUri")
    assert pipeline.name == "tiny"
    assert pipeline.parameters["model_name"] == {
        "parameterType": "STRING",
        "defaultValue": "from-tfx",
        "isOptional": True,
    }
    assert pipeline.parameters["model_version"]["parameterType"] == "NUMBER_INTEGER"
    assert "pipelineSpec" not in pipeline.ir_text and "type: INT" not in pipeline.ir_text
    ir = yaml.safe_load(pipeline.ir_text)
    assert ir["schemaVersion"] == "2.1.0"
    sleep = ir["root"]["dag"]["tasks"]["train-and-push"]["inputs"]["parameters"]["sleep_seconds"]
    assert sleep == (
        {"runtimeValue": {"constant": 0}} if old_style else {"componentInputParameter": "sleep_seconds"}
    )
    assert coerce("model_version", "3", pipeline.parameters["model_version"]) == 3


def test_a_pipeline_job_naming_an_undeclared_parameter_is_refused_with_the_field() -> None:
    job = json.loads(tfx_pipeline_job(old_style=False))
    job["runtimeConfig"]["parameterValues"]["nope"] = 1
    with pytest.raises(SourceError) as raised:
        parse_ir(json.dumps(job), "spec.pipeline.specUri")
    assert str(raised.value).startswith("spec.pipeline.specUri: runtimeConfig gives 'nope'")


def test_a_tfx_pipeline_job_runs_on_the_server_with_its_defaults(kfp_backend: KfpBackend) -> None:
    pipeline = parse_ir(tfx_pipeline_job(old_style=True), "spec.pipeline.specUri")
    given = {k: v for k, v in arguments().items() if k != "model_name"}  # model_name: from runtimeConfig
    ex = executor(kfp_backend, fresh("ns-tfx"))
    name = fresh("tfx")
    assert ex.submit(name, pipeline.ir_text, given, ROOT).phase == "Pending"
    (run,) = kfp_backend.runs_named(name)
    kfp_backend.play_argo(run.run_id, "Succeeded")
    assert wait_for(lambda: (s := ex.state(name)).phase != "Pending" and s, "tracked").phase == "Succeeded"


# --- multi-user Kubeflow: a profile namespace, ServiceAccount tokens of audience pipelines.kubeflow.org ----


def profile_executor(backend: KfpBackend, name: str, bearer: str | None) -> KfpExecutor:
    return KfpExecutor(KfpTarget(backend.url, bearer, "slipway", backend.profile, None, None, name))


def test_multi_user_pipelines_and_runs_live_in_the_profile_namespace(kfp_multi_user: KfpBackend) -> None:
    bearer = kfp_multi_user.identity(fresh("operator"), allowed=True)
    name = fresh("ns-profile")
    ex = profile_executor(kfp_multi_user, name, bearer)
    first, second = fresh("r"), fresh("r")
    ex.submit(first, IR, arguments(), ROOT)
    ex.connections.run_ids.clear()
    ex.submit(second, IR, arguments(2), ROOT)  # found in the profile namespace: not uploaded again
    assert len(kfp_multi_user.pipeline_versions(name)) == 2
    (run,) = kfp_multi_user.runs_named(first)
    assert kfp_multi_user.workflow(run.run_id)["metadata"]["namespace"] == kfp_multi_user.profile
    kfp_multi_user.play_argo(run.run_id, "Succeeded")
    assert wait_for(lambda: (s := ex.state(first)).phase != "Pending" and s, "tracked").phase == "Succeeded"


def test_multi_user_the_projected_token_is_read_from_its_file_at_each_call(
    kfp_multi_user: KfpBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(kfp_multi_user.identity(fresh("operator"), allowed=True))
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(token_file))
    ex = profile_executor(kfp_multi_user, fresh("ns-projected"), None)
    name = fresh("r")
    assert ex.submit(name, IR, arguments(), ROOT).phase == "Pending"
    token_file.write_text("rotated-but-invalid")  # the kubelet rotates the file: the next call reads it
    with pytest.raises(KfpError) as refused:
        ex.state(name)
    assert refused.value.reason == "ExecutorUnauthorized" and refused.value.status == 401


def test_multi_user_refuses_a_token_without_the_role_and_an_unknown_token(kfp_multi_user: KfpBackend) -> None:
    outsider = kfp_multi_user.identity(fresh("outsider"), allowed=False)
    for bearer, status in ((outsider, 403), ("not-a-token", 401)):
        with pytest.raises(KfpError) as refused:
            profile_executor(kfp_multi_user, fresh("ns-refused"), bearer).submit(
                fresh("r"), IR, arguments(), ROOT
            )
        assert (refused.value.reason, refused.value.status) == ("ExecutorUnauthorized", status), refused.value
        assert bearer not in str(refused.value)


def test_storage_secrets_reach_the_steps_through_the_workflow_the_server_compiles(
    kfp_backend: KfpBackend,
) -> None:
    secrets = (SecretEnv("s3-creds", ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")),)
    ex = KfpExecutor(
        KfpTarget(
            kfp_backend.url, None, "slipway", None, None, None, fresh("ns-secrets"), secrets_as_env=secrets
        )
    )
    name = fresh("r")
    ex.submit(name, IR, arguments(), ROOT)
    (run,) = kfp_backend.runs_named(name)
    workflow = kfp_backend.workflow(run.run_id)
    # The driver task of the step reads its platform config from an annotation of the Workflow.
    driver_arguments = [
        parameter["value"]
        for template in workflow["spec"]["templates"]
        for task in (template.get("dag") or {}).get("tasks", [])
        for parameter in (task.get("arguments") or {}).get("parameters", [])
        if parameter["name"] == "kubernetes-config"
    ]
    annotation = "pipelines.kubeflow.org/kubernetes-comp-train-and-push"
    assert driver_arguments == [f"{{{{workflow.annotations.{annotation}}}}}"]
    configs = [json.loads(workflow["metadata"]["annotations"][annotation])]
    # KFP's driver turns this into env entries with valueFrom.secretKeyRef on the step's pod.
    assert configs == [
        {
            "secretAsEnv": [
                {
                    "secretName": "s3-creds",
                    "keyToEnv": [
                        {"secretKey": "AWS_ACCESS_KEY_ID", "envVar": "AWS_ACCESS_KEY_ID"},
                        {"secretKey": "AWS_SECRET_ACCESS_KEY", "envVar": "AWS_SECRET_ACCESS_KEY"},
                    ],
                }
            ]
        }
    ]


def test_an_azure_model_store_is_kept_while_the_pipeline_root_must_be_s3_or_gs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from slipway.api.training_pipeline import TrainingPipelineSpec
    from slipway.training.observe import validate

    monkeypatch.setenv("SLIPWAY_PIPELINES_DIR", str(Path(__file__).resolve().parent / "pipelines"))

    def spec(artifact_root: str) -> TrainingPipelineSpec:
        return TrainingPipelineSpec.model_validate(
            {
                "pipeline": {"builtin": "tiny"},
                "modelName": "tiny",
                "data": {"uri": "s3://data/x.csv"},
                "artifactRoot": {"uri": artifact_root},
                "modelStore": {"uri": "az://account/models"},
                "executor": {"type": "kfp", "kfp": {"endpoint": "http://kfp:8888"}},
            }
        )

    assert validate("ns", spec("s3://artifacts/root"), lambda _: None, lambda _: None).name == "tiny"
    assert validate("ns", spec("gs://artifacts/root"), lambda _: None, lambda _: None).name == "tiny"
    with pytest.raises(SourceError) as refused:
        validate("ns", spec("az://account/root"), lambda _: None, lambda _: None)
    assert refused.value.reason == "UnsupportedPipelineRoot"
    assert str(refused.value).startswith(
        "spec.artifactRoot.uri: KFP's launcher cannot use a az:// pipeline root"
    )

"""TrainingPipeline end to end on the real API server with the operator process and the local executor
running a real (tiny) KFP pipeline through kfp.local: runs, registration, gates, restarts, bad input."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from fixtures.cli import slipway
from fixtures.kfp_backend import KfpBackend, LogNode
from fixtures.penguins import resample, shifted
from fixtures.pipelines import local_pipeline
from fixtures.storage import free_port
from fixtures.waiting import wait_for
from slipway import GROUP, VERSION
from slipway.training.kfp_pods import NODE_NAME, WORKFLOW_LABEL

PIPELINES = Path(__file__).resolve().parent / "pipelines"


class Training:
    def __init__(self, api: client.ApiClient, namespace: str, root: Path) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.root = root
        (root / "data").mkdir(parents=True)
        (root / "data" / "batch-1.csv").write_text("x,y\n1,2\n")

    def pipeline(self, name: str, **spec: Any) -> None:
        spec = {"gates": {"metrics": [{"name": "accuracy", "min": "0.9"}]}, **spec}
        body = local_pipeline(self.root, name, **spec)
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, "trainingpipelines", body)

    def patch(self, name: str, patch: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "trainingpipelines", name, patch
        )

    def request_run(self, name: str, token: str, **parameters: str) -> None:
        patch: dict[str, Any] = {"metadata": {"annotations": {f"{GROUP}/run": token}}}
        if parameters:
            patch["spec"] = {"parameters": parameters}
        self.patch(name, patch)

    def get(self, name: str) -> dict[str, Any]:
        body: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "trainingpipelines", name
        )
        return body

    def status(self, name: str) -> dict[str, Any]:
        return self.get(name).get("status") or {}

    def model_version(self, name: str) -> dict[str, Any] | None:
        items = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, "modelversions")[
            "items"
        ]
        return next((i for i in items if i["metadata"]["name"] == name), None)

    def runs(self, name: str) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = self.status(name).get("runs", [])
        return runs

    def finished_runs(self, name: str, count: int) -> list[dict[str, Any]] | None:
        runs = [r for r in self.runs(name) if r["phase"] not in ("Pending", "Running") and "pushed" in r]
        failed = [r for r in self.runs(name) if r["phase"] in ("Failed", "Cancelled")]
        done = len(runs) + len([r for r in failed if "pushed" not in r])
        return self.runs(name) if done >= count else None

    def reasons(self, name: str) -> list[str]:
        selector = f"involvedObject.name={name}"
        return [
            e.reason for e in self.core.list_namespaced_event(self.namespace, field_selector=selector).items
        ]

    def wait_event(self, name: str, reason: str) -> None:
        """The operator posts a reconcile's Events after its status: wait for them, not for the status."""
        wait_for(lambda: reason in self.reasons(name), f"a {reason} Event for {name}")

    def condition(self, name: str, type_: str) -> dict[str, Any] | None:
        return next((c for c in self.status(name).get("conditions", []) if c["type"] == type_), None)


@pytest.fixture
def training(api_client: client.ApiClient, namespace: str, tmp_path: Path) -> Training:
    return Training(api_client, namespace, tmp_path)


@pytest.fixture
def operator(operator_process: Any) -> Iterator[Any]:
    operator_process.env.update(
        {"SLIPWAY_PIPELINES_DIR": str(PIPELINES), "SLIPWAY_TRAINING_POLL_SECONDS": "1"}
    )
    operator_process.start()
    yield operator_process


def test_manual_runs_register_versions_that_pass_or_fail_their_gates(
    training: Training, operator: Any, capture: Any
) -> None:
    training.pipeline("tiny")
    training.request_run("tiny", "first")
    mv = wait_for(
        lambda: (m := training.model_version("tiny-v1")) and m.get("status", {}).get("phase") and m, "v1"
    )
    assert mv["status"]["phase"] == "Validated"
    capture("modelversion-validated", mv)
    assert mv["spec"]["metrics"] == {"accuracy": "0.95", "loss": "0.05"}
    assert mv["spec"]["lineage"]["trigger"] == "Manual"
    assert mv["spec"]["lineage"]["pipelineDigest"].startswith("sha256:")
    assert mv["metadata"]["labels"]["slipway.dev/pipeline"] == "tiny"
    assert "ownerReferences" not in mv["metadata"], "deleting a pipeline must not delete the registry"
    assert [c["gate"] for c in mv["status"]["checks"]] == ["metric:accuracy"]
    status = wait_for(
        lambda: (s := training.status("tiny")).get("lastRun", {}).get("pushed") and s, "run recorded"
    )
    assert status["lastRun"]["phase"] == "Succeeded" and status["lastRun"]["modelVersion"] == "tiny-v1"
    assert status["pipelineDigest"] == mv["spec"]["lineage"]["pipelineDigest"]
    capture("trainingpipeline-succeeded", training.get("tiny"))

    training.request_run("tiny", "second", accuracy="0.6")
    mv = wait_for(
        lambda: (m := training.model_version("tiny-v2")) and m.get("status", {}).get("phase") and m, "v2"
    )
    assert mv["status"]["phase"] == "Rejected"
    capture("modelversion-rejected", mv)
    (check,) = mv["status"]["checks"]
    assert check == {
        "gate": "metric:accuracy",
        "passed": False,
        "observed": "0.6",
        "threshold": "min 0.9",
        "message": "0.6 < min 0.9",
    }
    # kopf posts Events asynchronously: the registry's verdict can be visible before the last of them.
    wait_for(
        lambda: (
            (r := training.reasons("tiny")).count("RunStarted") == 2 and r.count("ModelVersionCreated") == 2
        ),
        "two RunStarted and two ModelVersionCreated events",
        timeout=20,
    )
    wait_for(lambda: "Rejected" in training.reasons("tiny-v2"), "a Rejected event on tiny-v2", timeout=20)


def test_failed_and_unblessed_runs_are_recorded_and_push_nothing(
    training: Training, operator: Any, capture: Any
) -> None:
    training.pipeline("flaky")
    training.request_run("flaky", "boom", fail="true")
    failed = wait_for(
        lambda: (r := training.status("flaky").get("lastRun")) and r["phase"] == "Failed" and r, "fail"
    )
    assert "loss is NaN" in failed["message"] or "RuntimeError" in failed["message"]
    assert training.condition("flaky", "Succeeded")["status"] == "False"  # type: ignore[index]
    capture("trainingpipeline-failed", training.get("flaky"))
    training.request_run("flaky", "meh", fail="false", blessed="false")
    last = wait_for(
        lambda: (r := training.status("flaky").get("lastRun")) and r.get("pushed") is False and r, "no push"
    )
    assert last["phase"] == "Succeeded" and "NOT_BLESSED" in last["message"]
    assert training.model_version("flaky-v1") is None and training.model_version("flaky-v2") is None


def test_operator_restart_mid_run_neither_duplicates_nor_loses_it(training: Training, operator: Any) -> None:
    training.pipeline("slow", parameters={"sleep_seconds": "6"})
    training.request_run("slow", "once")
    running = wait_for(lambda: (r := training.runs("slow")) and r[0]["phase"] == "Running" and r, "running")
    operator.restart(kill=True)
    mv = wait_for(
        lambda: (m := training.model_version("slow-v1")) and m.get("status", {}).get("phase") and m, "v1"
    )
    assert mv["status"]["phase"] == "Validated"
    time.sleep(3)
    runs = training.runs("slow")
    assert [r["id"] for r in runs] == [running[0]["id"]]
    assert training.model_version("slow-v2") is None


def test_replace_terminates_the_active_run(training: Training, operator: Any) -> None:
    """Forbid, Allow and the rest of the concurrency decisions: tests/training/test_plan.py."""
    policy = {"cron": "0 0 1 1 *", "suspend": True, "concurrencyPolicy": "Replace"}
    training.pipeline("swap", schedule=policy, parameters={"sleep_seconds": "30"})
    training.request_run("swap", "a")
    first = wait_for(
        lambda: (r := training.runs("swap")) and r[0]["phase"] == "Running" and r[0], "a running"
    )
    training.request_run("swap", "b", sleep_seconds="0")
    runs = wait_for(
        lambda: (r := training.runs("swap")) and len(r) == 2 and r[1].get("pushed") and r, "b done"
    )
    assert runs[0]["id"] == first["id"] and runs[0]["phase"] == "Cancelled"
    wait_for(lambda: "RunReplaced" in training.reasons("swap"), "a RunReplaced event", timeout=20)


def test_new_data_triggers_a_run(training: Training, operator: Any) -> None:
    training.pipeline("fresh", triggers={"onNewData": {"pollIntervalSeconds": 5}})
    wait_for(lambda: training.status("fresh").get("dataFingerprint"), "baseline fingerprint")
    assert training.runs("fresh") == []
    (training.root / "data" / "batch-2.csv").write_text("x,y\n3,4\n")
    run = wait_for(lambda: (r := training.runs("fresh")) and r[0], "NewData run", timeout=30)
    assert run["trigger"] == "NewData"


# Every reason a spec can be unusable is decided without a cluster (tests/training/test_observe.py); here
# one of each path: the spec alone, a ConfigMap and a Secret read through the API server.
@pytest.mark.parametrize(
    ("spec", "reason", "field"),
    [
        ({"pipeline": {"builtin": {"name": "nope"}}}, "UnknownBuiltin", "spec.pipeline.builtin"),
        (
            {"pipeline": {"configMapRef": {"name": "missing"}}},
            "ConfigMapNotFound",
            "spec.pipeline.configMapRef",
        ),
        (
            {"modelStore": {"uri": "s3://models", "secretRef": {"name": "no-such-secret"}}},
            "SecretNotFound",
            "spec.modelStore.secretRef",
        ),
    ],
)
def test_bad_input_is_a_clear_condition_and_one_event(
    training: Training, operator: Any, spec: dict[str, Any], reason: str, field: str
) -> None:
    training.pipeline("bad", **spec)
    ready = wait_for(lambda: (c := training.condition("bad", "Ready")) and c, "Ready condition")
    assert ready["status"] == "False" and ready["reason"] == reason and ready["message"].startswith(field)
    training.request_run("bad", "try")
    time.sleep(3)
    assert training.runs("bad") == []
    assert training.reasons("bad").count(reason) == 1, "no event storm"


def test_spec_uri_and_config_map_sources(training: Training, operator: Any) -> None:
    ir = (PIPELINES / "tiny" / "pipeline.yaml").read_text()
    (training.root / "ir.yaml").write_text(ir)
    training.core.create_namespaced_config_map(
        training.namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="ir"), data={"pipeline.yaml": ir}),
    )
    training.pipeline("by-uri", pipeline={"specUri": f"file://{training.root}/ir.yaml"})
    training.pipeline("by-cm", pipeline={"configMapRef": {"name": "ir"}})
    for name in ("by-uri", "by-cm"):
        ready = wait_for(
            lambda n=name: (c := training.condition(n, "Ready")) and c["status"] == "True" and c, name
        )
        assert "pipeline tiny" in ready["message"]
    assert training.status("by-uri")["pipelineDigest"] == training.status("by-cm")["pipelineDigest"]


def push_like_the_pipeline(parameters: dict[str, Any], accuracy: float) -> None:
    """What the pipeline's pusher does on a real KFP cluster: the SavedModel, then the manifest beside it."""
    store = Path(parameters["model_store_uri"].removeprefix("file://"))
    directory = store / parameters["model_name"] / str(parameters["model_version"])
    (directory / "variables").mkdir(parents=True)
    manifest = {
        "schemaVersion": 1,
        "modelName": parameters["model_name"],
        "version": parameters["model_version"],
        "uri": f"{parameters['model_store_uri']}/{parameters['model_name']}/{parameters['model_version']}",
        "format": "SavedModel",
        "metrics": {"accuracy": accuracy},
        "blessings": {"evaluator": True, "infraValidator": True},
        "lineage": {"pipeline": "tiny", "runId": parameters["run_id"], "parameters": {}},
    }
    (directory / "saved_model.pb").write_bytes(b"\x08\x01")
    (directory / "slipway-manifest.json").write_text(json.dumps(manifest))


def test_kfp_executor_runs_registers_survives_restart_and_terminates_on_delete(
    training: Training, operator: Any, kfp_backend: KfpBackend, log_node: LogNode, api_client: Any
) -> None:
    """Against the real KFP API server and persistence agent; the test plays Argo's part."""
    kfp = {
        "endpoint": kfp_backend.url,
        "tokenSecretRef": {"name": "kfp-token"},
        "serviceAccount": "pipeline-runner",
        "uiUrl": "https://kfp.example.com",
    }
    training.pipeline(
        "remote",
        executor={"type": "kfp", "kfp": kfp},
        artifactRoot={"uri": "s3://artifacts/root", "secretRef": {"name": "artifacts-s3"}},
    )
    ready = wait_for(lambda: (c := training.condition("remote", "Ready")) and c, "Ready condition")
    assert (ready["status"], ready["reason"]) == ("False", "SecretNotFound")
    assert ready["message"].startswith("spec.executor.kfp.tokenSecretRef")
    training.core.create_namespaced_secret(
        training.namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="kfp-token"), string_data={"token": "kfp-s3cr3t"}),
    )
    missing = wait_for(
        lambda: (c := training.condition("remote", "Ready")) and "artifactRoot" in c["message"] and c, "next"
    )
    assert (missing["reason"], missing["message"]) == (
        "SecretNotFound",
        "spec.artifactRoot.secretRef: Secret artifacts-s3 not found",
    )
    keys = {"AWS_ACCESS_KEY_ID": "AKIA-TEST", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "unrelated": "x"}
    training.core.create_namespaced_secret(
        training.namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="artifacts-s3"), string_data=keys),
    )
    wait_for(lambda: (c := training.condition("remote", "Ready")) and c["status"] == "True", "Ready")

    training.request_run("remote", "one")
    record = wait_for(lambda: (r := training.runs("remote")) and r[0], "run recorded")
    (run,) = kfp_backend.runs_named(record["id"])
    assert record["url"] == f"https://kfp.example.com/#/runs/details/{run.run_id}"
    assert run.runtime_config.pipeline_root == f"s3://artifacts/root/{training.namespace}/remote"
    parameters = run.runtime_config.parameters
    assert parameters["model_version"] == 1 and parameters["run_id"] == record["id"]
    assert run.service_account == "pipeline-runner"
    # The artifact root's Secret reaches the step as env vars, by name only, through KFP's platform config.
    annotations = kfp_backend.workflow(run.run_id)["metadata"]["annotations"]
    platform = json.loads(annotations["pipelines.kubeflow.org/kubernetes-comp-train-and-push"])
    assert platform["secretAsEnv"] == [
        {
            "secretName": "artifacts-s3",
            "keyToEnv": [
                {"secretKey": key, "envVar": key} for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
            ],
        }
    ]
    assert "s3cr3t" not in json.dumps(kfp_backend.workflow(run.run_id))
    pipeline = f"{training.namespace}-remote"
    assert len(kfp_backend.pipeline_versions(pipeline)) == 2  # the pipeline's first + the digest's

    operator.restart(kill=True)
    kfp_backend.play_argo(run.run_id, "Running")
    push_like_the_pipeline(parameters, accuracy=0.97)
    kfp_backend.play_argo(run.run_id, "Succeeded")
    mv = wait_for(
        lambda: (m := training.model_version("remote-v1")) and m.get("status", {}).get("phase") and m, "v1"
    )
    assert mv["status"]["phase"] == "Validated"
    assert mv["spec"]["lineage"]["runId"] == record["id"]
    assert len(kfp_backend.runs_named(record["id"])) == 1, "no duplicate run after the restart"
    training.wait_event("remote", "RunSucceeded")

    # A run that pushed nothing says why, as its pusher recorded it (KFP's API gives no run outputs); the
    # same IR is not uploaded again.
    training.request_run("remote", "two")
    second = wait_for(lambda: (r := training.runs("remote")) and len(r) == 2 and r[1], "second run")
    (run2,) = kfp_backend.runs_named(second["id"])
    assert run2.pipeline_version_reference == run.pipeline_version_reference
    reason = (
        "evaluator did not bless the model: "
        "accuracy value 0.4000 fails {value_threshold { lower_bound { value: 0.9 } }}"
    )
    refuse_like_the_pipeline(run2.runtime_config.parameters, reason)
    kfp_backend.play_argo(run2.run_id, "Succeeded")
    last = wait_for(
        lambda: (r := training.status("remote").get("lastRun")) and r.get("pushed") is False and r, "no push"
    )
    assert last["message"] == f"not pushed: {reason}"
    training.wait_event("remote", "NothingPushed")

    # A failed step is named with Argo's message and the tail of its pod's log (read through the API
    # server's pods/log), in status, the Succeeded condition and an Event.
    training.request_run("remote", "three")
    third = wait_for(lambda: (r := training.runs("remote")) and len(r) == 3 and r[2], "third run")
    (run3,) = kfp_backend.runs_named(third["id"])
    namespace, workflow, pod, node = kfp_backend.step_node(run3.run_id, "train-and-push")
    log_node.pod(api_client, namespace, pod, {WORKFLOW_LABEL: workflow}, {NODE_NAME: node})
    log_node.logs[(namespace, pod, "main")] = "loading 342 rows\nKilled\n"
    kfp_backend.play_argo(run3.run_id, "Failed", "OOMKilled (exit code 137)", failed_step="train-and-push")
    failed = wait_for(
        lambda: (r := training.status("remote").get("lastRun")) and r["phase"] == "Failed" and r, "failed run"
    )
    # Status messages are one line (slipway.messages folds the log's line breaks).
    assert failed["message"] == (
        f"step train-and-push failed: OOMKilled (exit code 137) last lines of pod {namespace}/{pod}: "
        "loading 342 rows Killed"
    )
    assert training.condition("remote", "Succeeded")["reason"] == "RunFailed"
    training.wait_event("remote", "RunFailed")

    # A run deleted in KFP behind the operator's back: Failed, saying so, and not started again.
    training.request_run("remote", "gone")
    gone = wait_for(lambda: (r := training.runs("remote")) and len(r) == 4 and r[3], "run to delete")
    (deleted,) = kfp_backend.runs_named(gone["id"])
    kfp_backend.client().delete_run(deleted.run_id)
    lost = wait_for(
        lambda: (r := training.status("remote").get("lastRun")) and r["phase"] == "Failed" and r, "lost run"
    )
    assert "not found on the KFP API" in lost["message"]
    wait_for(lambda: training.reasons("remote").count("RunFailed") == 2, "a RunFailed Event for the lost run")
    assert kfp_backend.runs_named(gone["id"]) == []

    # A run terminated in KFP (the UI's Terminate) is Cancelled, though KFP 2.0.5 ends it FAILED.
    training.request_run("remote", "four")
    fourth = wait_for(lambda: (r := training.runs("remote")) and len(r) == 5 and r[4], "fourth run")
    (run4,) = kfp_backend.runs_named(fourth["id"])
    kfp_backend.client().terminate_run(run4.run_id)
    kfp_backend.play_argo(run4.run_id, "Failed", "Stopped with strategy 'Terminate'")
    wait_for(
        lambda: (r := training.status("remote").get("lastRun")) and r["phase"] == "Cancelled", "cancelled run"
    )
    training.wait_event("remote", "RunCancelled")

    # Deleting the pipeline terminates the run in flight; the registry stays.
    training.request_run("remote", "five")
    fifth = wait_for(lambda: (r := training.runs("remote")) and len(r) == 6 and r[5], "fifth run")
    (run5,) = kfp_backend.runs_named(fifth["id"])
    training.custom.delete_namespaced_custom_object(
        GROUP, VERSION, training.namespace, "trainingpipelines", "remote"
    )
    wait_for(lambda: kfp_backend.run(run5.run_id).state == "CANCELING", "terminated on delete")
    assert training.model_version("remote-v1") is not None
    assert len(kfp_backend.pipeline_versions(pipeline)) == 2, "one upload per digest"


def refuse_like_the_pipeline(parameters: dict[str, Any], reason: str) -> None:
    """What the pipeline's pusher does when a blessing is missing: no version directory, its reason kept
    where the operator reads it after a KFP run."""
    store = Path(parameters["model_store_uri"].removeprefix("file://"))
    record = store / parameters["model_name"] / "slipway-push-results" / f"{parameters['model_version']}.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"pushed": False, "reason": reason, "version": parameters["model_version"]}))


def test_kfp_multi_user_with_the_projected_token_runs_in_the_profile_namespace(
    training: Training, operator_process: Any, kfp_multi_user: KfpBackend, tmp_path: Path
) -> None:
    """Multi-user Kubeflow, the operator's identity being the projected ServiceAccount token (audience
    pipelines.kubeflow.org) that manifests/base mounts, here a file named by KF_PIPELINES_SA_TOKEN_PATH."""
    token_file = tmp_path / "kfp-token"
    token_file.write_text(kfp_multi_user.identity("slipway-operator", allowed=True))
    operator_process.env.update(
        {
            "SLIPWAY_PIPELINES_DIR": str(PIPELINES),
            "SLIPWAY_TRAINING_POLL_SECONDS": "1",
            "KF_PIPELINES_SA_TOKEN_PATH": str(token_file),
        }
    )
    operator_process.start()
    kfp = {"endpoint": kfp_multi_user.url, "namespace": kfp_multi_user.profile}
    training.pipeline(
        "team", executor={"type": "kfp", "kfp": kfp}, artifactRoot={"uri": "s3://artifacts/root"}
    )
    training.request_run("team", "one")
    record = wait_for(lambda: (r := training.runs("team")) and r[0], "run recorded")
    (run,) = kfp_multi_user.runs_named(record["id"])
    assert kfp_multi_user.workflow(run.run_id)["metadata"]["namespace"] == kfp_multi_user.profile
    kfp_multi_user.play_argo(run.run_id, "Succeeded")
    wait_for(lambda: (r := training.status("team").get("lastRun")) and r["phase"] == "Succeeded", "succeeded")
    reachable = training.condition("team", "ExecutorReachable")
    assert reachable is not None and reachable["status"] == "True"

    training.request_run("team", "two")  # the pipeline is found in the profile namespace: no second upload
    wait_for(lambda: len(training.runs("team")) == 2, "second run")
    assert len(kfp_multi_user.pipeline_versions(f"{training.namespace}-team")) == 2

    # The other mode: a token from a Secret (here another identity's, allowed in the profile), which takes
    # precedence over the projected one.
    training.core.create_namespaced_secret(
        training.namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="kfp-token"),
            string_data={"token": kfp_multi_user.identity("slipway-ci", allowed=True)},
        ),
    )
    kfp = {**kfp, "tokenSecretRef": {"name": "kfp-token"}}
    training.pipeline("ci", executor={"type": "kfp", "kfp": kfp}, artifactRoot={"uri": "s3://artifacts/root"})
    training.request_run("ci", "one")
    record = wait_for(lambda: (r := training.runs("ci")) and r[0], "run recorded")
    (run,) = kfp_multi_user.runs_named(record["id"])
    assert kfp_multi_user.workflow(run.run_id)["metadata"]["namespace"] == kfp_multi_user.profile
    token_file.write_text("rotated-but-invalid")  # the projected token no longer works; the Secret's does
    kfp_multi_user.play_argo(run.run_id, "Succeeded")
    wait_for(lambda: (r := training.status("ci").get("lastRun")) and r["phase"] == "Succeeded", "succeeded")


def test_kfp_keeps_the_model_store_on_azure_while_the_pipeline_root_must_be_s3_or_gs(
    training: Training, operator: Any, kfp_backend: KfpBackend, azure_server: Any
) -> None:
    """KFP's launcher has no Azure Blob support: an az:// pipeline root is refused with a condition and an
    Event; an az:// model store works: the steps get its Secret, the operator registers from Azurite."""
    container = azure_server.new_bucket()
    connection = azure_server.credentials.azure_connection_string
    training.core.create_namespaced_secret(
        training.namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="azure-models"),
            string_data={"AZURE_STORAGE_CONNECTION_STRING": connection},
        ),
    )
    kfp = {"type": "kfp", "kfp": {"endpoint": kfp_backend.url}}
    training.pipeline("blob-root", executor=kfp, artifactRoot={"uri": f"az://{container}/root"})
    models = {"uri": f"az://{container}/models", "secretRef": {"name": "azure-models"}}
    training.pipeline("blob", executor=kfp, artifactRoot={"uri": "s3://artifacts/root"}, modelStore=models)

    refused = wait_for(lambda: (c := training.condition("blob-root", "Ready")) and c, "Ready condition")
    assert (refused["status"], refused["reason"]) == ("False", "UnsupportedPipelineRoot")
    assert refused["message"] == (
        "spec.artifactRoot.uri: KFP's launcher cannot use a az:// pipeline root (it has no Azure Blob "
        "support); use s3:// or gs:// with the kfp executor"
    )
    training.wait_event("blob-root", "UnsupportedPipelineRoot")

    training.request_run("blob", "one")
    record = wait_for(lambda: (r := training.runs("blob")) and r[0], "run recorded")
    (run,) = kfp_backend.runs_named(record["id"])
    parameters = run.runtime_config.parameters
    assert run.runtime_config.pipeline_root == f"s3://artifacts/root/{training.namespace}/blob"
    assert parameters["model_store_uri"] == f"az://{container}/models"
    annotations = kfp_backend.workflow(run.run_id)["metadata"]["annotations"]
    platform = json.loads(annotations["pipelines.kubeflow.org/kubernetes-comp-train-and-push"])
    assert platform["secretAsEnv"] == [
        {
            "secretName": "azure-models",
            "keyToEnv": [
                {"secretKey": "AZURE_STORAGE_CONNECTION_STRING", "envVar": "AZURE_STORAGE_CONNECTION_STRING"}
            ],
        }
    ]
    # The pusher writes to Azure Blob with those credentials; the operator reads it with the same Secret.
    from slipway.storage import open_store

    version = open_store(f"az://{container}/models/blob/1", azure_server.credentials)
    manifest = {
        "modelName": "blob",
        "version": 1,
        "metrics": {"accuracy": 0.95},
        "blessings": {"evaluator": True, "infraValidator": True},
        "lineage": {"pipeline": "tiny", "runId": record["id"]},
    }
    version.write_bytes("slipway-manifest.json", json.dumps(manifest).encode())
    version.write_bytes("saved_model.pb", b"\x08\x01")
    kfp_backend.play_argo(run.run_id, "Succeeded")
    mv = wait_for(
        lambda: (m := training.model_version("blob-v1")) and m.get("status", {}).get("phase") and m, "v1"
    )
    assert mv["status"]["phase"] == "Validated", mv["status"]
    assert mv["spec"]["uri"] == f"az://{container}/models/blob/1"
    assert mv["spec"]["storageSecretRef"] == {"name": "azure-models"}


def test_kfp_server_errors_are_one_condition_then_the_run_starts_once(
    training: Training, operator: Any, kfp_backend: KfpBackend
) -> None:
    """The real server answering 500 (its database lost a table) while a run is asked for: one condition
    and one Event, retries with backoff, and once the server is back the run starts, once, and the
    condition clears."""
    kfp = {"type": "kfp", "kfp": {"endpoint": kfp_backend.url}}
    training.pipeline("flaky", executor=kfp, artifactRoot={"uri": "s3://artifacts/root"})
    wait_for(lambda: (c := training.condition("flaky", "Ready")) and c["status"] == "True", "Ready")
    with kfp_backend.table_gone("run_details"):
        training.request_run("flaky", "one")
        down = wait_for(
            lambda: (c := training.condition("flaky", "ExecutorReachable")) and c["status"] == "False" and c,
            "ExecutorReachable=False",
        )
        assert down["reason"] == "ExecutorUnreachable" and "list runs: HTTP 500" in down["message"], down
        time.sleep(3)  # polls every second: backed off, nothing new said
        assert training.runs("flaky") == []
    record = wait_for(lambda: (r := training.runs("flaky")) and r[0], "the run, once the server is back")
    assert len(kfp_backend.runs_named(record["id"])) == 1
    wait_for(
        lambda: (c := training.condition("flaky", "ExecutorReachable")) and c["status"] == "True", "reachable"
    )
    assert training.reasons("flaky").count("ExecutorUnreachable") == 1
    assert training.reasons("flaky").count("RunStarted") == 1


def test_kfp_refusals_are_one_condition_and_one_event_each_without_a_run(
    training: Training, operator: Any, kfp_backend: KfpBackend, kfp_multi_user: KfpBackend
) -> None:
    """An endpoint that is down, a pipeline the real server rejects, a token a multi-user server refuses:
    ExecutorReachable=False with the reason, one Event each however often the operator retries (it backs
    off), and no run recorded."""
    ir = (PIPELINES / "tiny" / "pipeline.yaml").read_text()
    training.core.create_namespaced_config_map(
        training.namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="broken"),
            data={"pipeline.yaml": ir.replace("schemaVersion: 2.1.0", "schemaVersion: 2.1.0\nnotAField: 1")},
        ),
    )
    outsider = kfp_multi_user.identity("outsider", allowed=False)
    training.core.create_namespaced_secret(
        training.namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="outsider"), string_data={"token": outsider}),
    )
    root = {"uri": "s3://artifacts/root"}
    cases = {
        "down": ({"endpoint": f"http://127.0.0.1:{free_port()}"}, {}, "ExecutorUnreachable"),
        "rejected": ({"endpoint": kfp_backend.url}, {"configMapRef": {"name": "broken"}}, "PipelineRejected"),
        "refused": (
            {
                "endpoint": kfp_multi_user.url,
                "namespace": kfp_multi_user.profile,
                "tokenSecretRef": {"name": "outsider"},
            },
            {},
            "ExecutorUnauthorized",
        ),
    }
    for name, (kfp, source, _) in cases.items():
        training.pipeline(
            name,
            executor={"type": "kfp", "kfp": kfp},
            artifactRoot=root,
            **({"pipeline": source} if source else {}),
        )
        training.request_run(name, "try")
    for name, (kfp, _, reason) in cases.items():
        condition = wait_for(
            lambda n=name: (c := training.condition(n, "ExecutorReachable")) and c["status"] == "False" and c,
            f"{name}: ExecutorReachable=False",
        )
        assert condition["reason"] == reason, condition
        assert kfp["endpoint"] in condition["message"] and outsider not in condition["message"]
    time.sleep(4)  # several 1 s polls: the operator retries, backing off, and says it once
    for name, (_, _, reason) in cases.items():
        assert training.reasons(name).count(reason) == 1, (name, training.reasons(name))
        assert training.runs(name) == []
        assert training.condition(name, "Ready")["status"] == "True"
    assert "pipeline spec is invalid" in training.condition("rejected", "ExecutorReachable")["message"]


def test_schedule_missed_while_the_operator_was_down_runs_late_or_is_skipped_by_its_deadline(
    training: Training, operator_process: Any
) -> None:
    """The operator is down at the schedule time (two hours ago); when it starts, the pipeline whose
    startingDeadlineSeconds covers the gap runs late, the other records a MissedSchedule and waits."""
    due = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
    cron = f"{due.minute} {due.hour} * * *"
    for name, deadline in (("late", 86_400), ("missed", 600)):
        training.pipeline(name, schedule={"cron": cron, "startingDeadlineSeconds": deadline})
        previous = (due - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
        training.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            training.namespace,
            "trainingpipelines",
            name,
            {"status": {"lastScheduleTime": previous}},
        )
    operator_process.env.update(
        {"SLIPWAY_PIPELINES_DIR": str(PIPELINES), "SLIPWAY_TRAINING_POLL_SECONDS": "1"}
    )
    operator_process.start()
    run = wait_for(lambda: (r := training.runs("late")) and r[0], "late run")
    assert run["trigger"] == "Schedule"
    assert datetime.fromisoformat(training.status("late")["lastScheduleTime"].replace("Z", "+00:00")) == due
    wait_for(lambda: "MissedSchedule" in training.reasons("missed"), "MissedSchedule event")
    status = training.status("missed")
    assert datetime.fromisoformat(status["lastScheduleTime"].replace("Z", "+00:00")) == due
    next_time = datetime.fromisoformat(status["nextScheduleTime"].replace("Z", "+00:00"))
    assert next_time == due + timedelta(days=1)
    time.sleep(2)
    assert training.runs("missed") == [] and training.reasons("missed").count("MissedSchedule") == 1
    wait_for(lambda: (r := training.runs("late")) and r[0].get("pushed") is not None, "late run registered")
    assert len(training.runs("late")) == 1, "the late run is not repeated"


def test_drift_starts_one_run_per_drifted_batch_and_none_again_after_a_restart(
    training: Training, operator: Any, capture: Any
) -> None:
    (training.root / "penguins").mkdir()
    (training.root / "penguins" / "penguins.csv").write_bytes(resample(344, seed=0))
    batches = training.root / "batches"
    batches.mkdir()
    training.pipeline(
        "drifty",
        data={"uri": f"file://{training.root}/penguins"},
        triggers={"onDrift": {"batches": {"uri": f"file://{batches}"}, "pollIntervalSeconds": 5}},
    )
    requested = slipway(operator.kubeconfig, "train", "drifty", "-n", training.namespace)
    assert requested.startswith(f"train requested for trainingpipeline {training.namespace}/drifty")
    wait_for(lambda: (m := training.model_version("drifty-v1")) and m.get("status", {}).get("phase"), "v1")
    wait_for(lambda: training.condition("drifty", "DriftWatch"), "the drift watch")

    def checked(key: str) -> dict[str, Any] | None:
        entries = (training.status("drifty").get("drift") or {}).get("batches", [])
        return next((b for b in entries if b["batch"] == key and b["outcome"] != "Baseline"), None)

    def drift_runs() -> list[dict[str, Any]]:
        return [r for r in training.runs("drifty") if r["trigger"] == "Drift"]

    (batches / "2026-11-22-a.csv").write_bytes(resample(200, seed=1))
    clean = wait_for(lambda: checked("2026-11-22-a.csv"), "the resample checked", timeout=60)
    assert clean["outcome"] == "NoDrift" and clean["baselineVersion"] == 1 and clean.get("run") is None
    wait_for(lambda: "NoDrift" in training.reasons("drifty"), "a NoDrift event", timeout=20)
    assert drift_runs() == []

    (batches / "2026-11-22-b.csv").write_bytes(shifted(200, seed=2))
    drifted = wait_for(lambda: checked("2026-11-22-b.csv"), "the shifted batch checked", timeout=60)
    assert drifted["outcome"] == "Drifted"
    assert "body_mass_g Jensen-Shannon" in drifted["summary"] and "island L-infinity" in drifted["summary"]
    (run,) = wait_for(drift_runs, "a Drift run")
    assert run["id"] == drifted["run"]
    assert run["details"]["batch"] == "2026-11-22-b.csv" and run["details"]["baselineVersion"] == "1"
    assert float(run["details"]["drift.body_mass_g"].split()[1]) > 0.1
    assert "Atlantis" in run["details"]["anomalies"]
    mv = wait_for(
        lambda: (m := training.model_version("drifty-v2")) and m.get("status", {}).get("phase") and m, "v2"
    )
    assert mv["spec"]["lineage"]["trigger"] == "Drift"
    wait_for(
        lambda: {"DriftDetected", "DataAnomalies"} <= set(training.reasons("drifty")),
        "DriftDetected and DataAnomalies events",
        timeout=20,
    )
    assert 'slipway_drift_score{feature="body_mass_g",namespace=' in operator.metrics()
    capture("trainingpipeline-drift", training.get("drifty"))

    operator.restart(kill=True)
    # A batch after the restart proves the new process polls; the drifted one must not run again.
    (batches / "2026-11-22-c.csv").write_bytes(resample(200, seed=3))
    assert wait_for(lambda: checked("2026-11-22-c.csv"), "a batch after the restart", timeout=60)[
        "outcome"
    ] in ("NoDrift")
    assert [r["id"] for r in drift_runs()] == [run["id"]]
    assert training.reasons("drifty").count("DriftDetected") == 1


def test_a_local_run_reads_data_with_the_credentials_its_secret_names(
    training: Training, operator_process: Any, s3_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    operator_process.env.update(
        {
            "SLIPWAY_PIPELINES_DIR": str(PIPELINES),
            "SLIPWAY_TRAINING_POLL_SECONDS": "1",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_CONFIG_FILE": "/nonexistent",
        }
    )
    operator_process.start()
    bucket = s3_server.new_bucket()
    from slipway.storage import open_store

    open_store(f"s3://{bucket}/data", s3_server.credentials).write_bytes("batch-1.csv", b"x,y\n1,2\n3,4\n")
    training.core.create_namespaced_secret(
        training.namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="s3-keys"),
            string_data={
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_REGION": "us-east-1",
            },
        ),
    )
    location = {
        "uri": f"s3://{bucket}/data",
        "secretRef": {"name": "s3-keys"},
        "endpoint": s3_server.endpoint,
    }
    training.pipeline("remote", data=location)
    training.request_run("remote", "first")
    mv = wait_for(
        lambda: (m := training.model_version("remote-v1")) and m.get("status", {}).get("phase") and m, "v1"
    )
    assert mv["status"]["phase"] == "Validated"
    stats_uri = mv["spec"]["lineage"]["statisticsUri"]
    from slipway.datastats import statistics

    seen = statistics.parse(Path(stats_uri.removeprefix("file://")).read_bytes())
    assert seen.num_examples == 2 and {f.path.step[0] for f in seen.features} == {"x", "y"}
    run_dir = next((training.root / "artifacts").rglob("request.json")).parent
    assert b"testing" not in b"".join(p.read_bytes() for p in run_dir.iterdir() if p.is_file())

    # Two locations naming different keys cannot both reach one local run: said once, on the field.
    training.core.create_namespaced_secret(
        training.namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="other-keys"), string_data={"AWS_ACCESS_KEY_ID": "other"}
        ),
    )
    training.patch(
        "remote",
        {
            "spec": {
                "modelStore": {"uri": f"file://{training.root}/models", "secretRef": {"name": "other-keys"}}
            }
        },
    )
    ready = wait_for(
        lambda: (c := training.condition("remote", "Ready")) and c["status"] == "False" and c, "Ready=False"
    )
    assert ready["reason"] == "ConflictingCredentials"
    assert "spec.modelStore and spec.data give different AWS_ACCESS_KEY_ID" in ready["message"]


def test_a_local_run_is_registered_when_it_ends_not_at_the_next_poll(
    training: Training, operator_process: Any
) -> None:
    operator_process.env.update(
        {"SLIPWAY_PIPELINES_DIR": str(PIPELINES), "SLIPWAY_TRAINING_POLL_SECONDS": "300"}
    )
    operator_process.start()
    training.pipeline("prompt")
    wait_for(lambda: training.condition("prompt", "Ready"), "the pipeline seen")
    training.request_run("prompt", "now")
    mv = wait_for(
        lambda: training.model_version("prompt-v1"), "v1 registered well before the 300 s poll", timeout=30
    )
    assert mv["spec"]["lineage"]["trigger"] == "Manual"


SECRET_VALUES = {
    "AWS_ACCESS_KEY_ID": "AKIALEAKTEST00000001",
    "AWS_SECRET_ACCESS_KEY": "leak/Secret+Value0123456789",
}


def test_credentials_file_content_and_terminal_escapes_never_reach_status_events_or_the_log(
    training: Training, operator: Any
) -> None:
    """A run whose step prints its credentials in colour and fails quoting them; a specUri naming a file
    that is not a pipeline. Status, Events and the operator's log are searched for the Secret's values, the
    file's content and escape characters."""
    training.core.create_namespaced_secret(
        training.namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="leaky-keys"), string_data=SECRET_VALUES),
    )
    training.pipeline(
        "leaky", data={"uri": f"file://{training.root}/data", "secretRef": {"name": "leaky-keys"}}
    )
    training.request_run("leaky", "spill", fail="true", noisy="true")
    failed = wait_for(
        lambda: (r := training.status("leaky").get("lastRun")) and r["phase"] == "Failed" and r,
        "the run failed",
    )
    assert failed["message"].startswith("RuntimeError: ")
    (run_log,) = (training.root / "artifacts").rglob("run.log")
    assert SECRET_VALUES["AWS_SECRET_ACCESS_KEY"] in run_log.read_text(), "the step printed its credentials"
    private = training.root / "private.txt"
    private.write_text("token: eyJhbGciOiJIUzI1NiJ9.PRIVATE-PAYLOAD\n  indented: [unclosed\n")
    training.pipeline("nosy", pipeline={"specUri": f"file://{private}"})
    ready = wait_for(lambda: (c := training.condition("nosy", "Ready")) and c, "nosy refused")
    assert ready["reason"] == "InvalidPipelineSpec" and " at line " in ready["message"]
    training.wait_event("leaky", "RunFailed")

    said = json.dumps([training.get("leaky"), training.get("nosy")])
    said += json.dumps(
        [
            client.ApiClient().sanitize_for_serialization(e)
            for e in training.core.list_namespaced_event(training.namespace).items
        ]
    )
    for value in [*SECRET_VALUES.values(), "PRIVATE-PAYLOAD", "unclosed"]:
        assert value not in said, f"{value} in status or Events"
        assert value not in operator.logs(), f"{value} in the operator's log"
    assert "\\u001b" not in said and "\x1b" not in said, "a terminal escape in status or Events"
    assert "Traceback" not in operator.logs()


def test_a_version_another_run_registered_is_not_shown_as_pushed(training: Training, operator: Any) -> None:
    """The ModelVersion name the run would take exists and records another run: the registration ends."""
    taken = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": "taken-v1"},
        "spec": {
            "modelName": "other",
            "version": 1,
            "uri": f"file://{training.root}/elsewhere/1",
            "lineage": {"runId": "someone-elses-run"},
        },
    }
    training.custom.create_namespaced_custom_object(
        GROUP, VERSION, training.namespace, "modelversions", taken
    )
    training.pipeline("taken")
    training.request_run("taken", "mine")
    last = wait_for(
        lambda: (r := training.status("taken").get("lastRun")) and r.get("pushed") is not None and r,
        "registered?",
    )
    assert last["pushed"] is False and "modelVersion" not in last
    assert last["message"].startswith(
        "VersionTaken: ModelVersion taken-v1 exists and records run someone-elses-run"
    )
    training.wait_event("taken", "VersionTaken")
    mv = training.model_version("taken-v1")
    assert mv is not None and mv["spec"]["modelName"] == "other", "the other run's ModelVersion is untouched"

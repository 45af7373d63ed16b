"""The job executor's pure parts: the Job and ConfigMap it builds, the credentials it passes by reference, and
how a Job's status and the run's state object become a RunState."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from slipway.api.training_pipeline import TrainingPipelineSpec
from slipway.training import job_executor as jobs
from slipway.training import job_run
from slipway.training.credentials import own_credentials
from slipway.training.local_executor import RunState
from slipway.training.source import SourceError

OWNER = {
    "apiVersion": "slipway.dev/v1alpha1",
    "kind": "TrainingPipeline",
    "name": "penguins",
    "uid": "1234",
    "controller": True,
    "blockOwnerDeletion": True,
}
RUN = "penguins-manual-0123456789"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def spec(**overrides: Any) -> TrainingPipelineSpec:
    body: dict[str, Any] = {
        "pipeline": {"builtin": {"name": "penguins"}},
        "modelName": "penguins",
        "data": {"uri": "s3://data/penguins.csv", "secretRef": {"name": "store"}},
        "artifactRoot": {"uri": "s3://artifacts", "secretRef": {"name": "store"}},
        "modelStore": {"uri": "s3://models", "secretRef": {"name": "store"}},
        "executor": {"type": "job"},
        **overrides,
    }
    return TrainingPipelineSpec.model_validate(body)


def secret(**values: str) -> dict[str, str]:
    return {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}


def target(
    pipeline: TrainingPipelineSpec | None = None, env: list[dict[str, Any]] | None = None
) -> jobs.JobTarget:
    return jobs.target_for("ml", "penguins", pipeline or spec(), env or [])


# --- names -------------------------------------------------------------------------------------------------


def test_a_run_id_that_is_a_dns_label_names_the_job_itself() -> None:
    assert jobs.child_name(RUN) == RUN


@pytest.mark.parametrize("run_id", ["x" * 80, "Upper_Case.run", "-leading", "a" * 63 + "-"])
def test_other_run_ids_become_bounded_deterministic_dns_labels(run_id: str) -> None:
    name = jobs.child_name(run_id)
    assert DNS_LABEL.match(name) and len(name) <= 63, name
    assert jobs.child_name(run_id) == name
    assert jobs.child_name(run_id + "2") != name


def test_state_and_artifacts_live_under_the_pipelines_artifact_root() -> None:
    root = target().root_uri
    assert root == "s3://artifacts/ml/penguins"
    assert jobs.state_uri(root, RUN) == f"s3://artifacts/ml/penguins/runs/{RUN}/state.json"
    assert jobs.artifacts_uri(root, RUN) == f"s3://artifacts/ml/penguins/runs/{RUN}/artifacts"


# --- the Job ---------------------------------------------------------------------------------------------


def test_the_job_runs_job_run_in_the_pipelines_image_under_restricted_pod_security() -> None:
    body = jobs.job(target(), RUN, OWNER)
    assert body["metadata"]["name"] == RUN and body["metadata"]["namespace"] == "ml"
    assert body["metadata"]["ownerReferences"] == [OWNER]
    pod = body["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/slipway-dev/slipway-pipelines:0.1.0"
    assert container["command"] == ["python3", "-m", "slipway.training.job_run", jobs.RUN_DIR]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert "serviceAccountName" not in pod
    # A read-only root: HOME, the working directory, kfp.local's root and /tmp are emptyDirs.
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["run"] == {"name": "run", "configMap": {"name": RUN}}
    assert "emptyDir" in volumes["work"] and "emptyDir" in volumes["tmp"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {jobs.RUN_DIR: "run", jobs.WORK_DIR: "work", "/tmp": "tmp"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HOME"] == jobs.WORK_DIR and env["TMPDIR"] == "/tmp"
    assert jobs.POD_PIPELINE_ROOT.startswith(jobs.WORK_DIR + "/")
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"memory": "4Gi"},
    }


def test_the_jobs_limits_default_to_the_pipelines_and_follow_its_settings() -> None:
    default = jobs.job(target(), RUN, OWNER)["spec"]
    assert default["backoffLimit"] == 0 and default["activeDeadlineSeconds"] == 21_600
    assert default["ttlSecondsAfterFinished"] == jobs.TTL_SECONDS_AFTER_FINISHED
    settings = {
        "image": "registry.local/pipelines:7",
        "serviceAccountName": "trainer",
        "resources": {"requests": {"cpu": "2"}, "limits": {"memory": "8Gi"}},
        "activeDeadlineSeconds": 600,
        "backoffLimit": 2,
    }
    configured = spec(executor={"type": "job", "job": settings}, runTimeoutSeconds=900)
    body = jobs.job(target(configured), RUN, OWNER)
    pod = body["spec"]["template"]["spec"]
    assert body["spec"]["backoffLimit"] == 2 and body["spec"]["activeDeadlineSeconds"] == 600
    assert pod["serviceAccountName"] == "trainer"
    assert pod["containers"][0]["image"] == "registry.local/pipelines:7"
    assert pod["containers"][0]["resources"] == {"requests": {"cpu": "2"}, "limits": {"memory": "8Gi"}}
    assert jobs.job(target(spec(runTimeoutSeconds=900)), RUN, OWNER)["spec"]["activeDeadlineSeconds"] == 900


def test_job_pod_and_config_map_carry_the_same_labels() -> None:
    built = target()
    labels = jobs.labels(built, RUN)
    assert labels["app.kubernetes.io/managed-by"] == "slipway"
    assert labels["slipway.dev/pipeline"] == "penguins" and labels["slipway.dev/run"] == RUN
    assert labels["slipway.dev/model"] == "penguins"
    body = jobs.job(built, RUN, OWNER)
    assert body["metadata"]["labels"] == labels == body["spec"]["template"]["metadata"]["labels"]
    request = jobs.request(RUN, {"model_version": 3}, built.root_uri)
    cm = jobs.config_map(built, RUN, "ir: text", request, {"kind": "Job", "name": RUN})
    assert cm["metadata"]["labels"] == labels and cm["metadata"]["ownerReferences"] == [
        {"kind": "Job", "name": RUN}
    ]
    assert all(len(v) <= 63 for v in labels.values())


def test_the_config_map_holds_the_ir_and_a_request_without_credentials() -> None:
    built = target(
        env=[{"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    )
    request = jobs.request(RUN, {"model_version": 3, "run_id": RUN}, built.root_uri)
    cm = jobs.config_map(built, RUN, "pipelineSpec: {}\n", request, OWNER)
    assert cm["data"]["pipeline.yaml"] == "pipelineSpec: {}\n"
    assert json.loads(cm["data"]["request.json"]) == {
        "runId": RUN,
        "arguments": {"model_version": 3, "run_id": RUN},
        "pipelineRoot": jobs.POD_PIPELINE_ROOT,
        "artifactsUri": jobs.artifacts_uri(built.root_uri, RUN),
        "stateUri": jobs.state_uri(built.root_uri, RUN),
    }


# --- credentials -------------------------------------------------------------------------------------------


def test_storage_keys_reach_the_pod_as_secret_key_refs_never_as_values() -> None:
    data = secret(AWS_ACCESS_KEY_ID="AKIA", AWS_SECRET_ACCESS_KEY="very-secret", note="not a credential")
    reads: list[str] = []

    def read(name: str) -> dict[str, str] | None:
        reads.append(name)
        return {"store": data}.get(name)

    env = jobs.credential_env(jobs.pipeline_locations(spec()), read, own_credentials)
    assert reads == ["store"], "three locations naming one Secret read it once"
    assert env == [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": "store", "key": key}}}
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    ]
    assert "very-secret" not in json.dumps(jobs.job(target(env=env), RUN, OWNER))


def test_an_endpoint_is_a_value_unless_the_secret_names_one() -> None:
    endpoint = {"uri": "s3://models", "endpoint": "http://minio:9000"}
    plain = spec(
        data={"uri": "s3://data/x.csv", "endpoint": "http://minio:9000"},
        artifactRoot={"uri": "s3://artifacts"},
        modelStore=endpoint,
    )
    assert jobs.credential_env(jobs.pipeline_locations(plain), {}.get, own_credentials) == [
        {"name": "AWS_ENDPOINT_URL_S3", "value": "http://minio:9000"}
    ]
    named = spec(modelStore={**endpoint, "secretRef": {"name": "store"}})
    data = secret(AWS_ENDPOINT_URL="http://ceph:80", AWS_ACCESS_KEY_ID="a")
    env = jobs.credential_env(jobs.pipeline_locations(named), {"store": data}.get, own_credentials)
    assert [e["name"] for e in env] == ["AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL"]


def test_two_secrets_that_disagree_are_refused_naming_both_fields() -> None:
    split = spec(modelStore={"uri": "s3://models", "secretRef": {"name": "other"}})
    secrets = {"store": secret(AWS_ACCESS_KEY_ID="a"), "other": secret(AWS_ACCESS_KEY_ID="b")}
    with pytest.raises(SourceError) as refused:
        jobs.credential_env(jobs.pipeline_locations(split), secrets.get, own_credentials)
    assert refused.value.reason == "ConflictingCredentials"
    assert "spec.modelStore" in str(refused.value) and "spec.data" in str(refused.value)
    agreeing = {"store": secret(AWS_ACCESS_KEY_ID="a"), "other": secret(AWS_ACCESS_KEY_ID="a")}
    env = jobs.credential_env(jobs.pipeline_locations(split), agreeing.get, own_credentials)
    assert env == [
        {
            "name": "AWS_ACCESS_KEY_ID",
            "valueFrom": {"secretKeyRef": {"name": "store", "key": "AWS_ACCESS_KEY_ID"}},
        }
    ]


def test_a_missing_secret_names_its_field() -> None:
    with pytest.raises(SourceError) as missing:
        jobs.credential_env(jobs.pipeline_locations(spec()), {}.get, own_credentials)
    assert missing.value.reason == "SecretNotFound" and "spec.data.secretRef" in str(missing.value)


# --- state ----------------------------------------------------------------------------------------------


def job_status(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": RUN}, "status": status}


def condition(type_: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {
        "type": type_,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-01-01T00:10:00Z",
    }


SUCCEEDED = RunState("Succeeded", "", "t0", "t1", {"push_result": {"pushed": True, "version": 3}})


def test_an_active_job_is_running_and_one_without_a_pod_yet_pending() -> None:
    assert jobs.run_state(job_status(active=1, startTime="t0"), None, None, "s3://x").phase == "Running"
    assert jobs.run_state(job_status(), None, None, "s3://x").phase == "Pending"
    assert not jobs.is_finished(job_status(active=1))


def test_a_complete_job_returns_the_outputs_the_pod_recorded() -> None:
    complete = job_status(
        succeeded=1,
        startTime="t0",
        completionTime="t9",
        conditions=[condition("SuccessCriteriaMet"), condition("Complete")],
    )
    state = jobs.run_state(complete, SUCCEEDED, None, "s3://x")
    assert state == RunState("Succeeded", "", "t0", "t9", SUCCEEDED.outputs)
    missing = jobs.run_state(complete, None, None, "s3://a/state.json")
    assert missing.phase == "Failed" and "recorded no outcome at s3://a/state.json" in missing.message


def test_a_failed_job_says_why_with_the_pipelines_own_error_first() -> None:
    deadline = job_status(
        startTime="t0",
        conditions=[condition("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")],
    )
    state = jobs.run_state(deadline, None, None, "s3://x")
    assert state.phase == "Failed" and state.finished == "2026-01-01T00:10:00Z"
    assert state.message == "DeadlineExceeded: Job was active longer than specified deadline"
    oom = {
        "metadata": {"name": f"{RUN}-abcde"},
        "status": {
            "phase": "Failed",
            "containerStatuses": [
                {"name": "pipeline", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}
            ],
        },
    }
    backoff = job_status(
        conditions=[
            condition("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
        ]
    )
    state = jobs.run_state(backoff, RunState("Running", started="t0"), oom, "s3://x")
    assert state.message == (
        "BackoffLimitExceeded: Job has reached the specified backoff limit; "
        "container pipeline OOMKilled (exit code 137)"
    )
    recorded = RunState("Failed", "RuntimeError: Task 'trainer' finished with status FAILURE", "t0", "t5")
    assert jobs.run_state(backoff, recorded, oom, "s3://x").message == recorded.message


def test_a_deleted_job_is_cancelled_unless_the_run_had_ended() -> None:
    assert jobs.run_state(None, None, None, "s3://x").phase == "Cancelled"
    assert jobs.run_state(None, RunState("Running", started="t0"), None, "s3://x").phase == "Cancelled"
    assert jobs.run_state(None, SUCCEEDED, None, "s3://x") == SUCCEEDED
    deleting = {"metadata": {"name": RUN, "deletionTimestamp": "t3"}, "status": {"active": 1}}
    assert jobs.run_state(deleting, None, None, "s3://x").phase == "Cancelled"


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        (None, ""),
        (
            {
                "status": {
                    "containerStatuses": [
                        {
                            "name": "pipeline",
                            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "not found"}},
                        }
                    ]
                }
            },
            "container pipeline waiting: ImagePullBackOff: not found",
        ),
        (
            {
                "status": {
                    "containerStatuses": [
                        {"name": "pipeline", "state": {"waiting": {"reason": "ContainerCreating"}}}
                    ]
                }
            },
            "",
        ),
        ({"status": {"reason": "Evicted", "message": "low on memory"}}, "pod Evicted: low on memory"),
        (
            {
                "status": {
                    "conditions": [
                        {
                            "type": "PodScheduled",
                            "status": "False",
                            "reason": "Unschedulable",
                            "message": "0/1 nodes",
                        }
                    ]
                }
            },
            "pod not scheduled: Unschedulable: 0/1 nodes",
        ),
    ],
)
def test_what_the_pod_says(pod: dict[str, Any] | None, expected: str) -> None:
    assert jobs.pod_problem(pod) == expected


def test_the_state_object_round_trips() -> None:
    raw = {
        "phase": "Succeeded",
        "started": "t0",
        "finished": "t1",
        "outputs": {"a": 1},
        "artifactsUri": "s3://x",
    }
    assert jobs.recorded_state(raw) == RunState("Succeeded", "", "t0", "t1", {"a": 1})
    assert jobs.recorded_state(None) is None


def test_a_pod_that_died_without_an_outcome_reports_its_last_log_line() -> None:
    assert (
        jobs.job(target(), RUN, OWNER)["spec"]["template"]["spec"]["containers"][0][
            "terminationMessagePolicy"
        ]
        == "FallbackToLogsOnError"
    )
    log = "Traceback (most recent call last):\n  File ...\nAccessDenied: s3://a: denied\n\n"
    pod = {
        "status": {
            "containerStatuses": [
                {
                    "name": "pipeline",
                    "state": {"terminated": {"exitCode": 1, "reason": "Error", "message": log}},
                }
            ]
        }
    }
    assert jobs.pod_problem(pod) == ("container pipeline Error (exit code 1): AccessDenied: s3://a: denied")


# --- the pod's side -----------------------------------------------------------------------------------


def test_lineage_under_the_pods_pipeline_root_points_at_the_uploaded_copy() -> None:
    manifest = {
        "version": 3,
        "lineage": {
            "statisticsUri": "file:///work/pipeline-root/penguins-2026/statistics/Split-train/FeatureStats.pb",
            "schemaUri": "s3://elsewhere/schema.pbtxt",
            "runId": RUN,
        },
    }
    moved = job_run.relocated(manifest, "/work/pipeline-root", "s3://a/ml/p/runs/r/artifacts")
    assert moved["lineage"] == {
        "statisticsUri": "s3://a/ml/p/runs/r/artifacts/penguins-2026/statistics/Split-train/FeatureStats.pb",
        "schemaUri": "s3://elsewhere/schema.pbtxt",
        "runId": RUN,
    }
    assert moved["version"] == 3 and manifest["lineage"]["statisticsUri"].startswith("file:///work/")


def test_the_pushed_manifest_is_rewritten_in_place(tmp_path: Path) -> None:
    model = tmp_path / "models" / "p" / "1"
    model.mkdir(parents=True)
    stats = "file:///work/pipeline-root/x/FeatureStats.pb"
    (model / "slipway-manifest.json").write_text(json.dumps({"lineage": {"statisticsUri": stats}}))
    push = {"pushed": True, "manifestUri": f"file://{model}/slipway-manifest.json"}
    assert job_run.relocate_lineage({"Output": json.dumps(push)}, "/work/pipeline-root", "s3://a/arts") == ""
    written = json.loads((model / "slipway-manifest.json").read_text())
    assert written["lineage"]["statisticsUri"] == "s3://a/arts/x/FeatureStats.pb"
    assert (
        job_run.relocate_lineage({"Output": json.dumps({"pushed": False})}, "/work/pipeline-root", "s3://a")
        == ""
    )
    missing = {"pushed": True, "manifestUri": f"file://{tmp_path}/nowhere/slipway-manifest.json"}
    assert "lineage not relocated" in job_run.relocate_lineage({"push_result": missing}, "/w", "s3://a")

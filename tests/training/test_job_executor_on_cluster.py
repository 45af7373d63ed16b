"""The job executor on the real API server, with the real Job controller, scheduler and garbage collector,
and kwok's node: a Job's pod "completes" there without running a container (kwok completes pods that Jobs
own), so each test puts on S3 (moto) what the pod would have written, and the operator takes it from there:
registration, failures with their reason, termination."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from fixtures.storage import StorageServer
from fixtures.waiting import wait_for
from slipway import GROUP, VERSION
from slipway.api.training_pipeline import TrainingPipelineSpec
from slipway.storage import open_store
from slipway.training import job_executor as jobs
from slipway.training.job_executor import child_name
from slipway.training.plan import run_id

PIPELINES = Path(__file__).resolve().parent / "pipelines"
IMAGE = "slipway-pipelines:test"
T = TypeVar("T")


def found_or_none(read: Callable[[], T]) -> T | None:
    try:
        return read()
    except ApiException as error:
        if error.status == 404:
            return None
        raise


class JobsOn:
    def __init__(self, api: client.ApiClient, namespace: str, server: StorageServer) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.namespace = namespace
        self.server = server
        self.bucket = server.new_bucket()
        self.core.create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="store"),
                string_data={
                    "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_REGION": "us-east-1",
                    "README": "not a credential: not passed on",
                },
            ),
        )

    def location(self, prefix: str) -> dict[str, Any]:
        return {
            "uri": f"s3://{self.bucket}/{prefix}",
            "secretRef": {"name": "store"},
            "endpoint": self.server.endpoint,
        }

    def body(self, name: str, **spec: Any) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "TrainingPipeline",
            "metadata": {"name": name},
            "spec": {
                "pipeline": {"builtin": {"name": "tiny"}},
                "modelName": name,
                "data": self.location("data"),
                "artifactRoot": self.location("artifacts"),
                "modelStore": self.location("models"),
                "executor": {"type": "job"},
                "gates": {"metrics": [{"name": "accuracy", "min": "0.9"}]},
                **spec,
            },
        }

    def create(self, name: str, **spec: Any) -> dict[str, Any]:
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "trainingpipelines", self.body(name, **spec)
        )
        return created

    def request_run(self, name: str, token: str) -> str:
        patch = {"metadata": {"annotations": {f"{GROUP}/run": token}}}
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "trainingpipelines", name, patch
        )
        return run_id(name, "Manual", token)

    def status(self, name: str) -> dict[str, Any]:
        body = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "trainingpipelines", name
        )
        return body.get("status") or {}

    def run(self, name: str, identifier: str) -> dict[str, Any] | None:
        return next((r for r in self.status(name).get("runs", []) if r["id"] == identifier), None)

    def job(self, identifier: str) -> client.V1Job | None:
        return found_or_none(lambda: self.batch.read_namespaced_job(child_name(identifier), self.namespace))

    def config_map(self, identifier: str) -> client.V1ConfigMap | None:
        return found_or_none(
            lambda: self.core.read_namespaced_config_map(child_name(identifier), self.namespace)
        )

    def reasons(self, name: str) -> list[tuple[str, str]]:
        events = self.core.list_namespaced_event(self.namespace, field_selector=f"involvedObject.name={name}")
        return [(e.reason, e.message) for e in events.items]

    def model_version(self, name: str) -> dict[str, Any] | None:
        return found_or_none(
            lambda: self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "modelversions", name
            )
        )

    def write(self, key: str, data: bytes) -> None:
        open_store(f"s3://{self.bucket}", self.server.credentials).write_bytes(key, data)

    def pod_outcome(self, name: str, identifier: str, version: int, accuracy: float) -> None:
        """What the run's pod leaves on the stores when the pipeline pushes `version`."""
        model = f"models/{name}/{version}"
        manifest = {
            "schemaVersion": 1,
            "modelName": name,
            "version": version,
            "uri": f"s3://{self.bucket}/{model}",
            "metrics": {"accuracy": accuracy},
            "blessings": {"evaluator": True, "infraValidator": True},
            "lineage": {"pipeline": name, "runId": identifier},
        }
        self.write(f"{model}/slipway-manifest.json", json.dumps(manifest).encode())
        self.write(f"{model}/saved_model.pb", b"\x08\x01")
        push = {
            "pushed": True,
            "version": version,
            "manifestUri": f"s3://{self.bucket}/{model}/slipway-manifest.json",
        }
        state = {
            "phase": "Succeeded",
            "started": "2026-01-01T00:00:00Z",
            "finished": "2026-01-01T00:01:00Z",
            "outputs": {"Output": json.dumps(push)},
        }
        self.write(
            f"artifacts/{self.namespace}/{name}/runs/{identifier}/state.json", json.dumps(state).encode()
        )


@pytest.fixture
def jobs_on(api_client: client.ApiClient, namespace: str, s3_server: StorageServer) -> Iterator[JobsOn]:
    on = JobsOn(api_client, namespace, s3_server)
    yield on
    # Pipelines left behind keep the operator's finalizer (no operator runs now) and name Secrets that later
    # tests' operators, running as a ServiceAccount that may not read them, would try to read.
    listed = on.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "trainingpipelines")
    for item in listed["items"]:
        name = item["metadata"]["name"]
        on.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "trainingpipelines", name, {"metadata": {"finalizers": None}}
        )
        found_or_none(
            lambda n=name: on.custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, "trainingpipelines", n
            )
        )


@pytest.fixture
def operator(operator_process: Any) -> Iterator[Any]:
    operator_process.env.update(
        {
            "SLIPWAY_PIPELINES_DIR": str(PIPELINES),
            "SLIPWAY_TRAINING_POLL_SECONDS": "1",
            "SLIPWAY_PIPELINES_IMAGE": IMAGE,
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_CONFIG_FILE": "/nonexistent",
        }
    )
    operator_process.start()
    yield operator_process


def test_a_job_run_is_a_job_and_what_it_pushed_becomes_a_validated_model_version(
    jobs_on: JobsOn, operator: Any
) -> None:
    pipeline = jobs_on.create("jobs")
    identifier = run_id("jobs", "Manual", "first")
    jobs_on.pod_outcome("jobs", identifier, version=1, accuracy=0.97)
    jobs_on.request_run("jobs", "first")

    job = wait_for(lambda: jobs_on.job(identifier), "the run's Job")
    (owner,) = job.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid, owner.controller) == (
        "TrainingPipeline",
        "jobs",
        pipeline["metadata"]["uid"],
        True,
    )
    assert job.metadata.labels["slipway.dev/pipeline"] == "jobs"
    assert job.metadata.labels["app.kubernetes.io/managed-by"] == "slipway"
    pod = job.spec.template.spec
    (container,) = pod.containers
    assert container.image == IMAGE
    assert container.security_context.read_only_root_filesystem is True
    refs = {e.name: e.value_from.secret_key_ref for e in container.env if e.value_from}
    assert {name: (ref.name, ref.key) for name, ref in refs.items()} == {
        key: ("store", key) for key in ("AWS_ACCESS_KEY_ID", "AWS_REGION", "AWS_SECRET_ACCESS_KEY")
    }
    values = {e.name: e.value for e in container.env if not e.value_from}
    assert values["AWS_ENDPOINT_URL_S3"] == jobs_on.server.endpoint and "testing" not in values.values()
    assert {v.name: (v.config_map.name if v.config_map else "emptyDir") for v in pod.volumes} == {
        "run": child_name(identifier),
        "work": "emptyDir",
        "tmp": "emptyDir",
    }
    config_map = wait_for(lambda: jobs_on.config_map(identifier), "the run's ConfigMap")
    assert [(o.kind, o.name, o.uid) for o in config_map.metadata.owner_references] == [
        ("Job", job.metadata.name, job.metadata.uid)
    ]
    request = json.loads(config_map.data["request.json"])
    assert request["arguments"]["model_version"] == 1 and request["arguments"]["run_id"] == identifier
    assert (
        request["stateUri"]
        == f"s3://{jobs_on.bucket}/artifacts/{jobs_on.namespace}/jobs/runs/{identifier}/state.json"
    )
    assert config_map.data["pipeline.yaml"] == (PIPELINES / "tiny" / "pipeline.yaml").read_text()

    mv = wait_for(
        lambda: (m := jobs_on.model_version("jobs-v1")) and m.get("status", {}).get("phase") and m,
        "v1 registered and judged",
    )
    assert mv["status"]["phase"] == "Validated"
    assert mv["spec"]["uri"] == f"s3://{jobs_on.bucket}/models/jobs/1"
    assert mv["spec"]["lineage"]["runId"] == identifier
    record = wait_for(
        lambda: (r := jobs_on.run("jobs", identifier)) and r.get("pushed") and r, "run recorded"
    )
    assert record["phase"] == "Succeeded" and record["modelVersion"] == "jobs-v1"
    assert jobs_on.job(identifier).status.succeeded == 1  # type: ignore[union-attr]
    reachable = next(c for c in jobs_on.status("jobs")["conditions"] if c["type"] == "ExecutorReachable")
    assert reachable["status"] == "True"


def test_a_failed_job_says_why_in_the_run_and_an_event(jobs_on: JobsOn, operator: Any) -> None:
    # More CPU than kwok's node has: the pod is never scheduled and the Job controller fails the Job at its
    # deadline, as it would for a run that overstays it.
    stuck = {"resources": {"requests": {"cpu": "5000"}}, "activeDeadlineSeconds": 3}
    jobs_on.create("late", executor={"type": "job", "job": stuck})
    identifier = jobs_on.request_run("late", "first")
    failed = wait_for(
        lambda: (r := jobs_on.run("late", identifier)) and r["phase"] == "Failed" and r,
        "the run failed",
        timeout=60,
    )
    assert failed["message"].startswith("DeadlineExceeded: Job was active longer than specified deadline")
    condition = next(c for c in jobs_on.status("late")["conditions"] if c["type"] == "Succeeded")
    assert condition["status"] == "False" and condition["reason"] == "RunFailed"
    event = wait_for(
        lambda: next((m for r, m in jobs_on.reasons("late") if r == "RunFailed"), None), "a RunFailed event"
    )
    assert "DeadlineExceeded" in event and identifier in event
    assert jobs_on.model_version("late-v1") is None


def test_replace_and_deletion_remove_the_jobs_of_runs_in_flight(jobs_on: JobsOn, operator: Any) -> None:
    stuck = {"resources": {"requests": {"cpu": "5000"}}}
    schedule = {"cron": "0 0 1 1 *", "suspend": True, "concurrencyPolicy": "Replace"}
    jobs_on.create("swap", executor={"type": "job", "job": stuck}, schedule=schedule)
    first = jobs_on.request_run("swap", "a")
    wait_for(lambda: jobs_on.job(first) and jobs_on.config_map(first), "the first run's Job and ConfigMap")
    second = jobs_on.request_run("swap", "b")
    wait_for(lambda: jobs_on.job(second), "the second run's Job")
    wait_for(lambda: jobs_on.job(first) is None, "the replaced run's Job deleted")
    wait_for(lambda: jobs_on.config_map(first) is None, "its ConfigMap collected with it")
    replaced = wait_for(
        lambda: (r := jobs_on.run("swap", first)) and r["phase"] != "Running" and r, "recorded"
    )
    assert replaced["phase"] == "Cancelled"

    jobs_on.custom.delete_namespaced_custom_object(
        GROUP, VERSION, jobs_on.namespace, "trainingpipelines", "swap"
    )
    wait_for(lambda: jobs_on.job(second) is None, "the last run's Job deleted with its pipeline")
    wait_for(lambda: jobs_on.config_map(second) is None, "and its ConfigMap")


def test_admission_keeps_job_settings_to_the_job_executor_and_its_stores_off_file_paths(
    jobs_on: JobsOn,
) -> None:
    with pytest.raises(ApiException) as local_with_job:
        jobs_on.create("mixed", executor={"type": "local", "job": {"backoffLimit": 1}})
    assert "job settings are allowed only when type is job" in local_with_job.value.body
    with pytest.raises(ApiException) as file_root:
        jobs_on.create("files", artifactRoot={"uri": "file:///var/lib/slipway"})
    assert "spec.artifactRoot.uri" in file_root.value.body
    assert "the job executor's pod cannot reach the operator's file:// paths" in file_root.value.body


def test_a_job_left_by_an_operator_that_died_before_recording_it_is_adopted(
    jobs_on: JobsOn, operator: Any
) -> None:
    """The operator created the Job, then died before its ConfigMap and the run's record: the next one finds
    the Job by its name, creates the ConfigMap for it and records the run; there is still one Job."""
    stuck = {"resources": {"requests": {"cpu": "5000"}}}
    created = jobs_on.create("again", executor={"type": "job", "job": stuck})
    identifier = run_id("again", "Manual", "first")
    spec = TrainingPipelineSpec.model_validate(created["spec"])
    owner = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingPipeline",
        "name": "again",
        "uid": created["metadata"]["uid"],
        "controller": True,
    }
    left = jobs_on.batch.create_namespaced_job(
        jobs_on.namespace, jobs.job(jobs.target_for(jobs_on.namespace, "again", spec, []), identifier, owner)
    )
    jobs_on.request_run("again", "first")
    record = wait_for(lambda: jobs_on.run("again", identifier), "the run recorded")
    assert record["phase"] == "Running"
    config_map = wait_for(lambda: jobs_on.config_map(identifier), "the ConfigMap created for the adopted Job")
    assert [o.uid for o in config_map.metadata.owner_references] == [left.metadata.uid]
    listed = jobs_on.batch.list_namespaced_job(jobs_on.namespace, label_selector="slipway.dev/pipeline=again")
    assert [j.metadata.uid for j in listed.items] == [left.metadata.uid]

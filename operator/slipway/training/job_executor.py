"""The `job` executor: runs a compiled pipeline as a Kubernetes Job in the pipelines image.

Per run, a Job (owned by the TrainingPipeline) and a ConfigMap with the IR and the request (owned by the
Job, so it goes with it), both named after the run id. The pod runs `python3 -m slipway.training.job_run`:
kfp.local with its pipeline root on an emptyDir, the artifacts uploaded and the outcome written as a small
JSON state object under the artifact root, so nothing depends on the operator's filesystem or process.
Storage credentials reach the pod as `secretKeyRef`s to the Secrets the spec names, never as values.

The Job's status says whether the run is going or how it ended (DeadlineExceeded, BackoffLimitExceeded, the
pod's own exit); the state object says what the pipeline produced (its outputs, or the step that failed).
Builders and the state mapping are pure; `JobExecutor` does the I/O."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from slipway import GROUP, blobs, kube
from slipway.api.common import StorageLocation
from slipway.api.training_pipeline import JobExecutor as JobSettings
from slipway.api.training_pipeline import TrainingPipelineSpec
from slipway.podsecurity import restricted_container, restricted_pod
from slipway.settings import settings
from slipway.storage import ObjectNotFound, StorageCredentials
from slipway.training.local_executor import RunState, now_text
from slipway.training.source import SourceError

log = logging.getLogger(__name__)
CONTAINER = "pipeline"
RUN_DIR = "/etc/slipway/run"  # the ConfigMap: pipeline.yaml and request.json
WORK_DIR = "/work"  # emptyDir: HOME, the working directory and kfp.local's pipeline root
POD_PIPELINE_ROOT = f"{WORK_DIR}/pipeline-root"
STATE_OBJECT = "state.json"
RUN_AS = 10001  # the pipelines image's own user (images/pipelines/Dockerfile)
# Finished Jobs (and their ConfigMaps, pods and logs) are kept this long for inspection; the outcome stays in
# the state object, which is all the operator needs after the run has been recorded.
TTL_SECONDS_AFTER_FINISHED = 7 * 86_400
LOG_LIMIT_BYTES = 16_384
TERMINAL = ("Succeeded", "Failed", "Cancelled")
CONFIG_MAP_LIMIT_BYTES = (
    1_000_000  # the API server refuses a ConfigMap over 1 MiB; leave room for the request
)
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


class JobError(RuntimeError):
    """The Kubernetes API or the artifact store refused; the message names the object, never credentials."""


@dataclass(frozen=True)
class JobTarget:
    """Everything a run's Job is built from; `root_uri` is `<artifactRoot>/<namespace>/<pipeline>`."""

    namespace: str
    pipeline: str
    model_name: str
    image: str
    root_uri: str
    active_deadline_seconds: int
    backoff_limit: int = 0
    service_account: str | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    env: tuple[dict[str, Any], ...] = ()


def target_for(
    namespace: str, name: str, spec: TrainingPipelineSpec, env: Iterable[dict[str, Any]]
) -> JobTarget:
    job = spec.executor.job or JobSettings()
    return JobTarget(
        namespace=namespace,
        pipeline=name,
        model_name=spec.model_name,
        image=job.image or settings().pipelines_image,
        root_uri=blobs.join(spec.artifact_root.uri, namespace, name),
        active_deadline_seconds=job.active_deadline_seconds or spec.run_timeout_seconds,
        backoff_limit=job.backoff_limit,
        service_account=job.service_account_name,
        resources=job.resources.to_wire(),
        env=tuple(env),
    )


# --- credentials: which Secret keys the pod gets, by reference --------------------------------------------


def _is_credential(key: str) -> bool:
    return bool(StorageCredentials.from_mapping({key: "x"}).names())


def credential_env(
    locations: Iterable[tuple[str, StorageLocation]],
    secrets: Callable[[str], dict[str, str] | None],
    own_credentials: Callable[[StorageLocation, str, Any], StorageCredentials | None],
) -> list[dict[str, Any]]:
    """Env entries for the run's pod: every storage key of each location's Secret as a `secretKeyRef`, and a
    location's `endpoint` as a value (unless its Secret names one). The steps open every URI with this one
    environment, so two locations giving different values for a credential are refused, naming both fields.
    `own_credentials(location, field, secrets)`: what a location names itself (the controller's), read here
    only to compare values; `secrets(name)`: a Secret's data."""
    read: dict[str, dict[str, str] | None] = {}  # one GET per Secret, however many locations name it

    def secret(name: str) -> dict[str, str] | None:
        if name not in read:
            read[name] = secrets(name)
        return read[name]

    env: dict[str, dict[str, Any]] = {}
    effective: dict[str, tuple[str, str]] = {}  # canonical env name -> (value, field that set it)
    for path, location in locations:
        own = own_credentials(location, path, secret) or StorageCredentials()
        for name, value in own.to_env().items():
            previous = effective.setdefault(name, (value, path))
            if previous[0] != value:
                raise SourceError(
                    f"{path}.secretRef",
                    "ConflictingCredentials",
                    f"{path} and {previous[1]} give different {name}; the job executor runs every step "
                    "with one set of credentials (use one Secret, or the kfp executor)",
                )
        keys = sorted(secret(location.secret_ref.name) or {}) if location.secret_ref else []
        for key in (k for k in keys if _is_credential(k)):
            assert location.secret_ref is not None
            reference = {"name": location.secret_ref.name, "key": key}
            env.setdefault(key, {"name": key, "valueFrom": {"secretKeyRef": reference}})
        if location.endpoint and own.aws_endpoint_url == location.endpoint:
            env.setdefault("AWS_ENDPOINT_URL_S3", {"name": "AWS_ENDPOINT_URL_S3", "value": location.endpoint})
    return list(env.values())


def pipeline_locations(spec: TrainingPipelineSpec) -> list[tuple[str, StorageLocation]]:
    return [
        ("spec.data", spec.data),
        ("spec.artifactRoot", spec.artifact_root),
        ("spec.modelStore", spec.model_store),
    ]


# --- pure builders ----------------------------------------------------------------------------------------


def child_name(run_id: str) -> str:
    """The Job's and the ConfigMap's name: the run id when it is a DNS label, else a bounded digest form."""
    if re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", run_id):
        return run_id
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    prefix = re.sub(r"[^a-z0-9-]", "-", run_id.lower())[:54].strip("-") or "run"
    return f"{prefix}-{digest}"


def state_uri(root_uri: str, run_id: str) -> str:
    return blobs.join(root_uri, "runs", run_id, STATE_OBJECT)


def artifacts_uri(root_uri: str, run_id: str) -> str:
    return blobs.join(root_uri, "runs", run_id, "artifacts")


def labels(target: JobTarget, run_id: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "slipway-pipeline-run",
        "app.kubernetes.io/instance": target.pipeline,
        "app.kubernetes.io/component": "training",
        "app.kubernetes.io/part-of": "slipway",
        "app.kubernetes.io/managed-by": "slipway",
        f"{GROUP}/pipeline": target.pipeline,
        f"{GROUP}/model": target.model_name,
        f"{GROUP}/run": child_name(run_id),
    }


def request(run_id: str, arguments: dict[str, Any], root_uri: str) -> dict[str, Any]:
    """What the pod's job_run reads from the ConfigMap (no credentials: those come from the env)."""
    return {
        "runId": run_id,
        "arguments": arguments,
        "pipelineRoot": POD_PIPELINE_ROOT,
        "artifactsUri": artifacts_uri(root_uri, run_id),
        "stateUri": state_uri(root_uri, run_id),
    }


def config_map(
    target: JobTarget, run_id: str, ir_text: str, run_request: dict[str, Any], owner: dict[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": child_name(run_id),
            "namespace": target.namespace,
            "labels": labels(target, run_id),
            "ownerReferences": [owner],
        },
        "data": {"pipeline.yaml": ir_text, "request.json": json.dumps(run_request, sort_keys=True)},
    }


def job(target: JobTarget, run_id: str, owner: dict[str, Any]) -> dict[str, Any]:
    name = child_name(run_id)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": target.image,
        "command": ["python3", "-m", "slipway.training.job_run", RUN_DIR],
        "workingDir": WORK_DIR,
        # A pod that dies before recording an outcome (store unreachable, killed) reports its last log lines.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "env": [
            *target.env,
            {"name": "HOME", "value": WORK_DIR},
            {"name": "TMPDIR", "value": "/tmp"},
            {"name": "PYTHONUNBUFFERED", "value": "1"},
        ],
        "resources": target.resources,
        "volumeMounts": [
            {"name": "run", "mountPath": RUN_DIR, "readOnly": True},
            {"name": "work", "mountPath": WORK_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "securityContext": restricted_container(),
    }
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        **restricted_pod(RUN_AS),
        "containers": [container],
        "volumes": [
            {"name": "run", "configMap": {"name": name}},
            {"name": "work", "emptyDir": {}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    if target.service_account:
        pod["serviceAccountName"] = target.service_account
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": target.namespace,
            "labels": labels(target, run_id),
            "ownerReferences": [owner],
        },
        "spec": {
            "backoffLimit": target.backoff_limit,
            "activeDeadlineSeconds": target.active_deadline_seconds,
            "ttlSecondsAfterFinished": TTL_SECONDS_AFTER_FINISHED,
            "template": {"metadata": {"labels": labels(target, run_id)}, "spec": pod},
        },
    }


# --- pure: what the Job and the state object say ----------------------------------------------------------


def recorded_state(raw: dict[str, Any] | None) -> RunState | None:
    if raw is None:
        return None
    return RunState(
        phase=str(raw.get("phase") or "Running"),
        message=str(raw.get("message") or ""),
        started=raw.get("started"),
        finished=raw.get("finished"),
        outputs=raw.get("outputs"),
    )


def _true_conditions(job_body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    conditions = (job_body.get("status") or {}).get("conditions") or []
    return {c["type"]: c for c in conditions if c.get("status") == "True"}


def is_finished(job_body: dict[str, Any] | None) -> bool:
    if job_body is None:
        return True
    found = _true_conditions(job_body)
    return any(t in found for t in ("Complete", "SuccessCriteriaMet", "Failed", "FailureTarget"))


def is_failed(job_body: dict[str, Any]) -> bool:
    found = _true_conditions(job_body)
    return "Failed" in found or "FailureTarget" in found


def pod_problem(pod: dict[str, Any] | None) -> str:
    """What the pod itself says went wrong: a container's exit or wait, the pod's reason, scheduling."""
    if pod is None:
        return ""
    status = pod.get("status") or {}
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated and terminated.get("exitCode", 0) != 0:
            text = f"container {container.get('name')} {terminated.get('reason') or 'exited'} "
            text += f"(exit code {terminated.get('exitCode')})"
            # The message may be the log's tail (FallbackToLogsOnError): its last line says the most.
            lines = [line for line in (terminated.get("message") or "").splitlines() if line.strip()]
            return text + (f": {lines[-1].strip()[:500]}" if lines else "")
        if waiting and waiting.get("reason") not in (None, "ContainerCreating", "PodInitializing"):
            text = f"container {container.get('name')} waiting: {waiting['reason']}"
            return text + (f": {waiting['message']}" if waiting.get("message") else "")
    if status.get("reason"):
        return f"pod {status['reason']}: {status.get('message') or ''}".rstrip(": ")
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return f"pod not scheduled: {condition.get('reason')}: {condition.get('message') or ''}".rstrip(
                ": "
            )
    return ""


def run_state(
    job_body: dict[str, Any] | None, recorded: RunState | None, pod: dict[str, Any] | None, where: str
) -> RunState:
    """The run's state from its Job (None: deleted), the state object the pod wrote (None: none yet) and the
    newest pod (read only when the Job failed); `where` is the state object's URI, for messages."""
    if job_body is None:
        if recorded is not None and recorded.phase in TERMINAL:
            return recorded
        started = recorded.started if recorded else None
        return RunState("Cancelled", "the run's Job was deleted", started, now_text())
    status = job_body.get("status") or {}
    started, completed = status.get("startTime"), status.get("completionTime")
    found = _true_conditions(job_body)
    if "Complete" in found or "SuccessCriteriaMet" in found:
        finished = completed or (recorded.finished if recorded else None)
        if recorded is not None and recorded.phase == "Succeeded":
            return RunState("Succeeded", recorded.message, started, finished, recorded.outputs)
        if recorded is not None and recorded.phase == "Failed":
            return RunState("Failed", recorded.message, started, finished)
        return RunState("Failed", f"the Job succeeded but recorded no outcome at {where}", started, finished)
    failure = found.get("Failed") or found.get("FailureTarget")
    if failure is not None:
        finished = failure.get("lastTransitionTime")
        if recorded is not None and recorded.phase == "Failed" and recorded.message:
            return RunState("Failed", recorded.message, started, finished)
        message = f"{failure.get('reason') or 'Failed'}: {failure.get('message') or 'the Job failed'}"
        problem = pod_problem(pod)
        return RunState("Failed", f"{message}; {problem}" if problem else message, started, finished)
    if job_body["metadata"].get("deletionTimestamp"):
        return RunState("Cancelled", "the run's Job is being deleted", started, now_text())
    if status.get("active") or status.get("ready"):
        return RunState("Running", started=started)
    return RunState("Pending", "waiting for the run's pod", started=started)


# --- I/O --------------------------------------------------------------------------------------------------


def _describe(error: ApiException) -> str:
    try:
        message = json.loads(error.body or "{}").get("message") or ""
    except (TypeError, ValueError):
        message = ""
    return f"{error.status} {error.reason}" + (f": {message}" if message else "")


class JobExecutor:
    def __init__(self, target: JobTarget, credentials: Any = None) -> None:
        """`credentials`: what reads the state objects under the artifact root (the pod has its own)."""
        self.target = target
        self.credentials = credentials

    def submit(self, run_id: str, ir_text: str, arguments: dict[str, Any], pipeline_root: str) -> RunState:
        """Creates the run's Job, then its ConfigMap owned by the Job (the pod waits for the mount); an
        existing Job is adopted, and a ConfigMap missing after a crash between the two is created."""
        name, namespace = child_name(run_id), self.target.namespace
        if len(ir_text.encode()) > CONFIG_MAP_LIMIT_BYTES:
            raise JobError(
                f"the pipeline's IR is {len(ir_text.encode())} bytes; the job executor passes it in a "
                f"ConfigMap, which holds at most {CONFIG_MAP_LIMIT_BYTES}"
            )
        existing = self.read_job(name)
        if existing is None:
            pipeline = kube.get("TrainingPipeline", namespace, self.target.pipeline)
            if pipeline is None:
                raise JobError(f"TrainingPipeline {namespace}/{self.target.pipeline} is gone")
            body = job(self.target, run_id, kube.owner_reference(pipeline))
            try:
                existing = kube.create_if_absent(body) or self.read_job(name)
            except ApiException as error:
                raise JobError(f"cannot create Job {namespace}/{name}: {_describe(error)}") from error
        if existing is None:
            raise JobError(f"Job {namespace}/{name} vanished while it was created")
        owner = kube.owner_reference({**existing, "apiVersion": "batch/v1", "kind": "Job"})
        run_request = request(run_id, arguments, pipeline_root)
        try:
            kube.create_if_absent(config_map(self.target, run_id, ir_text, run_request, owner))
        except ApiException as error:
            raise JobError(f"cannot create ConfigMap {namespace}/{name}: {_describe(error)}") from error
        return run_state(existing, None, None, state_uri(self.target.root_uri, run_id))

    def read_job(self, name: str) -> dict[str, Any] | None:
        try:
            return kube.get("Job", self.target.namespace, name)
        except ApiException as error:
            raise JobError(f"cannot read Job {self.target.namespace}/{name}: {_describe(error)}") from error

    def read_recorded(self, run_id: str) -> RunState | None:
        uri = state_uri(self.target.root_uri, run_id)
        try:
            raw = json.loads(blobs.read_bytes(uri, self.credentials))
        except blobs.ObjectError as error:
            if isinstance(error.__cause__, ObjectNotFound):
                return None
            raise JobError(str(error)) from error
        except ValueError:
            return None  # not JSON (yet): as if absent
        return recorded_state(raw if isinstance(raw, dict) else None)

    def newest_pod(self, name: str) -> dict[str, Any] | None:
        try:
            items = list(kube.list_items("Pod", [self.target.namespace], f"{JOB_NAME_LABEL}={name}"))
        except ApiException as error:
            log.warning(
                "cannot list the pods of Job %s/%s: %s", self.target.namespace, name, _describe(error)
            )
            return None
        return max(items, key=lambda p: p["metadata"].get("creationTimestamp") or "", default=None)

    def state(self, run_id: str) -> RunState:
        name = child_name(run_id)
        body = self.read_job(name)
        if not is_finished(body):
            return run_state(body, None, None, "")
        recorded = self.read_recorded(run_id)
        pod = self.newest_pod(name) if body is not None and is_failed(body) else None
        return run_state(body, recorded, pod, state_uri(self.target.root_uri, run_id))

    def terminate(self, run_id: str) -> None:
        """Deletes the Job; its pods and ConfigMap follow (garbage collection)."""
        name = child_name(run_id)
        try:
            kube.delete("Job", self.target.namespace, name, propagation="Background")
        except ApiException as error:
            raise JobError(f"cannot delete Job {self.target.namespace}/{name}: {_describe(error)}") from error

    def log_tail(self, run_id: str, lines: int = 20) -> str:
        pod = self.newest_pod(child_name(run_id))
        if pod is None:
            return ""
        try:
            text: str = client.CoreV1Api(kube.api_client()).read_namespaced_pod_log(
                pod["metadata"]["name"],
                self.target.namespace,
                container=CONTAINER,
                tail_lines=lines,
                limit_bytes=LOG_LIMIT_BYTES,
            )
        except ApiException as error:
            log.warning("cannot read the log of pod %s: %s", pod["metadata"]["name"], _describe(error))
            return ""
        return text

"""The `kfp` executor: runs a compiled pipeline on a Kubeflow Pipelines API through `kfp.Client`.

The pipeline is uploaded once per content digest (a version named after the digest is reused when it
exists); a run's display name is the Slipway run id, derived from the pipeline and its trigger, so a
restarted operator finds the run it created instead of creating another. Same interface as the local
executor: submit, state, terminate, log_tail.

Proven against the KFP 2.0.5 API server (tests/training/test_kfp_executor.py), where:
- errors come in two JSON shapes: {"error", "code", "message"} from the gRPC gateway (runs, experiments,
  pipelines) and {"error_message", "error_details"} from the upload endpoints; both are read for the message;
- a failed run carries no `error`: why it failed is in the Argo Workflow the server keeps for the run,
  served only by the v1beta1 API (`pipeline_runtime.workflow_manifest`);
- a terminated run ends FAILED, never CANCELED: the Workflow's `activeDeadlineSeconds: 0` (how KFP
  terminates) tells it apart;
- in multi-user mode, pipelines, experiments and runs are looked up in the profile namespace."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slipway.training.kfp_platform import SecretEnv, with_secrets_as_env
from slipway.training.kfp_pods import StepLogs
from slipway.training.local_executor import RunState

log = logging.getLogger(__name__)

PHASES = {
    "PENDING": "Pending",
    "RUNTIME_STATE_UNSPECIFIED": "Pending",
    "RUNNING": "Running",
    "PAUSED": "Running",
    "CANCELING": "Running",
    "SUCCEEDED": "Succeeded",
    "SKIPPED": "Succeeded",
    "FAILED": "Failed",
    "CANCELED": "Cancelled",
}
# Condition reasons of a KfpError.
UNREACHABLE = "ExecutorUnreachable"  # connection refused, timeouts, 5xx
UNAUTHORIZED = "ExecutorUnauthorized"  # 401/403: the token is missing, wrong or lacks the permission
PIPELINE_REJECTED = "PipelineRejected"  # the server refused the compiled pipeline
RUN_REJECTED = "RunRejected"  # the server refused the run (e.g. a required parameter has no value)
BACKOFF_SECONDS = (5, 10, 20, 40, 80, 160, 300)


class KfpError(RuntimeError):
    """The KFP API refused or could not be reached; the message names the endpoint, never the token.
    `reason` is the condition reason; `status` the HTTP status, when there was an answer."""

    def __init__(self, message: str, reason: str = UNREACHABLE, status: int | None = None) -> None:
        super().__init__(message)
        self.reason, self.status = reason, status


@dataclass(frozen=True)
class KfpTarget:
    endpoint: str
    token: str | None
    experiment: str
    namespace: str | None
    service_account: str | None
    ui_url: str | None
    pipeline_name: str
    # Storage Secrets whose keys every step gets as environment variables (KFP's platform config).
    secrets_as_env: tuple[SecretEnv, ...] = ()
    # Reads a failed step's pod log where the run's pods are in reach (None: the message is KFP's alone).
    step_logs: StepLogs | None = field(default=None, compare=False)


def _equals(key: str, value: str) -> str:
    return json.dumps({"predicates": [{"operation": 1, "key": key, "stringValue": value}]})


ClientKey = tuple[str, str | None, str | None]


def client_key(target: KfpTarget) -> ClientKey:
    return (target.endpoint, target.token, target.namespace)


@dataclass
class KfpConnections:
    """What the kfp executor keeps between reconciles, one per operator (in the training Memory)."""

    clients: dict[ClientKey, Any] = field(default_factory=dict)
    # Slipway run id -> KFP run id, per endpoint: found once by display name, then read by id.
    run_ids: dict[tuple[str, str], str] = field(default_factory=dict)
    # Per client: (consecutive transient failures, monotonic time before which no call is made, last error).
    backoff: dict[ClientKey, tuple[int, float, KfpError]] = field(default_factory=dict)
    # IR digests the server refused, per endpoint: not uploaded again (the error is raised at once).
    rejected: dict[tuple[str, str], KfpError] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def client_for(self, target: KfpTarget) -> Any:
        key = client_key(target)
        with self.lock:
            if key not in self.clients:
                self.clients[key] = connect(target)
            return self.clients[key]


def connect(target: KfpTarget) -> Any:
    """A kfp.Client for the target (creating one asks the server's healthz)."""
    import kfp

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "only works with KFP >= 2.0.0-beta.2"
            return kfp.Client(
                host=target.endpoint,
                existing_token=target.token,
                credentials=None if target.token else projected_token(),
                namespace=target.namespace or "kubeflow",
            )
    except Exception as error:
        status = getattr(error, "status", None)
        reason = classify("connect", status, server_message(getattr(error, "body", None)))
        raise KfpError(f"KFP API at {target.endpoint}: {_short(error)}", reason, status) from error


def projected_token() -> Any:
    """Without a token Secret: the ServiceAccount token the kubelet projects for KFP (audience
    pipelines.kubeflow.org, at $KF_PIPELINES_SA_TOKEN_PATH or /var/run/secrets/kubeflow/pipelines/token),
    re-read before every request since the kubelet rotates it. None when there is no such file (a
    single-user KFP asks for no token)."""
    from kfp.client import KF_PIPELINES_SA_TOKEN_ENV, KF_PIPELINES_SA_TOKEN_PATH, set_volume_credentials

    if not Path(os.environ.get(KF_PIPELINES_SA_TOKEN_ENV) or KF_PIPELINES_SA_TOKEN_PATH).exists():
        return None
    return set_volume_credentials.ServiceAccountTokenVolumeCredentials()


def server_message(body: Any) -> str:
    """The message in a KFP error body, in either of the server's shapes; '' when there is none."""
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    try:
        parsed = json.loads(body) if isinstance(body, str) else None
    except ValueError:
        return str(body or "").strip()[:500]
    if not isinstance(parsed, dict):
        return ""
    # error_details is a stack trace: never shown.
    return str(parsed.get("message") or parsed.get("error_message") or parsed.get("error") or "")[:500]


def _short(error: Exception) -> str:
    status = getattr(error, "status", None)
    reason = getattr(error, "reason", None)
    if status is not None:
        said = server_message(getattr(error, "body", None))
        return f"HTTP {status} {reason or ''}".strip() + (f": {said}" if said else "")
    return f"{type(error).__name__}: {str(error)[:300]}"


def classify(what: str, status: int | None, message: str) -> str:
    """The condition reason for a failed call. The 2.0.5 server answers an invalid pipeline spec on
    upload with HTTP 500, so an upload's 500 that says "invalid" is a rejection, not an outage."""
    if status in (401, 403):
        return UNAUTHORIZED
    if what.startswith("upload") and (status == 400 or (status == 500 and "invalid" in message.lower())):
        return PIPELINE_REJECTED
    if what == "create run" and status == 400:
        return RUN_REJECTED
    return UNREACHABLE


def backoff_seconds(failures: int) -> int:
    return BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS)) - 1]


def failed_steps(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The Workflow's step nodes (pods) in phase Failed or Error."""
    return [
        node
        for node in ((manifest.get("status") or {}).get("nodes") or {}).values()
        if node.get("phase") in ("Failed", "Error") and node.get("type") in ("Pod", "Container", None)
    ]


def failure_from_workflow(manifest: dict[str, Any]) -> tuple[bool, str]:
    """(terminated, why) from the Argo Workflow KFP keeps for a finished run: KFP terminates a run by
    setting activeDeadlineSeconds to 0; a failed step is a node in phase Failed or Error."""
    terminated = (manifest.get("spec") or {}).get("activeDeadlineSeconds") == 0
    status = manifest.get("status") or {}
    failed = failed_steps(manifest)
    steps = "; ".join(
        f"step {node.get('displayName') or node.get('name')} failed: {node.get('message') or 'no message'}"
        for node in failed[:3]
    )
    why = steps or str(status.get("message") or "")
    return terminated, why


class KfpExecutor:
    def __init__(self, target: KfpTarget, connections: KfpConnections | None = None) -> None:
        """`connections`: the operator's (clients, run ids, backoff); a new executor without them knows
        nothing, like a restarted operator."""
        self.target = target
        self.connections = connections if connections is not None else KfpConnections()

    @property
    def client(self) -> Any:
        """The target's kfp.Client (creating one asks the server's healthz), subject to the backoff."""
        self._wait_for_backoff()
        try:
            return self.connections.client_for(self.target)
        except KfpError as error:
            self._failed(error)
            raise

    def _wait_for_backoff(self) -> None:
        backoff = self.connections.backoff.get(client_key(self.target))
        if backoff is not None and time.monotonic() < backoff[1]:
            # The same error, word for word: the condition that reports it does not change, so no write.
            raise KfpError(str(backoff[2]), backoff[2].reason, backoff[2].status)

    def _failed(self, error: KfpError) -> None:
        """Transient failures (unreachable, 5xx, 401/403) back the client off: until the backoff ends,
        calls fail at once with the last error instead of hammering the server."""
        if error.reason in (UNREACHABLE, UNAUTHORIZED) and error.status != 404:
            key = client_key(self.target)
            backoff = self.connections.backoff
            failures = backoff[key][0] + 1 if key in backoff else 1
            backoff[key] = (failures, time.monotonic() + backoff_seconds(failures), error)

    def _namespaced(self) -> dict[str, str]:
        return {"namespace": self.target.namespace} if self.target.namespace else {}

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        self._wait_for_backoff()
        try:
            result = fn(*args, **kwargs)
        except KfpError:
            raise
        except Exception as error:
            status = getattr(error, "status", None)
            reason = classify(what, status, server_message(getattr(error, "body", None)))
            failure = KfpError(f"KFP API at {self.target.endpoint}: {what}: {_short(error)}", reason, status)
            self._failed(failure)
            raise failure from error
        self.connections.backoff.pop(client_key(self.target), None)
        return result

    # --- pipeline and experiment, each created once ------------------------------------------------------

    def experiment_id(self) -> str:
        client = self.client
        found = self._call(
            "list experiments",
            client._experiment_api.experiment_service_list_experiments,
            filter=_equals("display_name", self.target.experiment),
            **self._namespaced(),
        )
        if found.experiments:
            return str(found.experiments[0].experiment_id)
        import kfp_server_api

        # The API itself: kfp.Client.create_experiment prints a link to stdout, the operator's log.
        experiment = kfp_server_api.V2beta1Experiment(
            display_name=self.target.experiment, namespace=self.target.namespace
        )
        created = self._call(
            "create experiment",
            client._experiment_api.experiment_service_create_experiment,
            experiment=experiment,
        )
        return str(created.experiment_id)

    def pipeline_id(self) -> str | None:
        """By name, in the target's namespace (kfp.Client.get_pipeline_id looks in the shared one only)."""
        found = self._call(
            "find pipeline",
            self.client._pipelines_api.pipeline_service_list_pipelines,
            filter=_equals("display_name", self.target.pipeline_name),
            **self._namespaced(),
        )
        return str(found.pipelines[0].pipeline_id) if found.pipelines else None

    def pipeline_version(self, ir_text: str) -> tuple[str, str]:
        """(pipeline id, version id) for this IR, uploading only what is not there yet."""
        client = self.client
        digest = hashlib.sha256(ir_text.encode()).hexdigest()
        refused = self.connections.rejected.get((self.target.endpoint, digest))
        if refused is not None:
            raise refused
        version_name = f"{self.target.pipeline_name}-sha256-{digest[:16]}"
        with tempfile.TemporaryDirectory() as scratch:
            package = Path(scratch) / "pipeline.yaml"
            package.write_text(ir_text)
            try:
                pipeline_id = self.pipeline_id()
                if pipeline_id is None:
                    created = self._call(
                        "upload pipeline",
                        client._upload_api.upload_pipeline,
                        str(package),
                        name=self.target.pipeline_name,
                        description=f"Slipway pipeline; first version sha256:{digest}",
                        **self._namespaced(),
                    )
                    pipeline_id = str(created.pipeline_id)
                versions = self._call(
                    "list pipeline versions",
                    client.list_pipeline_versions,
                    pipeline_id=pipeline_id,
                    filter=_equals("display_name", version_name),
                )
                if versions.pipeline_versions:
                    return pipeline_id, str(versions.pipeline_versions[0].pipeline_version_id)
                uploaded = self._call(
                    "upload pipeline version",
                    client._upload_api.upload_pipeline_version,
                    str(package),
                    name=version_name,
                    pipelineid=pipeline_id,
                    description=f"sha256:{digest}",
                )
            except KfpError as error:
                if error.reason == PIPELINE_REJECTED:
                    self.connections.rejected[(self.target.endpoint, digest)] = error
                raise
            return pipeline_id, str(uploaded.pipeline_version_id)

    # --- runs -----------------------------------------------------------------------------------------

    def find(self, run_id: str) -> Any | None:
        """The KFP run whose display name is this run id (the deterministic name), if any."""
        known = self.connections.run_ids.get((self.target.endpoint, run_id))
        if known is not None:
            try:
                return self._call("get run", self.client.get_run, known)
            except KfpError as error:
                if error.status != 404:
                    raise
                self.connections.run_ids.pop((self.target.endpoint, run_id), None)  # deleted on the KFP side
        found = self._call(
            "list runs",
            self.client._run_api.run_service_list_runs,
            filter=_equals("display_name", run_id),
            page_size=2,
            **self._namespaced(),
        )
        runs = found.runs or []
        if not runs:
            return None
        self.connections.run_ids[(self.target.endpoint, run_id)] = str(runs[0].run_id)
        return runs[0]

    def url(self, kfp_run_id: str) -> str:
        base = (self.target.ui_url or self.target.endpoint).rstrip("/")
        return f"{base}/#/runs/details/{kfp_run_id}"

    def workflow_manifest(self, kfp_run_id: str) -> dict[str, Any]:
        """The Argo Workflow KFP stored for the run (v1beta1 API only); {} when it cannot be had."""
        api_client = self.client._run_api.api_client
        try:
            detail = self._call(
                "get run details",
                api_client.call_api,
                "/apis/v1beta1/runs/{run_id}",
                "GET",
                path_params={"run_id": kfp_run_id},
                header_params={"Accept": "application/json"},
                response_type="object",
                auth_settings=["Bearer"],
                _return_http_data_only=True,
            )
            manifest = json.loads(
                ((detail or {}).get("pipeline_runtime") or {}).get("workflow_manifest") or "{}"
            )
        except (KfpError, ValueError, AttributeError) as error:
            log.info("no workflow manifest for KFP run %s: %s", kfp_run_id, error)
            return {}
        return manifest if isinstance(manifest, dict) else {}

    def _state(self, run: Any) -> RunState:
        kfp_state = str(run.state or "PENDING")
        phase = PHASES.get(kfp_state, "Running")
        url = self.url(str(run.run_id))
        message = ""
        if run.error is not None:
            message = str(getattr(run.error, "message", "") or run.error)[:2000]
        if phase == "Failed":
            manifest = self.workflow_manifest(str(run.run_id))
            terminated, why = failure_from_workflow(manifest)
            if terminated:
                return RunState("Cancelled", f"terminated{': ' + why if why else ''}"[:2000], url=url)
            message = (message or why or f"KFP reported no reason; see {url}") + self.step_log(manifest)
        return RunState(phase=phase, message=message[:2000], url=url)

    def step_log(self, manifest: dict[str, Any]) -> str:
        """The first failed step's pod log tail, when the target can read the run's pods."""
        failed, metadata = failed_steps(manifest), manifest.get("metadata") or {}
        if self.target.step_logs is None or not failed or not metadata.get("namespace"):
            return ""
        return self.target.step_logs(str(metadata["namespace"]), str(metadata.get("name")), failed[0])

    def submit(self, run_id: str, ir_text: str, arguments: dict[str, Any], pipeline_root: str) -> RunState:
        existing = self.find(run_id)
        if existing is not None:
            return self._state(existing)
        experiment_id = self.experiment_id()
        pipeline_id, version_id = self.pipeline_version(
            with_secrets_as_env(ir_text, self.target.secrets_as_env)
        )
        import kfp_server_api

        # The API itself, not kfp.Client.run_pipeline, which prints a link to stdout (the operator's log).
        body = kfp_server_api.V2beta1Run(
            experiment_id=experiment_id,
            display_name=run_id,
            pipeline_version_reference=kfp_server_api.V2beta1PipelineVersionReference(
                pipeline_id=pipeline_id, pipeline_version_id=version_id
            ),
            runtime_config=kfp_server_api.V2beta1RuntimeConfig(
                pipeline_root=pipeline_root, parameters=arguments
            ),
            service_account=self.target.service_account,
        )
        run = self._call("create run", self.client._run_api.run_service_create_run, run=body)
        self.connections.run_ids[(self.target.endpoint, run_id)] = str(run.run_id)
        return self._state(run)

    def state(self, run_id: str) -> RunState:
        run = self.find(run_id)
        if run is None:
            return RunState("Failed", f"run {run_id} not found on the KFP API at {self.target.endpoint}")
        return self._state(run)

    def terminate(self, run_id: str) -> None:
        run = self.find(run_id)
        if run is None or PHASES.get(str(run.state), "Running") not in ("Pending", "Running"):
            return
        if str(run.state) == "CANCELING":
            return  # already asked; the 2.0.5 server refuses a second terminate
        try:
            self._call("terminate run", self.client.terminate_run, str(run.run_id))
        except KfpError as error:
            # It finished between the read and the call: the server refuses with 400 "Row not found".
            if error.status != 400:
                raise

    def log_tail(self, run_id: str, lines: int = 20) -> str:
        return ""

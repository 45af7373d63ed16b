"""The `kfp` executor: runs a compiled pipeline on a Kubeflow Pipelines API through `kfp.Client`.

The pipeline is uploaded once per content digest (a version named after the digest is reused when it
exists); a run's display name is the Slipway run id, derived from the pipeline and its trigger, so a
restarted operator finds the run it created instead of creating another. Same interface as the local
executor: submit, state, terminate, log_tail."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


class KfpError(RuntimeError):
    """The KFP API refused or could not be reached; the message names the endpoint, never the token."""


@dataclass(frozen=True)
class KfpTarget:
    endpoint: str
    token: str | None
    experiment: str
    namespace: str | None
    service_account: str | None
    ui_url: str | None
    pipeline_name: str


def _equals(key: str, value: str) -> str:
    return json.dumps({"predicates": [{"operation": 1, "key": key, "stringValue": value}]})


_clients: dict[tuple[str, str | None, str | None], Any] = {}
# Slipway run id -> KFP run id, per endpoint: found once by display name, then read by id.
_run_ids: dict[tuple[str, str], str] = {}
_clients_lock = threading.Lock()


def client_for(target: KfpTarget) -> Any:
    key = (target.endpoint, target.token, target.namespace)
    with _clients_lock:
        if key not in _clients:
            import kfp

            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)  # "only works with KFP >= 2.0.0-beta.2"
                    _clients[key] = kfp.Client(
                        host=target.endpoint,
                        existing_token=target.token,
                        namespace=target.namespace or "kubeflow",
                    )
            except Exception as error:
                raise KfpError(f"KFP API at {target.endpoint}: {_short(error)}") from error
        return _clients[key]


def _short(error: Exception) -> str:
    status = getattr(error, "status", None)
    reason = getattr(error, "reason", None)
    if status is not None:
        return f"HTTP {status} {reason or ''}".strip()
    return f"{type(error).__name__}: {str(error)[:300]}"


class KfpExecutor:
    def __init__(self, target: KfpTarget) -> None:
        self.target = target

    @property
    def client(self) -> Any:
        return client_for(self.target)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KfpError:
            raise
        except Exception as error:
            raise KfpError(f"KFP API at {self.target.endpoint}: {what}: {_short(error)}") from error

    # --- pipeline and experiment, each created once ------------------------------------------------------

    def experiment_id(self) -> str:
        client = self.client
        namespace = self.target.namespace
        found = self._call(
            "list experiments",
            client._experiment_api.experiment_service_list_experiments,
            filter=_equals("display_name", self.target.experiment),
            **({"namespace": namespace} if namespace else {}),
        )
        if found.experiments:
            return str(found.experiments[0].experiment_id)
        created = self._call(
            "create experiment", client.create_experiment, self.target.experiment, namespace=namespace
        )
        return str(created.experiment_id)

    def pipeline_version(self, ir_text: str) -> tuple[str, str]:
        """(pipeline id, version id) for this IR, uploading only what is not there yet."""
        client = self.client
        digest = hashlib.sha256(ir_text.encode()).hexdigest()
        version_name = f"{self.target.pipeline_name}-sha256-{digest[:16]}"
        with tempfile.TemporaryDirectory() as scratch:
            package = Path(scratch) / "pipeline.yaml"
            package.write_text(ir_text)
            pipeline_id = self._call("find pipeline", client.get_pipeline_id, self.target.pipeline_name)
            if pipeline_id is None:
                created = self._call(
                    "upload pipeline",
                    client._upload_api.upload_pipeline,
                    str(package),
                    name=self.target.pipeline_name,
                    description=f"Slipway pipeline; first version sha256:{digest}",
                    **({"namespace": self.target.namespace} if self.target.namespace else {}),
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
            return pipeline_id, str(uploaded.pipeline_version_id)

    # --- runs -----------------------------------------------------------------------------------------

    def find(self, run_id: str) -> Any | None:
        """The KFP run whose display name is this run id (the deterministic name), if any."""
        known = _run_ids.get((self.target.endpoint, run_id))
        if known is not None:
            try:
                return self._call("get run", self.client.get_run, known)
            except KfpError as error:
                if getattr(error.__cause__, "status", None) != 404:
                    raise
                _run_ids.pop((self.target.endpoint, run_id), None)  # deleted on the KFP side
        found = self._call(
            "list runs",
            self.client._run_api.run_service_list_runs,
            filter=_equals("display_name", run_id),
            page_size=2,
            **({"namespace": self.target.namespace} if self.target.namespace else {}),
        )
        runs = found.runs or []
        if not runs:
            return None
        _run_ids[(self.target.endpoint, run_id)] = str(runs[0].run_id)
        return runs[0]

    def url(self, kfp_run_id: str) -> str:
        base = (self.target.ui_url or self.target.endpoint).rstrip("/")
        return f"{base}/#/runs/details/{kfp_run_id}"

    def _state(self, run: Any) -> RunState:
        phase = PHASES.get(str(run.state or "PENDING"), "Running")
        message = ""
        if run.error is not None:
            message = str(getattr(run.error, "message", "") or run.error)[:2000]
        return RunState(phase=phase, message=message, url=self.url(str(run.run_id)))

    def submit(self, run_id: str, ir_text: str, arguments: dict[str, Any], pipeline_root: str) -> RunState:
        existing = self.find(run_id)
        if existing is not None:
            return self._state(existing)
        experiment_id = self.experiment_id()
        pipeline_id, version_id = self.pipeline_version(ir_text)
        run = self._call(
            "create run",
            self.client.run_pipeline,
            experiment_id=experiment_id,
            job_name=run_id,
            pipeline_id=pipeline_id,
            version_id=version_id,
            params=arguments,
            pipeline_root=pipeline_root,
            service_account=self.target.service_account,
        )
        _run_ids[(self.target.endpoint, run_id)] = str(run.run_id)
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
        self._call("terminate run", self.client.terminate_run, str(run.run_id))

    def log_tail(self, run_id: str, lines: int = 20) -> str:
        return ""

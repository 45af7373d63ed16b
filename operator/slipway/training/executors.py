"""The executors a TrainingPipeline can name, in one table: adding a type is one entry in `EXECUTORS`.

Every executor has the same protocol (submit, state, terminate, log_tail) and adopts a run it already
knows when the same run id is submitted again, so a restarted operator never starts a run twice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from slipway import blobs
from slipway.api.training_pipeline import TrainingPipelineSpec
from slipway.settings import settings
from slipway.training.credentials import (
    SecretReader,
    kfp_token,
    own_credentials,
    run_environment,
    storage_credentials,
)
from slipway.training.job_executor import (
    JobError,
    JobExecutor,
    credential_env,
    pipeline_locations,
    target_for,
)
from slipway.training.kfp_executor import KfpConnections, KfpError, KfpExecutor, KfpTarget
from slipway.training.kfp_platform import storage_secrets
from slipway.training.kfp_pods import kubernetes_step_logs
from slipway.training.local_executor import LocalExecutor, RunState


class Executor(Protocol):
    def submit(
        self, run_id: str, ir_text: str, arguments: dict[str, Any], pipeline_root: str
    ) -> RunState: ...

    def state(self, run_id: str) -> RunState: ...

    def terminate(self, run_id: str) -> None: ...

    def log_tail(self, run_id: str, lines: int = 20) -> str: ...


@dataclass(frozen=True)
class Target:
    """Where one pipeline's runs go: everything an executor factory needs."""

    namespace: str
    name: str
    spec: TrainingPipelineSpec
    secrets: SecretReader | None  # None: only to stop runs (no credentials are resolved)
    on_run_exit: Callable[[], None] | None = None
    # The kfp executor's clients, run ids and backoff, kept by the operator between reconciles.
    kfp_connections: KfpConnections | None = None


# An executor and the pipeline root its runs write under.
Factory = Callable[[Target], tuple[Executor, str]]


@dataclass(frozen=True)
class ExecutorKind:
    build: Factory
    unreachable: tuple[type[Exception], ...] = ()  # errors that mean "the executor is down: try later"


def local(target: Target) -> tuple[Executor, str]:
    """Run state lives next to the artifacts when the artifact root is local, else in the state dir."""
    spec = target.spec
    if spec.artifact_root.uri.startswith("file://"):
        root = blobs.local_path(spec.artifact_root.uri)
    else:
        root = Path(settings().artifact_state_dir)
    base = root / target.namespace / target.name
    environment = run_environment(spec, target.secrets) if target.secrets is not None else {}
    return LocalExecutor(base / "runs", environment, target.on_run_exit), str(base / "pipeline-root")


def kfp(target: Target) -> tuple[Executor, str]:
    """KFP keeps run state itself; the pipeline root is the artifact root."""
    kfp = target.spec.executor.kfp
    assert kfp is not None
    namespace, name = target.namespace, target.name
    secrets = target.secrets
    if secrets is None:
        from slipway.training.credentials import secret_reader

        secrets = secret_reader(namespace)
    endpoint = KfpTarget(
        endpoint=kfp.endpoint,
        token=kfp_token(namespace, target.spec, secrets),
        experiment=kfp.experiment,
        namespace=kfp.namespace,
        service_account=kfp.service_account,
        ui_url=kfp.ui_url,
        pipeline_name=f"{namespace}-{name}",
        # Only to submit runs: stopping one (no credentials resolved) must not need the storage Secrets.
        secrets_as_env=storage_secrets(target.spec, target.secrets) if target.secrets is not None else (),
        step_logs=kubernetes_step_logs(kube_client),
    )
    return KfpExecutor(endpoint, target.kfp_connections), blobs.join(
        target.spec.artifact_root.uri, namespace, name
    )


def kube_client() -> Any:
    from slipway.kube import api_client

    return api_client()


def job(target: Target) -> tuple[Executor, str]:
    """A Kubernetes Job per run; state under the artifact root. Without a Secret reader (on deletion) it
    only terminates: no env, no state reads."""
    spec, secrets = target.spec, target.secrets
    env = credential_env(pipeline_locations(spec), secrets, own_credentials) if secrets else []
    credentials = storage_credentials(spec.artifact_root, "spec.artifactRoot", secrets) if secrets else None
    job_target = target_for(target.namespace, target.name, spec, env)
    return JobExecutor(job_target, credentials), job_target.root_uri


EXECUTORS: dict[str, ExecutorKind] = {
    "local": ExecutorKind(local),
    "kfp": ExecutorKind(kfp, unreachable=(KfpError,)),
    "job": ExecutorKind(job, unreachable=(JobError,)),
}
# Any executor's "try again later": caught around every executor call.
UNREACHABLE: tuple[type[Exception], ...] = tuple(e for kind in EXECUTORS.values() for e in kind.unreachable)


def refusal_reason(error: Exception) -> str:
    """The condition reason of an UNREACHABLE error: the kfp executor's says which refusal it was
    (ExecutorUnreachable, ExecutorUnauthorized, PipelineRejected, RunRejected)."""
    return str(getattr(error, "reason", "ExecutorUnreachable"))


def executor_for(target: Target) -> tuple[Executor, str]:
    """(executor, pipeline root) for the type the spec names. Raises SourceError for what the spec names
    and cannot be had (a missing token Secret, conflicting credentials)."""
    return EXECUTORS[target.spec.executor.type].build(target)

"""What a TrainingPipeline names in its namespace: the Secrets and ConfigMaps it reads, and the credentials
they give (the KFP token, each storage location's keys, a local run's environment). Every failure is a
SourceError naming the spec field; no value of a Secret reaches a message."""

from __future__ import annotations

import base64
from typing import Any

from slipway.api.common import StorageLocation
from slipway.api.training_pipeline import TrainingPipelineSpec
from slipway.kube import DataReader, data_reader
from slipway.training.source import SourceError

SecretReader = DataReader


def secret_reader(namespace: str) -> SecretReader:
    return data_reader("Secret", namespace)


def config_map_reader(namespace: str) -> DataReader:
    return data_reader("ConfigMap", namespace)


def kfp_token(namespace: str, spec: TrainingPipelineSpec, secrets: SecretReader) -> str | None:
    """The bearer token from the Secret the spec names; None means the projected ServiceAccount token for
    KFP (audience pipelines.kubeflow.org), which the kfp executor reads itself when it is mounted."""
    assert spec.executor.kfp is not None
    ref = spec.executor.kfp.token_secret_ref
    if ref is None:
        return None
    data = secrets(ref.name)
    if data is None:
        raise SourceError(
            "spec.executor.kfp.tokenSecretRef",
            "SecretNotFound",
            f"Secret {ref.name} not found in {namespace}",
        )
    if ref.key not in data:
        raise SourceError(
            "spec.executor.kfp.tokenSecretRef.key",
            "SecretKeyMissing",
            f"Secret {ref.name} has no key {ref.key!r}",
        )
    return base64.b64decode(data[ref.key]).decode().strip()


def own_credentials(location: StorageLocation, field: str, secrets: SecretReader) -> Any:
    """What one storage location names itself: its Secret's keys and its endpoint (None when neither)."""
    if location.secret_ref is None and location.endpoint is None:
        return None
    from slipway.storage.credentials import StorageCredentials

    own = StorageCredentials(aws_endpoint_url=location.endpoint)
    if location.secret_ref is not None:
        data = secrets(location.secret_ref.name)
        if data is None:
            raise SourceError(
                f"{field}.secretRef", "SecretNotFound", f"Secret {location.secret_ref.name} not found"
            )
        try:
            own = StorageCredentials.from_secret_data(data).merged_over(own)
        except ValueError as error:
            raise SourceError(f"{field}.secretRef", "InvalidSecret", str(error)) from error
    return own


def storage_credentials(location: StorageLocation, field: str, secrets: SecretReader) -> Any:
    """Credentials for one storage location: its Secret (if named) and endpoint, over the environment's.
    None when neither is set (the store's default chain: workload identity, env)."""
    own = own_credentials(location, field, secrets)
    if own is None:
        return None
    from slipway.storage.credentials import StorageCredentials

    return own.merged_over(StorageCredentials.from_env())


def run_environment(spec: TrainingPipelineSpec, secrets: SecretReader) -> dict[str, str]:
    """The storage credentials a local run's steps need, as environment variables for its process. The
    steps open every URI with one environment, so two locations may not name different values for a key."""
    environment: dict[str, str] = {}
    named_by: dict[str, str] = {}
    for path, location in (
        ("spec.data", spec.data),
        ("spec.artifactRoot", spec.artifact_root),
        ("spec.modelStore", spec.model_store),
    ):
        own = own_credentials(location, path, secrets)
        for key, value in (own.to_env() if own is not None else {}).items():
            if environment.setdefault(key, value) != value:
                raise SourceError(
                    f"{path}.secretRef",
                    "ConflictingCredentials",
                    f"{path} and {named_by[key]} give different {key}; the local executor runs every step "
                    "with one set of credentials (use one Secret, or the kfp executor)",
                )
            named_by.setdefault(key, path)
    return environment

"""Storage credentials for the steps of a KFP run, through KFP's Kubernetes platform config.

A TrainingPipeline names its storage Secrets (spec.data, spec.artifactRoot, spec.modelStore); on a KFP
cluster the step pods need those keys as environment variables, the names `slipway.storage.credentials`
reads. The operator writes the same platform spec as kfp-kubernetes' `use_secret_as_env` (the IR's second
YAML document, `platforms.kubernetes.deploymentSpec.executors.<executor>.secretAsEnv`) for every executor;
KFP's driver then adds `valueFrom.secretKeyRef` env entries to each step's pod. Only Secret and key names
are written, never a value."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import yaml

from slipway.api.training_pipeline import TrainingPipelineSpec
from slipway.storage.credentials import ENV_NAMES
from slipway.training.source import SourceError


@dataclass(frozen=True)
class SecretEnv:
    """Keys of one Secret to expose as environment variables of the same names."""

    secret: str
    keys: tuple[str, ...]


def storage_secrets(
    spec: TrainingPipelineSpec, secrets: Callable[[str], Mapping[str, str] | None]
) -> tuple[SecretEnv, ...]:
    """The storage Secrets of a pipeline and their credential keys (`secrets(name)` reads a Secret's data,
    None when it does not exist). Two Secrets giving one variable conflict: a step has one environment."""
    found: list[SecretEnv] = []
    owner: dict[str, str] = {}
    for field, location in (
        ("spec.data", spec.data),
        ("spec.artifactRoot", spec.artifact_root),
        ("spec.modelStore", spec.model_store),
    ):
        if location.secret_ref is None:
            continue
        name = location.secret_ref.name
        if any(s.secret == name for s in found):
            continue
        data = secrets(name)
        if data is None:
            raise SourceError(f"{field}.secretRef", "SecretNotFound", f"Secret {name} not found")
        usable = tuple(sorted(k for k in data if k in ENV_NAMES))
        for key in usable:
            if owner.setdefault(key, name) != name:
                raise SourceError(
                    f"{field}.secretRef",
                    "ConflictingCredentials",
                    f"Secrets {owner[key]} and {name} both give {key}; a KFP step has one environment",
                )
        if usable:
            found.append(SecretEnv(name, usable))
    return tuple(found)


def with_secrets_as_env(ir_text: str, secrets: Sequence[SecretEnv]) -> str:
    """The IR with every executor given these Secrets' keys as environment variables, merged into any
    platform spec the IR already has (the user's own secretAsEnv entries are kept)."""
    if not secrets:
        return ir_text
    docs = [d for d in yaml.safe_load_all(ir_text) if d is not None]
    pipeline_spec = docs[0]
    platform: dict[str, object] = docs[1] if len(docs) > 1 and isinstance(docs[1], dict) else {}
    executors = sorted((pipeline_spec.get("deploymentSpec") or {}).get("executors") or {})
    kubernetes = _child(_child(platform, "platforms"), "kubernetes")
    configs = _child(_child(kubernetes, "deploymentSpec"), "executors")
    for executor in executors:
        config = _child(configs, executor)
        entries = config.setdefault("secretAsEnv", [])
        assert isinstance(entries, list)
        named = {entry.get("secretName") for entry in entries if isinstance(entry, dict)}
        for secret in secrets:
            if secret.secret in named:
                continue
            entries.append(
                {
                    "secretName": secret.secret,
                    "keyToEnv": [{"secretKey": k, "envVar": k} for k in secret.keys],
                }
            )
    # Keep the compiler's text for the pipeline spec itself; only the platform document is rewritten.
    head = ir_text.removeprefix("---\n").split("\n---\n", 1)[0].rstrip("\n")
    return f"{head}\n---\n{yaml.safe_dump(platform, sort_keys=True)}"


def _child(parent: Mapping[str, object], key: str) -> dict[str, object]:
    assert isinstance(parent, dict)
    value = parent.setdefault(key, {})
    assert isinstance(value, dict)
    return value

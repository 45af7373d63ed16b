"""Storage Secrets as the steps' environment through KFP's Kubernetes platform config (pure functions)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from slipway.api.training_pipeline import TrainingPipelineSpec
from slipway.training.kfp_platform import SecretEnv, storage_secrets, with_secrets_as_env
from slipway.training.source import SourceError

IR = (Path(__file__).resolve().parent / "pipelines" / "tiny" / "pipeline.yaml").read_text()


def spec(**locations: dict[str, object]) -> TrainingPipelineSpec:
    base: dict[str, object] = {
        "pipeline": {"builtin": "tiny"},
        "modelName": "tiny",
        "data": {"uri": "s3://data/x.csv"},
        "artifactRoot": {"uri": "s3://artifacts/root"},
        "modelStore": {"uri": "s3://models"},
    }
    return TrainingPipelineSpec.model_validate({**base, **locations})


SECRETS = {
    "s3": {"AWS_ACCESS_KEY_ID": "a2V5", "AWS_SECRET_ACCESS_KEY": "c2VjcmV0", "note": "eA=="},
    "gcs": {"GOOGLE_APPLICATION_CREDENTIALS": "e30="},
    "other-s3": {"AWS_ACCESS_KEY_ID": "b3RoZXI="},
}


def test_each_storage_secret_is_listed_once_with_its_credential_keys_only() -> None:
    found = storage_secrets(
        spec(
            data={"uri": "s3://data/x.csv", "secretRef": {"name": "s3"}},
            artifactRoot={"uri": "s3://artifacts/root", "secretRef": {"name": "s3"}},
            modelStore={"uri": "gs://models", "secretRef": {"name": "gcs"}},
        ),
        SECRETS.get,
    )
    assert found == (
        SecretEnv("s3", ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")),
        SecretEnv("gcs", ("GOOGLE_APPLICATION_CREDENTIALS",)),
    )
    assert storage_secrets(spec(), SECRETS.get) == ()


def test_two_secrets_giving_one_variable_and_a_missing_secret_name_the_field() -> None:
    with pytest.raises(SourceError) as conflict:
        storage_secrets(
            spec(
                data={"uri": "s3://data/x.csv", "secretRef": {"name": "s3"}},
                modelStore={"uri": "s3://models", "secretRef": {"name": "other-s3"}},
            ),
            SECRETS.get,
        )
    assert conflict.value.reason == "ConflictingCredentials"
    assert str(conflict.value).startswith("spec.modelStore.secretRef: ")
    with pytest.raises(SourceError) as missing:
        storage_secrets(spec(data={"uri": "s3://data/x.csv", "secretRef": {"name": "nope"}}), SECRETS.get)
    assert (missing.value.reason, missing.value.field) == ("SecretNotFound", "spec.data.secretRef")


def test_every_executor_gets_the_secrets_as_env_beside_the_users_own_platform_config() -> None:
    user_platform = {
        "platforms": {
            "kubernetes": {
                "deploymentSpec": {
                    "executors": {
                        "exec-train-and-push": {
                            "secretAsEnv": [
                                {"secretName": "mine", "keyToEnv": [{"secretKey": "k", "envVar": "K"}]}
                            ]
                        }
                    }
                }
            }
        }
    }
    source = IR.rstrip("\n") + "\n---\n" + yaml.safe_dump(user_platform)
    written = with_secrets_as_env(source, (SecretEnv("s3", ("AWS_ACCESS_KEY_ID",)),))
    pipeline, platform = yaml.safe_load_all(written)
    assert pipeline == next(yaml.safe_load_all(IR)), "the pipeline spec itself is untouched"
    assert written.startswith(IR.rstrip("\n"))
    entries = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train-and-push"]
    assert entries["secretAsEnv"] == [
        {"secretName": "mine", "keyToEnv": [{"secretKey": "k", "envVar": "K"}]},
        {"secretName": "s3", "keyToEnv": [{"secretKey": "AWS_ACCESS_KEY_ID", "envVar": "AWS_ACCESS_KEY_ID"}]},
    ]
    assert with_secrets_as_env(written, (SecretEnv("s3", ("AWS_ACCESS_KEY_ID",)),)) == written, "idempotent"
    assert with_secrets_as_env(IR, ()) == IR

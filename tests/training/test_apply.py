"""What registration makes of the API server's answers (the creates are stubbed at kube's boundary)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.rest import ApiException

from slipway import kube
from slipway.training import apply


def body(run: str = "run-1") -> dict[str, Any]:
    return {
        "apiVersion": "slipway.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": "tiny-v1", "namespace": "ml"},
        "spec": {"lineage": {"runId": run}},
    }


def refusal(status: int, message: str) -> ApiException:
    error = ApiException(status=status, reason="Unprocessable Entity")
    error.body = json.dumps({"kind": "Status", "message": message})
    return error


def test_admission_refusing_the_manifest_ends_registration_with_the_servers_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(_: dict[str, Any]) -> None:
        raise refusal(422, 'ModelVersion.slipway.dev "tiny-v1" is invalid: spec.metrics.auc: Invalid value')

    monkeypatch.setattr(kube, "create_if_absent", refuse)
    reason, message = apply.register(body()) or ("", "")
    assert reason == "RegistrationRefused"
    assert "spec.metrics.auc" in message and "tiny-v1" in message


def test_a_transient_refusal_is_raised_for_the_guard_to_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable(_: dict[str, Any]) -> None:
        raise refusal(503, "etcd is down")

    monkeypatch.setattr(kube, "create_if_absent", unavailable)
    with pytest.raises(ApiException):
        apply.register(body())


def test_an_existing_version_of_this_run_is_registered_and_of_another_run_is_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kube, "create_if_absent", lambda _: None)
    monkeypatch.setattr(kube, "get", lambda *_: body("run-1"))
    assert apply.register(body("run-1")) is None
    reason, message = apply.register(body("run-2")) or ("", "")
    assert reason == "VersionTaken" and "records run run-1" in message

"""Outcome Events: a run's end, decided again the same way from what is read back, is posted under a name
derived from the outcome, so a repeat is refused as already there; other outcomes wait in
status.pendingEvents."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.rest import ApiException

from slipway import announce, kube

PIPELINE = {
    "apiVersion": "slipway.dev/v1alpha1",
    "kind": "TrainingPipeline",
    "metadata": {"namespace": "ml", "name": "penguins", "uid": "6c1f"},
}


@pytest.fixture
def api_server(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """Events by name, as an API server keeps them: a second create of a name is refused (409)."""
    stored: dict[str, dict[str, Any]] = {}

    def create(body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        if name in stored:
            raise ApiException(status=409, reason="AlreadyExists")
        stored[name] = body
        return body

    monkeypatch.setattr(kube, "create", create)
    return stored


def test_a_run_end_decided_again_names_the_same_event(api_server: dict[str, dict[str, Any]]) -> None:
    ended = [("Normal", "RunSucceeded", "run penguins-manual-1 succeeded")]

    assert announce.post_run_ends(PIPELINE, ended)
    assert announce.post_run_ends(PIPELINE, ended)  # after a crash, or a status write refused

    assert [e["reason"] for e in api_server.values()] == ["RunSucceeded"]


def test_another_run_or_another_object_gets_its_own_event(api_server: dict[str, dict[str, Any]]) -> None:
    other = {**PIPELINE, "metadata": {**PIPELINE["metadata"], "uid": "90ab"}}  # deleted and made again

    announce.post_run_ends(PIPELINE, [("Normal", "RunSucceeded", "run penguins-manual-1 succeeded")])
    announce.post_run_ends(PIPELINE, [("Normal", "RunSucceeded", "run penguins-manual-2 succeeded")])
    announce.post_run_ends(other, [("Normal", "RunSucceeded", "run penguins-manual-1 succeeded")])

    assert len(api_server) == 3
    assert all(name.startswith("penguins.") for name in api_server)


def test_run_ends_named_first_do_not_wait_in_status(api_server: dict[str, dict[str, Any]]) -> None:
    events = [
        ("Normal", "RunSucceeded", "run penguins-manual-1 succeeded"),
        ("Warning", "DriftDetected", "batch b-7 drifted"),
        ("Normal", "RunStarted", "run penguins-manual-2 started"),
    ]

    pending = announce.with_pending([], events, posted=announce.RUN_ENDS)
    posted = announce.post_run_ends(PIPELINE, [("Normal", "RunStarted", "run penguins-manual-2 started")])

    assert [p.reason for p in pending] == ["DriftDetected"]
    assert not posted and api_server == {}

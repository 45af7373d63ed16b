"""The registry judges a ModelVersion from the body its watch event brought, with no read of its own, and
writes the verdict only onto that revision: a body someone wrote since is judged afresh from a read, so a
stale event never clobbers what another writer (the serving side's `servedBy`) put there."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from fixtures.cluster import recorded_requests, status_of
from slipway import GROUP, VERSION, handlers, kube
from slipway.registry import controller as registry


@pytest.fixture
def requests(api_client: client.ApiClient, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return recorded_requests(api_client, monkeypatch)


def created(api_client: client.ApiClient, namespace: str) -> dict[str, Any]:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": "penguins-v1"},
        "spec": {"modelName": "penguins", "version": 1, "uri": "s3://models/penguins/1"},
    }
    custom = client.CustomObjectsApi(api_client)
    made: dict[str, Any] = custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "modelversions", body
    )
    return made


def written_since(api_client: client.ApiClient, namespace: str) -> dict[str, Any]:
    """The version as created, once the serving side has written `servedBy` into it since."""
    stale = created(api_client, namespace)
    custom = client.CustomObjectsApi(api_client)
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "modelversions", "penguins-v1", {"status": {"servedBy": ["web"]}}
    )
    return stale


def version_status(api_client: client.ApiClient, namespace: str) -> dict[str, Any]:
    return status_of(api_client, namespace, "modelversions", "penguins-v1")


def test_a_fresh_event_body_is_judged_without_a_read(
    api_client: client.ApiClient, namespace: str, requests: list[str]
) -> None:
    seen = created(api_client, namespace)
    decided: list[dict[str, Any]] = []

    registry.reconcile(namespace, "penguins-v1", [], {}, decided.append, seen=seen)

    assert [r for r in requests if r.startswith("GET")] == []
    assert requests[0] == "PATCH status"
    assert version_status(api_client, namespace)["phase"] == "Validated"
    assert decided and decided[0]["status"]["phase"] == "Validated"


def test_a_stale_event_body_is_judged_afresh_and_keeps_what_others_wrote(
    api_client: client.ApiClient, namespace: str, requests: list[str]
) -> None:
    stale = written_since(api_client, namespace)

    registry.reconcile(namespace, "penguins-v1", [], {}, seen=stale)

    status = version_status(api_client, namespace)
    assert status["phase"] == "Validated"
    assert status["servedBy"] == ["web"], "the verdict from the stale body clobbered servedBy"
    assert requests[:3] == ["PATCH status", "GET penguins-v1", "PATCH status"]  # refused, read, written


def verdict_events(api_client: client.ApiClient, namespace: str) -> list[str]:
    events = client.CoreV1Api(api_client).list_namespaced_event(namespace).items
    return [e.message for e in events if e.reason in ("Validated", "Rejected")]


def test_a_verdict_no_rollout_waits_on_is_posted_first_and_needs_no_clear(
    api_client: client.ApiClient, namespace: str, requests: list[str]
) -> None:
    stale = written_since(api_client, namespace)

    registry.reconcile(namespace, "penguins-v1", [], {}, seen=stale, awaited=False)

    # the Event before each verdict write; the second post, after the refused write, is refused as there
    assert requests == ["POST events", "PATCH status", "GET penguins-v1", "POST events", "PATCH status"]
    assert verdict_events(api_client, namespace) == ["v1: 0 gate(s) passed"]
    assert version_status(api_client, namespace).get("pendingEvents") in (None, [])


def test_a_verdict_judged_again_after_a_crash_posts_its_event_once(
    api_client: client.ApiClient, namespace: str, requests: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    made = created(api_client, namespace)

    def crashed(body: dict[str, Any], status: dict[str, Any]) -> None:
        raise RuntimeError("the operator died before writing the verdict")

    with monkeypatch.context() as patched:
        patched.setattr(kube, "write_status_if_unchanged", crashed)
        with pytest.raises(RuntimeError):
            registry.reconcile(namespace, "penguins-v1", [], {}, seen=made, awaited=False)
    assert version_status(api_client, namespace) == {}

    registry.reconcile(namespace, "penguins-v1", [], {}, awaited=False)  # the restarted operator, again

    assert version_status(api_client, namespace)["phase"] == "Validated"
    assert verdict_events(api_client, namespace) == ["v1: 0 gate(s) passed"]


@pytest.mark.parametrize("endpoint", [True, False], ids=["a-rollout-waits", "nothing-waits"])
def test_the_late_event_of_the_verdicts_own_write_posts_its_event_no_second_time(
    api_client: client.ApiClient,
    namespace: str,
    requests: list[str],
    monkeypatch: pytest.MonkeyPatch,
    endpoint: bool,
) -> None:
    made = created(api_client, namespace)
    memo = handlers.Operator()
    memo.views.observe_version("ADDED", made)
    if endpoint:  # an endpoint of the model may roll the version out: its Event follows the verdict
        meta = {"namespace": namespace, "name": "web", "uid": "web-uid", "resourceVersion": "1"}
        memo.views.observe_endpoint("ADDED", {"metadata": meta, "spec": {"modelName": "penguins"}})
    verdicts: list[dict[str, Any]] = []
    write = kube.write_status_if_unchanged

    def remembered(body: dict[str, Any], status: dict[str, Any]) -> dict[str, Any] | None:
        verdicts.append(write(body, status) or {})
        return verdicts[-1] or None

    monkeypatch.setattr(kube, "write_status_if_unchanged", remembered)
    handlers.model_version_changed("ADDED", made, namespace, "penguins-v1", made["spec"], memo)
    assert requests.count("POST events") == 1
    late = verdicts[0]  # the verdict as written, as its watch event will bring it
    assert bool(late["status"].get("pendingEvents")) == endpoint, "queued only when a rollout waits"
    assert requests.count("PATCH status") == (2 if endpoint else 1), "the clear only for a queued Event"
    requests.clear()

    handlers.model_version_changed("MODIFIED", late, namespace, "penguins-v1", late["spec"], memo)
    # as if that event had passed the handler's own check while the first reconcile still held the lock
    handlers.judge_version(memo, namespace, "penguins-v1", "penguins", seen=late)

    assert requests == []
    assert version_status(api_client, namespace).get("pendingEvents") in (None, [])
    assert verdict_events(api_client, namespace) == ["v1: 0 gate(s) passed"]

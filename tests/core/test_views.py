"""The operator's in-memory views: what watch events and the operator's own writes leave in them."""

from __future__ import annotations

from typing import Any

from slipway.cache import Newest, View, resource_version
from slipway.serving.builders import ENDPOINT_LABEL, VERSION_LABEL
from slipway.serving.children import Children
from slipway.views import EndpointRef, Views


def version_body(
    uid: str, version: int, rv: int, phase: str | None = None, model: str = "m"
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"{model}-v{version}",
            "namespace": "ns",
            "uid": uid,
            "resourceVersion": str(rv),
        },
        "spec": {"modelName": model, "version": version, "uri": f"file:///m/{version}"},
        "status": {"phase": phase} if phase else {},
    }


def deployment(uid: str, rv: int, ready: int, endpoint: str = "se", version: int = 1) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"{endpoint}-{version}",
            "namespace": "ns",
            "uid": uid,
            "resourceVersion": str(rv),
            "labels": {ENDPOINT_LABEL: endpoint, VERSION_LABEL: str(version)},
            "generation": 1,
        },
        "spec": {"replicas": 2},
        "status": {"readyReplicas": ready, "observedGeneration": 1},
    }


def test_view_groups_by_key_and_moves_an_object_whose_key_changed() -> None:
    view: View[str] = View()
    assert view.put(("ns", "a"), "u1", "one") is None
    view.put(("ns", "a"), "u2", "two")
    assert sorted(view.get(("ns", "a"))) == ["one", "two"]
    assert view.put(("ns", "b"), "u1", "one again") == "one"
    assert view.get(("ns", "a")) == ["two"] and view.get(("ns", "b")) == ["one again"]
    assert len(view) == 2
    assert view.delete("u2") == "two" and view.get(("ns", "a")) == []
    assert view.delete("u2") is None
    assert view.items() == [(("ns", "b"), "one again")]


def test_view_keeps_the_newer_resource_version_when_a_watch_event_overtakes_a_write() -> None:
    view: View[EndpointRef] = View()
    newer = EndpointRef("se", 2, "Ready", resource_version=10)
    view.put_newer(("ns", "m"), "u", newer, 10)
    older = EndpointRef("se", 1, "Progressing", resource_version=9)
    assert view.put_newer(("ns", "m"), "u", older, 9) is newer
    assert view.get(("ns", "m")) == [newer]


def test_newest_body_wins_by_resource_version() -> None:
    bodies = Newest()
    bodies.put(("ns", "se"), {"metadata": {"resourceVersion": "7"}, "v": "new"})
    bodies.put(("ns", "se"), {"metadata": {"resourceVersion": "6"}, "v": "old"})
    assert (bodies.get(("ns", "se")) or {})["v"] == "new"
    bodies.delete(("ns", "se"))
    assert bodies.get(("ns", "se")) is None
    assert resource_version({}) == 0


def test_newest_body_is_kept_without_managed_fields() -> None:
    bodies = Newest()
    body = {"metadata": {"resourceVersion": "7", "name": "se", "managedFields": [{"manager": "m"}]}, "v": 1}
    bodies.put(("ns", "se"), body)
    assert bodies.get(("ns", "se")) == {"metadata": {"resourceVersion": "7", "name": "se"}, "v": 1}
    assert body["metadata"]["managedFields"] == [{"manager": "m"}]  # what the caller holds is unchanged


def test_superseded_event_is_told_apart() -> None:
    views = Views()
    views.observe_version("MODIFIED", version_body("u1", 1, 5, "Validated"))
    assert views.superseded(version_body("u1", 1, 4)) is True
    assert views.superseded(version_body("u1", 1, 5)) is False
    assert views.superseded(version_body("u2", 1, 1)) is False


def test_views_say_when_serving_must_look_again() -> None:
    views = Views()
    assert views.observe_version("ADDED", version_body("u1", 1, 1)) is True
    # a new resourceVersion with nothing serving cares about: no reconcile of endpoints
    assert views.observe_version("MODIFIED", version_body("u1", 1, 2)) is False
    assert views.observe_version("MODIFIED", version_body("u1", 1, 3, "Validated")) is True
    assert [info.servable for info in views.versions.get(("ns", "m"))] == [True]
    assert views.observe_version("DELETED", version_body("u1", 1, 4)) is True
    assert views.versions.get(("ns", "m")) == []


def test_views_track_endpoints_and_their_stable_versions() -> None:
    views = Views()
    body = {
        "metadata": {"name": "se", "namespace": "ns", "uid": "e1", "resourceVersion": "5"},
        "spec": {"modelName": "m"},
        "status": {"stableVersion": 3, "phase": "Ready"},
    }
    views.observe_endpoint("ADDED", body)
    views.observe_version("ADDED", version_body("u3", 3, 1, "Validated"))
    assert views.stable_versions("ns", "m") == [3]
    assert views.endpoint_bodies.get(("ns", "se")) is body
    assert views.endpoints_by_phase() == [(("ns", "Ready"), 1.0)]
    assert views.versions_by_phase() == [(("ns", "Validated"), 1.0)]
    views.observe_endpoint("DELETED", body)
    assert views.stable_versions("ns", "m") == [] and views.endpoint_bodies.get(("ns", "se")) is None


def test_children_ignore_changes_that_give_a_reconcile_nothing_to_do() -> None:
    children = Children()
    assert children.observe("Deployment", "ADDED", deployment("d1", 1, ready=0)) is True
    assert children.observe("Deployment", "MODIFIED", deployment("d1", 2, ready=0)) is False
    assert children.observe("Deployment", "MODIFIED", deployment("d1", 3, ready=2)) is True
    [summary] = children.of("ns", "se")
    assert (summary.version, summary.replicas, summary.ready) == (1, 2, 2)
    assert children.observe("Deployment", "DELETED", deployment("d1", 4, ready=2)) is True
    assert children.of("ns", "se") == []

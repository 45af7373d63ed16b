"""kube.list_items reads a kind a page at a time (start-up never holds a whole kind's list at once)."""

from __future__ import annotations

import pytest
from kubernetes import client

from slipway import kube


def test_list_items_follows_every_page_and_keeps_the_label_selector(
    api_client: client.ApiClient, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    core = client.CoreV1Api(api_client)
    for index in range(5):
        labels = {"slipway.dev/endpoint": "e"} if index != 2 else {}
        core.create_namespaced_config_map(namespace, {"metadata": {"name": f"c{index}", "labels": labels}})
    monkeypatch.setattr(kube, "_api_client", api_client)
    monkeypatch.setattr(kube, "LIST_PAGE", 2)
    pages: list[list[tuple[str, str]]] = []
    real_request = kube.request

    def counting(method: str, path: str, body: object = None, query: list[tuple[str, object]] | None = None):  # type: ignore[no-untyped-def]
        pages.append([(k, str(v)) for k, v in query or [] if k in ("limit", "continue")])
        return real_request(method, path, body, query)

    monkeypatch.setattr(kube, "request", counting)
    found = list(kube.list_items("ConfigMap", [namespace], label_selector="slipway.dev/endpoint"))
    assert sorted(item["metadata"]["name"] for item in found) == ["c0", "c1", "c3", "c4"]
    assert all(item["kind"] == "ConfigMap" and item["apiVersion"] == "v1" for item in found)
    # 4 labelled objects in pages of 2 (the server may send a last, empty page: it filters after paging).
    assert len(pages) >= 2, f"one request for 4 objects in pages of 2: {pages}"
    assert pages[0] == [("limit", "2")]
    assert all(page[1][0] == "continue" for page in pages[1:])

"""Installs CustomResourceDefinitions and waits until the API server serves them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException


def load_crds(directory: Path) -> list[dict[str, Any]]:
    docs = [yaml.safe_load(path.read_text()) for path in sorted(directory.glob("*.yaml"))]
    return [doc for doc in docs if doc.get("kind") == "CustomResourceDefinition"]


def apply_crds(api: client.ApiClient, crds: list[dict[str, Any]], timeout: float = 60.0) -> None:
    extensions = client.ApiextensionsV1Api(api)
    for crd in crds:
        name = crd["metadata"]["name"]
        try:
            existing = extensions.read_custom_resource_definition(name)
        except ApiException as error:
            if error.status != 404:
                raise
            extensions.create_custom_resource_definition(crd)
        else:
            crd = {
                **crd,
                "metadata": {**crd["metadata"], "resourceVersion": existing.metadata.resource_version},
            }
            extensions.replace_custom_resource_definition(name, crd)
    deadline = time.monotonic() + timeout
    for crd in crds:
        name = crd["metadata"]["name"]
        while True:
            status = extensions.read_custom_resource_definition(name).status
            conditions = {c.type: c.status for c in (status.conditions or [])} if status else {}
            if conditions.get("Established") == "True" and conditions.get("NamesAccepted") == "True":
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not established: {conditions}")
            time.sleep(0.1)

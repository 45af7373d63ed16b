"""The CRDs in crds/ are generated from the pydantic models; this fails when the two drift apart."""

from __future__ import annotations

from pathlib import Path

import yaml

from slipway.api.crd import KINDS, crd, rendered_files

REPO = Path(__file__).resolve().parents[2]


def test_checked_in_crds_match_the_models() -> None:
    expected = rendered_files()
    on_disk = {path.name: path.read_text() for path in (REPO / "crds").glob("*.yaml")}
    assert on_disk.keys() == expected.keys()
    stale = [name for name, text in expected.items() if on_disk[name] != text]
    assert not stale, f"run `make crds`: {stale} differ from the models"


def test_schemas_are_structural() -> None:
    """No $ref, anyOf, allOf or untyped nodes: the API server rejects non-structural schemas."""

    def walk(node: dict, path: str) -> None:
        for banned in ("$ref", "anyOf", "allOf", "oneOf", "title", "$defs"):
            assert banned not in node, f"{path} carries {banned}"
        assert "type" in node, f"{path} has no type"
        for name, child in node.get("properties", {}).items():
            walk(child, f"{path}.{name}")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}.*")
        if "items" in node:
            walk(node["items"], f"{path}[]")

    for kind in KINDS:
        walk(crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"], kind.kind)


def test_names_short_names_and_category() -> None:
    names = {kind.kind: crd(kind)["spec"]["names"] for kind in KINDS}
    assert {k: n["shortNames"] for k, n in names.items()} == {
        "TrainingPipeline": ["tp"],
        "ModelVersion": ["mv"],
        "ServingEndpoint": ["se"],
    }
    assert all(n["categories"] == ["slipway"] for n in names.values())


def test_rendered_yaml_round_trips() -> None:
    for name, text in rendered_files().items():
        doc = yaml.safe_load(text)
        if name == "kustomization.yaml":
            assert doc["resources"] == sorted(n for n in rendered_files() if n != name)
            continue
        assert doc["spec"]["versions"][0]["subresources"] == {"status": {}}

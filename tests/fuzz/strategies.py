"""Hypothesis strategies for the three kinds, derived from the CRDs' OpenAPI schemas (generated from the
pydantic models): whole specs drawn from the schema, and near-valid ones (a sample with one field replaced by
a value drawn from that field's schema, or by one just outside it)."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from slipway.api.crd import KINDS, openapi_schema

SAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "samples"
PLURALS = {kind.kind: kind.plural for kind in KINDS}
SCHEMAS = {kind.kind: openapi_schema(kind.model, kind)["properties"]["spec"] for kind in KINDS}

# Values where admission rules live in CEL rather than the schema's own keywords: drawn from here as well.
TRICKY_STRINGS = (
    "s3:///prefix",
    "s3://bucket/a/../b",
    "s3://Bucket/x",
    "s3://b/x",
    "s3://a..b/x",
    "s3://192.168.1.1/x",
    "s3://bucket/a b",
    "s3://bucket/caf\u00e9",
    "s3://bucket",
    "s3://bucket//x",
    "s3://bucket/x\t",
    "gs://goog-bucket/x",
    "gs://my_bucket/x",
    "az://ab/x",
    "az://container@ACCOUNT/x",
    "az://container@account/x",
    "az://con--tainer/x",
    "file://../..",
    "file:///../etc",
    "file:///a/./b",
    "file:///%2e%2e/x",
    "file://host/x",
    "file:///tmp/slipway-fuzz/none",
    "https://example.com/p.yaml",
    "0 0 30 2 *",
    "0 0 31 4 *",
    "0 0 30 2 1",
    "*/5 * * * *",
    "0 0 1 1 * 5",
    "@daily",
    "@every 1h",
    "61 * * * *",
    "Europe/Paris",
    "Mars/Olympus",
    "NaN",
    "Infinity",
    "-0",
    "1e99",
    "1" * 40,
    "0.5",
    "1.5",
    "100m",
    "1Gi",
    "-1",
    "1.2.3",
    "99999999h",
    "168h",
    "169h",
    "0s",
    "",
    " ",
    "a" * 64,
    "\x00",
)
EDGE_INTEGERS = (-1, 0, 1, 2, 63, 64, 100, 101, 1000, 1001, 2_147_483_647, 2_147_483_648, 10**12)


def _string(node: dict[str, Any]) -> st.SearchStrategy[str]:
    if "enum" in node:
        return st.sampled_from(node["enum"])
    limit = min(node.get("maxLength", 64), 80)
    drawn: st.SearchStrategy[str]
    if "pattern" in node:
        drawn = st.from_regex(node["pattern"], fullmatch=True).map(lambda s: s[:limit])
    else:
        drawn = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=0, max_size=limit)
    return st.one_of(drawn, drawn, st.sampled_from(TRICKY_STRINGS))


_BUILT: dict[tuple[int, int], st.SearchStrategy[Any]] = {}


def from_schema(node: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of a structural schema node, mostly within it (CEL rules are left to chance); built once per
    node (the nodes live as long as SCHEMAS)."""
    key = (id(node), min(depth, 7))
    if key not in _BUILT:
        _BUILT[key] = _from_schema(node, depth)
    return _BUILT[key]


def _from_schema(node: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
    kind = node.get("type")
    if kind == "string":
        return _string(node)
    if kind == "integer":
        low, high = node.get("minimum", -(10**6)), node.get("maximum", 10**6)
        return st.one_of(st.integers(low, high), st.integers(low, high), st.sampled_from(EDGE_INTEGERS))
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        high = min(node.get("maxItems", 3), 3)
        return st.lists(
            from_schema(node["items"], depth + 1), min_size=node.get("minItems", 0), max_size=high
        )
    if kind == "object" and "properties" in node:
        if depth > 6:
            return st.just({})
        required = set(node.get("required", ()))
        fields = {
            name: from_schema(child, depth + 1)
            if name in required
            else st.none() | from_schema(child, depth + 1)
            for name, child in node["properties"].items()
        }
        return st.fixed_dictionaries(fields).map(lambda d: {k: v for k, v in d.items() if v is not None})
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        keys = st.one_of(
            st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True), st.sampled_from(TRICKY_STRINGS)
        )
        return st.dictionaries(keys, from_schema(node["additionalProperties"], depth + 1), max_size=3)
    return st.just({})


def leaf_paths(
    node: dict[str, Any], path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every field of a schema with its path (list items and map values are not descended into)."""
    found = [(path, node)] if path else []
    for name, child in node.get("properties", {}).items():
        found += leaf_paths(child, (*path, name))
    return found


@functools.cache
def _samples() -> list[dict[str, Any]]:
    return [
        yaml.safe_load(p.read_text())
        for p in sorted(SAMPLES.glob("*.yaml"))
        if p.name != "kustomization.yaml"
    ]


def sample(kind: str) -> list[dict[str, Any]]:
    return [copy.deepcopy(d) for d in _samples() if d["kind"] == kind]


PATHS = {kind: leaf_paths(schema) for kind, schema in SCHEMAS.items()}


def _set(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    if value is None:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return doc


@st.composite
def near_valid_spec(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """A sample's spec with one to three fields replaced by values drawn from their schema (or removed)."""
    spec: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(sample(kind)))["spec"])
    paths = PATHS[kind]
    for _ in range(draw(st.integers(1, 3))):
        path, node = draw(st.sampled_from(paths))
        value = draw(st.one_of(from_schema(node, depth=len(path)), st.none()))
        spec = _set(spec, path, value)
    return spec


UNIQUE = "<unique>"
NAMES = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True),
    st.sampled_from(("1st-endpoint", "a" * 64, "a" * 63, "x-", "has.dot", "v")),
)


@st.composite
def manifest(draw: st.DrawFn) -> dict[str, Any]:
    """One object of any kind: near-valid three times in four, else drawn whole from the schema."""
    kind = draw(st.sampled_from(sorted(SCHEMAS)))
    spec = draw(
        st.one_of(
            near_valid_spec(kind), near_valid_spec(kind), near_valid_spec(kind), from_schema(SCHEMAS[kind])
        )
    )
    # One object in four has a fuzzed name, the rest a fresh one (UNIQUE): they are judged on their spec.
    name = draw(st.one_of(NAMES, st.just(UNIQUE), st.just(UNIQUE), st.just(UNIQUE)))
    return {"apiVersion": "slipway.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}

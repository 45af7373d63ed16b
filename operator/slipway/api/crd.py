"""Generates the CustomResourceDefinitions from the pydantic models (the one source of truth).

`python -m slipway.api.crdgen crds` writes them; a test fails when the checked-in YAML drifts.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import BaseModel

from slipway import GROUP, VERSION, formats
from slipway.api.common import KubeModel
from slipway.api.model_version import ModelVersion
from slipway.api.serving_endpoint import ServingEndpoint
from slipway.api.training_pipeline import TrainingPipeline

READY = '.status.conditions[?(@.type=="Ready")].status'
AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}

# JSON Schema keywords that OpenAPI v3 structural schemas accept and we carry over.
_KEPT_KEYWORDS = (
    "type",
    "format",
    "description",
    "default",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
)


@dataclass(frozen=True)
class Kind:
    model: type[KubeModel]
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    printer_columns: tuple[dict[str, Any], ...]
    # The name becomes a label value and part of derived names; see slipway.formats for the budget.
    name_pattern: str = formats.DNS_LABEL
    name_rule: str = "a DNS-1123 label"
    categories: tuple[str, ...] = ("slipway",)
    extra_status: dict[str, Any] = field(default_factory=dict)

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


KINDS: tuple[Kind, ...] = (
    Kind(
        model=TrainingPipeline,
        kind="TrainingPipeline",
        plural="trainingpipelines",
        singular="trainingpipeline",
        short_names=("tp",),
        printer_columns=(
            {"name": "Model", "type": "string", "jsonPath": ".spec.modelName"},
            {"name": "Executor", "type": "string", "jsonPath": ".spec.executor.type"},
            {"name": "Schedule", "type": "string", "jsonPath": ".spec.schedule.cron"},
            {"name": "Last Run", "type": "string", "jsonPath": ".status.lastRun.phase"},
            {"name": "Pushed", "type": "string", "jsonPath": ".status.lastRun.modelVersion"},
            {"name": "Ready", "type": "string", "jsonPath": READY},
            AGE,
        ),
    ),
    Kind(
        model=ModelVersion,
        kind="ModelVersion",
        plural="modelversions",
        singular="modelversion",
        short_names=("mv",),
        printer_columns=(
            {"name": "Model", "type": "string", "jsonPath": ".spec.modelName"},
            {"name": "Version", "type": "integer", "jsonPath": ".spec.version"},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Metric", "type": "string", "jsonPath": ".status.headline"},
            {"name": "Served By", "type": "string", "jsonPath": ".status.servedBy", "priority": 1},
            AGE,
        ),
    ),
    Kind(
        model=ServingEndpoint,
        kind="ServingEndpoint",
        plural="servingendpoints",
        singular="servingendpoint",
        short_names=("se",),
        printer_columns=(
            {"name": "Ready", "type": "string", "jsonPath": READY},
            {"name": "Stable", "type": "integer", "jsonPath": ".status.stableVersion"},
            {"name": "Canary", "type": "integer", "jsonPath": ".status.canaryVersion"},
            {"name": "Weight", "type": "integer", "jsonPath": ".status.canaryWeight"},
            {"name": "Effective", "type": "integer", "jsonPath": ".status.effectiveCanaryWeight"},
            {"name": "URL", "type": "string", "jsonPath": ".status.url"},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "priority": 1},
            AGE,
        ),
        name_pattern=formats.DNS_1035_LABEL,
        name_rule="a DNS-1035 label (it names the endpoint's Service, so it starts with a letter)",
    ),
)


def _cel_rules_by_title(model: type[BaseModel], seen: dict[str, type[KubeModel]]) -> None:
    """Maps each nested KubeModel's schema title to the class, so its CEL rules can be attached."""
    if not (isinstance(model, type) and issubclass(model, KubeModel)) or model.__name__ in seen:
        return
    seen[model.__name__] = model
    for info in model.model_fields.values():
        for candidate in _model_types(info.annotation):
            _cel_rules_by_title(candidate, seen)


def _model_types(annotation: Any) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found.append(annotation)
    for arg in getattr(annotation, "__args__", ()) or ():
        found.extend(_model_types(arg))
    for meta in getattr(annotation, "__metadata__", ()) or ():
        found.extend(_model_types(meta))
    origin = getattr(annotation, "__origin__", None)
    if origin is not None and origin is not annotation:
        found.extend(_model_types(origin))
    return found


def _structural(
    node: dict[str, Any], defs: dict[str, Any], models: dict[str, type[KubeModel]]
) -> dict[str, Any]:
    """Turns one pydantic JSON Schema node into a structural OpenAPI v3 schema node."""
    node = copy.deepcopy(node)
    if "$ref" in node:
        name = node.pop("$ref").rsplit("/", 1)[-1]
        merged = {**defs[name], **node, "x-model": name}
        return _structural(merged, defs, models)
    if "anyOf" in node:
        branches = [b for b in node.pop("anyOf") if b.get("type") != "null"]
        if len(branches) != 1:
            raise ValueError(f"cannot express a union of {len(branches)} types in a structural schema")
        if node.get("default") is None:
            node.pop("default", None)
        return _structural({**branches[0], **node}, defs, models)
    if "const" in node:
        node["enum"] = [node.pop("const")]

    out: dict[str, Any] = {k: node[k] for k in _KEPT_KEYWORDS if k in node}
    if out.get("default") is None:
        out.pop("default", None)
    if "enum" in node and "type" not in out:
        out["type"] = "string"
    kind = out.get("type")
    if kind == "object" or "properties" in node:
        out["type"] = "object"
        if "properties" in node:
            out["properties"] = {k: _structural(v, defs, models) for k, v in node["properties"].items()}
        if "patternProperties" in node:  # pydantic's form of a map whose keys have a pattern
            ((key_pattern, values),) = node["patternProperties"].items()
            node["additionalProperties"] = values
            node["propertyNames"] = {**node.get("propertyNames", {}), "pattern": key_pattern}
        if isinstance(node.get("additionalProperties"), dict):
            out["additionalProperties"] = _structural(node["additionalProperties"], defs, models)
        if not out.get("required"):
            out.pop("required", None)
    elif kind == "array":
        out["items"] = _structural(node["items"], defs, models)
    if out.get("format") == "date-time" and "default" in out:
        out.pop("default")
    validations = list(node.get("x-kubernetes-validations", ())) + _key_rules(node.get("propertyNames"))
    model = models.get(node.get("x-model", ""))
    if model is not None:
        validations += [
            {"rule": rule, "message": message, **({"fieldPath": path} if path else {})}
            for rule, message, path in model.cel_rules
        ]
    if validations:
        out["x-kubernetes-validations"] = validations
    return out


def _key_rules(names: dict[str, Any] | None) -> list[dict[str, str]]:
    """A map's key limits (JSON Schema's propertyNames, which structural schemas lack) as CEL rules."""
    rules = []
    if names and "maxLength" in names:
        limit = names["maxLength"]
        rules.append(
            {"rule": f"self.all(k, size(k) <= {limit})", "message": f"keys are at most {limit} characters"}
        )
    if names and "pattern" in names:
        rules.append(
            {
                "rule": f"self.all(k, k.matches({formats.cel_string(names['pattern'])}))",
                "message": f"keys must match {names['pattern']}",
            }
        )
    return rules


def _name_rule(kind: Kind) -> dict[str, str]:
    return {
        "rule": f"size(self.metadata.name) <= {formats.NAME_MAX} && "
        f"self.metadata.name.matches({formats.cel_string(kind.name_pattern)})",
        "message": f"metadata.name must be {kind.name_rule} of at most {formats.NAME_MAX} characters: it is "
        "used as a label value and in the names of what Slipway creates",
    }


def openapi_schema(model: type[KubeModel], kind: Kind | None = None) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    models: dict[str, type[KubeModel]] = {}
    _cel_rules_by_title(model, models)
    spec = _structural(raw["properties"]["spec"], defs, models)
    status = _structural(raw["properties"]["status"], defs, models)
    status.pop("default", None)
    _list_map_conditions(status)
    return {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
        **({"x-kubernetes-validations": [_name_rule(kind)]} if kind else {}),
    }


def _list_map_conditions(status: dict[str, Any]) -> None:
    conditions = status.get("properties", {}).get("conditions")
    if conditions is not None:
        conditions["x-kubernetes-list-type"] = "map"
        conditions["x-kubernetes-list-map-keys"] = ["type"]
        conditions["maxItems"] = 16


def crd(kind: Kind) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name, "labels": {"app.kubernetes.io/part-of": "slipway"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": list(kind.categories),
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": list(kind.printer_columns),
                    "schema": {"openAPIV3Schema": openapi_schema(kind.model, kind)},
                }
            ],
        },
    }


def render(kind: Kind) -> str:
    header = "# Generated by `make crds` from slipway.api; do not edit by hand.\n"
    return header + yaml.safe_dump(crd(kind), sort_keys=False, width=120)


def rendered_files() -> dict[str, str]:
    files = {f"{GROUP}_{kind.plural}.yaml": render(kind) for kind in KINDS}
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": sorted(files),
    }
    files["kustomization.yaml"] = "# Generated by `make crds`.\n" + yaml.safe_dump(
        kustomization, sort_keys=False
    )
    return files

"""Where a pipeline comes from (builtin, specUri, ConfigMap), its digest, and the parameters it declares."""

from __future__ import annotations

import functools
import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from slipway import blobs
from slipway.api.training_pipeline import BuiltinPipeline, PipelineSource
from slipway.messages import sanitize
from slipway.refusals import Refused

REPO_PIPELINES = Path(__file__).resolve().parents[3] / "pipelines"


class SourceError(Refused):
    """A pipeline source (or something else the spec names) that cannot be used; `field` is the spec path
    to blame."""


@dataclass(frozen=True)
class PipelineSpec:
    ir_text: str
    name: str
    digest: str
    parameters: dict[str, dict[str, Any]]
    # What spec.pipeline.builtin gives the run besides the standard arguments: the module file, the tuner.
    builtin_arguments: dict[str, Any] = field(default_factory=dict)


def pipelines_dir() -> Path:
    return Path(os.environ.get("SLIPWAY_PIPELINES_DIR") or REPO_PIPELINES)


def builtin_names() -> list[str]:
    root = pipelines_dir()
    return sorted(p.parent.name for p in root.glob("*/pipeline.yaml")) if root.exists() else []


# Parameter types of schemaVersion 2.0.0 IR (older TFX and KFP SDKs) -> parameterType of today's IR.
OLD_PARAMETER_TYPES = {"INT": "NUMBER_INTEGER", "DOUBLE": "NUMBER_DOUBLE", "STRING": "STRING"}
OLD_VALUE_KEYS = {"intValue": int, "doubleValue": float, "stringValue": str}


# libyaml's parser where PyYAML was built with it: the built-in pipeline's IR (135 kB) takes 220 ms in
# the pure-Python one.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.lru_cache(maxsize=32)
def parse_ir(text: str, field: str) -> PipelineSpec:
    """Accepts compiled KFP IR (what `kfp.compiler` writes, with an optional platform-spec document) or a
    PipelineJob JSON as TFX's KubeflowV2DagRunner writes it; `ir_text` is what a KFP server accepts.
    Every reconcile of a pipeline resolves the same text: the answer is kept (a PipelineSpec is read,
    never changed)."""
    try:
        docs = [d for d in yaml.load_all(text, Loader=SAFE_LOADER) if d is not None]
    except yaml.YAMLError as error:
        # The parser's own message quotes the offending line: say where, never what (the file may be
        # anything the operator can read).
        raise SourceError(field, "InvalidPipelineSpec", f"not YAML: {parser_position(error)}") from error
    ir = docs[0] if docs else None
    ir_text = text
    if isinstance(ir, dict) and "pipelineSpec" in ir:
        ir = pipeline_job_ir(ir, field)
        ir_text = yaml.safe_dump(ir, sort_keys=False)
    if not isinstance(ir, dict) or "root" not in ir or "pipelineInfo" not in ir:
        raise SourceError(field, "InvalidPipelineSpec", "not a compiled KFP pipeline (no pipelineInfo/root)")
    parameters = ir.get("root", {}).get("inputDefinitions", {}).get("parameters", {}) or {}
    return PipelineSpec(
        ir_text=ir_text,
        name=str(ir["pipelineInfo"].get("name", "pipeline")),
        digest="sha256:" + hashlib.sha256(text.encode()).hexdigest(),
        parameters=dict(parameters),
    )


def quoted(value: object) -> str:
    """A name taken from a pipeline file, as a message may quote it: short and sanitized."""
    return repr(sanitize(str(value), 64))


def parser_position(error: yaml.YAMLError) -> str:
    """Which parser error, and where: no content of the document."""
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{type(error).__name__}{where}"


def pipeline_job_ir(job: dict[str, Any], field: str) -> dict[str, Any]:
    """The IR inside a PipelineJob: its `runtimeConfig` values (`parameterValues`, or the older `parameters`
    of intValue/doubleValue/stringValue) become the root parameters' defaults, and old-style `type:
    INT|DOUBLE|STRING` becomes `parameterType` (a KFP 2.x server refuses a value for an untyped parameter)."""
    ir = job["pipelineSpec"]
    if not isinstance(ir, dict):
        raise SourceError(field, "InvalidPipelineSpec", "pipelineSpec of the PipelineJob is not an object")
    for component in [ir.get("root") or {}, *(ir.get("components") or {}).values()]:
        for side in ("inputDefinitions", "outputDefinitions"):
            for name, declared in ((component.get(side) or {}).get("parameters") or {}).items():
                old = declared.pop("type", None)
                if old is not None and "parameterType" not in declared:
                    if old not in OLD_PARAMETER_TYPES:
                        raise SourceError(
                            field,
                            "InvalidPipelineSpec",
                            f"parameter {quoted(name)}: unknown type {quoted(old)}",
                        )
                    declared["parameterType"] = OLD_PARAMETER_TYPES[old]
    runtime = job.get("runtimeConfig") or {}
    values: dict[str, Any] = dict(runtime.get("parameterValues") or {})
    for name, value in (runtime.get("parameters") or {}).items():
        kinds = [key for key in OLD_VALUE_KEYS if key in (value or {})]
        if not kinds:
            raise SourceError(
                field,
                "InvalidPipelineSpec",
                f"runtimeConfig.parameters.{quoted(name)}: no intValue/doubleValue/stringValue",
            )
        values.setdefault(name, OLD_VALUE_KEYS[kinds[0]](value[kinds[0]]))
    _constants_as_2_1(ir)
    ir["schemaVersion"] = "2.1.0"  # what the above made of a 2.0.0 spec; KFP 2.x servers accept only 2.1.0
    declared_root = (ir.get("root") or {}).get("inputDefinitions", {}).get("parameters", {}) or {}
    for name, value in values.items():
        if name not in declared_root:
            raise SourceError(
                field,
                "InvalidPipelineSpec",
                f"runtimeConfig gives {quoted(name)}, which the pipeline does not declare",
            )
        declared_root[name]["defaultValue"] = value
        declared_root[name]["isOptional"] = True
    return ir


def _constants_as_2_1(node: Any) -> None:
    """schemaVersion 2.0.0's `constantValue: {intValue: 3}` -> 2.1.0's `constant: 3`, everywhere."""
    if isinstance(node, dict):
        old = node.pop("constantValue", None)
        if isinstance(old, dict) and "constant" not in node:
            kinds = [key for key in OLD_VALUE_KEYS if key in old]
            node["constant"] = OLD_VALUE_KEYS[kinds[0]](old[kinds[0]]) if kinds else None
        for child in node.values():
            _constants_as_2_1(child)
    elif isinstance(node, list):
        for child in node:
            _constants_as_2_1(child)


def _read_uri(uri: str, field: str) -> str:
    try:
        if uri.startswith("https://"):
            with urllib.request.urlopen(uri, timeout=30) as response:
                return str(response.read().decode())
        return blobs.read_bytes(uri).decode()
    except (blobs.ObjectError, urllib.error.URLError, OSError, UnicodeDecodeError) as error:
        raise SourceError(field, "PipelineSpecUnreadable", f"cannot read {uri}: {error}") from error


def resolve(source: PipelineSource, config_maps: Any) -> PipelineSpec:
    """`config_maps(name) -> dict | None` reads a ConfigMap's data in the pipeline's namespace."""
    if source.builtin is not None:
        path = pipelines_dir() / source.builtin.name / "pipeline.yaml"
        if not path.exists():
            known = ", ".join(builtin_names()) or "none installed"
            raise SourceError(
                "spec.pipeline.builtin",
                "UnknownBuiltin",
                f"no built-in pipeline {source.builtin.name!r} (known: {known})",
            )
        pipeline = parse_ir(path.read_text(), "spec.pipeline.builtin")
        if source.builtin.module_file is not None and "module_file" not in pipeline.parameters:
            raise SourceError(
                "spec.pipeline.builtin.moduleFile",
                "ModuleFileUnsupported",
                f"the built-in pipeline {source.builtin.name!r} takes no module file",
            )
        return replace(pipeline, builtin_arguments=builtin_arguments(source.builtin, config_maps))
    if source.spec_uri is not None:
        return parse_ir(_read_uri(source.spec_uri, "spec.pipeline.specUri"), "spec.pipeline.specUri")
    assert source.config_map_ref is not None
    ref = source.config_map_ref
    data = config_maps(ref.name)
    if data is None:
        raise SourceError(
            "spec.pipeline.configMapRef", "ConfigMapNotFound", f"ConfigMap {ref.name} not found"
        )
    if ref.key not in data:
        raise SourceError(
            "spec.pipeline.configMapRef.key",
            "ConfigMapKeyMissing",
            f"ConfigMap {ref.name} has no key {ref.key!r}",
        )
    return parse_ir(data[ref.key], "spec.pipeline.configMapRef")


def builtin_arguments(builtin: BuiltinPipeline, config_maps: Any) -> dict[str, Any]:
    """The module file and the tuner's trial budget, as the pipeline's parameters: `module_file` names the
    module (a URI the steps read when `module_source` is empty), `module_source` is its text when it comes
    from a ConfigMap (a run's pod cannot read ConfigMaps). Without a module file the pipeline's own module
    (the IR's default `module_file`, e.g. penguins/model.py) trains."""
    args: dict[str, Any] = {"tuner_max_trials": builtin.tuner.max_trials}
    module = builtin.module_file
    if module is not None and module.uri is not None:
        args.update(module_file=module.uri, module_source="")
    elif module is not None and module.config_map_ref is not None:
        ref, field_path = module.config_map_ref, "spec.pipeline.builtin.moduleFile.configMapRef"
        data = config_maps(ref.name)
        if data is None:
            raise SourceError(field_path, "ConfigMapNotFound", f"ConfigMap {ref.name} not found")
        if ref.key not in data:
            raise SourceError(
                f"{field_path}.key", "ConfigMapKeyMissing", f"ConfigMap {ref.name} has no key {ref.key!r}"
            )
        args["module_source"] = data[ref.key]
        args["module_file"] = f"configmap:{ref.name}/{ref.key}"
    return args


def coerce(name: str, value: str, declared: dict[str, Any]) -> Any:
    """A spec parameter (always a string) as the type the pipeline declares."""
    kind = declared.get("parameterType", "STRING")
    try:
        if kind == "NUMBER_INTEGER":
            return int(value)
        if kind == "NUMBER_DOUBLE":
            return float(value)
        if kind == "BOOLEAN":
            if value.lower() not in ("true", "false"):
                raise ValueError(value)
            return value.lower() == "true"
        if kind in ("STRUCT", "LIST"):
            return yaml.safe_load(value)
    except ValueError as error:
        raise SourceError(
            f"spec.parameters.{name}", "InvalidParameter", f"{value!r} is not a {kind}"
        ) from error
    return value


def arguments(pipeline: PipelineSpec, standard: dict[str, Any], user: dict[str, str]) -> dict[str, Any]:
    """Standard arguments the pipeline declares, plus the user's, typed; unknown user names are errors."""
    args = {name: value for name, value in standard.items() if name in pipeline.parameters}
    for name, value in user.items():
        if name not in pipeline.parameters:
            known = sanitize(", ".join(sorted(pipeline.parameters)), 300)
            raise SourceError(
                f"spec.parameters.{name}",
                "UnknownParameter",
                f"the pipeline has no parameter {name!r} (it has: {known})",
            )
        args[name] = coerce(name, value, pipeline.parameters[name])
    return args

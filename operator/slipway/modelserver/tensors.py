"""TF Serving's REST predict format (tensorflow_serving/util/json_tensor.cc) on numpy arrays: a request's
`instances` (row format) or `inputs` (columnar format) -> one batched array per signature input, and the
signature's outputs -> `{"predictions": [...]}` or `{"outputs": ...}`. Strings travel as JSON strings, or as
`{"b64": ...}` objects (always for an output whose name ends in `_bytes`)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from slipway.modelserver.errors import invalid_argument

ROW, COLUMNAR = "row", "columnar"


@dataclass(frozen=True)
class InputSpec:
    dtype: np.dtype[Any]  # np.dtype(object) for strings

    @property
    def is_string(self) -> bool:
        return self.dtype == np.dtype(object)

    @property
    def tf_name(self) -> str:
        """TensorFlow's DataTypeString, which TF Serving's messages use."""
        if self.is_string:
            return "string"
        return {"float32": "float", "float64": "double"}.get(self.dtype.name, self.dtype.name)


def parse_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise invalid_argument(f"JSON Parse error: {error}") from None
    if not isinstance(doc, dict):
        raise invalid_argument(f"JSON Value: {_debug(doc)} Is not object")
    signature = doc.get("signature_name", "")
    if not isinstance(signature, str):
        raise invalid_argument(
            f"JSON Value: {_debug(doc)} not formatted correctly. 'signature_name' key must be a string value."
        )
    return doc


def _debug(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"))
    return text if len(text) <= 200 else text[:200] + "..."


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and list(value) == ["b64"]


def _leaf(value: Any, spec: InputSpec) -> Any:
    if spec.is_string:
        if _is_b64(value):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, TypeError):
                raise invalid_argument("Unable to base64 decode") from None
        if isinstance(value, str):
            return value.encode()
        raise invalid_argument(
            f"JSON Value: {_debug(value)} Type: {_json_type(value)} is not of expected type: string"
        )
    if isinstance(value, bool) and spec.dtype != np.dtype(bool):
        raise invalid_argument(
            f"JSON Value: {_debug(value)} Type: Bool is not of expected type: {spec.tf_name}"
        )
    if not isinstance(value, int | float | bool):
        raise invalid_argument(
            f"JSON Value: {_debug(value)} Type: {_json_type(value)} is not of expected type: {spec.tf_name}"
        )
    return value


def _json_type(value: Any) -> str:
    for kind, name in (
        (bool, "Bool"),
        (str, "String"),
        (list, "Array"),
        (dict, "Object"),
        (type(None), "Null"),
    ):
        if isinstance(value, kind):
            return name
    return "Number"


def to_array(value: Any, spec: InputSpec) -> np.ndarray[Any, Any]:
    """A JSON value (a scalar or nested lists of equal lengths) -> an array of the input's dtype."""

    def convert(item: Any) -> Any:
        if isinstance(item, list):
            return [convert(element) for element in item]
        return _leaf(item, spec)

    converted = convert(value)
    try:
        if spec.is_string:
            array = np.array(converted, dtype=object)
            if array.dtype != object or any(isinstance(x, list) for x in array.ravel()):
                raise ValueError("ragged")
            return array
        return np.array(converted, dtype=spec.dtype)
    except (ValueError, OverflowError, TypeError) as error:
        raise invalid_argument(f"Failed to process JSON value {_debug(value)}: {error}") from None


def request_inputs(doc: dict[str, Any], specs: dict[str, InputSpec]) -> tuple[dict[str, Any], str]:
    """(input name -> batched array, ROW or COLUMNAR) from a parsed predict request."""
    if not specs:
        raise invalid_argument(
            f"Failed to get input map for signature: {doc.get('signature_name') or 'DEFAULT'}"
        )
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise invalid_argument(
            f"JSON Value: {_debug(doc)} Not formatted correctly expecting only one of 'inputs' or "
            "'instances' keys to exist "
        )
    if has_instances:
        return _from_instances(doc, doc["instances"], specs), ROW
    if has_inputs:
        return _from_inputs(doc["inputs"], specs), COLUMNAR
    raise invalid_argument("Missing 'inputs' or 'instances' key")


def _from_instances(doc: dict[str, Any], instances: Any, specs: dict[str, InputSpec]) -> dict[str, Any]:
    if not isinstance(instances, list):
        raise invalid_argument(f"JSON Value: {_debug(doc)} Expecting 'instances' to be an list/array")
    if not instances:
        raise invalid_argument(f"JSON Value: {_debug(doc)} No values in 'instances' array")
    named = isinstance(instances[0], dict) and not _is_b64(instances[0])
    if not named and len(specs) > 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input tensors required as "
            "per tensorinfo_map"
        )
    columns: dict[str, list[Any]] = {name: [] for name in specs}
    for index, instance in enumerate(instances):
        is_object = isinstance(instance, dict) and not _is_b64(instance)
        if named and not is_object:
            raise invalid_argument(f"Expecting object but got list at item {index} of input list")
        if not named and is_object:
            raise invalid_argument(f"Expecting value/list but got object at item {index} of input list")
        if named:
            if set(instance) != set(specs):
                raise invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{_debug(instance)} keys must be equal to: {','.join(sorted(specs))}"
                )
            for name, value in instance.items():
                columns[name].append(value)
        else:
            columns[next(iter(specs))].append(instance)
    arrays = {}
    for name, values in columns.items():
        shapes = {np.shape(v) if not _is_b64(v) else () for v in values}
        if len(shapes) > 1:
            raise invalid_argument(
                f"Failed to process element of 'instances' list: input {name} has differing shapes "
                f"{sorted(shapes)}"
            )
        arrays[name] = to_array(values, specs[name])
    return arrays


def _from_inputs(inputs: Any, specs: dict[str, InputSpec]) -> dict[str, Any]:
    if not isinstance(inputs, dict) or _is_b64(inputs):
        if len(specs) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input tensors required as "
                "per tensorinfo_map"
            )
        name = next(iter(specs))
        return {name: to_array(inputs, specs[name])}
    arrays = {}
    for name, spec in specs.items():
        if name not in inputs:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        arrays[name] = to_array(inputs[name], spec)
    return arrays


def _plain(array: np.ndarray[Any, Any], as_b64: bool) -> Any:
    """An array as JSON values: float32 in its shortest form (as TF Serving prints it), bytes as text."""
    if array.dtype == np.float32:
        flat: list[Any] = [float(str(x)) for x in array.ravel()]
    elif array.dtype == object or array.dtype.kind == "S":
        flat = [
            {"b64": base64.b64encode(x).decode()} if as_b64 else x.decode("utf-8", "replace")
            for x in array.ravel()
        ]
    else:
        flat = array.ravel().tolist()
    if array.ndim == 0:
        return flat[0]
    values = iter(flat)

    def nest(shape: tuple[int, ...]) -> list[Any]:
        if len(shape) == 1:
            return [next(values) for _ in range(shape[0])]
        return [nest(shape[1:]) for _ in range(shape[0])]

    return nest(array.shape)


def response(outputs: dict[str, np.ndarray[Any, Any]], form: str) -> dict[str, Any]:
    if not outputs:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    values = {name: _plain(outputs[name], name.endswith("_bytes")) for name in names}
    if form == COLUMNAR:
        return {"outputs": values[names[0]] if len(names) == 1 else values}
    batch = None
    for name in names:
        if outputs[name].ndim == 0:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        size = outputs[name].shape[0]
        if batch is not None and size != batch:
            raise invalid_argument(
                f"Tensor name: {name} has inconsistent batch size: {size} expecting: {batch}"
            )
        batch = size
    if len(names) == 1:
        return {"predictions": values[names[0]]}
    return {"predictions": [{name: values[name][i] for name in names} for i in range(batch or 0)]}

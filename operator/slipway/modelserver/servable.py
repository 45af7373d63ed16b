"""A loaded SavedModel: its signatures, run on arrays (gRPC) or on REST JSON in and out."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from slipway.modelserver import tensors
from slipway.modelserver.errors import ServingError, invalid_argument

DEFAULT_SIGNATURE = "serving_default"  # kDefaultServingSignatureDefKey


class Servable(Protocol):
    def predict(self, doc: dict[str, Any], on_run: Callable[[int], None]) -> dict[str, Any]:
        """Answers a parsed REST predict request; calls on_run(microseconds) after the model ran."""
        ...


class SavedModel:
    def __init__(self, path: Path, tags: list[str]) -> None:
        import tensorflow as tf

        self.path, self.tags = path, tags
        self._loaded = tf.saved_model.load(str(path), tags=tags)
        self._signatures = dict(self._loaded.signatures)
        self._specs = {
            name: {
                arg: tensors.InputSpec(
                    np.dtype(object) if spec.dtype == tf.string else np.dtype(spec.dtype.as_numpy_dtype)
                )
                for arg, spec in function.structured_input_signature[1].items()
            }
            for name, function in self._signatures.items()
        }

    def run(
        self, signature: str, inputs: dict[str, Any], on_run: Callable[[int], None]
    ) -> dict[str, np.ndarray[Any, Any]]:
        """The signature's outputs for arrays named as its inputs (what TF Serving's Predict does)."""
        import tensorflow as tf

        function = self._signature(signature)
        expected = function.structured_input_signature[1]
        if set(inputs) != set(expected):
            raise invalid_argument(
                f"input keys {sorted(inputs)} do not match the signature's inputs {sorted(expected)}"
            )
        started = time.perf_counter()
        try:
            arguments = {arg: tf.constant(value, dtype=expected[arg].dtype) for arg, value in inputs.items()}
            outputs = function(**arguments)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
            raise invalid_argument(getattr(error, "message", None) or str(error)) from None
        except tf.errors.OpError as error:
            raise ServingError("INTERNAL", error.message) from None
        on_run(int((time.perf_counter() - started) * 1_000_000))
        return {key: value.numpy() for key, value in outputs.items()}

    def _signature(self, name: str) -> Any:
        name = name or DEFAULT_SIGNATURE
        if name not in self._signatures:
            raise invalid_argument(f'Serving signature name: "{name}" not found in signature def')
        return self._signatures[name]

    def predict(self, doc: dict[str, Any], on_run: Callable[[int], None]) -> dict[str, Any]:
        name = doc.get("signature_name") or DEFAULT_SIGNATURE
        self._signature(name)
        inputs, form = tensors.request_inputs(doc, self._specs[name])
        return tensors.response(self.run(name, inputs, on_run), form)

    def metadata(self, model: str) -> dict[str, Any]:
        """GetModelMetadataResponse as TF Serving's REST API writes it: the meta graph's SignatureDefs."""
        from google.protobuf import json_format
        from tensorflow.core.protobuf import saved_model_pb2

        saved = saved_model_pb2.SavedModel()
        saved.ParseFromString((self.path / "saved_model.pb").read_bytes())
        graph = next(g for g in saved.meta_graphs if set(g.meta_info_def.tags) == set(self.tags))
        signatures = {
            name: json_format.MessageToDict(signature, preserving_proto_field_name=True)
            for name, signature in graph.signature_def.items()
        }
        return {
            "model_spec": {"name": model, "signature_name": "", "version": self.path.name.lstrip("0") or "0"},
            "metadata": {"signature_def": {"signature_def": signatures}},
        }


def load_saved_model(tags: list[str]) -> Callable[[Path], Servable]:
    return lambda path: SavedModel(path, tags)

"""A loaded SavedModel: its signatures, and a predict that runs one with REST JSON in and out."""

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

    def predict(self, doc: dict[str, Any], on_run: Callable[[int], None]) -> dict[str, Any]:
        import tensorflow as tf

        name = doc.get("signature_name") or DEFAULT_SIGNATURE
        if name not in self._signatures:
            raise invalid_argument(f'Serving signature name: "{name}" not found in signature def')
        inputs, form = tensors.request_inputs(doc, self._specs[name])
        function = self._signatures[name]
        arguments = {
            arg: tf.constant(value, dtype=function.structured_input_signature[1][arg].dtype)
            for arg, value in inputs.items()
        }
        started = time.perf_counter()
        try:
            outputs = function(**arguments)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
            raise invalid_argument(getattr(error, "message", None) or str(error)) from None
        except tf.errors.OpError as error:
            raise ServingError("INTERNAL", error.message) from None
        on_run(int((time.perf_counter() - started) * 1_000_000))
        return tensors.response({key: value.numpy() for key, value in outputs.items()}, form)


def load_saved_model(tags: list[str]) -> Callable[[Path], Servable]:
    return lambda path: SavedModel(path, tags)

"""TF Serving's gRPC API on --port: PredictionService.Predict and ModelService.GetModelStatus with TF
Serving's messages (tensorflow-serving-api), status codes and request metrics (entrypoint "GRPC").
Classify, Regress, MultiInference, GetModelMetadata and HandleReloadConfigRequest answer UNIMPLEMENTED."""

from __future__ import annotations

import time
from concurrent import futures
from typing import Any

import grpc
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from slipway.modelserver.errors import ServingError
from slipway.modelserver.manager import Manager


def _spec(request: Any) -> tuple[str, int | None, str | None]:
    spec = request.model_spec
    version = spec.version.value if spec.HasField("version") else None
    label = spec.version_label or None
    return spec.name, version, label


class Prediction(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager: Manager) -> None:
        self.manager = manager

    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:
        import tensorflow as tf

        started = time.perf_counter()
        model, version, label = _spec(request)
        metrics = self.manager.metrics
        try:
            servable = self.manager.servable(model, version, label)
            run = getattr(servable, "run", None)
            if run is None:
                raise ServingError("UNIMPLEMENTED", "this servable answers REST only")
            inputs = {name: tf.make_ndarray(tensor) for name, tensor in request.inputs.items()}
            outputs = run(request.model_spec.signature_name, inputs, lambda us: metrics.record_run(model, us))
            wanted = set(request.output_filter) or set(outputs)
            response = predict_pb2.PredictResponse()
            response.model_spec.CopyFrom(request.model_spec)
            response.model_spec.signature_name = request.model_spec.signature_name or "serving_default"
            for name in wanted:
                if name not in outputs:
                    raise ServingError(
                        "INVALID_ARGUMENT", f"output tensor alias not found in signature: {name}"
                    )
                response.outputs[name].CopyFrom(tf.make_tensor_proto(outputs[name]))
        except ServingError as error:
            metrics.record_request(model, error.code, "Predict", None, entrypoint="GRPC")
            context.abort(grpc.StatusCode[error.code], error.message)
        metrics.record_request(
            model, "OK", "Predict", int((time.perf_counter() - started) * 1_000_000), entrypoint="GRPC"
        )
        return response


class Models(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager: Manager) -> None:
        self.manager = manager

    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            statuses = self.manager.status(*_spec(request))
        except ServingError as error:
            context.abort(grpc.StatusCode[error.code], error.message)
        response = get_model_status_pb2.GetModelStatusResponse()
        for status in statuses:
            entry = response.model_version_status.add(version=status.version)
            entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(status.state)
            entry.status.error_code = _ERROR_CODES.values_by_name[status.error_code].number
            entry.status.error_message = status.error_message
        return response


# tensorflow.error.Code, the type of StatusProto.error_code
_ERROR_CODES = (
    get_model_status_pb2.ModelVersionStatus.DESCRIPTOR.fields_by_name["status"]
    .message_type.fields_by_name["error_code"]
    .enum_type
)


_SERVERS: list[grpc.Server] = []  # a grpc.Server stops when it is garbage-collected


def start(manager: Manager, port: int, threads: int = 16) -> grpc.Server:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Prediction(manager), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(Models(manager), server)
    if server.add_insecure_port(f"[::]:{port}") == 0:
        raise SystemExit(f"tensorflow_model_server: cannot listen for gRPC on port {port}")
    server.start()
    _SERVERS.append(server)
    return server

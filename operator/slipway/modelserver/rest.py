"""TF Serving's REST API over HTTP (tensorflow_serving/model_servers/http_server.cc and
http_rest_api_handler.cc): its path patterns, status JSON, predict, error JSON and HTTP codes, the request
metrics it records, and the Prometheus page at the monitoring config's path."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol

from slipway.modelserver import tensors
from slipway.modelserver.errors import ServingError, invalid_argument
from slipway.modelserver.metrics import Metrics
from slipway.modelserver.servable import Servable

API_PATH = re.compile(r"/v1/.*", re.IGNORECASE)
PREDICT = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE,
)
STATUS = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.IGNORECASE
)
# One loopback server standing in for the Services of many versions (the demo, the tests) is addressed as
# http://host:port/<namespace>/<service>/v1/...: that prefix is dropped when `prefixed` is set.
PREFIX = re.compile(r"^/[^/]+/[^/]+(?=/v1/)", re.IGNORECASE)


@dataclass(frozen=True)
class VersionStatus:
    """One entry of GetModelStatusResponse.model_version_status."""

    version: int
    state: str  # START, LOADING, AVAILABLE, UNLOADING, END
    error_code: str = "OK"
    error_message: str = ""


def status_json(statuses: list[VersionStatus]) -> bytes:
    """GetModelStatusResponse as TF Serving prints it (protobuf's JSON printer, primitive fields always)."""
    entries = [
        {
            "version": str(s.version),
            "state": s.state,
            "status": {"error_code": s.error_code, "error_message": s.error_message},
        }
        for s in statuses
    ]
    return json.dumps({"model_version_status": entries}, indent=1, ensure_ascii=False).encode()


class Core(Protocol):
    def status(
        self, model: str, version: int | None = None, label: str | None = None
    ) -> list[VersionStatus]: ...

    def servable(self, model: str, version: int | None = None, label: str | None = None) -> Servable: ...


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"


def _error(error: ServingError) -> Reply:
    return Reply(
        error.http_status, json.dumps({"error": error.message}, indent=4, ensure_ascii=False).encode()
    )


def handle(core: Core, metrics: Metrics, method: str, path: str, body: bytes) -> Reply:
    """One request to /v1/...: routed, answered, and counted as TF Serving counts it."""
    started = time.perf_counter()
    model, api, version_text, label = "", "", None, None
    try:
        if method == "POST" and (match := PREDICT.fullmatch(path)):
            model, version_text, label, api = match.groups()
        elif method == "GET" and (match := STATUS.fullmatch(path)):
            model, version_text, label, subresource = match.groups()
            model = model or ""
        else:
            raise invalid_argument(f"Malformed request: {method} {path}")
        model = urllib.parse.unquote(model)
        label = urllib.parse.unquote(label) if label else None
        version = int(version_text) if version_text else None
        if version is not None and label is not None:
            raise invalid_argument(
                f"Both model version ({version}) and model version label ({label}) cannot be supplied."
            )
        if method == "GET":
            if not model:
                raise invalid_argument("Missing model name in request.")
            if subresource:
                metadata = getattr(core.servable(model, version, label), "metadata", None)
                if metadata is None:
                    raise ServingError("UNIMPLEMENTED", "this servable has no metadata")
                reply = Reply(200, json.dumps(metadata(model), indent=1).encode())
            else:
                reply = Reply(200, status_json(core.status(model, version, label)))
        elif api.lower() != "predict":
            raise ServingError("UNIMPLEMENTED", f"{api} is not served by this model server; use :predict")
        else:
            servable = core.servable(model, version, label)
            doc = tensors.parse_body(body)
            answer = servable.predict(doc, lambda us: metrics.record_run(model, us))
            reply = Reply(200, json.dumps(answer, indent=4, ensure_ascii=False).encode())
    except ServingError as error:
        metrics.record_request(model, error.code, api, None)
        return _error(error)
    metrics.record_request(model, "OK", api, int((time.perf_counter() - started) * 1_000_000))
    return reply


def handler(
    core: Core, metrics: Metrics, metrics_path: str | None, *, prefixed: bool = False, cors: bool = False
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "slipway-model-server"

        def log_message(self, *_: Any) -> None:
            pass

        def _send(self, reply: Reply) -> None:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            if cors:
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Access-Control-Allow-Methods", "POST, GET")
                self.send_header("Access-Control-Allow-Headers", "Content-Type")
            self.end_headers()
            self.wfile.write(reply.body)

        def _route(self, method: str) -> None:
            path = urllib.parse.urlsplit(self.path).path
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if prefixed:
                path = PREFIX.sub("", path, count=1)
            if metrics_path is not None and path == metrics_path and method == "GET":
                self._send(Reply(200, metrics.page().encode(), "text/plain"))
            elif API_PATH.fullmatch(path):
                self._send(handle(core, metrics, method, path, body))
            else:
                self._send(Reply(404, b"Not Found", "text/plain"))

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

    return Handler

"""A stand-in for TF Serving on loopback for the demo, where kwok's pods run no containers: it loads the
pushed SavedModels from a file:// model store with real TensorFlow and answers TF Serving's REST API
(`GET /v1/models/<m>/versions/<v>`, `POST /v1/models/<m>/versions/<v>:predict`) under any path prefix, so
the operator's analysis (`SLIPWAY_TFSERVING_URL_TEMPLATE=http://127.0.0.1:<port>/{namespace}/{service}`)
runs real predictions of the real model.

`python -m slipway.devcluster.model_server --store DIR --port N`"""

from __future__ import annotations

import argparse
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROUTE = re.compile(r"/v1/models/(?P<model>[^/:]+)/versions/(?P<version>\d+)(?P<predict>:predict)?$")


class Models:
    def __init__(self, store: Path) -> None:
        self.store = store
        self._loaded: dict[tuple[str, int], Any] = {}
        self._lock = threading.Lock()

    def signature(self, model: str, version: int) -> Any | None:
        import tensorflow as tf

        with self._lock:
            if (model, version) not in self._loaded:
                path = self.store / model / str(version)
                if not (path / "saved_model.pb").exists():
                    return None
                self._loaded[(model, version)] = tf.saved_model.load(str(path)).signatures["serving_default"]
            return self._loaded[(model, version)]

    def predict(self, model: str, version: int, instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
        import tensorflow as tf

        serve = self.signature(model, version)
        assert serve is not None
        specs = serve.structured_input_signature[1]
        args = {
            name: tf.constant([i[name] for i in instances], dtype=spec.dtype) for name, spec in specs.items()
        }
        outputs = {k: v.numpy().tolist() for k, v in serve(**args).items()}
        return [
            {k: (v[i].decode() if isinstance(v[i], bytes) else v[i]) for k, v in outputs.items()}
            for i in range(len(instances))
        ]


def handler(models: Models) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def reply(self, code: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def route(self) -> tuple[str, int, bool] | None:
            match = ROUTE.search(self.path)
            if match is None:
                self.reply(404, {"error": f"Malformed request: {self.command} {self.path}"})
                return None
            return match["model"], int(match["version"]), bool(match["predict"])

        def do_GET(self) -> None:
            if (route := self.route()) is None:
                return
            model, version, _ = route
            if models.signature(model, version) is None:
                self.reply(404, {"error": f"Servable not found for request: Specific({model}, {version})"})
                return
            status = {
                "version": str(version),
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
            self.reply(200, {"model_version_status": [status]})

        def do_POST(self) -> None:
            if (route := self.route()) is None:
                return
            model, version, predict = route
            if not predict or models.signature(model, version) is None:
                self.reply(404, {"error": f"Servable not found for request: Specific({model}, {version})"})
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            try:
                self.reply(200, {"predictions": models.predict(model, version, body.get("instances", []))})
            except Exception as error:
                self.reply(400, {"error": str(error)})

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", required=True, type=Path)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    import tensorflow  # noqa: F401  (imported before serving, so the first status check is not slowed by it)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(Models(args.store)))
    server.serve_forever()


if __name__ == "__main__":
    main()

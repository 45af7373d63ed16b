"""The demo's model server, where kwok's pods run no containers: Slipway's TF-Serving-compatible server
(slipway.modelserver, real TensorFlow) on loopback, serving every version of every model pushed to a file://
model store, and addressed as http://127.0.0.1:<port>/<namespace>/<service>/v1/... so one process stands in
for the Service of each version (`SLIPWAY_TFSERVING_URL_TEMPLATE=http://127.0.0.1:<port>/{namespace}/{service}`).

`python -m slipway.devcluster.model_server --store DIR --port N`"""

from __future__ import annotations

import argparse
from pathlib import Path

from slipway.modelserver import config, flags
from slipway.modelserver.__main__ import serve
from slipway.modelserver.manager import Manager
from slipway.modelserver.metrics import Metrics
from slipway.modelserver.servable import load_saved_model


def store_models(store: Path) -> list[config.ModelSpec]:
    """Every model directory in the store, all of its versions (new pushes appear at the next poll)."""
    if not store.is_dir():
        return []
    return [
        config.ModelSpec(name=child.name, base_path=str(child), policy="all")
        for child in sorted(store.iterdir())
        if child.is_dir()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", required=True, type=Path)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    options = flags.Options(port=0, rest_api_port=args.port)  # REST only
    metrics = Metrics()
    manager = Manager(lambda: store_models(args.store), load_saved_model(["serve"]), metrics)
    server = serve(
        options, manager, metrics, config.DEFAULT_METRICS_PATH, prefixed=True, wait=False, host="127.0.0.1"
    )
    server.serve_forever()


if __name__ == "__main__":
    main()

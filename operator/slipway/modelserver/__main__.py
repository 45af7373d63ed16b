"""`slipway-model-server` (`tensorflow_model_server` in the model-server image): TF Serving's command line.

Like TF Serving, it loads the configured models before it opens its port, exits when a model fails to load
at start, then polls the base paths (--file_system_poll_wait_seconds) and, when asked to, the model config
file (--model_config_file_poll_wait_seconds)."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path

from slipway.modelserver import config, flags, rest
from slipway.modelserver.manager import Manager
from slipway.modelserver.metrics import Metrics
from slipway.modelserver.servable import load_saved_model

log = logging.getLogger("slipway.modelserver")


def _model_source(options: flags.Options) -> Callable[[], list[config.ModelSpec]]:
    if options.model_config_file:
        path = Path(options.model_config_file)
        return config.Reloading(
            lambda: config.parse_model_config(path.read_text(), str(path)),
            options.model_config_file_poll_wait_seconds,
        )
    if not options.model_base_path:
        # The TF Serving image's entrypoint passes these from its environment.
        name = os.environ.get("MODEL_NAME")
        if name and "model_name" not in options.given:
            options.model_name = name
            options.model_base_path = f"{os.environ.get('MODEL_BASE_PATH', '/models')}/{name}"
        else:
            raise config.ConfigError("Both --model_base_path and --model_config_file are empty")
    specs = config.single_model(options.model_name, options.model_base_path)
    return lambda: specs


def serve(
    options: flags.Options,
    manager: Manager,
    metrics: Metrics,
    metrics_path: str | None,
    *,
    prefixed: bool = False,
    wait: bool = True,
    host: str = "0.0.0.0",
) -> ThreadingHTTPServer:
    """Loads the models (waiting for them when `wait`, as TF Serving does), then starts polling and the
    REST server."""
    manager.poll()
    while wait:
        try:
            failures = manager.settled()
        except LookupError as waiting:
            log.info("waiting for the models to load: %s", waiting)
            time.sleep(max(options.file_system_poll_wait_seconds, 1))
            manager.poll()
            continue
        if failures:
            raise SystemExit("Failed to start server. Error: " + "; ".join(failures))
        break
    stop = threading.Event()
    # TF Serving polls the base paths every --file_system_poll_wait_seconds (never when it is 0) and re-reads
    # the config file every --model_config_file_poll_wait_seconds (never when it is 0: see config.Reloading).
    intervals = [
        s
        for s in (options.file_system_poll_wait_seconds, options.model_config_file_poll_wait_seconds)
        if s > 0
    ]
    if intervals:
        threading.Thread(target=manager.run, args=(min(intervals), stop), daemon=True, name="poll").start()
    if options.port > 0:  # gRPC first, then REST, as TF Serving opens them
        from slipway.modelserver import grpc_api

        grpc_api.start(manager, options.port)
        log.info("Running gRPC ModelServer at 0.0.0.0:%d ...", options.port)
    handler = rest.handler(
        manager, metrics, metrics_path, prefixed=prefixed, cors=options.rest_api_enable_cors_support
    )
    server = ThreadingHTTPServer((host, options.rest_api_port), handler)
    server.daemon_threads = True
    log.info("Exporting HTTP/REST API at:localhost:%d ...", server.server_address[1])
    return server


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        options = flags.parse(sys.argv[1:] if argv is None else argv)
    except flags.FlagError as error:
        raise SystemExit(f"tensorflow_model_server: {error}") from None
    if options.version:
        print("TensorFlow ModelServer: slipway-model-server (TF Serving's REST interface)")
        return
    for name, value in options.ignored.items():
        log.info("flag --%s=%s accepted and ignored", name, value)
    if options.rest_api_port <= 0:
        raise SystemExit("tensorflow_model_server: set --rest_api_port (this server needs its REST API)")
    try:
        models = _model_source(options)
        monitoring = (
            Path(options.monitoring_config_file).read_text() if options.monitoring_config_file else None
        )
        metrics_path = config.metrics_path(monitoring, options.monitoring_config_file)
        models()  # a bad config file is an error at start, not at the first poll
    except (config.ConfigError, OSError) as error:
        raise SystemExit(f"tensorflow_model_server: {error}") from None
    import tensorflow as tf

    if options.tensorflow_intra_op_parallelism:
        tf.config.threading.set_intra_op_parallelism_threads(options.tensorflow_intra_op_parallelism)
    if options.tensorflow_inter_op_parallelism:
        tf.config.threading.set_inter_op_parallelism_threads(options.tensorflow_inter_op_parallelism)
    metrics = Metrics()
    manager = Manager(
        models,
        load_saved_model(options.saved_model_tags.split(",")),
        metrics,
        load_retries=options.max_num_load_retries,
        retry_interval_seconds=options.load_retry_interval_micros / 1_000_000,
    )
    server = serve(options, manager, metrics, metrics_path)
    server.serve_forever()


if __name__ == "__main__":
    main()

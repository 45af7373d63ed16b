"""Runs the operator: kopf with Slipway's handlers, Prometheus metrics, and a liveness endpoint."""

from __future__ import annotations

import asyncio
import logging

import kopf
from prometheus_client import start_http_server

from slipway.messages import RedactingFilter
from slipway.settings import OperatorSettings


def run_operator(operator: OperatorSettings, liveness_port: int = 8081, verbose: bool = False) -> None:
    from slipway.handlers import Operator  # importing registers the handlers

    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON, log_refkey="object")
    for handler in logging.getLogger().handlers:  # no value read from a Secret reaches the log
        handler.addFilter(RedactingFilter())
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    # "Handler/Timer ... succeeded" for every reconcile is noise at INFO.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    start_http_server(operator.metrics_port, addr="0.0.0.0")
    asyncio.run(
        kopf.operator(
            standalone=operator.standalone,
            namespaces=operator.namespaces,
            clusterwide=not operator.namespaces,
            liveness_endpoint=f"http://0.0.0.0:{liveness_port}/healthz",
            memo=Operator(),
        )
    )

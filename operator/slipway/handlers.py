"""The only module with kopf decorators. Each handler is a few lines that delegate to the logic
modules; reconciles are level-based and shared by watch events, timers and resumes."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from slipway import GROUP
from slipway.settings import settings


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    operator = _operator_settings()
    settings.persistence.finalizer = operator.finalizer
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.peering.name = operator.peering_name
    settings.peering.standalone = operator.standalone
    settings.peering.clusterwide = not operator.namespaces
    settings.posting.level = logging.INFO
    settings.execution.max_workers = operator.max_workers
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60


def _operator_settings() -> Any:
    return settings()

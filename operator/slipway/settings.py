"""Operator settings, from the environment (prefix SLIPWAY_)."""

from __future__ import annotations

import secrets
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from slipway import GROUP


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SLIPWAY_")

    namespaces: list[str] = Field(default_factory=list, description="Namespaces to serve; empty = all.")
    image: str = Field(
        default="ghcr.io/slipway-dev/slipway:0.1.0",
        description="The operator image; TF Serving pods run `slipway pull` from it in an init container.",
    )
    pipelines_image: str = Field(
        default="ghcr.io/slipway-dev/slipway-pipelines:0.1.0",
        description="The job executor's image (TF stack, pipeline steps) where a pipeline names none.",
    )
    metrics_port: int = Field(default=8080, description="Port of the Prometheus /metrics endpoint.")
    peering_name: str = Field(
        default="slipway", description="The ClusterKopfPeering (or KopfPeering) the replicas meet in."
    )
    peering_priority: int = Field(
        default_factory=lambda: secrets.randbelow(1_000_000),
        description="Highest priority among replicas serves; the rest stand by (kopf peering).",
    )
    peering_lifetime_seconds: int = Field(
        default=8,
        ge=2,
        description="How long a replica's peering record counts without a keep-alive (kopf sends one every "
        "1-3 s at 8): a standby takes over at most this long after the active replica dies.",
    )
    standalone: bool = Field(default=False, description="Skip peering (one replica, or local development).")
    reconcile_interval_seconds: float = Field(
        default=15.0, description="Safety-net resync; children's events trigger reconciles sooner."
    )
    training_poll_seconds: float = Field(
        default=5.0, description="How often running pipeline runs are checked."
    )
    tfserving_url_template: str = Field(
        default="http://{service}.{namespace}.svc:8501",
        description="How the operator reaches a version's TF Serving REST API for analysis.",
    )
    artifact_state_dir: str = Field(
        default="/var/lib/slipway",
        description="Local executor: where run state lives when the root is local.",
    )
    max_workers: int = Field(
        default=32, description="Threads for synchronous handlers, all started with the operator."
    )

    @property
    def finalizer(self) -> str:
        return f"{GROUP}/finalizer"


@lru_cache(maxsize=1)
def settings() -> OperatorSettings:
    return OperatorSettings()

"""`slipway-manifest.json`: what a pipeline's pusher writes beside each SavedModel, and what the operator
reads from storage (it does not depend on ML Metadata being reachable)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from slipway import blobs

MANIFEST = "slipway-manifest.json"


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class DataInput(_Wire):
    uri: str
    fingerprint: str = ""


class ManifestLineage(_Wire):
    pipeline: str = ""
    pipeline_digest: str = ""
    run_id: str = ""
    parameters: dict[str, str] = Field(default_factory=dict)
    data: list[DataInput] = Field(default_factory=list)
    schema_uri: str = ""
    statistics_uri: str = ""


class ManifestBlessings(_Wire):
    evaluator: bool | None = None
    infra_validator: bool | None = None


class Manifest(_Wire):
    schema_version: int = 1
    model_name: str
    version: int
    uri: str = ""
    format: str = "SavedModel"
    created_at: str = ""
    metrics: dict[str, float] = Field(default_factory=dict)
    blessings: ManifestBlessings = Field(default_factory=ManifestBlessings)
    sample_request: dict[str, Any] | None = None
    lineage: ManifestLineage = Field(default_factory=ManifestLineage)


class ManifestError(ValueError):
    pass


def decimal_string(value: float) -> str:
    """A metric as the decimal string a spec carries (no floats in specs), without float noise."""
    text = format(Decimal(repr(value)).normalize(), "f")
    return text if text not in ("-0",) else "0"


def parse(raw: bytes, uri: str) -> Manifest:
    try:
        return Manifest.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as error:
        raise ManifestError(f"{uri}: not a valid {MANIFEST}: {error}") from error


def read(model_dir_uri: str, credentials: Any = None) -> Manifest:
    uri = blobs.join(model_dir_uri, MANIFEST)
    return parse(blobs.read_bytes(uri, credentials), uri)

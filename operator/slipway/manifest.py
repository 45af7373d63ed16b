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


# Why a run pushed nothing, where the operator can find it without the run's outputs (KFP's run API does not
# return them): beside the version directories, under a name TF Serving skips (not an integer).
PUSH_RESULTS = "slipway-push-results"


class PushResult(_Wire):
    """`<modelStore>/<modelName>/slipway-push-results/<version>.json`: what the pusher decided for the
    version the run was started with. Written when it pushed nothing; `reason` says why (not blessed by the
    evaluator, with the metric and its threshold, or by the infra validator)."""

    pushed: bool
    reason: str = ""
    version: int | None = None
    run_id: str = ""


def push_result_uri(model_store_uri: str, model_name: str, version: int) -> str:
    return blobs.join(model_store_uri, model_name, PUSH_RESULTS, f"{version}.json")


def read_push_result(
    model_store_uri: str, model_name: str, version: int, credentials: Any = None
) -> PushResult | None:
    """The pusher's record for this version; None when there is none."""
    uri = push_result_uri(model_store_uri, model_name, version)
    if not blobs.exists(uri, credentials):
        return None
    try:
        return PushResult.model_validate(json.loads(blobs.read_bytes(uri, credentials)))
    except (ValueError, ValidationError) as error:
        raise ManifestError(f"{uri}: not a valid push result: {error}") from error

"""Registration of a model pushed by TFX's own Pusher: the step a TFX pipeline runs after its Pusher.

TFX's Pusher copies a blessed model to `<push destination>/<unix seconds>/` and records that only in ML
Metadata, which the operator does not read. This step, run in the pipelines image as
`python -m slipway.training.tfx_register`, turns that push into what the operator registers: it reads the
Evaluator's and the InfraValidator's blessing artifacts (TFX's BLESSED / NOT_BLESSED and INFRA_BLESSED /
INFRA_NOT_BLESSED files) and TFMA's evaluation output, then

- blessed: copies the newest timestamped SavedModel under the push destination to
  `<model_store_uri>/<model_name>/<model_version>/` with `slipway-manifest.json` (metrics from TFMA,
  blessings, lineage), `saved_model.pb` last;
- not blessed: pushes nothing and writes the push-result record (`slipway-push-results/<version>.json`)
  saying why -- each TFMA threshold that failed, with its value -- which the operator shows instead of
  "no manifest".

Artifact locations may be local paths (what KFP's launcher hands a step) or s3://, gs://, az://, file:// URIs
(what TFX's placeholders give), read with the step's environment credentials. See docs/training.md."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slipway.manifest import MANIFEST, PUSH_RESULTS

if TYPE_CHECKING:
    from tensorflow_model_analysis.proto import metrics_for_slice_pb2, validation_result_pb2

    from slipway.storage import ObjectStore

SAVED_MODEL = "saved_model.pb"
EVALUATOR = ("BLESSED", "NOT_BLESSED")
INFRA_VALIDATOR = ("INFRA_BLESSED", "INFRA_NOT_BLESSED")


class RegistrationError(RuntimeError):
    """What makes the step fail; the message names the artifact or location."""


def as_uri(location: str) -> str:
    return (
        location
        if "://" in location
        else f"file://{location if location.startswith('/') else '/' + location}"
    )


def blessed(names: Iterable[str], marks: tuple[str, str], what: str, location: str) -> bool:
    """The verdict a blessing artifact holds (TFX writes one empty file named after it)."""
    present = {name.rsplit("/", 1)[-1] for name in names}
    yes, no = marks
    if yes in present:
        return True
    if no in present:
        return False
    raise RegistrationError(f"{what} {location}: neither {yes} nor {no} in it (not a TFX blessing artifact?)")


def newest_push(keys: Iterable[str], destination: str) -> str:
    """The newest `<unix seconds>/` directory holding a saved_model.pb, as TFX's Pusher writes them."""
    pushed = {
        key.split("/", 1)[0]
        for key in keys
        if key.count("/") == 1 and key.endswith(f"/{SAVED_MODEL}") and key.split("/", 1)[0].isdigit()
    }
    if not pushed:
        raise RegistrationError(
            f"blessed, but no <timestamp>/{SAVED_MODEL} under the push destination {destination}: "
            "is this step after the Pusher, with the Pusher's push_destination?"
        )
    return max(pushed, key=int)


def candidate_metrics(result: Iterable[metrics_for_slice_pb2.MetricsForSlice]) -> dict[str, float]:
    """The candidate's unsliced scalar metrics, under TFMA's names."""
    values: dict[str, float] = {}
    for slice_metrics in result:
        if slice_metrics.slice_key.single_slice_keys:
            continue
        for key_and_value in slice_metrics.metric_keys_and_values:
            key, value = key_and_value.key, key_and_value.value
            if key.model_name not in ("", "candidate") or key.HasField("sub_key") or key.is_diff:
                continue
            if value.HasField("double_value"):
                values[key.name] = value.double_value.value
    return values


def failed_thresholds(validation: validation_result_pb2.ValidationResult) -> list[str]:
    """One line per threshold TFMA says failed: the metric, its value and the threshold."""
    lines = []
    for per_slice in validation.metric_validations_per_slice:
        for failure in per_slice.failures:
            kind = "change against the baseline" if failure.metric_key.is_diff else "value"
            threshold = " ".join(str(failure.metric_threshold).split())
            value = failure.metric_value.double_value.value
            lines.append(f"{failure.metric_key.name} {kind} {value:.4f} fails {{{threshold}}}")
    return lines


def not_blessed_reason(evaluator: bool, infra_validator: bool | None, failures: Sequence[str]) -> str | None:
    """Why nothing may be pushed; None when both blessed."""
    reasons = []
    if not evaluator:
        reasons.append("evaluator did not bless the model: " + ("; ".join(failures) or "NOT_BLESSED"))
    if infra_validator is False:
        reasons.append("infra validator did not bless the model: INFRA_NOT_BLESSED")
    return " | ".join(reasons) or None


@dataclass(frozen=True)
class Request:
    push_destination: str
    blessing: str
    model_store_uri: str
    model_name: str
    model_version: int
    infra_blessing: str | None = None
    evaluation: str | None = None
    pipeline: str = ""
    pipeline_digest: str = ""
    run_id: str = ""


def manifest_body(
    request: Request, version: int, version_uri: str, metrics: dict[str, float], pushed_from: str
) -> dict[str, Any]:
    created = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    return {
        "schemaVersion": 1,
        "modelName": request.model_name,
        "version": version,
        "uri": version_uri,
        "format": "SavedModel",
        "createdAt": created.isoformat().replace("+00:00", "Z"),
        "metrics": metrics,
        "blessings": {
            "evaluator": True,
            "infraValidator": True if request.infra_blessing else None,
        },
        "pushedFrom": pushed_from,  # the TFX Pusher's directory (not read by the operator)
        "lineage": {
            "pipeline": request.pipeline,
            "pipelineDigest": request.pipeline_digest,
            "runId": request.run_id,
        },
    }


def _store(location: str) -> ObjectStore:
    from slipway.storage import open_store

    return open_store(as_uri(location).rstrip("/"))


def _keys(store: ObjectStore) -> list[str]:
    return [info.key for info in store.list() if not info.key.endswith("/")]


def tfma_outcome(evaluation: str) -> tuple[dict[str, float], list[str]]:
    """(metrics, failed thresholds) from TFMA's output, copied to a local directory first if remote."""
    import tensorflow_model_analysis as tfma

    from slipway.storage import download_tree

    with tempfile.TemporaryDirectory(prefix="slipway-tfma-") as local:
        download_tree(_store(evaluation), local)
        metrics = candidate_metrics(tfma.load_metrics(local))
        failures = failed_thresholds(tfma.load_validation_result(local))
    return metrics, failures


def register(request: Request) -> dict[str, Any]:
    """Registers the push, or records why there is none; returns what was done (the push_result)."""
    evaluator = blessed(_keys(_store(request.blessing)), EVALUATOR, "blessing", request.blessing)
    infra = (
        blessed(
            _keys(_store(request.infra_blessing)), INFRA_VALIDATOR, "infra blessing", request.infra_blessing
        )
        if request.infra_blessing
        else None
    )
    metrics, failures = tfma_outcome(request.evaluation) if request.evaluation else ({}, [])
    store = _store(request.model_store_uri)
    reason = not_blessed_reason(evaluator, infra, failures)
    if reason is not None:
        record = {
            "pushed": False,
            "reason": reason,
            "version": request.model_version,
            "runId": request.run_id,
        }
        if request.model_version > 0:
            key = f"{request.model_name}/{PUSH_RESULTS}/{request.model_version}.json"
            store.write_bytes(key, json.dumps(record).encode())
        return record
    source = _store(request.push_destination)
    timestamp = newest_push(_keys(source), request.push_destination)
    existing = {info.key.split("/")[1] for info in store.list(f"{request.model_name}/")}
    version = request.model_version or 1 + max((int(v) for v in existing if v.isdigit()), default=0)
    prefix = f"{request.model_name}/{version}"
    if store.exists(f"{prefix}/{SAVED_MODEL}"):
        raise RegistrationError(f"{store.uri_of(prefix)} already holds a model: versions are immutable")
    files = sorted(key for key in _keys(source) if key.startswith(f"{timestamp}/"))
    for key in [k for k in files if k != f"{timestamp}/{SAVED_MODEL}"]:
        store.write_bytes(f"{prefix}/{key.split('/', 1)[1]}", source.read_bytes(key))
    pushed_from = source.uri_of(timestamp)
    body = manifest_body(request, version, store.uri_of(prefix), metrics, pushed_from)
    store.write_bytes(f"{prefix}/{MANIFEST}", json.dumps(body, indent=2).encode())
    # Last: TF Serving (and the operator) take a version directory with saved_model.pb as complete.
    store.write_bytes(f"{prefix}/{SAVED_MODEL}", source.read_bytes(f"{timestamp}/{SAVED_MODEL}"))
    return {
        "pushed": True,
        "reason": "",
        "version": version,
        "manifestUri": store.uri_of(f"{prefix}/{MANIFEST}"),
    }


def parse_args(argv: Sequence[str]) -> Request:
    parser = argparse.ArgumentParser(
        prog="python -m slipway.training.tfx_register",
        description="Register the model TFX's Pusher pushed as a Slipway model version (run after Pusher).",
    )
    parser.add_argument("--push-destination", required=True, help="the Pusher's filesystem base_directory")
    parser.add_argument("--blessing", required=True, help="the Evaluator's ModelBlessing artifact")
    parser.add_argument("--infra-blessing", help="the InfraValidator's InfraBlessing artifact")
    parser.add_argument("--evaluation", help="the Evaluator's ModelEvaluation artifact (TFMA output)")
    parser.add_argument("--model-store-uri", required=True)
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--model-version", type=int, default=0, help="0: the next free integer")
    parser.add_argument("--pipeline", default="")
    parser.add_argument("--pipeline-digest", default="")
    parser.add_argument("--run-id", default="")
    args = parser.parse_args(argv)
    return Request(**{key: value for key, value in vars(args).items()})


def main(argv: Sequence[str] | None = None) -> int:
    from slipway.storage import StorageError

    request = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = register(request)
    except (RegistrationError, StorageError) as error:
        print(f"tfx_register: {error}", file=sys.stderr)
        return 1
    print(f"tfx_register: {json.dumps(result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

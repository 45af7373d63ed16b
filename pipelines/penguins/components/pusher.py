"""Pusher: a blessed model copied into the model store as a new integer version, with its manifest."""

from collections.abc import Callable

from kfp.dsl import Artifact, Input, Model, Output

from pipelines.penguins.components.base import component
from pipelines.penguins.uris import as_uri, local_path


def stored_versions(store_uri: str, model_name: str) -> list[int]:
    """The integer version directories of model_name under the store."""
    import os

    root = local_path(store_uri)
    if root is not None:
        directory = os.path.join(root, model_name)
        return [int(n) for n in os.listdir(directory) if n.isdigit()] if os.path.isdir(directory) else []
    from slipway.storage import open_store  # s3://, gs://, az://: the operator's storage layer

    store = open_store(store_uri.rstrip("/"))
    names = {info.key[len(model_name) + 1 :].split("/", 1)[0] for info in store.list(f"{model_name}/")}
    return [int(n) for n in names if n.isdigit()]


def store_writer(store_uri: str) -> Callable[[str, bytes], None]:
    """write(key, data) under the store: on a file system through `<name>.partial` and a rename, so that
    no reader sees half a file."""
    import os

    root = local_path(store_uri)
    if root is None:
        from slipway.storage import open_store  # s3://, gs://, az://: the operator's storage layer

        return open_store(store_uri.rstrip("/")).write_bytes

    def write_file(key: str, data: bytes) -> None:
        path = os.path.join(root, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".partial", "wb") as handle:
            handle.write(data)
        os.replace(path + ".partial", path)

    return write_file


def manifest(
    model_name: str, version: int, version_uri: str, evaluated: dict, validated: dict, lineage: dict
) -> dict:
    """slipway-manifest.json: what the operator registers as the ModelVersion (schemaVersion 1)."""
    import datetime

    created = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    return {
        "schemaVersion": 1,
        "modelName": model_name,
        "version": version,
        "uri": version_uri,
        "format": "SavedModel",
        "createdAt": created.isoformat().replace("+00:00", "Z"),
        "metrics": evaluated["metrics"],
        "blessings": {"evaluator": True, "infraValidator": True},
        "signature": validated["signature"],
        "sampleRequest": validated["sampleRequest"],
        "lineage": lineage,
    }


def blessing_failures(evaluated: dict, validated: dict) -> list[str]:
    """Why the model may not be pushed: the evaluator's or the infra validator's verdict."""
    reasons = []
    if not evaluated["blessed"]:
        reasons.append(
            "evaluator did not bless the model: " + ("; ".join(evaluated["reasons"]) or "NOT_BLESSED")
        )
    if not validated["blessed"]:
        reasons.append(
            "infra validator did not bless the model: " + (validated["reason"] or "INFRA_NOT_BLESSED")
        )
    return reasons


@component
def pusher(
    model: Input[Model],
    statistics: Input[Artifact],
    schema: Input[Artifact],
    evaluation: str,
    infra_validation: str,
    data_lineage: str,
    model_store_uri: str,
    model_name: str,
    model_version: int,
    pipeline_name: str,
    pipeline_digest: str,
    run_id: str,
    pipeline_job_name: str,
    data_uri: str,
    eval_buckets: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    hidden_units: int,
    seed: int,
    min_accuracy: float,
    max_accuracy_drop: float,
    baseline_model_uri: str,
    curated_schema_uri: str,
    pushed_model: Output[Artifact],
) -> str:
    """Pusher: only when the evaluator and the infra validator both blessed the model, copies the SavedModel
    to <model_store_uri>/<model_name>/<version>/ (version = model_version, or the next free integer when
    0), writing saved_model.pb LAST (TF Serving loads a version once it appears) after slipway-manifest.json.
    Otherwise pushes nothing. Either way returns push_result JSON: {"pushed", "reason", "version",
    "manifestUri"}."""
    import json
    import os

    evaluated, validated = json.loads(evaluation), json.loads(infra_validation)
    parameters = {
        "data_uri": data_uri,
        "model_name": model_name,
        "eval_buckets": eval_buckets,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "hidden_units": hidden_units,
        "seed": seed,
        "min_accuracy": min_accuracy,
        "max_accuracy_drop": max_accuracy_drop,
        "baseline_model_uri": baseline_model_uri,
        "curated_schema_uri": curated_schema_uri,
    }

    def not_pushed(reason: str) -> str:
        result = {"pushed": False, "reason": reason, "version": None, "manifestUri": None}
        pushed_model.metadata.update({"tfx_type": "PushedModel", "pushed": 0, "reason": reason})
        print(f"pusher: not pushed: {reason}")
        if model_version > 0:  # where the operator looks when the run's outputs cannot be read (KFP)
            from slipway.manifest import PUSH_RESULTS

            record = {"pushed": False, "reason": reason, "version": model_version, "runId": run_id}
            key = f"{model_name}/{PUSH_RESULTS}/{model_version}.json"
            store_writer(model_store_uri)(key, json.dumps(record).encode())
        return json.dumps(result)

    reasons = blessing_failures(evaluated, validated)
    if reasons:
        return not_pushed(" | ".join(reasons))
    existing = stored_versions(model_store_uri, model_name)
    version = model_version if model_version > 0 else max(existing, default=0) + 1
    if version in existing:
        return not_pushed(f"version {version} of {model_name} already exists in the store")
    version_uri = f"{as_uri(model_store_uri.rstrip('/'))}/{model_name}/{version}"
    export_dir = os.path.join(model.path, "Format-Serving")
    files = sorted(
        os.path.relpath(os.path.join(directory, name), export_dir)
        for directory, _, names in os.walk(export_dir)
        for name in names
    )
    lineage = {
        "pipeline": pipeline_name,
        "pipelineDigest": pipeline_digest,
        "runId": run_id or pipeline_job_name,
        "parameters": {k: str(v) for k, v in parameters.items()},
        "data": json.loads(data_lineage),
        "schemaUri": as_uri(schema.uri.rstrip("/") + "/schema.pbtxt"),
        "statisticsUri": as_uri(statistics.uri.rstrip("/") + "/Split-train/FeatureStats.pb"),
    }
    written = manifest(model_name, version, version_uri, evaluated, validated, lineage)
    write = store_writer(model_store_uri)

    def copy(relative: str) -> None:
        with open(os.path.join(export_dir, relative), "rb") as handle:
            write(f"{model_name}/{version}/{relative}", handle.read())

    for relative in [f for f in files if f != "saved_model.pb"]:
        copy(relative)
    write(f"{model_name}/{version}/slipway-manifest.json", json.dumps(written, indent=2).encode())
    copy("saved_model.pb")
    pushed_model.metadata.update({"tfx_type": "PushedModel", "pushed": 1, "pushed_destination": version_uri})
    print(f"pusher: pushed {version_uri}")
    return json.dumps(
        {
            "pushed": True,
            "reason": "",
            "version": version,
            "manifestUri": f"{version_uri}/slipway-manifest.json",
        }
    )

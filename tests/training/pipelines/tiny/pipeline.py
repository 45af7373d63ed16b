"""A tiny real KFP v2 pipeline for the training tests: it "trains" by writing a SavedModel-shaped directory
and the slipway manifest, with the quality and behaviour its parameters ask for.
Compile: python tests/training/pipelines/tiny/pipeline.py (writes pipeline.yaml beside it)."""

from pathlib import Path

from kfp import compiler, dsl


@dsl.component(base_image="python:3.11")
def train_and_push(
    data_uri: str,
    model_store_uri: str,
    model_name: str,
    model_version: int,
    pipeline_digest: str,
    run_id: str,
    accuracy: float,
    blessed: bool,
    fail: bool,
    sleep_seconds: int,
    noisy: bool,
) -> str:
    import json
    import os
    import pathlib
    import time

    time.sleep(sleep_seconds)
    if fail and noisy:  # a careless step: colours, and its environment's credentials, in log and error
        secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
        print(f"\x1b[31mERROR\x1b[0m environment: AWS_SECRET_ACCESS_KEY={secret}", flush=True)
        raise RuntimeError(f"\x1b[1;31mdiverged\x1b[0m\r\nwith AWS_SECRET_ACCESS_KEY={secret}")
    if fail:
        raise RuntimeError("training diverged: loss is NaN")
    if not blessed:
        return json.dumps({"pushed": False, "reason": "evaluator: NOT_BLESSED", "version": None})
    directory = os.path.join(model_store_uri.removeprefix("file://"), model_name, str(model_version))
    os.makedirs(os.path.join(directory, "variables"), exist_ok=True)
    # Statistics and schema of the training data, by the code the built-in pipeline's steps use.
    from slipway.datastats import schema, statistics

    if data_uri.startswith("file://"):
        data = data_uri.removeprefix("file://")
        paths = (
            [os.path.join(data, n) for n in sorted(os.listdir(data)) if n.endswith(".csv")]
            if os.path.isdir(data)
            else [data]
        )
        payloads = [pathlib.Path(path).read_bytes() for path in paths]
    else:  # s3://, gs://, az://: with the credentials in this process's environment
        from slipway.storage import open_store

        store = open_store(data_uri)
        payloads = [store.read_bytes(info.key) for info in store.list() if info.key.endswith(".csv")]
    stats = statistics.csv_statistics(payloads, "train")
    lineage_dir = f"{directory}-lineage"
    os.makedirs(lineage_dir, exist_ok=True)
    with open(os.path.join(lineage_dir, "FeatureStats.pb"), "wb") as handle:
        handle.write(statistics.serialize(stats))
    with open(os.path.join(lineage_dir, "schema.pbtxt"), "w") as handle:
        handle.write(schema.to_text(schema.infer(stats, max_categories=10)))
    manifest = {
        "schemaVersion": 1,
        "modelName": model_name,
        "version": model_version,
        "uri": f"{model_store_uri}/{model_name}/{model_version}",
        "format": "SavedModel",
        "metrics": {"accuracy": accuracy, "loss": round(1 - accuracy, 4)},
        "blessings": {"evaluator": True, "infraValidator": True},
        "sampleRequest": {"instances": [{"x": 1.0}]},
        "lineage": {
            "pipeline": "tiny",
            "pipelineDigest": pipeline_digest,
            "runId": run_id,
            "parameters": {"accuracy": str(accuracy)},
            "data": [{"uri": data_uri, "fingerprint": "sha256:test"}],
            "statisticsUri": f"file://{lineage_dir}/FeatureStats.pb",
            "schemaUri": f"file://{lineage_dir}/schema.pbtxt",
        },
    }
    with open(os.path.join(directory, "slipway-manifest.json"), "w") as handle:
        json.dump(manifest, handle)
    with open(os.path.join(directory, "saved_model.pb"), "wb") as handle:
        handle.write(b"\x08\x01")
    return json.dumps({"pushed": True, "reason": "", "version": model_version})


@dsl.pipeline(name="tiny")
def tiny(
    data_uri: str,
    model_store_uri: str,
    model_name: str,
    model_version: int,
    pipeline_digest: str = "",
    run_id: str = "",
    accuracy: float = 0.95,
    blessed: bool = True,
    fail: bool = False,
    sleep_seconds: int = 0,
    noisy: bool = False,
) -> str:
    return train_and_push(
        data_uri=data_uri,
        model_store_uri=model_store_uri,
        model_name=model_name,
        model_version=model_version,
        pipeline_digest=pipeline_digest,
        run_id=run_id,
        accuracy=accuracy,
        blessed=blessed,
        fail=fail,
        sleep_seconds=sleep_seconds,
        noisy=noisy,
    ).output


if __name__ == "__main__":
    compiler.Compiler().compile(tiny, str(Path(__file__).with_name("pipeline.yaml")))

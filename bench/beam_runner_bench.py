"""The Beam steps on a portable runner against the in-process one, on the 1,000,000-row synthetic table:
the Transform step (TF Transform's analysis over the train split) with each runner, next to its floor on
that runner -- a Beam pipeline that only reads and counts the same examples.

Runners: `inprocess` (the pipeline's default, FnApiRunner), `portable` (PortableRunner against Beam's job
service in another process, LOOPBACK workers: the Job and Fn API a Flink or Spark job server speaks) and,
when `--job-endpoint` names one (e.g. a Flink job server from hack/beam-job-server.sh), `external`.

`python bench/beam_runner_bench.py [--rows N] [--job-endpoint host:port]`: figures to stdout and
bench/results/beam_runners.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from pipelines.beam_service import portable_job_service  # noqa: E402

RESULTS = REPO / "bench" / "results" / "beam_runners.json"
IN_PROCESS = "--runner=apache_beam.runners.portability.fn_api_runner.FnApiRunner"
# PortableRunner gives the job's state stream a deadline of --job_server_timeout (300 s by default): a longer
# step dies with DEADLINE_EXCEEDED unless it is raised.
PORTABLE = "--environment_type=LOOPBACK --job_server_timeout=86400"


def examples_of(rows: int, root: Path) -> tuple[Path, Path]:
    """The synthetic table through ExampleGen, StatisticsGen and SchemaGen: (examples dir, schema dir)."""
    from kfp.dsl import Artifact, Dataset
    from pipelines.penguins.components import example_gen, schema_gen, statistics_gen

    from pipeline_bench import synthetic_penguins

    csv = root / "synthetic.csv"
    synthetic_penguins(rows, csv)
    examples, statistics, schema = (root / name for name in ("examples", "statistics", "schema"))
    example_gen.python_func(
        data_uri=str(csv), data_span=-1, eval_buckets=10, examples=Dataset(uri=str(examples))
    )
    statistics_gen.python_func(examples=Dataset(uri=str(examples)), statistics=Artifact(uri=str(statistics)))
    schema_gen.python_func(
        statistics=Artifact(uri=str(statistics)),
        curated_schema_uri="",
        max_categories=50,
        schema=Artifact(uri=str(schema)),
    )
    return examples, schema


def count_examples(examples: Path, beam_args: str) -> int:
    """The floor: read the train split's TFRecords on the runner and count them."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to

    expected = sum(1 for _ in _records(examples / "Split-train"))
    with beam.Pipeline(options=PipelineOptions(shlex.split(beam_args))) as pipeline:
        counted = (
            pipeline
            | beam.io.ReadFromTFRecord(str(examples / "Split-train" / "*"))
            | beam.combiners.Count.Globally()
        )
        assert_that(counted, equal_to([expected]))
    return expected


def _records(directory: Path) -> Iterator[Any]:
    from pipelines.penguins.records import read_tfrecords

    for name in sorted(os.listdir(directory)):
        yield from read_tfrecords(str(directory / name))


def transform_seconds(examples: Path, schema: Path, out: Path, beam_args: str) -> float:
    from kfp.dsl import Artifact, Dataset
    from pipelines.penguins.components import transform
    from pipelines.penguins.pipeline import DEFAULT_MODULE_FILE

    started = time.monotonic()
    transform.python_func(
        examples=Dataset(uri=str(examples)),
        schema=Artifact(uri=str(schema)),
        label="species",
        module_file=DEFAULT_MODULE_FILE,
        module_source="",
        custom_config={},
        epochs=1,
        batch_size=1024,
        learning_rate=0.01,
        hidden_units=16,
        seed=7,
        beam_pipeline_args=beam_args,
        transform_graph=Artifact(uri=str(out / "transform_graph")),
        transformed_examples=Dataset(uri=str(out / "transformed_examples")),
    )
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--job-endpoint", default="", help="an external job server, e.g. Flink's")
    args = parser.parse_args()
    results: dict[str, object] = {"rows": args.rows}
    with tempfile.TemporaryDirectory(prefix="beam-runner-bench-") as temporary:
        root = Path(temporary)
        started = time.monotonic()
        examples, schema = examples_of(args.rows, root)
        results["prepare_examples_s"] = round(time.monotonic() - started, 1)
        with portable_job_service(root / "job-service.log") as endpoint:
            runners = {
                "inprocess": IN_PROCESS,
                "portable": f"--runner=PortableRunner --job_endpoint={endpoint} {PORTABLE}",
            }
            if args.job_endpoint:
                runners["external"] = f"--runner=PortableRunner --job_endpoint={args.job_endpoint} {PORTABLE}"
            for name, beam_args in runners.items():
                started = time.monotonic()
                rows = count_examples(examples, beam_args)
                floor = time.monotonic() - started
                transform = transform_seconds(examples, schema, root / f"graph-{name}", beam_args)
                results[name] = {
                    "beam_pipeline_args": beam_args,
                    "train_rows": rows,
                    "floor_read_and_count_s": round(floor, 1),
                    "transform_s": round(transform, 1),
                }
                print(json.dumps({name: results[name]}), flush=True)
    results["load_average_1m"] = round(os.getloadavg()[0], 1)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

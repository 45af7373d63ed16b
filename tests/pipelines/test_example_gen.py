"""ExampleGen's inputs: CSV, Parquet and TFRecords of tf.Example, one file or a prefix, on any store, and
TFX's span patterns ({SPAN}, {YYYY}{MM}{DD}) with the newest span read by default. The step's own function
runs in this process (no chain)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pipelines.penguins.records import read_split, tfrecord

from fixtures.storage import StorageServer
from slipway.datastats import statistics

pytestmark = pytest.mark.tensorflow

PENGUINS_CSV = Path(str(resources.files("palmerpenguins") / "data" / "penguins.csv"))
ROWS = 344


def run_example_gen(data_uri: str, out: Path, span: int = -1) -> tuple[dict[str, Any], list[dict]]:
    from kfp.dsl import Dataset
    from pipelines.penguins.components import example_gen

    examples = Dataset(uri=str(out))
    lineage = example_gen.python_func(data_uri=data_uri, data_span=span, eval_buckets=30, examples=examples)
    return dict(examples.metadata), json.loads(lineage)


def eval_examples(out: Path) -> set[tuple[tuple[str, str], ...]]:
    from tfx_bsl.coders import example_coder

    return {
        tuple(sorted((k, "" if v is None else str(v.tolist())) for k, v in example.items()))
        for example in map(example_coder.ExampleToNumpyDict, read_split(str(out), "eval"))
    }


def penguins_table(rows: int = ROWS) -> pa.Table:
    return statistics.read_csv([PENGUINS_CSV.read_bytes()]).slice(0, rows)


def write_parquet(path: Path, rows: int = ROWS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(penguins_table(rows), path)


def tfrecord_bytes(rows: int = ROWS) -> bytes:
    from tfx_bsl.coders import example_coder

    batch = statistics.as_record_batch(penguins_table(rows))
    return b"".join(tfrecord(r) for r in example_coder.RecordBatchToExamplesEncoder().encode(batch))


def test_csv_parquet_and_tfrecord_give_the_same_examples(tmp_path: Path) -> None:
    write_parquet(tmp_path / "in" / "penguins.parquet")
    (tmp_path / "in" / "penguins.tfrecord.gz").write_bytes(gzip.compress(tfrecord_bytes()))
    csv_meta, _ = run_example_gen(f"file://{PENGUINS_CSV}", tmp_path / "csv")
    parquet_meta, lineage = run_example_gen(f"file://{tmp_path}/in/penguins.parquet", tmp_path / "parquet")
    record_meta, _ = run_example_gen(str(tmp_path / "in" / "penguins.tfrecord.gz"), tmp_path / "tfrecord")
    for meta in (csv_meta, parquet_meta, record_meta):
        assert meta["train_count"] + meta["eval_count"] == ROWS and meta["span"] == -1
    # Parquet rows are the CSV's rows: the same values decide the same split.
    assert parquet_meta["eval_count"] == csv_meta["eval_count"]
    assert eval_examples(tmp_path / "parquet") == eval_examples(tmp_path / "csv")
    assert 0.2 < record_meta["eval_count"] / ROWS < 0.4
    assert lineage[0]["uri"] == f"file://{tmp_path}/in/penguins.parquet"


def test_a_prefix_of_mixed_formats_is_refused(tmp_path: Path) -> None:
    write_parquet(tmp_path / "in" / "a.parquet")
    (tmp_path / "in" / "b.csv").write_bytes(PENGUINS_CSV.read_bytes())
    with pytest.raises(ValueError, match="one data format at a time, found: csv, parquet"):
        run_example_gen(f"file://{tmp_path}/in", tmp_path / "out")


def test_the_newest_span_is_read_unless_one_is_named(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_parquet(data / "span-1" / "part-0.parquet")
    write_parquet(data / "span-2" / "part-0.parquet", rows=100)
    write_parquet(data / "span-2" / "part-1.parquet", rows=20)
    (data / "span-2" / "_SUCCESS").write_text("")  # not data: skipped
    write_parquet(data / "span-10" / "part-0.parquet", rows=50)  # spans are numbers, not strings
    pattern = f"file://{data}/span-{{SPAN}}/*"
    newest, lineage = run_example_gen(pattern, tmp_path / "newest")
    assert newest["span"] == 10 and newest["train_count"] + newest["eval_count"] == 50
    assert [entry["uri"] for entry in lineage] == [f"file://{data}/span-10/part-0.parquet"]
    named, lineage = run_example_gen(pattern, tmp_path / "named", span=2)
    assert named["span"] == 2 and named["train_count"] + named["eval_count"] == 120
    assert len(lineage) == 2
    with pytest.raises(ValueError, match=r"no span 3 \(found: 1, 2, 10\)"):
        run_example_gen(pattern, tmp_path / "missing", span=3)


def test_date_partitions_are_spans_numbered_by_day(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for day, rows in (("2026-10-31", 344), ("2026-11-02", 30), ("2026-11-01", 60)):
        year, month, date = day.split("-")
        (data / year / month / date).mkdir(parents=True)
        (data / year / month / date / "penguins.csv").write_bytes(
            b"".join(PENGUINS_CSV.read_bytes().splitlines(keepends=True)[: rows + 1])
        )
    meta, _ = run_example_gen(f"file://{data}/{{YYYY}}/{{MM}}/{{DD}}/*.csv", tmp_path / "out")
    assert meta["span"] == 20759 and meta["train_count"] + meta["eval_count"] == 30  # 2026-11-02
    with pytest.raises(ValueError, match="needs all of"):
        run_example_gen(f"file://{data}/{{YYYY}}/{{MM}}/*.csv", tmp_path / "bad")


@pytest.fixture
def s3_env(s3_server: StorageServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in s3_server.credentials.to_env().items():
        monkeypatch.setenv(name, value)
    yield s3_server.new_bucket()


def test_spans_of_parquet_and_tfrecords_on_s3(s3_env: str, s3_server: StorageServer, tmp_path: Path) -> None:
    from slipway.storage import open_store

    store = open_store(f"s3://{s3_env}/landing", s3_server.credentials)
    write_parquet(tmp_path / "p.parquet", rows=200)
    store.write_bytes("span-1/data.parquet", (tmp_path / "p.parquet").read_bytes())
    store.write_bytes("span-2/data-0.tfrecord", tfrecord_bytes(150))
    store.write_bytes("span-2/data-1.tfrecord", tfrecord_bytes(10))
    meta, lineage = run_example_gen(f"s3://{s3_env}/landing/span-{{SPAN}}", tmp_path / "out")
    assert meta["span"] == 2 and meta["train_count"] + meta["eval_count"] == 160
    assert [e["uri"] for e in lineage] == [
        f"s3://{s3_env}/landing/span-2/data-0.tfrecord",
        f"s3://{s3_env}/landing/span-2/data-1.tfrecord",
    ]
    older, _ = run_example_gen(f"s3://{s3_env}/landing/span-{{SPAN}}", tmp_path / "older", span=1)
    assert older["train_count"] + older["eval_count"] == 200

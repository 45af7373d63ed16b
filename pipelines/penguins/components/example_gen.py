"""ExampleGen: CSV, Parquet or TFRecords of tf.Example in, TFRecords of `tf.train.Example` split train/eval
out, with the data's lineage."""

from kfp.dsl import Dataset, Output

from pipelines.penguins.components.base import component
from pipelines.penguins.records import parse_tfrecords, tfrecord
from pipelines.penguins.sources import data_format, select_inputs
from pipelines.penguins.uris import read_uri


def examples_and_keys(sources: "list[tuple[str, bytes]]") -> "tuple[list[bytes], list[bytes]]":
    """Serialized tf.Examples and, for each, the bytes its split is decided by. CSV and Parquet rows are
    encoded with tfx-bsl and keyed by their values' text (a tf.Example's feature map has no fixed byte
    order); TFRecord examples are kept as they are and keyed by their own bytes."""
    import gzip
    import io

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from tfx_bsl.coders import example_coder

    from slipway.datastats import statistics  # shared with the operator's drift trigger

    kinds = {data_format(uri) for uri, _ in sources}
    if len(kinds) != 1:
        raise ValueError(f"one data format at a time, found: {', '.join(sorted(map(str, kinds)))}")
    (kind,) = kinds
    if kind == "tfrecord":
        records = [
            record
            for uri, raw in sources
            for record in parse_tfrecords(gzip.decompress(raw) if uri.endswith(".gz") else raw)
        ]
        return records, records
    if kind == "csv":
        table = statistics.read_csv([raw for _, raw in sources])
    else:
        tables = [pq.read_table(io.BytesIO(raw)) for _, raw in sources]
        table = pa.concat_tables(tables, promote_options="permissive")
    serialized = example_coder.RecordBatchToExamplesEncoder().encode(statistics.as_record_batch(table))
    row_text = pc.binary_join_element_wise(
        *[pc.fill_null(table.column(name).cast(pa.string()), "") for name in table.column_names], "\x1f"
    )
    return list(serialized), [text.encode() for text in row_text.to_pylist()]


@component
def example_gen(data_uri: str, data_span: int, eval_buckets: int, examples: Output[Dataset]) -> str:
    """ExampleGen: CSV, Parquet or TFRecord (of tf.Example, optionally .gz) files at a file://, s3://, gs://
    or az:// URI -- one file, a directory or prefix, or a pattern with {SPAN} or {YYYY}{MM}{DD} of which the
    newest span is read (or `data_span` when it is 0 or more) -- to `tf.train.Example` TFRecords split
    train/eval by a hash of each example (deterministic: its content alone decides its side, out of 100
    buckets). Returns the data lineage as JSON: [{"uri", "fingerprint"}]."""
    import hashlib
    import json
    import os

    uris, span = select_inputs(data_uri, data_span)
    if not uris:
        raise ValueError(f"{data_uri}: no CSV, Parquet or TFRecord files")
    sources = [(uri, read_uri(uri)) for uri in uris]
    serialized, keys = examples_and_keys(sources)
    counts = {"train": 0, "eval": 0}
    handles = {}
    for split in counts:
        os.makedirs(os.path.join(examples.path, f"Split-{split}"), exist_ok=True)
        handles[split] = open(
            os.path.join(examples.path, f"Split-{split}", "data_tfrecord-00000-of-00001"), "wb"
        )
    for record, key in zip(serialized, keys, strict=True):
        bucket = int.from_bytes(hashlib.md5(key).digest()[:8], "big") % 100
        split = "eval" if bucket < eval_buckets else "train"
        handles[split].write(tfrecord(record))
        counts[split] += 1
    for handle in handles.values():
        handle.close()
    lineage = [
        {"uri": uri, "fingerprint": "sha256:" + hashlib.sha256(raw).hexdigest()} for uri, raw in sources
    ]
    examples.metadata.update(
        {"split_names": '["train", "eval"]', "tfx_type": "Examples", "payload_format": "FORMAT_TF_EXAMPLE"}
    )
    examples.metadata.update({f"{split}_count": n for split, n in counts.items()})
    examples.metadata["span"] = span
    print(f"example_gen: {len(uris)} file(s), span {span}, {counts}")
    return json.dumps(lineage)

"""ExampleGen: CSV in, TFRecords of `tf.train.Example` split train/eval out, with the data's lineage."""

from kfp.dsl import Dataset, Output

from pipelines.penguins.components.base import component
from pipelines.penguins.records import tfrecord
from pipelines.penguins.uris import local_path, read_uri


def read_sources(uri: str) -> list[tuple[str, bytes]]:
    """(URI, bytes) of each CSV file at uri: one file, a directory of *.csv, or an object-storage prefix."""
    import os

    path = local_path(uri)
    if path is not None and os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.endswith(".csv"))
        return [(f"file://{os.path.join(path, n)}", read_uri(os.path.join(path, n))) for n in names]
    if path is not None:
        return [(f"file://{path}", read_uri(path))]
    if uri.endswith(".csv"):
        return [(uri, read_uri(uri))]
    from slipway.storage import open_store  # s3://, gs://, az://: the operator's storage layer

    store = open_store(uri)
    return [(info.uri, store.read_bytes(info.key)) for info in store.list() if info.key.endswith(".csv")]


@component
def example_gen(data_uri: str, eval_buckets: int, examples: Output[Dataset]) -> str:
    """ExampleGen: CSV at a file://, s3://, gs:// or az:// URI (one file, or a prefix of *.csv files) ->
    `tf.train.Example` TFRecords split train/eval by a hash of each row's values (deterministic: a
    row's content alone decides its side, out of 100 buckets). Returns the data lineage as JSON:
    [{"uri", "fingerprint"}]."""
    import hashlib
    import json
    import os

    import pyarrow as pa
    import pyarrow.compute as pc
    from tfx_bsl.coders import example_coder

    from slipway.datastats import statistics  # shared with the operator's drift trigger

    sources = read_sources(data_uri)
    if not sources:
        raise ValueError(f"{data_uri}: no CSV files")
    table = statistics.read_csv([raw for _, raw in sources])
    batch = statistics.as_record_batch(table)
    serialized = example_coder.RecordBatchToExamplesEncoder().encode(batch)
    counts = {"train": 0, "eval": 0}
    handles = {}
    for split in counts:
        os.makedirs(os.path.join(examples.path, f"Split-{split}"), exist_ok=True)
        handles[split] = open(
            os.path.join(examples.path, f"Split-{split}", "data_tfrecord-00000-of-00001"), "wb"
        )
    # Hash the row's text, not the serialized example: a tf.Example's feature map has no fixed byte order.
    row_text = pc.binary_join_element_wise(
        *[pc.fill_null(table.column(name).cast(pa.string()), "") for name in table.column_names], "\x1f"
    )
    for record, text in zip(serialized, row_text.to_pylist(), strict=True):
        bucket = int.from_bytes(hashlib.md5(text.encode()).digest()[:8], "big") % 100
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
    return json.dumps(lineage)

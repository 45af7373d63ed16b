"""What kind of label a dataset has, from its examples: the Evaluator picks its metrics by it.

Shipped into the steps that call them (see components/base.py): imports inside, nothing module-level."""


def label_is_numeric(examples_path: str, label: str, split: str = "eval") -> bool:
    """True when the label is a number (int64 or float: a regression target), False when it is a string
    (a class name). Decided by the first examples of the split that carry the label; raises ValueError when
    none does. Integer class ids count as numbers: name classes with strings."""
    import os
    import struct

    import tensorflow as tf

    directory = os.path.join(examples_path, f"Split-{split}")
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as handle:
            while header := handle.read(12):
                (length,) = struct.unpack("<Q", header[:8])
                payload = handle.read(length)
                handle.read(4)
                feature = tf.train.Example.FromString(payload).features.feature.get(label)
                kind = feature.WhichOneof("kind") if feature is not None else None
                if kind == "bytes_list" and feature.bytes_list.value:
                    return False
                if kind in ("int64_list", "float_list") and getattr(feature, kind).value:
                    return True
    raise ValueError(f"label {label!r}: no example in {directory} has a value for it")

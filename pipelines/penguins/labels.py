"""What kind of model the label asks for: classification for a string label (its classes are the schema's
string domain), regression for a numeric one. The Trainer, the InfraValidator and the Evaluator decide
with the same function.

Shipped into the steps that call them (see components/base.py): imports inside, nothing module-level."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tensorflow_metadata.proto.v0 import schema_pb2


def label_kind(schema: "schema_pb2.Schema", label: str) -> str:
    """ "classification" (a BYTES label) or "regression" (INT or FLOAT); a label the schema lacks is a
    ValueError naming it."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    for feature in schema.feature:
        if feature.name == label:
            return "classification" if feature.type == schema_pb2.BYTES else "regression"
    names = ", ".join(sorted(f.name for f in schema.feature))
    raise ValueError(f"the label {label!r} is not a column of the data (columns: {names})")


def label_classes(schema: "schema_pb2.Schema", label: str) -> list[str]:
    """A classification label's classes, sorted: its string domain in the schema ([] without one)."""
    feature = next(f for f in schema.feature if f.name == label)
    domains = {d.name: list(d.value) for d in schema.string_domain}
    if feature.HasField("string_domain"):
        return sorted(feature.string_domain.value)
    return sorted(domains.get(feature.domain, []))

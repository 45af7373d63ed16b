"""ExampleGen's input: which files a data URI names -- one file, a directory or prefix, or a pattern with
TFX's span tokens ({SPAN}, or {YYYY}{MM}{DD} for date partitions) -- and what format they hold.

Shipped into the steps that call them (see components/base.py): imports inside, nothing module-level."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import re


def data_format(uri: str) -> str | None:
    """'csv', 'parquet' or 'tfrecord' (of tf.Example; '.gz' is GZIP-compressed) by the file name; None for
    any other file."""
    name = uri.rsplit("/", 1)[-1].lower()
    for suffix, kind in (
        (".csv", "csv"),
        (".parquet", "parquet"),
        (".tfrecord", "tfrecord"),
        (".tfrecords", "tfrecord"),
        (".tfrecord.gz", "tfrecord"),
        (".tfrecords.gz", "tfrecord"),
    ):
        if name.endswith(suffix):
            return kind
    return None


def pattern_regex(pattern: str) -> str:
    """A regular expression for the URIs a pattern names: {SPAN} is digits, {YYYY} {MM} {DD} a date, '*'
    any run of characters but '/'; a pattern that names a directory also matches the files below it."""
    import re

    tokens = {"{SPAN}": r"(?P<span>\d+)", "{YYYY}": r"(?P<yyyy>\d{4})", "{MM}": r"(?P<mm>\d{2})"}
    tokens |= {"{DD}": r"(?P<dd>\d{2})", "*": r"[^/]*"}
    parts = re.split(r"(\{SPAN\}|\{YYYY\}|\{MM\}|\{DD\}|\*)", pattern)
    return "^" + "".join(tokens.get(part, re.escape(part)) for part in parts) + r"(/.+)?$"


def span_of(match: "re.Match[str]") -> int:
    """The span a matched URI belongs to: the {SPAN} number, or for a date the days since 1970-01-01 (as
    TFX numbers date-partitioned spans)."""
    import datetime

    found = match.groupdict()
    if found.get("span") is not None:
        return int(found["span"])
    date = datetime.date(int(found["yyyy"]), int(found["mm"]), int(found["dd"]))
    return (date - datetime.date(1970, 1, 1)).days


def listed_uris(base: str) -> list[str]:
    """Every file's URI below a directory or object-storage prefix."""
    from slipway.storage import open_store

    return [info.uri for info in open_store(base).list()]


def select_inputs(data_uri: str, span: int) -> tuple[list[str], int]:
    """The input files' URIs (sorted) and the span they form (-1 without span tokens).

    A pattern with {SPAN} or {YYYY}{MM}{DD} picks the newest span, or `span` when it is 0 or more; without
    tokens the URI is one file, or a directory or prefix of which every file of a known format is read
    ('*' may narrow the names)."""
    import re

    uri = data_uri if "://" in data_uri else f"file://{data_uri}"
    has_span = "{SPAN}" in uri
    has_date = all(token in uri for token in ("{YYYY}", "{MM}", "{DD}"))
    if has_span and has_date:
        raise ValueError(f"{data_uri}: use either {{SPAN}} or {{YYYY}}{{MM}}{{DD}}, not both")
    if not has_span and not has_date and any(t in uri for t in ("{YYYY}", "{MM}", "{DD}")):
        raise ValueError(f"{data_uri}: a date-partitioned pattern needs all of {{YYYY}}, {{MM}} and {{DD}}")
    first_token = min((uri.find(t) for t in ("{", "*") if t in uri), default=-1)
    if first_token < 0:
        if data_format(uri) is not None:
            return [uri], -1
        listed = listed_uris(uri)
        files = [u for u in listed if data_format(u) is not None]
        return sorted(files), -1
    base = uri[: uri.rfind("/", 0, first_token)]
    regex = re.compile(pattern_regex(uri))
    matches = [(u, regex.match(u)) for u in listed_uris(base)]
    found = [(u, m) for u, m in matches if m is not None and data_format(u) is not None]
    if not has_span and not has_date:
        return sorted(u for u, _ in found), -1
    spans = sorted({span_of(m) for _, m in found})
    if not spans:
        return [], -1
    chosen = spans[-1] if span < 0 else span
    if chosen not in spans:
        raise ValueError(f"{data_uri}: no span {chosen} (found: {', '.join(map(str, spans))})")
    return sorted(u for u, m in found if span_of(m) == chosen), chosen

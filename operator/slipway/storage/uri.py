"""Parsing storage URIs: s3://bucket/prefix, gs://bucket/prefix, az://container/prefix, file:///abs/path."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from slipway.formats import STORAGE_SCHEMES, uri_problem

SCHEMES = STORAGE_SCHEMES


@dataclass(frozen=True)
class ParsedUri:
    """A storage location. `prefix` has no leading slash; for file:// `bucket` is empty and `prefix` is the
    absolute path. `account` is the Azure storage account when the URI names one (az://container@account/)."""

    scheme: str
    bucket: str
    prefix: str
    account: str | None = None

    @property
    def root(self) -> str:
        """The URI of the bucket (or of / for file://), without the prefix."""
        if self.scheme == "file":
            return "file://"
        at = f"@{self.account}" if self.account else ""
        return f"{self.scheme}://{self.bucket}{at}"

    def uri(self, key: str = "") -> str:
        """The URI of `key` (a path below the bucket root, as the backend stores it)."""
        if self.scheme == "file":
            return f"file://{key}" if key.startswith("/") else f"file:///{key}"
        return f"{self.root}/{key}" if key else self.root

    def __str__(self) -> str:
        return self.uri(self.prefix)


def parse_uri(uri: str) -> ParsedUri:
    """Parses a storage URI; a ValueError names the part that is wrong. The rules are those admission
    applies to every URI in a spec (slipway.formats), so what was admitted parses."""
    if not isinstance(uri, str) or not uri:
        raise ValueError(f"storage URI {uri!r}: empty; expected s3://, gs://, az:// or file://")
    if "://" not in uri:
        raise ValueError(
            f"storage URI {uri!r}: no scheme; expected one of {', '.join(s + '://' for s in SCHEMES)}"
        )
    scheme, _, rest = uri.partition("://")
    if scheme not in SCHEMES:
        raise ValueError(
            f"storage URI {uri!r}: unsupported scheme {scheme!r}; expected one of {', '.join(SCHEMES)}"
        )
    problem = uri_problem(uri)
    if problem is not None:
        raise ValueError(f"storage URI {uri!r}: {problem}")
    if scheme == "file":
        return ParsedUri("file", "", urlsplit(uri).path)
    bucket, _, prefix = rest.partition("/")
    bucket, _, account = bucket.partition("@")
    return ParsedUri(scheme, bucket, prefix, account or None)

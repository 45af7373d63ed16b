"""Parsing storage URIs: s3://bucket/prefix, gs://bucket/prefix, az://container/prefix, file:///abs/path."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

SCHEMES = ("s3", "gs", "az", "file")

# S3 and GCS bucket names, Azure container names: lowercase letters, digits, dots, dashes, underscores
# (GCS allows underscores; Azure only dashes). The backends' own servers reject what is left.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]$")
_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")


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
    """Parses a storage URI; a ValueError names the part that is wrong."""
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
    if "\x00" in rest:
        raise ValueError(f"storage URI {uri!r}: contains a NUL character")
    if scheme == "file":
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"storage URI {uri!r}: file:// URIs take no host (use file:///absolute/path)")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise ValueError(f"storage URI {uri!r}: file:// needs an absolute path (file:///absolute/path)")
        return ParsedUri("file", "", path)
    bucket, _, prefix = rest.partition("/")
    account: str | None = None
    if scheme == "az" and "@" in bucket:
        bucket, _, account = bucket.partition("@")
        if not _ACCOUNT.match(account):
            raise ValueError(
                f"storage URI {uri!r}: Azure storage account {account!r} "
                "must be 3-24 lowercase letters or digits"
            )
    if not bucket:
        kind = "container" if scheme == "az" else "bucket"
        raise ValueError(f"storage URI {uri!r}: missing {kind} name ({scheme}://<{kind}>/<prefix>)")
    if not _BUCKET.match(bucket):
        kind = "container" if scheme == "az" else "bucket"
        raise ValueError(
            f"storage URI {uri!r}: invalid {kind} name {bucket!r} "
            "(3-63 lowercase letters, digits, dots or dashes, starting and ending with a letter or digit)"
        )
    if "//" in prefix:
        raise ValueError(f"storage URI {uri!r}: empty path segment ('//') in prefix {prefix!r}")
    if any(segment in (".", "..") for segment in prefix.split("/")):
        raise ValueError(f"storage URI {uri!r}: '.' or '..' segment in prefix {prefix!r}")
    return ParsedUri(scheme, bucket, prefix, account)

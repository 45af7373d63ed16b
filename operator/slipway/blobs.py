"""Reading objects by their full URI for the operator (manifests, pipeline specs, data fingerprints),
on top of `slipway.storage`, with every failure as one ObjectError naming the URI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from slipway.storage import ObjectInfo, ObjectStore, open_store, parse_uri

T = TypeVar("T")


class ObjectError(RuntimeError):
    """A URI that cannot be read; the message names the URI, never credentials."""


def local_path(uri: str) -> Path:
    try:
        parsed = parse_uri(uri)
    except ValueError as error:
        raise ObjectError(str(error)) from error
    if parsed.scheme != "file":
        raise ObjectError(f"{uri}: not a file:// URI")
    return Path(parsed.prefix)


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])


def _on(
    uri: str, verb: str, action: Callable[[ObjectStore, str], T], credentials: Any, whole: bool = False
) -> T:
    """Runs `action(store, key)` for the object at `uri` (or, with `whole`, the prefix itself)."""
    parent, key = (
        (uri, "") if whole else (uri.rstrip("/").rpartition("/")[0], uri.rstrip("/").rpartition("/")[2])
    )
    try:
        return action(open_store(parent, credentials), key)
    except Exception as error:
        raise ObjectError(f"cannot {verb} {uri}: {error}") from error


def read_bytes(uri: str, credentials: Any = None) -> bytes:
    return _on(uri, "read", lambda store, key: store.read_bytes(key), credentials)


def exists(uri: str, credentials: Any = None) -> bool:
    return _on(uri, "check", lambda store, key: store.exists(key), credentials)


def fingerprint(uri: str, credentials: Any = None) -> str:
    """A digest of the listing under a prefix (names, sizes, change markers): changes when data lands."""
    return _on(uri, "list", lambda store, key: store.fingerprint(key), credentials, whole=True)


def list_objects(uri: str, credentials: Any = None) -> list[ObjectInfo]:
    """Every object under a prefix, by key."""
    return _on(uri, "list", lambda store, _: list(store.list()), credentials, whole=True)

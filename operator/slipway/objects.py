"""Reading objects by URI for the operator (manifests, pipeline specs, data fingerprints).

Delegates to `slipway.storage` (S3, GCS, Azure Blob, file) when that package provides `open_store`;
file:// always works, so the local executor and tests need no object store."""

from __future__ import annotations

import hashlib
import importlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


class ObjectError(RuntimeError):
    """A URI that cannot be read; the message names the URI, never credentials."""


def _storage() -> Any | None:
    try:
        module = importlib.import_module("slipway.storage")
    except ImportError:
        return None
    return module if hasattr(module, "open_store") else None


def local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise ObjectError(f"{uri}: not a file:// URI")
    return Path(parsed.path)


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])


def read_bytes(uri: str, credentials: Any = None) -> bytes:
    """Reads one object by its full URI."""
    storage = _storage()
    if uri.startswith("file://") and storage is None:
        try:
            return local_path(uri).read_bytes()
        except OSError as error:
            raise ObjectError(f"cannot read {uri}: {error.strerror}") from error
    if storage is None:
        raise ObjectError(f"cannot read {uri}: no storage backend for this scheme is installed")
    parent, _, key = uri.rstrip("/").rpartition("/")
    try:
        data: bytes = storage.open_store(parent, credentials).read_bytes(key)
    except Exception as error:
        raise ObjectError(f"cannot read {uri}: {error}") from error
    return data


def exists(uri: str, credentials: Any = None) -> bool:
    storage = _storage()
    if storage is None:
        return uri.startswith("file://") and local_path(uri).exists()
    parent, _, key = uri.rstrip("/").rpartition("/")
    try:
        result: bool = storage.open_store(parent, credentials).exists(key)
    except Exception as error:
        raise ObjectError(f"cannot check {uri}: {error}") from error
    return result


def fingerprint(uri: str, credentials: Any = None) -> str:
    """A digest of the listing under a prefix (names, sizes, change markers): changes when data lands."""
    storage = _storage()
    if storage is not None:
        try:
            value: str = storage.open_store(uri, credentials).fingerprint("")
        except Exception as error:
            raise ObjectError(f"cannot list {uri}: {error}") from error
        return value
    root = local_path(uri)
    if not root.exists():
        raise ObjectError(f"cannot list {uri}: no such file or directory")
    digest = hashlib.sha256()
    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.relative_to(root.parent)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return "sha256:" + digest.hexdigest()


def file_digest(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256(Path(path).read_bytes())
    return "sha256:" + digest.hexdigest()

"""The one interface every backend implements, and the logic they share (keys, fingerprints, retries)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol, TypeVar

from slipway.storage.errors import ObjectNotFound, StorageError, TransientError
from slipway.storage.uri import ParsedUri

T = TypeVar("T")
_ZEROS = bytes(1 << 20)


def _all_zeros(data: bytes | bytearray | memoryview) -> bool:
    """memcmp against zeros (bytes equality; memoryview equality compares item by item, 4x slower)."""
    size = len(data)
    if size > len(_ZEROS):
        return False
    raw = data if isinstance(data, bytes | bytearray) else bytes(data)
    return raw == (_ZEROS if size == len(_ZEROS) else bytes(size))


@dataclass(frozen=True)
class ObjectInfo:
    """One object. `key` is relative to the store's prefix; `etag` changes whenever the content does;
    `md5` is the hex MD5 of the content when the store knows it (not for S3 multipart uploads); `crc32c` the
    hex CRC32C (GCS reports both; it is far cheaper to check)."""

    key: str
    size: int
    etag: str
    uri: str
    md5: str | None = None
    updated: datetime | None = None
    crc32c: str | None = None


class Hasher(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> object: ...

    def hexdigest(self) -> str: ...


class OffsetWriter:
    """A file-like sink that writes at a fixed offset of an open file descriptor (os.pwrite), so several
    threads can fill disjoint ranges of one file. Optionally hashes what passes through. With `over_hole`
    (the range lies in a freshly truncated, sparse file) all-zero chunks are skipped: they read back as zeros
    anyway, and sparse files stay sparse."""

    def __init__(
        self, fd: int, offset: int = 0, digest: Callable[[], Hasher] | None = None, over_hole: bool = False
    ) -> None:
        self.fd = fd
        self.offset = offset
        self.written = 0
        self.new_digest = digest
        self.digest = digest() if digest else None
        self.over_hole = over_hole

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data)
        total = len(view)
        if self.over_hole and _all_zeros(data):
            self.written += total
            view = view[total:]
        while view:
            count = os.pwrite(self.fd, view, self.offset + self.written)
            self.written += count
            view = view[count:]
        if self.digest is not None:
            self.digest.update(data)
        return total

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        return None

    def tell(self) -> int:
        return self.written

    def reset(self) -> None:
        """Before a retry: start the range again from its beginning."""
        self.written = 0
        self.digest = self.new_digest() if self.new_digest else None


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 10.0

    def call(self, operation: Callable[[], T], is_transient: Callable[[BaseException], bool]) -> T:
        """Runs `operation`, retrying transient failures with exponential backoff and full jitter."""
        for attempt in range(1, self.attempts + 1):
            try:
                return operation()
            except Exception as error:
                if attempt == self.attempts or not is_transient(error):
                    raise
                time.sleep(random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt)))
        raise AssertionError("unreachable")


def listing_fingerprint(objects: list[ObjectInfo]) -> str:
    """A stable digest of a listing: keys, sizes and etags, in key order."""
    digest = hashlib.sha256()
    for info in sorted(objects, key=lambda o: o.key):
        digest.update(f"{info.key}\0{info.size}\0{info.etag}\n".encode())
    return "sha256:" + digest.hexdigest()


class ObjectStore(ABC):
    """A bucket (or container, or directory) and a prefix inside it. Keys are relative to the prefix and use
    '/' separators; a key may also be given as a full URI below the prefix."""

    def __init__(self, location: ParsedUri, retry: RetryPolicy | None = None) -> None:
        self.location = location
        self.retry = retry or RetryPolicy()
        prefix = location.prefix
        self._prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"

    # ---- keys ----
    @property
    def uri(self) -> str:
        return str(self.location)

    def full_key(self, key: str) -> str:
        """The backend's key for `key`: relative to the prefix, or a full URI below the store. The store's own
        URI (without a trailing slash) names the object sitting exactly at the prefix, so that
        `open_store(object_uri).read_bytes(object_uri)` reads that object."""
        if "://" in key:
            own = self.location.uri(self._prefix)
            if self.location.prefix and key == str(self.location) and not key.endswith("/"):
                return self.location.prefix
            if not key.startswith(own):
                raise ValueError(f"{key}: not under {own}")
            key = key[len(own) :]
        key = key.lstrip("/")
        if any(part in (".", "..") for part in key.split("/")):
            raise ValueError(f"{self.uri_of(key)}: '.' or '..' in key")
        return self._prefix + key

    def relative_key(self, full_key: str) -> str:
        return full_key[len(self._prefix) :]

    def uri_of(self, key: str) -> str:
        return self.location.uri(self._prefix + key.lstrip("/"))

    def info(
        self,
        full_key: str,
        size: int,
        etag: str,
        md5: str | None,
        updated: datetime | None,
        crc32c: str | None = None,
    ) -> ObjectInfo:
        uri = self.location.uri(full_key)
        return ObjectInfo(self.relative_key(full_key), size, etag, uri, md5, updated, crc32c)

    # ---- error mapping, per backend ----
    @abstractmethod
    def translate(self, error: Exception, uri: str) -> StorageError | None:
        """The StorageError for an SDK exception, or None when it is not a storage error."""

    @abstractmethod
    def is_transient(self, error: BaseException) -> bool:
        """Throttling, 5xx, timeouts and dropped connections."""

    def _run(self, uri: str, operation: Callable[[], T]) -> T:
        try:
            return self.retry.call(operation, self.is_transient)
        except StorageError:
            raise
        except Exception as error:
            translated = self.translate(error, uri)
            if translated is None and self.is_transient(error):
                translated = TransientError(uri, f"{type(error).__name__}: {_short(error)}")
            if translated is None:
                raise
            raise translated from error

    # ---- primitives, per backend (full keys) ----
    @abstractmethod
    def _list(self, full_prefix: str) -> Iterator[ObjectInfo]: ...

    @abstractmethod
    def _stat(self, full_key: str) -> ObjectInfo | None: ...

    @abstractmethod
    def _read(self, full_key: str) -> bytes: ...

    @abstractmethod
    def _write(self, full_key: str, data: bytes) -> None: ...

    @abstractmethod
    def _download(self, full_key: str, out: BinaryIO, start: int = 0, length: int | None = None) -> None:
        """Streams the object (or `length` bytes from `start`) into `out`."""

    @abstractmethod
    def _upload_file(self, full_key: str, path: str) -> None: ...

    @abstractmethod
    def _delete(self, full_key: str) -> None: ...

    # ---- the interface ----
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix` (a string prefix, not just a directory), by key."""
        full = self.full_key(prefix) if prefix else self._prefix
        uri = self.location.uri(full)
        # Listing pages are fetched lazily; the whole listing is retried as one operation.
        return iter(self._run(uri, lambda: sorted(self._list(full), key=lambda info: info.key)))

    def stat(self, key: str) -> ObjectInfo | None:
        full = self.full_key(key)
        return self._run(self.location.uri(full), lambda: self._stat(full))

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def read_bytes(self, key: str) -> bytes:
        full = self.full_key(key)
        return self._run(self.location.uri(full), lambda: self._read(full))

    def read_text(self, key: str, encoding: str = "utf-8") -> str:
        return self.read_bytes(key).decode(encoding)

    def write_bytes(self, key: str, data: bytes) -> None:
        full = self.full_key(key)
        self._run(self.location.uri(full), lambda: self._write(full, bytes(data)))

    def upload_file(self, key: str, path: str | os.PathLike[str]) -> None:
        full = self.full_key(key)
        self._run(self.location.uri(full), lambda: self._upload_file(full, os.fspath(path)))

    def download_range(self, key: str, out: OffsetWriter, start: int = 0, length: int | None = None) -> None:
        """Downloads into `out`, starting over from `start` when a transient failure interrupts it."""
        full = self.full_key(key)

        def attempt() -> None:
            out.reset()
            self._download(full, out, start, length)  # type: ignore[arg-type]

        self._run(self.location.uri(full), attempt)

    def delete(self, key: str) -> None:
        """Deletes one object; deleting what is absent is not an error."""
        full = self.full_key(key)
        with contextlib.suppress(ObjectNotFound):
            self._run(self.location.uri(full), lambda: self._delete(full))

    def delete_prefix(self, prefix: str = "") -> int:
        objects = list(self.list(prefix))
        for info in objects:
            self.delete(info.key)
        return len(objects)

    def fingerprint(self, prefix: str = "") -> str:
        """sha256 over (key, size, etag) of everything under `prefix`: changes when data lands or changes.
        When nothing lies below the prefix but an object sits exactly at it, that object's fingerprint."""
        objects = list(self.list(prefix))
        if not objects and not prefix and self.location.prefix and not self.location.prefix.endswith("/"):
            single = self._run(self.uri, lambda: self._stat(self.location.prefix))
            if single is not None:
                objects = [single]
        return listing_fingerprint(objects)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


def is_network_error(error: BaseException) -> bool:
    """Dropped connections, truncated bodies and timeouts, however deep in the HTTP stack they surface."""
    import http.client

    import requests
    from urllib3.exceptions import HTTPError as Urllib3Error

    return isinstance(
        error,
        ConnectionError
        | TimeoutError
        | http.client.HTTPException
        | Urllib3Error
        | requests.ConnectionError
        | requests.Timeout
        | requests.exceptions.ChunkedEncodingError,
    )


def _short(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return text[:300]

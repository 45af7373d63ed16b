"""file:///abs/path: a directory tree as an object store (local runs, tests, a PersistentVolume)."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import BinaryIO

from slipway.storage.base import ObjectInfo, ObjectStore
from slipway.storage.errors import AccessDenied, ObjectNotFound, StorageError

_COPY_BUFFER = 1 << 20


class FileStore(ObjectStore):
    """Keys are paths below the prefix directory. etag = mtime and size, so rewriting a file changes it."""

    def _path(self, full_key: str) -> str:
        return full_key if full_key.startswith("/") else "/" + full_key

    def _info(self, full_key: str, stat: os.stat_result) -> ObjectInfo:
        updated = datetime.fromtimestamp(stat.st_mtime, UTC)
        return self.info(full_key, stat.st_size, f"{stat.st_mtime_ns:x}-{stat.st_size:x}", None, updated)

    def translate(self, error: Exception, uri: str) -> StorageError | None:
        if isinstance(error, FileNotFoundError | NotADirectoryError | IsADirectoryError):
            return ObjectNotFound(uri, "no such object")
        if isinstance(error, PermissionError):
            return AccessDenied(uri, "permission denied")
        if isinstance(error, OSError):
            return StorageError(uri, error.strerror or type(error).__name__)
        return None

    def is_transient(self, error: BaseException) -> bool:
        return isinstance(error, OSError) and error.errno in (errno.EAGAIN, errno.EINTR)

    def _list(self, full_prefix: str) -> Iterator[ObjectInfo]:
        path = self._path(full_prefix)
        directory = path if path.endswith("/") else os.path.dirname(path)
        if not os.path.isdir(directory):
            return
        for root, dirs, files in os.walk(directory):
            dirs.sort()
            for name in sorted(files):
                candidate = os.path.join(root, name)
                if not candidate.startswith(path) or ".slipway-tmp-" in name:
                    continue
                try:
                    stat = os.stat(candidate)
                except FileNotFoundError:  # removed while listing
                    continue
                yield self._info(candidate, stat)

    def _stat(self, full_key: str) -> ObjectInfo | None:
        path = self._path(full_key)
        try:
            stat = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return self._info(full_key, stat) if os.path.isfile(path) else None

    def _read(self, full_key: str) -> bytes:
        with open(self._path(full_key), "rb") as handle:
            return handle.read()

    def _replace_atomically(self, full_key: str, fill: Callable[[BinaryIO], object]) -> None:
        path = self._path(full_key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".slipway-tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                fill(handle)
            os.replace(temp, path)
        except BaseException:
            os.unlink(temp)
            raise

    def _write(self, full_key: str, data: bytes) -> None:
        self._replace_atomically(full_key, lambda handle: handle.write(data))

    def _upload_file(self, full_key: str, path: str) -> None:
        def fill(handle: BinaryIO) -> None:
            with open(path, "rb") as source:
                shutil.copyfileobj(source, handle, _COPY_BUFFER)

        self._replace_atomically(full_key, fill)

    def _download(self, full_key: str, out: BinaryIO, start: int = 0, length: int | None = None) -> None:
        with open(self._path(full_key), "rb") as handle:
            handle.seek(start)
            remaining = length
            while remaining is None or remaining > 0:
                chunk = handle.read(_COPY_BUFFER if remaining is None else min(_COPY_BUFFER, remaining))
                if not chunk:
                    break
                out.write(chunk)
                if remaining is not None:
                    remaining -= len(chunk)

    def _delete(self, full_key: str) -> None:
        os.unlink(self._path(full_key))

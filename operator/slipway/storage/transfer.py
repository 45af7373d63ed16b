"""Moving trees of objects: parallel downloads (ranged for large objects), uploads, store-to-store copies."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from slipway.storage.base import Hasher, ObjectInfo, ObjectStore, OffsetWriter
from slipway.storage.errors import IntegrityError, StorageError

if TYPE_CHECKING:
    from slipway.storage.credentials import StorageCredentials

MiB = 1 << 20
DEFAULT_PART_SIZE = 16 * MiB
DEFAULT_MULTIPART_THRESHOLD = 32 * MiB


@dataclass
class TransferProgress:
    """Counters updated by the worker threads; read them from any thread."""

    total_bytes: int = 0
    total_files: int = 0
    done_bytes: int = 0
    done_files: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, nbytes: int = 0, files: int = 0) -> None:
        with self._lock:
            self.done_bytes += nbytes
            self.done_files += files


@dataclass(frozen=True)
class Part:
    """`length` bytes of `info` from `start`; `parts` is how many ranges the object was split into."""

    info: ObjectInfo
    path: str
    start: int
    length: int
    parts: int


def local_path_for(dest_dir: str, relative_key: str, uri: str) -> str:
    """Where an object lands below `dest_dir`; keys that would escape it are refused."""
    if not relative_key or relative_key.startswith("/") or "\x00" in relative_key:
        raise StorageError(uri, "object name cannot be a local file name")
    parts = relative_key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise StorageError(uri, "object name has an empty, '.' or '..' path segment; refusing to write it")
    return os.path.join(dest_dir, *parts)


def plan_parts(
    objects: Iterable[ObjectInfo], dest_dir: str, strip: str, part_size: int, multipart_threshold: int
) -> list[Part]:
    """One part per small object, `ceil(size / part_size)` parts per large one; large objects first, so the
    long transfers start at once and the small files fill the gaps."""
    planned: list[Part] = []
    for info in sorted(objects, key=lambda o: (-o.size, o.key)):
        path = local_path_for(dest_dir, info.key[len(strip) :], info.uri)
        if info.size <= multipart_threshold:
            planned.append(Part(info, path, 0, info.size, 1))
            continue
        count = -(-info.size // part_size)
        for index in range(count):
            start = index * part_size
            planned.append(Part(info, path, start, min(part_size, info.size - start), count))
    return planned


def _check_no_file_directory_clash(objects: list[ObjectInfo]) -> None:
    keys = {o.key for o in objects}
    for info in objects:
        parent = info.key.rpartition("/")[0]
        while parent:
            if parent in keys:
                raise StorageError(info.uri, f"both an object and a directory named {parent!r}")
            parent = parent.rpartition("/")[0]


def download_tree(
    store: ObjectStore,
    dest_dir: str,
    prefix: str = "",
    *,
    workers: int = 16,
    part_size: int = DEFAULT_PART_SIZE,
    multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
    verify: bool = True,
    progress: TransferProgress | None = None,
) -> list[ObjectInfo]:
    """Downloads every object under `prefix` into `dest_dir` (keys relative to `prefix` become paths).
    Sizes are always verified; MD5 too when `verify` and the store reports one. Not atomic by itself:
    the puller downloads into a temporary directory and renames it."""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    objects = [o for o in store.list(prefix) if not o.key.endswith("/")]
    _check_no_file_directory_clash(objects)
    progress = progress or TransferProgress()
    progress.total_bytes = sum(o.size for o in objects)
    progress.total_files = len(objects)
    parts = plan_parts(objects, dest_dir, prefix, part_size, multipart_threshold)
    for directory in sorted({os.path.dirname(p.path) for p in parts}):
        os.makedirs(directory, exist_ok=True)
    for part in parts:
        if part.parts > 1 and part.start == 0:
            with open(part.path, "wb") as handle:
                handle.truncate(part.info.size)  # sparse until the ranges land
    remaining = {
        info.key: -(-info.size // part_size) if info.size > multipart_threshold else 1 for info in objects
    }
    digests: dict[str, str] = {}
    lock = threading.Lock()

    def fetch(part: Part) -> None:
        single = part.parts == 1
        flags = os.O_WRONLY | (os.O_CREAT | os.O_TRUNC if single else 0)
        fd = os.open(part.path, flags, 0o644)
        try:
            check = checksum_for(part.info) if verify else None
            digest = check[1] if single and check else None
            writer = OffsetWriter(fd, part.start, digest, over_hole=not single)
            store.download_range(part.info.key, writer, part.start, part.length if not single else None)
            if writer.written != part.length:
                raise IntegrityError(
                    part.info.uri,
                    f"expected {part.length} bytes from offset {part.start}, got {writer.written}",
                )
            if writer.digest is not None:
                digests[part.info.key] = writer.digest.hexdigest()
        finally:
            os.close(fd)
        progress.add(part.length)
        with lock:
            remaining[part.info.key] -= 1
            finished = remaining[part.info.key] == 0
        if finished:
            _verify_file(part, verify, digests.get(part.info.key))
            progress.add(files=1)

    _run_all(fetch, parts, workers)
    return objects


class Crc32c:
    """google-crc32c (hardware CRC32C) behind the hashlib interface."""

    def __init__(self) -> None:
        import google_crc32c

        self._checksum = google_crc32c.Checksum()

    def update(self, data: bytes | bytearray | memoryview, /) -> None:
        self._checksum.update(data)

    def hexdigest(self) -> str:
        return bytes(self._checksum.digest()).hex()


def _md5() -> Hasher:
    return hashlib.md5(usedforsecurity=False)


def checksum_for(info: ObjectInfo) -> tuple[str, Callable[[], Hasher], str] | None:
    """The cheapest checksum the store reports for this object: (name, hasher factory, expected hex)."""
    if info.crc32c and _fast_crc32c():
        return ("CRC32C", Crc32c, info.crc32c)
    if info.md5:
        return ("MD5", _md5, info.md5)
    return None


def _fast_crc32c() -> bool:
    try:
        import google_crc32c
    except ImportError:
        return False
    return bool(google_crc32c.implementation == "c")


def _verify_file(part: Part, verify: bool, streamed: str | None) -> None:
    info = part.info
    size = os.stat(part.path).st_size
    if size != info.size:
        raise IntegrityError(info.uri, f"downloaded {size} bytes, the store reports {info.size}")
    check = checksum_for(info) if verify else None
    if check is None:
        return
    name, new_hasher, expected = check
    actual = streamed
    if actual is None:
        hasher = new_hasher()
        with open(part.path, "rb") as handle:
            while chunk := handle.read(8 << 20):
                hasher.update(chunk)
        actual = hasher.hexdigest()
    if actual != expected:
        raise IntegrityError(info.uri, f"{name} {actual} does not match the store's {expected}")


def _run_all(function: Callable[[Part], None], items: list[Part], workers: int) -> None:
    """Runs `function` over `items` on `workers` threads; the first failure cancels what has not started and
    is raised once the running ones have finished."""
    if not items:
        return
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="slipway-transfer") as pool:
        futures: list[Future[None]] = [pool.submit(function, item) for item in items]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in done if f.exception() is not None), None)
        if failed is not None:
            for future in pending:
                future.cancel()
            wait(pending)
            error = failed.exception()
            assert error is not None
            raise error


def upload_tree(
    source_dir: str | os.PathLike[str], store: ObjectStore, prefix: str = "", *, workers: int = 8
) -> int:
    """Uploads every file below `source_dir` to `prefix` in the store; returns how many."""
    root = os.fspath(source_dir)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    files = sorted(
        os.path.relpath(os.path.join(directory, name), root)
        for directory, _, names in os.walk(root)
        for name in names
    )

    def put(relative: str) -> None:
        store.upload_file(prefix + relative.replace(os.sep, "/"), os.path.join(root, relative))

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="slipway-upload") as pool:
        for future in [pool.submit(put, relative) for relative in files]:
            future.result()
    return len(files)


def copy_tree(
    source_uri: str,
    destination_uri: str,
    source_credentials: StorageCredentials | None = None,
    destination_credentials: StorageCredentials | None = None,
    *,
    workers: int = 8,
    in_memory_limit: int = 64 * MiB,
) -> int:
    """Copies every object under one URI to another, across backends; returns how many. Small objects pass
    through memory, large ones through a temporary file."""
    from slipway.storage import open_store

    source = open_store(source_uri, source_credentials)
    destination = open_store(destination_uri, destination_credentials)
    objects = [o for o in source.list() if not o.key.endswith("/")]

    def copy(info: ObjectInfo) -> None:
        if info.size <= in_memory_limit:
            destination.write_bytes(info.key, source.read_bytes(info.key))
            return
        with tempfile.NamedTemporaryFile(prefix="slipway-copy-") as temp:
            writer = OffsetWriter(temp.fileno())
            source.download_range(info.key, writer)
            destination.upload_file(info.key, temp.name)

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="slipway-copy") as pool:
        for future in [pool.submit(copy, info) for info in objects]:
            future.result()
    return len(objects)

"""`slipway pull <uri> <dir>`: download a model directory completely and atomically.

<dir> receives the objects *below* <uri>: `slipway pull s3://b/models/penguins/3 /models/penguins/3` leaves
/models/penguins/3/saved_model.pb and /models/penguins/3/variables/..., the `<base>/<version>/` layout
TF Serving loads with `--model_base_path=/models/penguins`.

Atomic: everything lands in a temporary directory beside <dir> (same file system), sizes (and MD5s where the
store reports them) are checked, then the directory is renamed to <dir>. A failed or interrupted pull leaves
no <dir> (or the previous complete one), and leftovers of earlier interrupted pulls are removed first.
Credentials come from the environment (the init container gets the storage Secret as `envFrom`) or the SDKs'
default chains (workload identity). Exit status: 0 pulled, 1 failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from slipway.storage import open_store
from slipway.storage.base import ObjectInfo, ObjectStore, RetryPolicy, listing_fingerprint
from slipway.storage.credentials import StorageCredentials
from slipway.storage.errors import StorageError
from slipway.storage.transfer import MiB, TransferProgress, download_tree

RECEIPT_SUFFIX = ".slipway-pull.json"
PARTIAL_MARKER = ".slipway-partial-"


@dataclass(frozen=True)
class PullOptions:
    workers: int = 16
    part_size: int = 16 * MiB
    multipart_threshold: int = 32 * MiB
    verify: bool = True
    attempts: int = 5
    force: bool = False


@dataclass(frozen=True)
class PullResult:
    files: int
    bytes: int
    seconds: float
    fingerprint: str
    skipped: bool = False


def receipt_path(dest: str) -> str:
    """Written beside <dir> (not inside: TF Serving owns the version directory) after a complete pull."""
    parent, name = os.path.split(os.path.abspath(dest))
    return os.path.join(parent, f".{name}{RECEIPT_SUFFIX}")


def remove_leftovers(dest: str) -> None:
    parent, name = os.path.split(os.path.abspath(dest))
    if not os.path.isdir(parent):
        return
    for entry in os.listdir(parent):
        if entry.startswith(f".{name}{PARTIAL_MARKER}"):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def model_objects(store: ObjectStore) -> list[ObjectInfo]:
    """The objects a pull downloads: everything below the URI except 'directory' placeholders (`key/`)."""
    return [info for info in store.list() if not info.key.endswith("/")]


def already_pulled(dest: str, fingerprint: str) -> bool:
    try:
        with open(receipt_path(dest)) as handle:
            receipt = json.load(handle)
    except (OSError, ValueError):
        return False
    return os.path.isdir(dest) and receipt.get("fingerprint") == fingerprint


def pull(
    uri: str,
    dest: str,
    options: PullOptions = PullOptions(),
    progress: TransferProgress | None = None,
    credentials: StorageCredentials | None = None,
) -> PullResult:
    """Downloads everything below `uri` into `dest`, atomically. Raises StorageError (or ValueError for a bad
    URI); on any failure `dest` is left as it was."""
    started = time.monotonic()
    store = open_store(uri, credentials, RetryPolicy(attempts=options.attempts))
    dest = os.path.abspath(dest)
    parent, name = os.path.split(dest)
    os.makedirs(parent, exist_ok=True)
    remove_leftovers(dest)
    listing = model_objects(store)
    if not listing:
        raise StorageError(store.uri, "no objects under this URI (is the model path right?)")
    fingerprint = listing_fingerprint(listing)
    if not options.force and already_pulled(dest, fingerprint):
        size = sum(o.size for o in listing)
        return PullResult(len(listing), size, time.monotonic() - started, fingerprint, skipped=True)
    temp = tempfile.mkdtemp(prefix=f".{name}{PARTIAL_MARKER}", dir=parent)
    try:
        objects = download_tree(
            store,
            temp,
            workers=options.workers,
            part_size=options.part_size,
            multipart_threshold=options.multipart_threshold,
            verify=options.verify,
            progress=progress,
        )
        # Listed again after the bytes have landed: an object rewritten during the pull changes its etag.
        if (
            listing_fingerprint(objects) != fingerprint
            or listing_fingerprint(model_objects(store)) != fingerprint
        ):
            raise StorageError(store.uri, "the objects changed while they were being pulled; pull again")
        os.chmod(temp, 0o755)
        _swap_into_place(temp, dest)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    with open(receipt_path(dest) + ".tmp", "w") as handle:
        json.dump({"uri": uri, "fingerprint": fingerprint, "files": len(objects)}, handle)
    os.replace(receipt_path(dest) + ".tmp", receipt_path(dest))
    size = sum(o.size for o in objects)
    return PullResult(len(objects), size, time.monotonic() - started, fingerprint)


def _swap_into_place(complete: str, dest: str) -> None:
    """Renames the finished directory to `dest`; an existing `dest` is moved aside first and then removed."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(receipt_path(dest))
    if os.path.lexists(dest):
        parent, name = os.path.split(dest)
        old = tempfile.mkdtemp(prefix=f".{name}{PARTIAL_MARKER}old-", dir=parent)
        os.rename(dest, os.path.join(old, name))
        os.rename(complete, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(complete, dest)
    _fsync_directory(os.path.dirname(dest))


def _fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _human(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    return f"{nbytes:.1f} GiB"


def report_progress(progress: TransferProgress, stream: TextIO, every: float) -> Callable[[], None]:
    """Prints a progress line to `stream` every `every` seconds; returns the function that stops it."""
    stop = threading.Event()
    started = time.monotonic()

    def loop() -> None:
        while not stop.wait(every):
            elapsed = max(time.monotonic() - started, 1e-6)
            print(
                f"slipway pull: {_human(progress.done_bytes)} / {_human(progress.total_bytes)}, "
                f"{progress.done_files} / {progress.total_files} files, "
                f"{_human(progress.done_bytes / elapsed)}/s",
                file=stream,
                flush=True,
            )

    thread = threading.Thread(target=loop, name="slipway-pull-progress", daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join()

    return halt


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slipway pull",
        description="Download a model directory (everything below URI) into DIR, completely and atomically.",
    )
    parser.add_argument(
        "uri", help="s3://bucket/prefix, gs://bucket/prefix, az://container/prefix or file:///path"
    )
    parser.add_argument(
        "dir", help="local directory that receives the objects below URI (replaced atomically)"
    )
    parser.add_argument("--workers", type=int, default=16, help="parallel transfers (default 16)")
    parser.add_argument(
        "--part-size-mib", type=int, default=16, help="range size for large objects (default 16)"
    )
    parser.add_argument(
        "--multipart-threshold-mib",
        type=int,
        default=32,
        help="objects larger than this are split (default 32)",
    )
    parser.add_argument(
        "--attempts", type=int, default=5, help="tries per transfer on transient errors (default 5)"
    )
    parser.add_argument("--no-verify", action="store_true", help="check sizes only, not MD5s")
    parser.add_argument("--force", action="store_true", help="pull even when DIR already holds this listing")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--progress-interval", type=float, default=2.0, help="seconds between progress lines")
    return parser


def cli_main(argv: list[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if args.workers < 1 or args.part_size_mib < 1 or args.attempts < 1:
        print("slipway pull: --workers, --part-size-mib and --attempts must be at least 1", file=sys.stderr)
        return 2
    options = PullOptions(
        workers=args.workers,
        part_size=args.part_size_mib * MiB,
        multipart_threshold=max(args.multipart_threshold_mib, args.part_size_mib) * MiB,
        verify=not args.no_verify,
        attempts=args.attempts,
        force=args.force,
    )
    progress = TransferProgress()
    halt = (lambda: None) if args.quiet else report_progress(progress, sys.stderr, args.progress_interval)
    try:
        result = pull(args.uri, args.dir, options, progress)
    except ValueError as error:
        print(f"slipway pull: {error}", file=sys.stderr)
        return 2
    except (StorageError, OSError) as error:
        print(f"slipway pull: {args.uri}: failed, {args.dir} left unchanged: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # an SDK that could not even start (no credentials found, ...)
        reason = str(error).splitlines()[0][:300] if str(error) else ""
        print(
            f"slipway pull: {args.uri}: failed, {args.dir} left unchanged: {type(error).__name__}: {reason}",
            file=sys.stderr,
        )
        return 1
    finally:
        halt()
    if result.skipped:
        print(f"slipway pull: {args.dir} already holds {args.uri} ({result.files} files)", file=sys.stderr)
    else:
        rate = result.bytes / max(result.seconds, 1e-6)
        print(
            f"slipway pull: {args.uri} -> {args.dir}: {result.files} files, {_human(result.bytes)} "
            f"in {result.seconds:.2f} s ({_human(rate)}/s)",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(cli_main(sys.argv[1:]))

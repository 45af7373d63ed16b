"""`slipway pull` of a model tree (one large variables file plus many small files) from each storage server,
against the plain SDK download loop and a raw `cat` of the same bytes from local disk, measured in one run.

    .venv/bin/python bench/pull_bench.py [--size-mib 1024] [--small-files 256] [--workers 16]

Servers: moto (S3), fake-gcs-server (GCS), Azurite (Azure Blob), started on loopback as the tests do.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fixtures.storage import StorageServer, _azurite, _fake_gcs, _moto, installed_binaries
from slipway.storage import StorageCredentials, open_store, upload_tree
from slipway.storage.puller import PullOptions, pull


def make_tree(root: Path, size_mib: int, small_files: int) -> int:
    small = 256 * 1024
    big = size_mib * (1 << 20) - small_files * small
    (root / "variables").mkdir(parents=True)
    with open(root / "variables" / "variables.data-00000-of-00001", "wb") as handle:
        block = os.urandom(1 << 20)
        for _ in range(big >> 20):
            handle.write(block)
        handle.write(block[: big & ((1 << 20) - 1)])
    (root / "assets").mkdir()
    for index in range(small_files):
        (root / "assets" / f"part-{index:05d}.bin").write_bytes(os.urandom(small))
    (root / "saved_model.pb").write_bytes(os.urandom(4096))
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def sdk_loop(server: StorageServer, uri: str, dest: Path) -> None:
    """The plain SDK way: list, then download each object in turn with the SDK's own file download."""
    store = open_store(uri, server.credentials)
    keys = [info.key for info in store.list()]
    location = store.location
    for key in keys:
        target = dest / key
        target.parent.mkdir(parents=True, exist_ok=True)
        full = store.full_key(key)
        if server.scheme == "s3":
            store.client.download_file(location.bucket, full, str(target))  # type: ignore[attr-defined]
        elif server.scheme == "gs":
            store.bucket.blob(full).download_to_filename(str(target))  # type: ignore[attr-defined]
        else:
            with open(target, "wb") as handle:
                store.container.download_blob(full).readinto(handle)  # type: ignore[attr-defined]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--small-files", type=int, default=256)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--backends", default="s3,gs,az")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="slipway-pull-bench-"))
    servers: list[StorageServer] = []
    try:
        source = work / "model"
        total = make_tree(source, args.size_mib, args.small_files)
        files = sorted(str(p) for p in source.rglob("*") if p.is_file())
        # Warm the page cache first: the servers read their copies from a warm cache too.
        subprocess.run(["cat", *files], stdout=subprocess.DEVNULL, check=True)
        cat_seconds = timed(lambda: subprocess.run(["cat", *files], stdout=subprocess.DEVNULL, check=True))
        print(
            f"tree: {total / (1 << 20):.0f} MiB in {len(files)} files; "
            f"cat from local disk: {cat_seconds:.2f} s"
        )
        binaries = installed_binaries()
        starters = {
            "s3": lambda: _moto(work),
            "gs": lambda: _fake_gcs(work, binaries["fake-gcs-server"]),
            "az": lambda: _azurite(work, binaries["azurite-blob"]),
        }
        print(
            f"{'backend':8} {'upload s':>9} {'sdk loop s':>11} {'pull s':>8} {'MiB/s':>7} "
            f"{'sdk/pull':>9} {'pull/cat':>9}"
        )
        for scheme in args.backends.split(","):
            server = starters[scheme]()
            servers.append(server)
            uri = f"{scheme}://{server.new_bucket()}/models/bench/1"
            store = open_store(uri, server.credentials)
            upload_seconds = timed(partial(upload_tree, source, store, workers=8))
            sdk_dest = work / f"sdk-{scheme}"
            sdk_seconds = timed(partial(sdk_loop, server, uri, sdk_dest))
            shutil.rmtree(sdk_dest)
            pull_dest = work / f"pull-{scheme}" / "1"
            credentials: StorageCredentials = server.credentials
            options = PullOptions(workers=args.workers)
            pull_seconds = timed(partial(pull, uri, str(pull_dest), options, credentials=credentials))
            assert sum(p.stat().st_size for p in pull_dest.rglob("*") if p.is_file()) == total
            shutil.rmtree(pull_dest.parent)
            print(
                f"{scheme:8} {upload_seconds:9.2f} {sdk_seconds:11.2f} {pull_seconds:8.2f} "
                f"{total / (1 << 20) / pull_seconds:7.0f} {sdk_seconds / pull_seconds:9.2f} "
                f"{pull_seconds / cat_seconds:9.1f}",
                flush=True,
            )
            server.process.stop()
    finally:
        for server in servers:
            server.process.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

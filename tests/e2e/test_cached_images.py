"""The real node keeps containerd's root under ~/.cache/slipway so images are imported once. A root copied
or killed mid-write can list an image whose layers the snapshotter lacks; the node must notice and rebuild
it rather than fail every pod. Runs its own containerd on a root of its own, beside any real node."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from slipway.devcluster.realnode import (
    CachedImagesBroken,
    RealNode,
    archive_image,
    containerd_config,
    pause_archive,
    unavailable_reason,
)

pytestmark = pytest.mark.e2e  # it runs containerd, as the real node does


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RealNode]:
    if (reason := unavailable_reason()) is not None:
        pytest.fail(f"this test runs containerd, and this machine cannot: {reason}")
    archive = pause_archive()
    if not archive.exists():
        pytest.fail(f"{archive} is missing: `make images` builds it")
    monkeypatch.setenv("SLIPWAY_CACHE", str(tmp_path / "cache"))
    processes: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(name: str, args: list[str]) -> subprocess.Popen[bytes]:
        processes[name] = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return processes[name]

    def wait(ready: Callable[[], bool], what: str, deadline: float) -> None:
        while not ready():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)

    def stop(name: str) -> None:
        processes[name].terminate()
        processes[name].wait(timeout=30)

    real_node = RealNode(
        workdir=tmp_path / "node",
        pki=cast(Any, None),
        server="",
        spawn=spawn,
        wait=wait,
        stop_process=stop,
        images=[archive],
    )
    real_node.journal = cast(Any, _NoJournal())
    real_node.containerd_root.mkdir(parents=True)
    real_node.state.mkdir(parents=True)
    config = tmp_path / "containerd.toml"
    config.write_text(containerd_config(real_node.state, real_node.containerd_root, tmp_path / "net.d"))
    real_node.start_containerd(config, time.monotonic() + 60)
    yield real_node
    for process in processes.values():
        process.terminate()
        process.wait(timeout=30)


class _NoJournal:
    def process(self, _name: str, _pid: int) -> None:
        pass


def _break_snapshotter(node: RealNode, config: Path) -> None:
    """What a copy taken mid-write leaves: containerd's metadata lists layers its snapshotter lost."""
    node.stop_process("containerd")
    shutil.rmtree(node.containerd_root / "io.containerd.snapshotter.v1.overlayfs")
    node.start_containerd(config, time.monotonic() + 60)


def test_an_imported_image_is_recognised_by_its_top_layer(node: RealNode) -> None:
    node.import_images()
    image = archive_image(node.images[0])
    assert image.chain_id in node.ctr("snapshots", "ls").stdout
    node.import_images()  # already whole: nothing to do, nothing raised


def test_a_cached_root_missing_its_layers_is_rebuilt(node: RealNode, tmp_path: Path) -> None:
    config = tmp_path / "containerd.toml"
    node.import_images()
    _break_snapshotter(node, config)
    with pytest.raises(CachedImagesBroken, match="listed but its layers are missing"):
        node.import_images()

    node.ensure_images(config)

    image = archive_image(node.images[0])
    assert image.chain_id in node.ctr("snapshots", "ls").stdout
    mounted = node.ctr("run", "--rm", "--snapshotter", "overlayfs", image.name, "probe", "/pause", "-v")
    assert mounted.returncode == 0, mounted.stderr

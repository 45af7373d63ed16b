"""Without Go or cached binaries, setup fails with one clear sentence, not a stack trace."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from slipway.devcluster.binaries import BinariesMissing, find_binaries

REPO = Path(__file__).resolve().parents[2]


def test_build_script_without_go_says_what_is_missing(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "date", "mkdir", "printf", "mktemp", "rm", "dirname", "cat"):
        target = subprocess.run(
            ["bash", "-c", f"command -v {tool}"], capture_output=True, text=True
        ).stdout.strip()
        if target:
            (bin_dir / tool).symlink_to(target)
    result = subprocess.run(
        ["bash", str(REPO / "hack" / "build-k8s.sh")],
        env={"PATH": str(bin_dir), "HOME": str(tmp_path), "SLIPWAY_CACHE": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "Go is not installed" in result.stderr
    assert "KUBEBUILDER_ASSETS" in result.stderr
    assert "Traceback" not in result.stderr


def test_find_binaries_names_what_is_missing_and_how_to_provide_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLIPWAY_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path / "assets"))
    monkeypatch.delenv("SLIPWAY_K8S_BIN", raising=False)
    with pytest.raises(BinariesMissing) as raised:
        find_binaries(need_full=True)
    message = str(raised.value)
    assert "etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok" in message
    assert "KUBEBUILDER_ASSETS" in message and "make k8s-binaries" in message


def test_kubebuilder_assets_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    for name in ("etcd", "kube-apiserver"):
        (assets / name).write_text("#!/bin/sh\n")
        os.chmod(assets / name, 0o755)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    monkeypatch.setenv("SLIPWAY_CACHE", str(tmp_path / "empty-cache"))
    found = find_binaries()
    assert found.etcd == assets / "etcd" and found.kube_apiserver == assets / "kube-apiserver"
    assert not found.full

"""Finds the control-plane binaries: KUBEBUILDER_ASSETS, SLIPWAY_K8S_BIN, or the build cache."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

K8S_VERSION = "1.34.4"
ETCD_VERSION = "3.6.16"
KWOK_VERSION = "0.7.0"
CORE = ("etcd", "kube-apiserver")
EXTRA = ("kube-controller-manager", "kube-scheduler", "kwok")


class BinariesMissing(RuntimeError):
    pass


def cache_root() -> Path:
    return Path(os.environ.get("SLIPWAY_CACHE") or Path.home() / ".cache" / "slipway")


def cache_dir() -> Path:
    return cache_root() / f"k8s-v{K8S_VERSION}-etcd-v{ETCD_VERSION}-kwok-v{KWOK_VERSION}" / "bin"


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path | None
    kube_scheduler: Path | None
    kwok: Path | None

    @property
    def full(self) -> bool:
        return None not in (self.kube_controller_manager, self.kube_scheduler, self.kwok)


def _search_dirs() -> list[Path]:
    dirs = [Path(os.environ[var]) for var in ("KUBEBUILDER_ASSETS", "SLIPWAY_K8S_BIN") if os.environ.get(var)]
    return [*dirs, cache_dir()]


def _find(name: str, dirs: list[Path]) -> Path | None:
    for directory in dirs:
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def find_tool(name: str) -> Path:
    """Another binary of the same build (kubectl), from the same places."""
    dirs = _search_dirs()
    found = _find(name, dirs)
    if found is None:
        raise BinariesMissing(
            f"{name} was not found in {', '.join(str(d) for d in dirs)}; build it with `make k8s-binaries`."
        )
    return found


def find_binaries(*, need_full: bool = False) -> Binaries:
    dirs = _search_dirs()
    found = {name: _find(name, dirs) for name in (*CORE, *EXTRA)}
    needed = CORE + (EXTRA if need_full else ())
    missing = [name for name in needed if found[name] is None]
    if missing:
        raise BinariesMissing(
            f"The Kubernetes control-plane binaries {', '.join(missing)} were not found in "
            f"{', '.join(str(d) for d in dirs)}. Build them with `make k8s-binaries` (needs Go and the Go "
            "module proxy), or set KUBEBUILDER_ASSETS to a directory that holds them."
        )
    etcd, apiserver = found["etcd"], found["kube-apiserver"]
    assert etcd is not None and apiserver is not None
    return Binaries(
        etcd=etcd,
        kube_apiserver=apiserver,
        kube_controller_manager=found["kube-controller-manager"],
        kube_scheduler=found["kube-scheduler"],
        kwok=found["kwok"],
    )

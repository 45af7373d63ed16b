"""The embedded control plane used by tests, `make demo` and `slipway dev-cluster`."""

from slipway.devcluster.binaries import BinariesMissing, find_binaries
from slipway.devcluster.cluster import ControlPlaneError, DevCluster

__all__ = ["BinariesMissing", "ControlPlaneError", "DevCluster", "find_binaries"]

"""The restricted Pod Security Standard as every pod Slipway creates wears it (serving pods, training Jobs),
so they run in namespaces that enforce it."""

from __future__ import annotations

from typing import Any


def restricted_container() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_pod(run_as: int) -> dict[str, Any]:
    """Pod-level fields: a non-root user and group, no API token (workload identity webhooks project their
    own), and no Docker-link variables (a Service named slipway-<setting> would set SLIPWAY_<SETTING>)."""
    return {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": run_as,
            "runAsGroup": run_as,
            "fsGroup": run_as,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }

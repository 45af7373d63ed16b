"""What the embedded cluster's parts share: the error a start fails with, and an HTTP readiness probe."""

from __future__ import annotations

import urllib.error
import urllib.request


class ControlPlaneError(RuntimeError):
    pass


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False

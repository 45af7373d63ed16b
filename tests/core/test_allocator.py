"""The operator's malloc settings (slipway.allocator) are accepted by this machine's glibc."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
from slipway import allocator
assert allocator.tune()
print("ok")
"""


def test_glibc_takes_the_settings() -> None:
    # In a process of its own: the settings are process-wide.
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"

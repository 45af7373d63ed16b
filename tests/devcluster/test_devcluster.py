"""The embedded control plane leaves no process behind: not after stop(), not when its owner is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slipway.devcluster import DevCluster

# These tests start control planes of their own rather than use the `cluster` fixture.
pytestmark = pytest.mark.cluster


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def _wait_dead(pids: list[int], timeout: float = 15) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def test_stop_terminates_every_process(tmp_path: Path) -> None:
    cluster = DevCluster(workdir=tmp_path, full=False)
    cluster.start()
    pids = [p.popen.pid for p in cluster._processes]
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    cluster.stop()
    assert _wait_dead(pids) == []


def test_killing_the_owner_kills_the_control_plane(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from slipway.devcluster import DevCluster\n"
        f"c = DevCluster(workdir=Path({str(tmp_path)!r}), full=False); c.start()\n"
        "print(' '.join(str(p.popen.pid) for p in c._processes), flush=True)\n"
        "time.sleep(600)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    pids = [int(p) for p in owner.stdout.readline().split()]
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    assert _wait_dead(pids) == []

"""A real node changes the host (bridge, route, network namespaces, mounts, cgroups, firewall chains,
kernel settings). When the process that started it is killed outright, its reaper undoes all of it.

This module runs before the tier's shared node starts (one real node at a time)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fixtures.waiting import wait_for
from slipway.devcluster import realnode

# It starts a real node of its own rather than use the `real_cluster` fixture.
pytestmark = pytest.mark.e2e

OWNER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from slipway.devcluster import DevCluster
    cluster = DevCluster(workdir=Path(sys.argv[1]), node="real")
    cluster.start()
    print("UP", flush=True)
    time.sleep(600)
    """
)


def host_state(workdir: Path) -> dict[str, object]:
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    processes = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if str(workdir).encode() in cmdline:
                processes.append(cmdline.replace(b"\0", b" ").decode(errors="replace")[:120])
    nat = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True).stdout
    return {
        "bridge": subprocess.run(["ip", "link", "show", realnode.BRIDGE], capture_output=True).returncode
        == 0,
        "mounts": [m for m in mounts if m.startswith(str(workdir))],
        "processes": processes,
        "kube-proxy chains": [line for line in nat.splitlines() if "KUBE-SERVICES" in line],
        "kubepods cgroups": [str(p) for p in Path("/sys/fs/cgroup").glob("*/kubepods")],
        "sysctls": {key: _sysctl(key) for key in realnode.KUBELET_SYSCTLS},
    }


def _sysctl(key: str) -> str:
    return subprocess.run(["sysctl", "-n", key], capture_output=True, text=True).stdout.strip()


def test_a_killed_owner_leaves_nothing_behind(tmp_path: Path) -> None:
    before = host_state(tmp_path)
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert owner.stdout is not None
    started = time.monotonic()
    output = []
    for line in owner.stdout:
        output.append(line)
        if line.strip() == "UP":
            break
    assert owner.poll() is None, "".join(output)
    print(f"real node up in {time.monotonic() - started:.1f} s")
    during = host_state(tmp_path)
    assert during["bridge"] and during["processes"] and during["kubepods cgroups"], during
    assert realnode.JOURNAL.exists()

    os.kill(owner.pid, signal.SIGKILL)
    owner.wait()
    wait_for(lambda: not realnode.JOURNAL.exists(), "the reaper to tear the node down", timeout=120)
    wait_for(lambda: not host_state(tmp_path)["processes"], "the node's processes to exit", timeout=30)
    assert host_state(tmp_path) == before

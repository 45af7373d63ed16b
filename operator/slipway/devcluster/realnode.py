"""A real node beside the embedded control plane: containerd + runc + a CNI bridge + kubelet + kube-proxy,
and CoreDNS for the cluster's names, so pods run real containers, probes are real and Services balance
real requests.

It needs root on a machine with its own kernel (a VM): it creates a bridge, a route, network namespaces,
cgroups and firewall chains in the host, and the kubelet changes a few kernel settings while it runs.
Every such change is written to a journal (`/run/slipway/realnode.json`) before it is made, and undone
from the journal by `teardown`: on `stop()`, by a reaper process when the process that started the node
dies without stopping it, and at the next start if both were killed. Only one real node runs at a time
(a lock beside the journal).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from slipway.devcluster import certs
from slipway.devcluster.binaries import cache_dir, cache_root
from slipway.devcluster.probes import ControlPlaneError, http_ok

NODE_NAME = "slipway-node"
BRIDGE = "slipway0"
POD_CIDR = "10.244.0.0/24"
NODE_IP = "10.244.0.1"
SERVICE_CIDR = "10.96.0.0/16"
CLUSTER_DOMAIN = "cluster.local"
PAUSE_IMAGE = "localhost/pause:3.10.1"
RUN_DIR = Path("/run/slipway")
JOURNAL = RUN_DIR / "realnode.json"
LOCK = RUN_DIR / "realnode.lock"
# The kubelet rewrites these while it runs (overcommit, panic on oops); they are restored at teardown.
KUBELET_SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)
HOST_TOOLS = ("containerd", "runc", "ctr", "iptables", "ip")
CNI_BIN_DIR = Path("/usr/lib/cni")


class RealNodeUnavailable(RuntimeError):
    """This machine cannot run a real node (not root, a tool or binary missing, another node running)."""


def unavailable_reason() -> str | None:
    """Why a real node cannot start here, or None when it can."""
    if sys.platform != "linux":
        return "a real node needs Linux"
    if os.geteuid() != 0:
        return "a real node needs root (it creates a bridge, network namespaces, cgroups and firewall rules)"
    missing = [tool for tool in HOST_TOOLS if shutil.which(tool) is None]
    if not (CNI_BIN_DIR / "bridge").exists():
        missing.append(f"CNI plugins in {CNI_BIN_DIR}")
    if missing:
        return f"missing on this machine: {', '.join(missing)} (`make node-prereqs` installs them)"
    for binary in ("kubelet", "kube-proxy", "coredns"):
        if not (cache_dir() / binary).exists():
            return f"{binary} is not built (`make k8s-binaries` builds it into {cache_dir()})"
    return None


# --- configuration files (pure) --------------------------------------------------------------------


def containerd_config(state: Path, root: Path, cni_conf_dir: Path) -> str:
    # restrict_oom_score_adj: the kubelet asks -998 for sandboxes, and lowering oom_score_adj needs
    # CAP_SYS_RESOURCE, which a VM's root may lack (runc then fails with "can't get final child's PID").
    return f"""version = 2
root = "{root}"
state = "{state / "containerd"}"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{state / "containerd.sock"}"
[ttrpc]
  address = "{state / "containerd.sock.ttrpc"}"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{state / "containerd-opt"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{shutil.which("runc") or "/usr/bin/runc"}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{cni_conf_dir}"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = ""
"""


def cni_config(ipam_dir: Path) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": "slipway",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                # A pod reaching its own Service's ClusterIP comes back through the bridge port it left by.
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(ipam_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


# The components' usual ports (kubelet 10250 and 10248, kube-proxy 10249 and 10256), below the kernel's
# ephemeral range: a port picked from that range can be taken by any outgoing connection before the
# component binds it (a kubelet failed to start with "address already in use" that way).
NODE_PORTS = (10250, 10248, 10256, 10249, 10254, 10253)


def unused_port(preferred: int, attempts: int = 200) -> int:
    """`preferred`, or the next port above it that nothing listens on."""
    import socket

    for port in range(preferred, preferred + attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise RealNodeUnavailable(f"no free port in {preferred}-{preferred + attempts - 1}")


@dataclass(frozen=True)
class NodePorts:
    kubelet: int
    kubelet_healthz: int
    proxy_healthz: int
    proxy_metrics: int
    dns_health: int
    dns_ready: int


def kubelet_config(state: Path, pki: dict[str, Path], ports: NodePorts, resolv_conf: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": ports.kubelet,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": ports.kubelet_healthz,
        "tlsCertFile": str(pki["kubelet-serving.crt"]),
        "tlsPrivateKeyFile": str(pki["kubelet-serving.key"]),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki["ca.crt"])},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": True,
        "enforceNodeAllocatable": ["pods"],
        "failSwapOn": False,
        "maxOpenFiles": 20000,
        "containerRuntimeEndpoint": f"unix://{state / 'containerd.sock'}",
        "podLogsDir": str(state / "pod-logs"),
        "clusterDomain": CLUSTER_DOMAIN,
        "clusterDNS": [NODE_IP],
        "resolvConf": str(resolv_conf),
        "hairpinMode": "hairpin-veth",
        "serializeImagePulls": False,
        # Images are imported, never pulled (no registry is reachable): never collect them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "nodeStatusReportFrequency": "10s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "runtimeRequestTimeout": "2m",
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        # No KUBE-FIREWALL / canary chains in the host's firewall: kube-proxy makes what it needs.
        "makeIPTablesUtilChains": False,
    }


def kube_proxy_config(kubeconfig: Path, ports: NodePorts) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "bindAddress": "127.0.0.1",
        "metricsBindAddress": f"127.0.0.1:{ports.proxy_metrics}",
        "healthzBindAddress": f"127.0.0.1:{ports.proxy_healthz}",
        # 0 leaves nf_conntrack_max and the TCP timeouts (host-wide settings) alone.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "nodePortAddresses": [f"{NODE_IP}/32"],
        "iptables": {"localhostNodePorts": False},
    }


def corefile(kubeconfig: Path, ports: NodePorts) -> str:
    return f""".:53 {{
    bind {NODE_IP}
    errors
    health 127.0.0.1:{ports.dns_health}
    ready 127.0.0.1:{ports.dns_ready}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 30
}}
"""


def kubeconfig(server: str, ca: Path, cert: Path, key: Path) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "slipway-dev", "cluster": {"server": server, "certificate-authority": str(ca)}}
            ],
            "users": [{"name": "user", "user": {"client-certificate": str(cert), "client-key": str(key)}}],
            "contexts": [{"name": "slipway-dev", "context": {"cluster": "slipway-dev", "user": "user"}}],
            "current-context": "slipway-dev",
        },
        sort_keys=False,
    )


# --- the journal and teardown -----------------------------------------------------------------------


def _run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks, so a PID the kernel reused is never signalled."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _stop_pid(pid: int, started: str | None, grace: float = 10.0) -> None:
    if started is None or _start_time(pid) != started:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _start_time(pid) == started:
        time.sleep(0.1)
    if _start_time(pid) == started:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _mounts_under(paths: list[str]) -> list[str]:
    mounts = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            target = line.split()[1].replace("\\040", " ")
            if any(target == p or target.startswith(p.rstrip("/") + "/") for p in paths):
                mounts.append(target)
    return sorted(set(mounts), key=len, reverse=True)


def _pod_network_namespaces() -> list[str]:
    netns_dir = Path("/var/run/netns")
    if not netns_dir.is_dir():
        return []
    prefix = NODE_IP.rsplit(".", 1)[0] + "."
    ours = []
    for netns in sorted(netns_dir.iterdir()):
        if not netns.name.startswith("cni-"):
            continue
        addresses = _run("ip", "netns", "exec", netns.name, "ip", "-4", "-o", "addr").stdout
        if f"inet {prefix}" in addresses:
            ours.append(netns.name)
    return ours


def teardown(journal_path: Path = JOURNAL, log: Callable[[str], None] = lambda _m: None) -> None:
    """Undo everything the journal records, in reverse order of creation. Safe to run twice."""
    try:
        journal = json.loads(journal_path.read_text())
    except (OSError, ValueError):
        return
    socket = journal.get("containerd_socket")
    processes: dict[str, list[Any]] = journal.get("processes", {})
    for name in ("kube-proxy", "kubelet", "coredns"):
        if name in processes:
            _stop_pid(*processes[name])
    if socket and Path(socket).exists():
        ctr = ["ctr", "--address", socket, "-n", "k8s.io"]
        tasks = _run(*ctr, "tasks", "ls", "-q").stdout.split()
        for task in tasks:
            _run(*ctr, "tasks", "kill", "-s", "KILL", task)
        time.sleep(0.5)
        for task in tasks:
            _run(*ctr, "tasks", "delete", "-f", task)
        for container in _run(*ctr, "containers", "ls", "-q").stdout.split():
            _run(*ctr, "containers", "delete", container)
    if "containerd" in processes:
        _stop_pid(*processes["containerd"])
    if socket:
        # Shims outlive containerd; only those that name our socket are ours.
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                with contextlib.suppress(OSError):
                    cmdline = (proc / "cmdline").read_bytes()
                    if b"containerd-shim" in cmdline and socket.encode() in cmdline:
                        os.kill(int(proc.name), signal.SIGKILL)
    for mount in _mounts_under(journal.get("mount_roots", [])):
        _run("umount", "-l", mount)
    for netns in _pod_network_namespaces():
        _run("ip", "netns", "delete", netns)
    if journal.get("route"):
        _run("ip", "route", "del", SERVICE_CIDR, "dev", BRIDGE)
    if journal.get("bridge"):
        _run("ip", "link", "del", BRIDGE)
    if journal.get("kube_proxy"):
        _run(journal["kube_proxy"], "--cleanup", "--v=0", timeout=60)
    for controller in Path("/sys/fs/cgroup").glob("*/kubepods"):
        for directory in sorted(controller.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if directory.is_dir():
                with contextlib.suppress(OSError):
                    directory.rmdir()
        with contextlib.suppress(OSError):
            controller.rmdir()
    for key, value in journal.get("sysctls", {}).items():
        _run("sysctl", "-qw", f"{key}={value}")
    journal_path.unlink(missing_ok=True)
    log("real node torn down")


class Journal:
    """What has been changed on the host so far, on disk before each change is made."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {"owner": os.getpid(), "processes": {}, "mount_roots": []}

    def record(self, **entries: Any) -> None:
        self.data.update(entries)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)

    def process(self, name: str, pid: int) -> None:
        self.data["processes"][name] = [pid, _start_time(pid)]
        self.record()


def _reaper(journal_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A process outside our own that tears the node down from the journal when we die without doing it:
    it waits for EOF on a pipe whose only writer is this process. Returns it and that pipe's write end."""
    read_end, write_end = os.pipe()
    reaper = subprocess.Popen(
        [sys.executable, "-m", "slipway.devcluster.realnode", "reap", str(journal_path)],
        stdin=read_end,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    os.close(read_end)
    os.set_inheritable(write_end, False)
    return reaper, write_end


# --- the node --------------------------------------------------------------------------------------


@dataclass
class RealNode:
    """Started by DevCluster after its control plane when `node="real"`."""

    workdir: Path
    pki: certs.Pki
    server: str
    spawn: Callable[[str, list[str]], subprocess.Popen[bytes]]
    # DevCluster's wait: it fails at once, with the log's tail, when a process it started exits.
    wait: Callable[[Callable[[], bool], str, float], None]
    stop_process: Callable[[str], None]
    images: list[Path] = field(default_factory=list)
    log: Callable[[str], None] = lambda _message: None
    journal: Journal = field(init=False)
    ports: NodePorts | None = None
    _lock: IO[str] | None = None
    _reaper: tuple[subprocess.Popen[bytes], int] | None = None
    files: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def state(self) -> Path:
        return self.workdir / "state"

    @property
    def containerd_root(self) -> Path:
        # Kept across runs, so images imported once are there next time.
        return cache_root() / "containerd-root"

    @property
    def socket(self) -> Path:
        return self.state / "containerd.sock"

    def ctr(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return _run("ctr", "--address", str(self.socket), "-n", "k8s.io", *args, timeout=timeout)

    def prepare_host(self) -> None:
        """Lock, clear what a crashed run left, and create the bridge the API server binds to."""
        if (reason := unavailable_reason()) is not None:
            raise RealNodeUnavailable(reason)
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        self._lock = LOCK.open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RealNodeUnavailable(f"another real node is running on this machine (lock {LOCK})") from None
        if JOURNAL.exists():
            self.log("clearing what an earlier real node left behind")
            teardown(JOURNAL, self.log)
        self.journal = Journal(JOURNAL)
        self.journal.record(
            containerd_socket=str(self.socket),
            mount_roots=[str(self.workdir), str(self.containerd_root)],
            sysctls={key: _run("sysctl", "-n", key).stdout.strip() for key in KUBELET_SYSCTLS},
            kube_proxy=str(cache_dir() / "kube-proxy"),
        )
        self._reaper = _reaper(JOURNAL)
        self.journal.record(bridge=True)
        if _run("ip", "link", "show", BRIDGE).returncode != 0:
            _check("ip", "link", "add", BRIDGE, "type", "bridge")
        _check("ip", "addr", "replace", f"{NODE_IP}/24", "dev", BRIDGE)
        _check("ip", "link", "set", BRIDGE, "up")
        # A ClusterIP kube-proxy has not programmed yet must never leave through the host's uplink.
        self.journal.record(route=True)
        _check("ip", "route", "replace", SERVICE_CIDR, "dev", BRIDGE)

    def start(self, deadline: float) -> None:
        self.ports = ports = NodePorts(*(unused_port(preferred) for preferred in NODE_PORTS))
        config = self.workdir / "config"
        for directory in (
            config / "net.d",
            self.state / "pod-logs",
            self.state / "kubelet",
            self.containerd_root,
        ):
            directory.mkdir(parents=True, exist_ok=True)
        pki = self.files
        (config / "containerd.toml").write_text(
            containerd_config(self.state, self.containerd_root, config / "net.d")
        )
        (config / "net.d" / "10-slipway.conflist").write_text(json.dumps(cni_config(self.state / "cni-ipam")))
        resolv = config / "resolv.conf"
        resolv.write_text(f"nameserver {NODE_IP}\n")
        (config / "kubelet.yaml").write_text(
            yaml.safe_dump(kubelet_config(self.state, pki, self.ports, resolv))
        )
        (config / "kube-proxy.yaml").write_text(
            yaml.safe_dump(kube_proxy_config(pki["kube-proxy.kubeconfig"], self.ports))
        )
        (config / "Corefile").write_text(corefile(pki["coredns.kubeconfig"], self.ports))

        began = time.monotonic()
        self.start_containerd(config / "containerd.toml", deadline)
        self.timings["containerd"] = time.monotonic() - began
        began = time.monotonic()
        self.ensure_images(config / "containerd.toml")
        self.timings["images"] = time.monotonic() - began
        # Importing a few GB of images the first time is not the node being slow to start.
        deadline += self.timings["images"]
        began = time.monotonic()
        binaries = cache_dir()
        self._spawn(
            "coredns", [str(binaries / "coredns"), "-conf", str(config / "Corefile"), "-dns.port", "53"]
        )
        self._spawn(
            "kubelet",
            [
                str(binaries / "kubelet"),
                f"--config={config / 'kubelet.yaml'}",
                f"--kubeconfig={pki['kubelet.kubeconfig']}",
                f"--root-dir={self.state / 'kubelet'}",
                f"--cert-dir={self.state / 'kubelet' / 'pki'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={NODE_IP}",
                "--v=1",
            ],
        )
        self._spawn("kube-proxy", [str(binaries / "kube-proxy"), f"--config={config / 'kube-proxy.yaml'}"])
        self.wait(lambda: http_ok(f"http://127.0.0.1:{ports.dns_ready}/ready"), "CoreDNS", deadline)
        self.wait(lambda: http_ok(f"http://127.0.0.1:{ports.proxy_healthz}/healthz"), "kube-proxy", deadline)
        self.timings["node"] = time.monotonic() - began

    def issue_certificates(self) -> None:
        """Client and serving certificates of the node's components, and the API server's client
        certificate for reaching kubelets (logs, exec, port-forward)."""
        directory = self.workdir / "node-pki"
        directory.mkdir(parents=True, exist_ok=True)
        files: dict[str, Path] = {"ca.crt": self.pki.ca_cert}
        cert, key = certs.issue(
            self.pki, directory / "apiserver-kubelet-client", "kube-apiserver", "system:masters"
        )
        files["apiserver-kubelet-client.crt"], files["apiserver-kubelet-client.key"] = cert, key
        identities = {
            "kubelet": (f"system:node:{NODE_NAME}", "system:nodes", ()),
            "kubelet-serving": (f"system:node:{NODE_NAME}", "system:nodes", (NODE_IP,)),
            "kube-proxy": ("system:kube-proxy", None, ()),
            # CoreDNS reads Services, EndpointSlices, Namespaces and Pods cluster-wide.
            "coredns": ("slipway-coredns", "system:masters", ()),
        }
        for name, (common_name, organization, ips) in identities.items():
            cert, key = certs.issue(self.pki, directory / name, common_name, organization, ips)
            files[f"{name}.crt"], files[f"{name}.key"] = cert, key
            config = directory / f"{name}.kubeconfig"
            config.write_text(kubeconfig(self.server, self.pki.ca_cert, cert, key))
            files[f"{name}.kubeconfig"] = config
        self.files = files

    def apiserver_flags(self) -> list[str]:
        return [
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            f"--kubelet-client-certificate={self.files['apiserver-kubelet-client.crt']}",
            f"--kubelet-client-key={self.files['apiserver-kubelet-client.key']}",
            f"--kubelet-certificate-authority={self.pki.ca_cert}",
            "--kubelet-preferred-address-types=InternalIP",
        ]

    def _spawn(self, name: str, args: list[str]) -> None:
        popen = self.spawn(name, args)
        self.journal.process(name, popen.pid)

    def start_containerd(self, config: Path, deadline: float) -> None:
        self._spawn("containerd", ["containerd", "--config", str(config)])
        self.wait(lambda: self.ctr("version", timeout=5).returncode == 0, "containerd", deadline)

    def ensure_images(self, containerd_config: Path) -> None:
        """Every image in the node's containerd; a cached root that cannot serve them is rebuilt once.

        The root is a cache: one copied or killed mid-write can list layers its snapshotter no longer
        has, and containerd never repairs that itself. Rebuilding it from the archives costs one import."""
        try:
            self.import_images()
        except CachedImagesBroken as broken:
            self.log(f"the cached containerd root is inconsistent ({broken}); clearing it, importing again")
            self.stop_process("containerd")
            shutil.rmtree(self.containerd_root)
            self.containerd_root.mkdir(parents=True)
            self.start_containerd(containerd_config, time.monotonic() + 60)
            self.import_images()

    def import_images(self) -> None:
        """Imports every archive whose image is not already in the node's containerd, whole.

        Raises CachedImagesBroken when the cached root lists an image whose layers its snapshotter lacks,
        or an import fails."""
        listed = self.ctr("images", "ls").stdout.splitlines()
        # `snapshots ls` walks the snapshotter itself, so it omits layers only the metadata still lists.
        unpacked = {line.split()[0] for line in self.ctr("snapshots", "ls").stdout.splitlines()[1:] if line}
        for archive in self.images:
            image = archive_image(archive)
            if any(line.split()[:1] == [image.name] and image.digest in line for line in listed):
                if image.chain_id in unpacked:
                    continue
                raise CachedImagesBroken(f"{image.name} is listed but its layers are missing")
            self.log(f"importing {image.name} into the node's containerd")
            result = self.ctr("images", "import", "--snapshotter", "overlayfs", str(archive))
            if result.returncode != 0:
                raise CachedImagesBroken(f"importing {archive} failed: {result.stderr.strip()[-2000:]}")

    def stop(self) -> None:
        if self._lock is None:  # never started, or another node holds the lock: nothing here is ours
            return
        teardown(JOURNAL, self.log)
        if self._reaper is not None:
            reaper, pipe = self._reaper
            os.close(pipe)
            with contextlib.suppress(subprocess.TimeoutExpired):
                reaper.wait(timeout=10)
            self._reaper = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None


class CachedImagesBroken(ControlPlaneError):
    """The node's cached containerd root cannot serve an image it lists, or would not take one."""


@dataclass(frozen=True)
class ArchivedImage:
    name: str
    digest: str
    # The snapshot key containerd gives the image's top layer once unpacked.
    chain_id: str


def archive_image(archive: Path) -> ArchivedImage:
    """The image in an OCI archive as `podman save --format oci-archive` writes it."""
    import tarfile

    with tarfile.open(archive) as tar:

        def blob(digest: str) -> Any:
            member = tar.extractfile(f"blobs/{digest.replace(':', '/')}")
            assert member is not None, f"{archive} lacks blob {digest}"
            return json.load(member)

        index = tar.extractfile("index.json")
        assert index is not None
        manifest = json.load(index)["manifests"][0]
        config = blob(blob(manifest["digest"])["config"]["digest"])
    return ArchivedImage(
        name=manifest["annotations"]["org.opencontainers.image.ref.name"],
        digest=manifest["digest"],
        chain_id=chain_id(config["rootfs"]["diff_ids"]),
    )


def chain_id(diff_ids: list[str]) -> str:
    """The OCI image spec's ChainID of a layer stack."""
    chain = diff_ids[0]
    for diff_id in diff_ids[1:]:
        chain = "sha256:" + hashlib.sha256(f"{chain} {diff_id}".encode()).hexdigest()
    return chain


def _check(*args: str) -> None:
    result = _run(*args)
    if result.returncode != 0:
        raise RealNodeUnavailable(f"`{' '.join(args)}` failed: {result.stderr.strip()}")


def pause_archive() -> Path:
    return cache_root() / "images" / "pause-3.10.1.oci.tar"


def _reap(journal_path: Path) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        while sys.stdin.buffer.read(4096):
            pass
    teardown(journal_path)


if __name__ == "__main__":
    if sys.argv[1:2] == ["reap"]:
        _reap(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["teardown"]:
        teardown(JOURNAL, print)
    else:
        print("usage: python -m slipway.devcluster.realnode reap JOURNAL | teardown", file=sys.stderr)
        sys.exit(2)

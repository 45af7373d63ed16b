"""The embedded control plane: etcd + kube-apiserver (RBAC on), and optionally kube-controller-manager,
kube-scheduler and a node: kwok's fake node (Deployments roll out, pods turn Ready, no container runs) or
a real one (`node="real"`: containerd, kubelet, kube-proxy and CoreDNS; see realnode.py).

Every process is started with PR_SET_PDEATHSIG, so none outlives the Python process that started it, and
`stop()` terminates them in reverse order.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from slipway.devcluster import certs, realnode
from slipway.devcluster.binaries import Binaries, find_binaries
from slipway.devcluster.probes import ControlPlaneError, http_ok

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"
FAKE_NODE = "kwok-node-0"
PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]
    args: list[str] = field(default_factory=list)

    def tail(self, lines: int = 25) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


@dataclass
class DevCluster:
    """A control plane on loopback (on the node's bridge address with a real node, so pods reach it too).
    Use as a context manager, or call start() and stop().

    `node`: "kwok" (a fake node; needs `full`) or "real". `images`: OCI archives a real node imports."""

    workdir: Path | None = None
    full: bool = True
    binaries: Binaries | None = None
    log: Callable[[str], None] = lambda _message: None
    node: str = "kwok"
    images: list[Path] = field(default_factory=list)
    _processes: list[_Process] = field(default_factory=list)
    _tempdir: tempfile.TemporaryDirectory[str] | None = None
    apiserver_port: int = 0
    kubeconfig: Path = Path()
    pki: certs.Pki | None = None
    real_node: realnode.RealNode | None = None
    node_name: str = FAKE_NODE
    _stopped: dict[str, list[str]] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return realnode.NODE_IP if self.node == "real" else "127.0.0.1"

    @property
    def server(self) -> str:
        return f"https://{self.host}:{self.apiserver_port}"

    def __enter__(self) -> DevCluster:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 120.0) -> None:
        if self.binaries is None:
            self.binaries = find_binaries(need_full=self.full)
        if self.workdir is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="slipway-devcluster-")
            self.workdir = Path(self._tempdir.name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_all(timeout)
        except BaseException:
            self.stop()
            raise

    def _start_all(self, timeout: float) -> None:
        assert self.binaries is not None and self.workdir is not None
        deadline = time.monotonic() + timeout
        real = self.node == "real"
        self.apiserver_port = free_port()
        self.pki = certs.generate(self.workdir / "pki", server_ips=(SERVICE_IP, self.host))
        if real:
            self.node_name = realnode.NODE_NAME
            self.real_node = realnode.RealNode(
                workdir=self.workdir / "node",
                pki=self.pki,
                server=self.server,
                spawn=lambda name, args: self._spawn(name, args).popen,
                wait=self._wait,
                stop_process=self.stop_component,
                images=[realnode.pause_archive(), *self.images],
                log=self.log,
            )
            self.real_node.prepare_host()
            self.real_node.issue_certificates()
        self.log("starting etcd")
        etcd_client = self._start_etcd()
        self._wait(lambda: http_ok(f"{etcd_client}/health"), "etcd", deadline)
        self.log("starting kube-apiserver")
        self._start_apiserver(etcd_client)
        self.kubeconfig = self.workdir / "admin.kubeconfig"
        self.kubeconfig.write_text(admin_kubeconfig(self.server, self.pki))
        self._wait(self._apiserver_ready, "kube-apiserver", deadline)
        if self.full or real:
            self.log("starting kube-controller-manager and kube-scheduler")
            self._start_controller_manager()
            self._start_scheduler()
            if real:
                assert self.real_node is not None
                self.log("starting the real node: containerd, CoreDNS, kubelet, kube-proxy")
                self.real_node.start(deadline)
                # Importing images (a first import, or a broken cache rebuilt) is not the node being slow.
                deadline += self.real_node.timings.get("images", 0.0)
            else:
                self.log("starting kwok")
                self._start_kwok()
                self._create_fake_node()
            self._wait(self._node_ready, f"node {self.node_name}", deadline)
            self._wait(self._default_service_account_exists, "the default ServiceAccount", deadline)
        self.log(f"control plane ready at {self.server}; kubeconfig {self.kubeconfig}")

    def stop(self) -> None:
        if self.real_node is not None:
            self.real_node.stop()
            self.real_node = None
        for process in reversed(self._processes):
            if process.popen.poll() is None:
                process.popen.terminate()
        for process in reversed(self._processes):
            try:
                process.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()
            process.log_file.close()
        self._processes.clear()
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def _spawn(self, name: str, args: list[str]) -> _Process:
        assert self.workdir is not None
        log_path = self.workdir / f"{name}.log"
        log_file = log_path.open("ab")
        popen = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
            cwd=self.workdir,
        )
        process = _Process(name, popen, log_path, log_file, args)
        self._processes.append(process)
        return process

    # --- control-plane faults, for the fault suite ------------------------------------------------------

    def stop_component(self, name: str) -> None:
        """Stops one control-plane process (SIGKILL: no graceful shutdown) until `start_component`."""
        process = next(p for p in self._processes if p.name == name)
        process.popen.kill()
        process.popen.wait()
        process.log_file.close()
        self._processes.remove(process)
        self._stopped[name] = process.args

    def start_component(self, name: str, timeout: float = 60.0) -> None:
        """Starts a stopped process again with the same flags (same ports, same etcd data) and waits until
        it answers."""
        self._spawn(name, self._stopped.pop(name))
        deadline = time.monotonic() + timeout
        if name == "etcd":
            etcd_url = next(a for a in self._spawned_args("etcd") if a.startswith("--listen-client-urls="))
            self._wait(lambda: http_ok(f"{etcd_url.partition('=')[2]}/health"), "etcd", deadline)
        self._wait(self._apiserver_ready, "kube-apiserver", deadline)

    def restart_component(self, name: str, down_seconds: float = 0.0) -> None:
        self.stop_component(name)
        time.sleep(down_seconds)
        self.start_component(name)

    def _spawned_args(self, name: str) -> list[str]:
        return next(p.args for p in self._processes if p.name == name)

    def _wait(self, ready: Callable[[], bool], what: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            for process in self._processes:
                if process.popen.poll() is not None:
                    raise ControlPlaneError(
                        f"{process.name} exited with code {process.popen.returncode} "
                        f"while waiting for {what}; last log lines ({process.log_path}):\n{process.tail()}"
                    )
            if ready():
                return
            time.sleep(0.2)
        raise ControlPlaneError(f"timed out waiting for {what}")

    def _start_etcd(self) -> str:
        assert self.binaries is not None and self.workdir is not None
        client, peer = free_port(), free_port()
        client_url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
        self._spawn(
            "etcd",
            [
                str(self.binaries.etcd),
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--name=default",
                "--unsafe-no-fsync=true",
                "--listen-metrics-urls=",
                "--log-level=warn",
            ],
        )
        return client_url

    def _start_apiserver(self, etcd_url: str) -> None:
        assert self.binaries is not None and self.pki is not None and self.workdir is not None
        pki = self.pki
        disabled_admission = [] if self.full else ["--disable-admission-plugins=ServiceAccount"]
        authorization = ["--authorization-mode=RBAC"]
        if self.real_node is not None:
            authorization = self.real_node.apiserver_flags()
        self._spawn(
            "kube-apiserver",
            [
                str(self.binaries.kube_apiserver),
                f"--etcd-servers={etcd_url}",
                f"--secure-port={self.apiserver_port}",
                f"--bind-address={self.host}",
                f"--advertise-address={self.host}",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}",
                f"--service-account-key-file={pki.sa_public_key}",
                f"--service-account-signing-key-file={pki.sa_private_key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                *authorization,
                "--allow-privileged=true",
                "--max-requests-inflight=1000",
                "--max-mutating-requests-inflight=500",
                "--profiling=false",
                *disabled_admission,
            ],
        )

    def _component_kubeconfig_flags(self) -> list[str]:
        return [f"--kubeconfig={self.kubeconfig}", "--leader-elect=false", "--bind-address=127.0.0.1"]

    def _start_controller_manager(self) -> None:
        assert self.binaries is not None and self.binaries.kube_controller_manager is not None
        assert self.pki is not None
        self._spawn(
            "kube-controller-manager",
            [
                str(self.binaries.kube_controller_manager),
                *self._component_kubeconfig_flags(),
                f"--secure-port={free_port()}",
                f"--service-account-private-key-file={self.pki.sa_private_key}",
                f"--root-ca-file={self.pki.ca_cert}",
                f"--cluster-signing-cert-file={self.pki.ca_cert}",
                f"--cluster-signing-key-file={self.pki.ca_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--use-service-account-credentials=false",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
            ],
        )

    def _start_scheduler(self) -> None:
        assert self.binaries is not None and self.binaries.kube_scheduler is not None
        self._spawn(
            "kube-scheduler",
            [
                str(self.binaries.kube_scheduler),
                *self._component_kubeconfig_flags(),
                f"--secure-port={free_port()}",
            ],
        )

    def _start_kwok(self) -> None:
        assert self.binaries is not None and self.binaries.kwok is not None
        self._spawn(
            "kwok",
            [
                str(self.binaries.kwok),
                f"--kubeconfig={self.kubeconfig}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--cidr=10.244.0.1/16",
                "--node-ip=10.0.0.1",
                f"--server-address=127.0.0.1:{free_port()}",
                "--node-lease-duration-seconds=40",
            ],
        )

    # --- HTTP against the API server, with the admin client certificate -------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        assert self.pki is not None
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        context.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return context

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.server + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, context=self._ssl_context(), timeout=10) as response:
            payload: dict[str, Any] = json.loads(response.read() or b"{}")
            return payload

    def get_text(self, path: str) -> str:
        req = urllib.request.Request(self.server + path)
        with urllib.request.urlopen(req, context=self._ssl_context(), timeout=10) as response:
            return str(response.read().decode())

    def _apiserver_ready(self) -> bool:
        try:
            req = urllib.request.Request(self.server + "/readyz")
            with urllib.request.urlopen(req, context=self._ssl_context(), timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _create_fake_node(self) -> None:
        self.request("POST", "/api/v1/nodes", fake_node(FAKE_NODE))

    def _node_ready(self) -> bool:
        try:
            node = self.request("GET", f"/api/v1/nodes/{self.node_name}")
        except (urllib.error.URLError, OSError):
            return False
        conditions = node.get("status", {}).get("conditions", [])
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def _default_service_account_exists(self) -> bool:
        try:
            self.request("GET", "/api/v1/namespaces/default/serviceaccounts/default")
            return True
        except (urllib.error.URLError, OSError):
            return False


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def admin_kubeconfig(server: str, pki: certs.Pki) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "slipway-dev",
                "cluster": {"server": server, "certificate-authority-data": _b64(pki.ca_cert)},
            }
        ],
        "users": [
            {
                "name": "slipway-admin",
                "user": {
                    "client-certificate-data": _b64(pki.admin_cert),
                    "client-key-data": _b64(pki.admin_key),
                },
            }
        ],
        "contexts": [{"name": "slipway-dev", "context": {"cluster": "slipway-dev", "user": "slipway-admin"}}],
        "current-context": "slipway-dev",
    }
    return yaml.safe_dump(config, sort_keys=False)


def fake_node(name: str) -> dict[str, Any]:
    capacity = {"cpu": "1000", "memory": "4Ti", "pods": "10000", "ephemeral-storage": "10Ti"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {"capacity": capacity, "allocatable": capacity, "nodeInfo": {"kubeletVersion": "fake"}},
    }


@contextlib.contextmanager
def running(full: bool = True, workdir: Path | None = None, node: str = "kwok") -> Iterator[DevCluster]:
    cluster = DevCluster(workdir=workdir, full=full, node=node)
    with cluster:
        yield cluster


def environment_for(cluster: DevCluster) -> dict[str, str]:
    return {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}

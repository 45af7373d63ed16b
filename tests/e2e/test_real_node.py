"""The real node itself: pods run containers from Slipway's images, probes gate readiness, CoreDNS answers
cluster names, a Service's ClusterIP balances real requests from the host and from a pod, and pods reach
the API server through the `kubernetes` Service."""

from __future__ import annotations

import collections
import json
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from kubernetes import client

from fixtures.waiting import wait_for
from slipway.devcluster import DevCluster

T = TypeVar("T")
IMAGE = "localhost/slipway:dev"
WEB_PORT = 8080


def web_deployment(name: str, replicas: int) -> dict[str, object]:
    """Two tiny web servers (Python's http.server in the operator image) that each answer their own name."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "initContainers": [
                        {
                            "name": "init",
                            "image": IMAGE,
                            "command": ["sh", "-c", "echo -n $(hostname) > /srv/index.html"],
                            "volumeMounts": [{"name": "www", "mountPath": "/srv"}],
                        }
                    ],
                    "containers": [
                        {
                            "name": "web",
                            "image": IMAGE,
                            "command": ["python3", "-m", "http.server", str(WEB_PORT), "--directory", "/srv"],
                            "readinessProbe": {
                                "httpGet": {"path": "/index.html", "port": WEB_PORT},
                                "periodSeconds": 1,
                            },
                            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                            "volumeMounts": [{"name": "www", "mountPath": "/srv"}],
                        }
                    ],
                    "volumes": [{"name": "www", "emptyDir": {}}],
                },
            },
        },
    }


@pytest.fixture
def node_namespace(real_api: client.ApiClient) -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(real_api)
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


def test_a_service_balances_requests_over_ready_pods(
    real_cluster: DevCluster, real_api: client.ApiClient, node_namespace: str
) -> None:
    apps, core = client.AppsV1Api(real_api), client.CoreV1Api(real_api)
    apps.create_namespaced_deployment(node_namespace, web_deployment("web", 2))
    service = core.create_namespaced_service(
        node_namespace,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": WEB_PORT}]},
        },
    )

    def ready() -> bool:
        status = apps.read_namespaced_deployment("web", node_namespace).status
        return (status.ready_replicas or 0) == 2

    wait_for(ready, "both web pods to pass their readiness probes", timeout=120)
    pods = {p.metadata.name for p in core.list_namespaced_pod(node_namespace, label_selector="app=web").items}

    def answers() -> collections.Counter[str]:
        seen: collections.Counter[str] = collections.Counter()
        for _ in range(40):
            url = f"http://{service.spec.cluster_ip}/index.html"
            with urllib.request.urlopen(url, timeout=5) as response:
                seen[response.read().decode()] += 1
        return seen

    # kube-proxy programs each endpoint a moment after it turns ready: wait until both are in its rules,
    # then 40 new connections must reach both pods (one pod alone: 2 chances in 2^40).
    wait_for(lambda: set(_quietly(answers) or ()) == pods, "the ClusterIP to reach both pods", timeout=60)
    seen = answers()
    assert set(seen) == pods, f"40 requests reached {dict(seen)}, expected both of {pods}"


def test_pods_resolve_services_and_reach_the_api_server(
    real_cluster: DevCluster, real_api: client.ApiClient, node_namespace: str
) -> None:
    core = client.CoreV1Api(real_api)
    script = (
        "import json, socket, ssl, urllib.request\n"
        "sa = '/var/run/secrets/kubernetes.io/serviceaccount'\n"
        "ip = socket.gethostbyname('kubernetes.default.svc.cluster.local')\n"
        "ctx = ssl.create_default_context(cafile=sa + '/ca.crt')\n"
        "req = urllib.request.Request('https://kubernetes.default.svc/version',\n"
        "    headers={'Authorization': 'Bearer ' + open(sa + '/token').read()})\n"
        "version = json.load(urllib.request.urlopen(req, context=ctx, timeout=10))['gitVersion']\n"
        "print(json.dumps({'ip': ip, 'version': version}))\n"
    )
    core.create_namespaced_pod(
        node_namespace,
        {
            "metadata": {"name": "probe"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "probe", "image": IMAGE, "command": ["python3", "-c", script]}],
            },
        },
    )

    def finished() -> str | None:
        phase = core.read_namespaced_pod("probe", node_namespace).status.phase
        return phase if phase in ("Succeeded", "Failed") else None

    phase = wait_for(finished, "the probe pod to finish", timeout=120)
    # Raw bytes: the client would otherwise parse a JSON-looking log and hand back its repr.
    log = core.read_namespaced_pod_log("probe", node_namespace, _preload_content=False).data.decode()
    assert phase == "Succeeded", log
    answer = json.loads(log.strip().splitlines()[-1])
    kubernetes_service = core.read_namespaced_service("kubernetes", "default")
    assert answer["ip"] == kubernetes_service.spec.cluster_ip
    assert answer["version"] == "v1.34.4"


def _quietly(check: Callable[[], T]) -> T | None:
    """`check()`, or None while the network refuses (a Service's rules are not programmed yet)."""
    try:
        return check()
    except OSError:
        return None

"""The fault suite's fixtures: a control plane of its own (its API server and etcd get restarted and
stopped, which must not disturb other tests' shared cluster), the fault proxy the operator talks through,
and the operator processes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from apiproxy import ApiProxy
from kubernetes import client, config
from scenario import Scenario, operator_env, start_clock

from slipway.devcluster import DevCluster
from slipway.devcluster.install import apply_crds, load_crds
from slipway.devcluster.operator_process import OperatorProcess

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def scenario_clock() -> None:
    start_clock()


@pytest.fixture(scope="session")
def fault_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    with DevCluster(workdir=tmp_path_factory.mktemp("faultcluster"), full=True) as running:
        api = config.new_client_from_config(str(running.kubeconfig))
        peering = list(yaml.safe_load_all((REPO / "manifests/base/peering.yaml").read_text()))
        apply_crds(api, [*load_crds(REPO / "crds"), peering[0]])
        client.CustomObjectsApi(api).create_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings", peering[1]
        )
        yield running


@pytest.fixture(scope="session")
def direct_api(fault_cluster: DevCluster) -> client.ApiClient:
    """Straight to the API server: what the test and the invariant watchers use."""
    return config.new_client_from_config(str(fault_cluster.kubeconfig))


@pytest.fixture
def proxy(fault_cluster: DevCluster, tmp_path: Path) -> Iterator[ApiProxy]:
    with ApiProxy(fault_cluster, tmp_path) as running:
        yield running


@pytest.fixture
def scenario(direct_api: client.ApiClient, tmp_path: Path) -> Iterator[Scenario]:
    name = f"f-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(direct_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield Scenario(direct_api, name, tmp_path / "models")
    core.delete_namespace(name)


@pytest.fixture
def operator(proxy: ApiProxy, tmp_path: Path) -> Iterator[OperatorProcess]:
    """One operator (standalone), through the fault proxy; the test starts it."""
    process = OperatorProcess(kubeconfig=proxy.kubeconfig, log_dir=tmp_path / "operator", env=operator_env())
    process.log_dir.mkdir()
    yield process
    process.stop()

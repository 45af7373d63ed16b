"""RBAC proven, not assumed: the operator runs on the real API server as its own ServiceAccount, with only
the roles from manifests/base (token from the TokenRequest API), and carries a full rollout through —
in a namespace that enforces the `restricted` Pod Security Standard. It cannot read Secrets elsewhere."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from fixtures.waiting import wait_for
from slipway import GROUP, VERSION
from slipway.devcluster import DevCluster
from slipway.devcluster.binaries import find_tool
from slipway.devcluster.install import apply_crds
from slipway.devcluster.operator_process import OperatorProcess

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
SERVED = "ml"
OPERATOR_NAMESPACE = "slipway-system"


@pytest.fixture(scope="module")
def installed(cluster: DevCluster) -> None:
    """Everything from manifests/base except the operator's own Deployment (this test runs it)."""
    kubectl = str(find_tool("kubectl"))
    rendered = subprocess.run(
        [kubectl, "kustomize", str(MANIFESTS / "base")], capture_output=True, text=True, check=True
    )
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d and d["kind"] != "Deployment"]
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    apply_crds(config.new_client_from_config(str(cluster.kubeconfig)), crds)
    applied = subprocess.run(
        [
            kubectl,
            "--kubeconfig",
            str(cluster.kubeconfig),
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            "-",
        ],
        input=yaml.safe_dump_all([d for d in docs if d not in crds]),
        capture_output=True,
        text=True,
    )
    assert applied.returncode == 0, applied.stderr


def service_account_kubeconfig(cluster: DevCluster, admin: client.ApiClient, path: Path) -> Path:
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    token = client.CoreV1Api(admin).create_namespaced_service_account_token(
        "slipway", OPERATOR_NAMESPACE, request
    )
    assert cluster.pki is not None
    ca = base64.b64encode(cluster.pki.ca_cert.read_bytes()).decode()
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "dev", "cluster": {"server": cluster.server, "certificate-authority-data": ca}}
        ],
        "users": [{"name": "slipway", "user": {"token": token.status.token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "dev", "user": "slipway"}}],
        "current-context": "sa",
    }
    path.write_text(yaml.safe_dump(kubeconfig))
    return path


@pytest.fixture
def as_operator(
    installed: None, cluster: DevCluster, api_client: client.ApiClient, tmp_path: Path, fake_tfserving: Any
) -> Iterator[tuple[OperatorProcess, client.ApiClient]]:
    kubeconfig = service_account_kubeconfig(cluster, api_client, tmp_path / "sa.kubeconfig")
    operator = OperatorProcess(kubeconfig=kubeconfig, log_dir=tmp_path, standalone=False)
    operator.env.update(
        {
            "SLIPWAY_TFSERVING_URL_TEMPLATE": fake_tfserving.url_template,
            "SLIPWAY_RECONCILE_INTERVAL_SECONDS": "1",
            "SLIPWAY_IMAGE": "slipway:test",
        }
    )
    operator.start()
    yield operator, config.new_client_from_config(str(kubeconfig))
    operator.stop()


def own_lines(logs: str) -> str:
    """The operator's log without lines about other tests' namespaces (`t-<hex>`, from the fixture
    `namespace`): it watches the whole shared cluster, where the ServiceAccount may read no Secret and
    namespaces other tests delete refuse new Events."""
    return "\n".join(line for line in logs.splitlines() if not re.search(r"\bt-[0-9a-f]{10}\b", line))


@pytest.fixture
def model_claim(api_client: client.ApiClient, tmp_path: Path) -> Iterator[str]:
    """The file:// model store behind a claim: `restricted` pods may not mount a hostPath themselves."""
    core = client.CoreV1Api(api_client)
    volume, claim = f"rbac-models-{uuid.uuid4().hex[:8]}", "rbac-models"
    core.create_persistent_volume(
        {
            "metadata": {"name": volume},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadOnlyMany"],
                "storageClassName": "",
                "hostPath": {"path": str(tmp_path)},
                "claimRef": {"namespace": SERVED, "name": claim},
            },
        }
    )
    core.create_namespaced_persistent_volume_claim(
        SERVED,
        {
            "metadata": {"name": claim},
            "spec": {
                "accessModes": ["ReadOnlyMany"],
                "storageClassName": "",
                "volumeName": volume,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    yield claim
    core.delete_namespaced_persistent_volume_claim(claim, SERVED)
    core.delete_persistent_volume(volume)


def test_operator_as_its_service_account_rolls_out_and_sees_only_served_secrets(
    as_operator: tuple[OperatorProcess, client.ApiClient],
    api_client: client.ApiClient,
    tmp_path: Path,
    model_claim: str,
) -> None:
    operator, operator_client = as_operator
    custom = client.CustomObjectsApi(api_client)
    for version in (1, 2):
        directory = tmp_path / "models" / "penguins" / str(version)
        directory.mkdir(parents=True)
        (directory / "slipway-manifest.json").write_text(
            json.dumps({"modelName": "rbac", "version": version, "sampleRequest": {"instances": [{"x": 1}]}})
        )
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelVersion",
            "metadata": {"name": f"rbac-v{version}"},
            "spec": {"modelName": "rbac", "version": version, "uri": f"file://{directory}"},
        }
        custom.create_namespaced_custom_object(GROUP, VERSION, SERVED, "modelversions", body)
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, SERVED, "modelversions", f"rbac-v{version}", {"status": {"phase": "Validated"}}
        )
        if version == 1:
            endpoint = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ServingEndpoint",
                "metadata": {"name": "rbac"},
                "spec": {
                    "modelName": "rbac",
                    "replicas": 1,
                    "modelVolume": {
                        "mountPath": str(tmp_path),
                        "persistentVolumeClaim": {"claimName": model_claim},
                    },
                    "rollout": {"steps": [{"setWeight": 50}, {"analysis": {}}, {"setWeight": 100}]},
                },
            }
            custom.create_namespaced_custom_object(GROUP, VERSION, SERVED, "servingendpoints", endpoint)

    def status() -> dict[str, Any]:
        body = custom.get_namespaced_custom_object(GROUP, VERSION, SERVED, "servingendpoints", "rbac")
        return body.get("status") or {}

    final = wait_for(
        lambda: (s := status()).get("stableVersion") == 2 and s, "v2 promoted as the ServiceAccount"
    )
    assert final["history"][-1]["outcome"] == "Promoted"
    logs = own_lines(operator.logs())
    assert "Forbidden" not in logs and "status=403" not in logs, logs[-3000:]

    core_admin, core_operator = client.CoreV1Api(api_client), client.CoreV1Api(operator_client)
    secret = client.V1Secret(metadata=client.V1ObjectMeta(name="store"), string_data={"key": "value"})
    core_admin.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="elsewhere")))
    for namespace in (SERVED, "elsewhere"):
        core_admin.create_namespaced_secret(namespace, secret)
    assert core_operator.read_namespaced_secret("store", SERVED).data["key"]
    with pytest.raises(ApiException) as denied:
        core_operator.read_namespaced_secret("store", "elsewhere")
    assert denied.value.status == 403
    with pytest.raises(ApiException) as denied_list:
        core_operator.list_secret_for_all_namespaces()
    assert denied_list.value.status == 403


def test_operator_as_its_service_account_runs_training_as_jobs(
    as_operator: tuple[OperatorProcess, client.ApiClient], api_client: client.ApiClient, s3_server: Any
) -> None:
    """The job executor's verbs: a Job and its ConfigMap created (and their pod admitted under `restricted`),
    a finished run registered, a failed one explained from its pod, a run in flight terminated."""
    from slipway.storage import open_store
    from slipway.training.plan import run_id

    operator, _ = as_operator
    custom, core = client.CustomObjectsApi(api_client), client.CoreV1Api(api_client)
    batch = client.BatchV1Api(api_client)
    bucket = s3_server.new_bucket()
    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
    core.create_namespaced_secret(
        SERVED, client.V1Secret(metadata=client.V1ObjectMeta(name="train-store"), string_data=keys)
    )
    store = open_store(f"s3://{bucket}", s3_server.credentials)
    manifest = {"modelName": "rbac-train", "version": 1, "metrics": {"accuracy": 0.9}}
    store.write_bytes("models/rbac-train/1/slipway-manifest.json", json.dumps(manifest).encode())
    store.write_bytes("models/rbac-train/1/saved_model.pb", b"\x08\x01")
    push = json.dumps({"pushed": True, "version": 1})
    state = {"phase": "Succeeded", "outputs": {"push_result": push}}
    store.write_bytes(
        f"artifacts/{SERVED}/rbac-train/runs/{run_id('rbac-train', 'Manual', 'go')}/state.json",
        json.dumps(state).encode(),
    )

    def pipeline(name: str, job: dict[str, Any]) -> None:
        def location(prefix: str) -> dict[str, Any]:
            return {
                "uri": f"s3://{bucket}/{prefix}",
                "secretRef": {"name": "train-store"},
                "endpoint": s3_server.endpoint,
            }

        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "TrainingPipeline",
            "metadata": {"name": name, "annotations": {f"{GROUP}/run": "go"}},
            "spec": {
                "pipeline": {"builtin": {"name": "penguins"}},
                "modelName": name,
                "data": location("data"),
                "artifactRoot": location("artifacts"),
                "modelStore": location("models"),
                "executor": {"type": "job", "job": job},
            },
        }
        custom.create_namespaced_custom_object(GROUP, VERSION, SERVED, "trainingpipelines", body)

    def runs(name: str) -> list[dict[str, Any]]:
        body = custom.get_namespaced_custom_object(GROUP, VERSION, SERVED, "trainingpipelines", name)
        found: list[dict[str, Any]] = (body.get("status") or {}).get("runs", [])
        return found

    def jobs(name: str) -> list[Any]:
        return batch.list_namespaced_job(SERVED, label_selector=f"{GROUP}/pipeline={name}").items

    unschedulable = {"resources": {"requests": {"cpu": "5000"}}}
    pipeline("rbac-train", {})
    pipeline("rbac-late", {**unschedulable, "activeDeadlineSeconds": 2})
    pipeline("rbac-stuck", unschedulable)
    wait_for(
        lambda: any(
            m["metadata"]["name"] == "rbac-train-v1"
            for m in custom.list_namespaced_custom_object(GROUP, VERSION, SERVED, "modelversions")["items"]
        ),
        "the job run registered as the ServiceAccount",
    )
    failed = wait_for(lambda: (r := runs("rbac-late")) and r[0]["phase"] == "Failed" and r[0], "late failed")
    assert failed["message"].startswith("DeadlineExceeded")
    wait_for(lambda: jobs("rbac-stuck"), "the stuck run's Job")
    custom.delete_namespaced_custom_object(GROUP, VERSION, SERVED, "trainingpipelines", "rbac-stuck")
    wait_for(lambda: not jobs("rbac-stuck"), "the stuck run's Job deleted")
    logs = own_lines(operator.logs())
    assert "Forbidden" not in logs and "status=403" not in logs and " 403 " not in logs, logs[-3000:]

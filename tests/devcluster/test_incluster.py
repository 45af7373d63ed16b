"""slipway.devcluster.incluster and the demo's objects on the real API server (kwok's node: the operator's
pod turns Running without a container, which is all the install's wait needs)."""

from __future__ import annotations

import uuid
from pathlib import Path

from kubernetes import client

from slipway import GROUP, VERSION, demo
from slipway.devcluster import DevCluster, incluster
from slipway.storage.credentials import StorageCredentials


def test_the_dev_overlay_installs_the_operator_and_a_namespace_becomes_servable(
    cluster: DevCluster, api_client: client.ApiClient
) -> None:
    pod = incluster.install_operator(cluster.kubeconfig, timeout=120)
    assert pod["metadata"]["namespace"] == incluster.OPERATOR_NAMESPACE
    assert pod["spec"]["serviceAccountName"] == incluster.OPERATOR_SERVICE_ACCOUNT
    assert pod["spec"]["containers"][0]["image"] == "localhost/slipway:dev"
    report = incluster.pod_report(api_client, incluster.OPERATOR_NAMESPACE)
    assert f"pod {pod['metadata']['name']}: Running" in report, report

    namespace = f"t-{uuid.uuid4().hex[:10]}"
    operator = f"system:serviceaccount:{incluster.OPERATOR_NAMESPACE}:{incluster.OPERATOR_SERVICE_ACCOUNT}"

    def may_read_secrets() -> bool:
        review = client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=operator,
                resource_attributes=client.V1ResourceAttributes(
                    namespace=namespace, verb="get", resource="secrets"
                ),
            )
        )
        answer = client.AuthorizationV1Api(api_client).create_subject_access_review(review)
        return bool(answer.status.allowed)

    assert not may_read_secrets()
    try:
        incluster.serve_namespace(api_client, namespace)
        incluster.serve_namespace(api_client, namespace)  # serving it again is serving it
        assert may_read_secrets()
    finally:
        client.CoreV1Api(api_client).delete_namespace(namespace)


def kept(sent: object, stored: object) -> bool:
    """Every field sent is stored as sent (the API server prunes fields its schema does not know)."""
    if isinstance(sent, dict):
        return isinstance(stored, dict) and all(k in stored and kept(v, stored[k]) for k, v in sent.items())
    if isinstance(sent, list):
        return isinstance(stored, list) and len(sent) == len(stored) and all(map(kept, sent, stored))
    return sent == stored


def test_the_demos_objects_pass_admission_on_either_node_and_every_field_is_known(
    api_client: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    custom = client.CustomObjectsApi(api_client)
    secret = incluster.s3_secret(namespace, "demo-s3", StorageCredentials("k", "s", aws_region="us-east-1"))
    client.CoreV1Api(api_client).create_namespaced_secret(namespace, secret, dry_run="All")
    locations = demo.s3_locations(demo.BUCKET, "demo-s3", "http://10.244.0.1:5000")
    real = (
        demo.pipeline(locations, {"executor": {"type": "job"}}),
        demo.endpoint(demo.real_serving("localhost/slipway-model-server:dev")),
    )
    kwok = (demo.pipeline(demo.file_locations(tmp_path)), demo.endpoint(demo.kwok_serving(tmp_path)))
    for pipeline, endpoint in (real, kwok):
        for plural, body in (("trainingpipelines", pipeline), ("servingendpoints", endpoint)):
            stored = custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, body, dry_run="All"
            )
            assert kept(body["spec"], stored["spec"]), (body["spec"], stored["spec"])

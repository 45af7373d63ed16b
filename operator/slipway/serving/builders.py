"""Pure builders for the children of a ServingEndpoint: per served version a ConfigMap, a TF Serving
Deployment and a Service; per endpoint a Service over every serving version, an optional HPA and an
optional Gateway API HTTPRoute. Names are deterministic; every child carries an owner reference."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slipway import GROUP
from slipway.api.serving_endpoint import ServingEndpointSpec
from slipway.podsecurity import restricted_container, restricted_pod
from slipway.serving import traffic
from slipway.serving.faults import PULLER_CONTAINER, SERVER_CONTAINER
from slipway.views import VersionInfo

REST_PORT = 8501
GRPC_PORT = 8500
MODELS_DIR = "/models"
HASH_ANNOTATION = f"{GROUP}/applied-hash"
ENDPOINT_LABEL = f"{GROUP}/endpoint"
VERSION_LABEL = f"{GROUP}/version"
MODEL_LABEL = f"{GROUP}/model"
RUN_AS = 1000
METRICS_PATH = "/monitoring/prometheus/metrics"
MODEL_STORE_VOLUME = "model-store"
NO_VERSION = "none"  # a version label value no pod has: the endpoint's Service selecting nothing


@dataclass(frozen=True)
class Endpoint:
    """What every builder needs to know about the endpoint itself."""

    name: str
    namespace: str
    spec: ServingEndpointSpec
    owner: dict[str, Any]
    puller_image: str


def version_name(endpoint: str, version: int) -> str:
    suffix = f"-v{version}"
    if len(endpoint) + len(suffix) <= 63:
        return endpoint + suffix
    digest = hashlib.sha256(endpoint.encode()).hexdigest()[:6]
    return f"{endpoint[: 63 - len(suffix) - 7]}-{digest}{suffix}"


def labels(endpoint: Endpoint, version: int | None = None) -> dict[str, str]:
    result = {
        "app.kubernetes.io/name": "tensorflow-serving",
        "app.kubernetes.io/instance": endpoint.name,
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/part-of": "slipway",
        "app.kubernetes.io/managed-by": "slipway",
        ENDPOINT_LABEL: endpoint.name,
        MODEL_LABEL: endpoint.spec.model_name,
    }
    if version is not None:
        result[VERSION_LABEL] = str(version)
        result["app.kubernetes.io/version"] = str(version)
    return result


def selector(endpoint: Endpoint, version: int | None = None) -> dict[str, str]:
    result = {ENDPOINT_LABEL: endpoint.name}
    if version is not None:
        result[VERSION_LABEL] = str(version)
    return result


def stamp(obj: dict[str, Any]) -> dict[str, Any]:
    """Records a hash of the desired object on it, so an unchanged child is never written again."""
    digest = hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]
    obj["metadata"].setdefault("annotations", {})[HASH_ANNOTATION] = digest
    return obj


def _meta(endpoint: Endpoint, name: str, version: int | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": endpoint.namespace,
        "labels": labels(endpoint, version),
        "ownerReferences": [endpoint.owner],
    }


def model_config(model_name: str, version: int) -> str:
    """TF Serving's model config (text proto): exactly this version, from the pulled directory."""
    return (
        "model_config_list {\n"
        "  config {\n"
        f'    name: "{model_name}"\n'
        f'    base_path: "{MODELS_DIR}/{model_name}"\n'
        '    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ specific {{ versions: {version} }} }}\n"
        "  }\n"
        "}\n"
    )


MONITORING_CONFIG = f'prometheus_config {{\n  enable: true\n  path: "{METRICS_PATH}"\n}}\n'


def config_map(endpoint: Endpoint, version: int) -> dict[str, Any]:
    data = {"models.config": model_config(endpoint.spec.model_name, version)}
    if endpoint.spec.runtime.monitoring.prometheus:
        data["monitoring.config"] = MONITORING_CONFIG
    return stamp(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(endpoint, version_name(endpoint.name, version), version),
            "data": data,
        }
    )


def deployment(endpoint: Endpoint, info: VersionInfo, replicas: int | None) -> dict[str, Any]:
    """A TF Serving Deployment serving exactly `info.version`. `replicas=None` leaves scaling to the HPA."""
    spec, model, version = endpoint.spec, endpoint.spec.model_name, info.version
    name = version_name(endpoint.name, version)
    model_dir = f"{MODELS_DIR}/{model}/{version}"
    puller: dict[str, Any] = {
        "name": PULLER_CONTAINER,
        "image": endpoint.puller_image,
        "command": ["slipway", "pull", info.uri, model_dir],
        "volumeMounts": [{"name": "models", "mountPath": MODELS_DIR}, {"name": "tmp", "mountPath": "/tmp"}],
        "securityContext": restricted_container(),
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        # The puller's last stderr line (what failed, and why) becomes the termination message the operator
        # reports when the rollout aborts.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if info.storage_secret:
        puller["envFrom"] = [{"secretRef": {"name": info.storage_secret}}]
    if info.storage_endpoint:
        # Ahead of any endpoint in the Secret: the ModelVersion names the store its model was pushed to.
        puller["env"] = [{"name": "AWS_ENDPOINT_URL_S3", "value": info.storage_endpoint}]
    volumes: list[dict[str, Any]] = [
        {"name": "models", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {}},
        {"name": "config", "configMap": {"name": name}},
    ]
    if (store := spec.model_volume) is not None:
        puller["volumeMounts"].append(
            {"name": MODEL_STORE_VOLUME, "mountPath": store.mount_path, "readOnly": True}
        )
        source: dict[str, Any] = (
            {
                "persistentVolumeClaim": {
                    "claimName": store.persistent_volume_claim.claim_name,
                    "readOnly": True,
                }
            }
            if store.persistent_volume_claim is not None
            else {"hostPath": {"path": store.host_path, "type": "Directory"}}
        )
        volumes.append({"name": MODEL_STORE_VOLUME, **source})
    server: dict[str, Any] = {
        "name": SERVER_CONTAINER,
        "image": f"{spec.runtime.image}:{spec.runtime.version}",
        "args": [
            f"--port={GRPC_PORT}",
            f"--rest_api_port={REST_PORT}",
            "--model_config_file=/config/models.config",
            *(["--enable_batching=true"] if spec.runtime.batching else []),
            *(
                ["--monitoring_config_file=/config/monitoring.config"]
                if spec.runtime.monitoring.prometheus
                else []
            ),
        ],
        "ports": [
            {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
            {"name": "http", "containerPort": REST_PORT, "protocol": "TCP"},
        ],
        # TF Serving opens its ports only after the configured versions have loaded, and this path answers
        # 404 until this exact version is known: ready means this version is AVAILABLE, not just a port.
        "readinessProbe": {
            "httpGet": {"path": f"/v1/models/{model}/versions/{version}", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": f"/v1/models/{model}", "port": "http"},
            "initialDelaySeconds": 30,
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "volumeMounts": [
            {"name": "models", "mountPath": MODELS_DIR, "readOnly": True},
            {"name": "config", "mountPath": "/config", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "securityContext": restricted_container(),
        "resources": spec.runtime.resources.to_wire(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    # The user's labels and annotations (workload identity, say) never override Slipway's own.
    pod_meta: dict[str, Any] = {"labels": {**spec.pod_metadata.labels, **labels(endpoint, version)}}
    annotations = dict(spec.pod_metadata.annotations)
    if spec.runtime.monitoring.prometheus:
        # TF Serving labels its metrics by model name only: per-version figures come from per-version pods.
        annotations.update(
            {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(REST_PORT),
                "prometheus.io/path": METRICS_PATH,
            }
        )
    if annotations:
        pod_meta["annotations"] = annotations
    pod_spec: dict[str, Any] = {
        **restricted_pod(RUN_AS),
        "initContainers": [puller],
        "containers": [server],
        "volumes": volumes,
    }
    if spec.service_account_name:
        pod_spec["serviceAccountName"] = spec.service_account_name
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(endpoint, name, version),
        "spec": {
            "selector": {"matchLabels": selector(endpoint, version)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {"metadata": pod_meta, "spec": pod_spec},
        },
    }
    if replicas is not None:
        body["spec"]["replicas"] = replicas
    return stamp(body)


def _service(
    endpoint: Endpoint, name: str, pod_selector: Mapping[str, str | None], version: int | None
) -> dict[str, Any]:
    return stamp(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(endpoint, name, version),
            "spec": {
                "selector": pod_selector,
                "ports": [
                    {"name": "http", "port": REST_PORT, "targetPort": "http", "protocol": "TCP"},
                    {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "protocol": "TCP"},
                ],
            },
        }
    )


def version_service(endpoint: Endpoint, version: int) -> dict[str, Any]:
    return _service(endpoint, version_name(endpoint.name, version), selector(endpoint, version), version)


def endpoint_service(endpoint: Endpoint, selects: traffic.Selection) -> dict[str, Any]:
    """Selects every version's pods (the replica ratio), one version's, or none (see traffic.py). Going
    from one version to all, the version key must go: its null removes it from the Service's selector
    (a patch merges maps); creating drops nulls."""
    pod_selector: dict[str, str | None] = {**selector(endpoint), VERSION_LABEL: None}
    if selects == traffic.NONE:
        pod_selector[VERSION_LABEL] = NO_VERSION
    elif selects != traffic.ALL:
        pod_selector[VERSION_LABEL] = str(selects)
    return _service(endpoint, endpoint.name, pod_selector, None)


def autoscaler(endpoint: Endpoint, stable_version: int) -> dict[str, Any] | None:
    scaling = endpoint.spec.autoscaling
    if scaling is None:
        return None
    return stamp(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": _meta(endpoint, endpoint.name),
            "spec": {
                "scaleTargetRef": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": version_name(endpoint.name, stable_version),
                },
                "minReplicas": scaling.min_replicas,
                "maxReplicas": scaling.max_replicas,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {
                                "type": "Utilization",
                                "averageUtilization": scaling.target_cpu_utilization_percentage,
                            },
                        },
                    }
                ],
            },
        }
    )


def http_route(endpoint: Endpoint, weights: dict[int, int]) -> dict[str, Any] | None:
    routing = endpoint.spec.rollout.traffic_routing
    if routing is None or routing.http_route is None:
        return None
    backends = [
        {"name": version_name(endpoint.name, version), "port": REST_PORT, "weight": weight}
        for version, weight in sorted(weights.items())
    ]
    return stamp(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": _meta(endpoint, endpoint.name),
            "spec": {
                "parentRefs": [ref.to_wire() for ref in routing.http_route.parent_refs],
                "hostnames": list(routing.http_route.hostnames),
                "rules": [{"backendRefs": backends}],
            },
        }
    )


def service_monitor(endpoint: Endpoint) -> dict[str, Any] | None:
    monitoring = endpoint.spec.runtime.monitoring
    if not (monitoring.prometheus and monitoring.service_monitor):
        return None
    return stamp(
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": _meta(endpoint, endpoint.name),
            "spec": {
                "selector": {
                    "matchLabels": {
                        ENDPOINT_LABEL: endpoint.name,
                        "app.kubernetes.io/component": "model-server",
                    }
                },
                "endpoints": [{"port": "http", "path": METRICS_PATH, "interval": "30s"}],
            },
        }
    )


def url(endpoint: Endpoint) -> str:
    return (
        f"http://{endpoint.name}.{endpoint.namespace}.svc.cluster.local:{REST_PORT}"
        f"/v1/models/{endpoint.spec.model_name}"
    )


def children(
    endpoint: Endpoint,
    versions: dict[int, VersionInfo],
    replicas: dict[int, int],
    stable_version: int | None,
    service_selects: traffic.Selection,
    route_weights: dict[int, int],
) -> list[dict[str, Any]]:
    """Every child the endpoint should have right now."""
    desired: list[dict[str, Any]] = []
    for version, count in sorted(replicas.items()):
        info = versions.get(version)
        if info is None:
            continue
        hpa_owned = endpoint.spec.autoscaling is not None and version == stable_version
        desired += [
            config_map(endpoint, version),
            deployment(endpoint, info, None if hpa_owned else count),
            version_service(endpoint, version),
        ]
    desired.append(endpoint_service(endpoint, service_selects))
    if stable_version is not None and (hpa := autoscaler(endpoint, stable_version)) is not None:
        desired.append(hpa)
    if (route := http_route(endpoint, route_weights)) is not None:
        desired.append(route)
    if (monitor := service_monitor(endpoint)) is not None:
        desired.append(monitor)
    return desired

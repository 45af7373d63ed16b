"""TF Serving's configuration: the model config file and the monitoring config file (text protos, parsed
with TF Serving's own messages), the single-model form of the command line, and which versions under a
model's base path its version policy asks for (what TF Serving's file-system storage path source does)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

DEFAULT_METRICS_PATH = "/monitoring/prometheus/metrics"  # PrometheusExporter::kPrometheusPath
# What makes a version directory loadable: the pusher and the puller write saved_model.pb last.
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the model config list, as this server uses it."""

    name: str
    base_path: str
    policy: str = "latest"  # latest | all | specific
    latest: int = 1
    specific: tuple[int, ...] = ()
    labels: dict[str, int] = field(default_factory=dict)


def _monitoring_message_class() -> Any:
    """tensorflow.serving.MonitoringConfig: the tensorflow-serving-api wheel does not ship
    monitoring_config_pb2, so the two messages of monitoring_config.proto are declared here, field for
    field."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/config/monitoring_config.proto",
        package="tensorflow.serving",
        syntax="proto3",
    )
    prometheus = proto.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=8, label=1)  # bool
    prometheus.field.add(name="path", number=2, type=9, label=1)  # string
    monitoring = proto.message_type.add(name="MonitoringConfig")
    monitoring.field.add(
        name="prometheus_config", number=1, type=11, label=1, type_name=".tensorflow.serving.PrometheusConfig"
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig"))


MonitoringConfig = _monitoring_message_class()


def metrics_path(text: str | None, source: str = "monitoring config") -> str | None:
    """The Prometheus page's path, or None when the config does not enable it (or there is none)."""
    if text is None:
        return None
    config = MonitoringConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise ConfigError(f"{source}: {error}") from None
    if not config.prometheus_config.enable:
        return None
    return config.prometheus_config.path or DEFAULT_METRICS_PATH


def parse_model_config(text: str, source: str = "model config") -> list[ModelSpec]:
    # tensorflow-serving-api comes with the TensorFlow stack; the rest of this module needs only protobuf.
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise ConfigError(f"{source}: {error}") from None
    if config.WhichOneof("config") == "custom_model_config":
        raise ConfigError(f"{source}: custom_model_config is not supported; use model_config_list")
    specs: list[ModelSpec] = []
    for index, entry in enumerate(config.model_config_list.config):
        where = f"{source}: model_config_list.config[{index}]"
        if not entry.name:
            raise ConfigError(f"{where}.name is empty")
        if not entry.base_path:
            raise ConfigError(f"{where}.base_path is empty (model {entry.name!r})")
        if "://" in entry.base_path and not entry.base_path.startswith("file://"):
            raise ConfigError(
                f"{where}.base_path {entry.base_path!r}: only local directories are read (TF Serving"
                " >= 2.7 reads no s3:// either); pull the model into one first (`slipway pull`)"
            )
        if entry.model_platform not in ("", "tensorflow"):
            raise ConfigError(f"{where}.model_platform {entry.model_platform!r}: only 'tensorflow' is served")
        if any(spec.name == entry.name for spec in specs):
            raise ConfigError(f"{where}.name {entry.name!r} is configured twice")
        specs.append(_spec(entry, where))
    return specs


def _spec(entry: Any, where: str) -> ModelSpec:
    policy = entry.model_version_policy
    choice = policy.WhichOneof("policy_choice") or "latest"
    specific = tuple(sorted(set(policy.specific.versions)))
    if choice == "specific" and not specific:
        raise ConfigError(f"{where}.model_version_policy.specific lists no versions")
    return ModelSpec(
        name=entry.name,
        base_path=entry.base_path,
        policy=choice,
        latest=max(policy.latest.num_versions, 1),
        specific=specific,
        labels=dict(entry.version_labels),
    )


class Reloading:
    """The model list from the config file: read at start, then again every `seconds` (never when 0), as
    --model_config_file_poll_wait_seconds does. A file that no longer parses keeps the previous list."""

    def __init__(
        self, read: Callable[[], list[ModelSpec]], seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._read, self._seconds, self._clock = read, seconds, clock
        self._specs = read()
        self._read_at = clock()

    def __call__(self) -> list[ModelSpec]:
        if self._seconds > 0 and self._clock() - self._read_at >= self._seconds:
            self._read_at = self._clock()
            try:
                self._specs = self._read()
            except (ConfigError, OSError) as error:
                logging.getLogger("slipway.modelserver").error("keeping the previous model config: %s", error)
        return self._specs


def single_model(name: str, base_path: str) -> list[ModelSpec]:
    """`--model_name`/`--model_base_path`: one model, the latest version."""
    return [ModelSpec(name=name, base_path=base_path)]


def versions_on_disk(base_path: str) -> dict[int, Path]:
    """The loadable version directories under a base path: integer names holding a SavedModel."""
    root = Path(base_path.removeprefix("file://"))
    found: dict[int, Path] = {}
    try:
        children = sorted(root.iterdir())
    except OSError:
        return found
    for child in children:
        if child.name.isdigit() and any((child / name).is_file() for name in SAVED_MODEL_FILES):
            found.setdefault(int(child.name), child)
    return found


def aspired_versions(spec: ModelSpec, available: list[int]) -> list[int]:
    """The versions the policy asks for among those available, newest first."""
    newest_first = sorted(set(available), reverse=True)
    if spec.policy == "all":
        return newest_first
    if spec.policy == "specific":
        return [v for v in newest_first if v in spec.specific]
    return newest_first[: spec.latest]

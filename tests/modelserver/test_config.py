"""The model server's config files parsed with TF Serving's own protos (tensorflow-serving-api, which comes
with the TensorFlow stack): the operator's ConfigMap, version policies and labels, errors naming the field,
and how often the model config file is read again."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from slipway.modelserver import config
from slipway.serving import builders
from slipway.serving.builders import MONITORING_CONFIG, model_config

pytestmark = pytest.mark.tensorflow


def test_the_operators_model_config_is_read_with_tf_servings_protos() -> None:
    (spec,) = config.parse_model_config(model_config("penguins", 7))
    assert spec == config.ModelSpec("penguins", "/models/penguins", policy="specific", specific=(7,))
    assert config.metrics_path(MONITORING_CONFIG) == builders.METRICS_PATH


def test_policies_labels_and_defaults() -> None:
    text = """
    model_config_list {
      config { name: "a" base_path: "/m/a" model_platform: "tensorflow" }
      config { name: "b" base_path: "/m/b" model_version_policy { latest { num_versions: 2 } } }
      config { name: "c" base_path: "/m/c" model_version_policy { all {} }
               version_labels { key: "stable" value: 3 } version_labels { key: "canary" value: 4 } }
    }"""
    a, b, c = config.parse_model_config(text)
    available = [1, 4, 3, 2]
    assert config.aspired_versions(a, available) == [4]
    assert config.aspired_versions(b, available) == [4, 3]
    assert config.aspired_versions(c, available) == [4, 3, 2, 1]
    assert c.labels == {"stable": 3, "canary": 4}
    specific = config.ModelSpec("d", "/m/d", policy="specific", specific=(2, 9))
    assert config.aspired_versions(specific, available) == [2]
    assert config.metrics_path("prometheus_config { enable: true }") == "/monitoring/prometheus/metrics"
    assert config.metrics_path("prometheus_config { enable: false }") is None
    assert config.metrics_path(None) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('model_config_list { config { name: "a" base_path: "/m" colour: 1 } }', "has no field named"),
        ('model_config_list { config { base_path: "/m" } }', "model_config_list.config[0].name is empty"),
        ('model_config_list { config { name: "a" } }', "config[0].base_path is empty (model 'a')"),
        (
            'model_config_list { config { name: "a" base_path: "/m" } config { name: "a" base_path: "/n" } }',
            "config[1].name 'a' is configured twice",
        ),
        (
            'model_config_list { config { name: "a" base_path: "s3://models/a" } }',
            "config[0].base_path 's3://models/a': only local directories are read",
        ),
        (
            'model_config_list { config { name: "a" base_path: "/m" model_platform: "pytorch" } }',
            "only 'tensorflow' is served",
        ),
        (
            'model_config_list { config { name: "a" base_path: "/m" model_version_policy { specific {} } } }',
            "specific lists no versions",
        ),
    ],
)
def test_bad_model_configs_name_the_field(text: str, message: str) -> None:
    with pytest.raises(config.ConfigError, match=re.escape(message)):
        config.parse_model_config(text, "models.config")


def test_the_config_file_is_reread_only_as_often_as_asked(tmp_path: Path) -> None:
    path = tmp_path / "models.config"
    path.write_text('model_config_list { config { name: "a" base_path: "/m/a" } }')
    now = [0.0]
    read = lambda: config.parse_model_config(path.read_text())  # noqa: E731
    never = config.Reloading(read, 0, clock=lambda: now[0])
    every_minute = config.Reloading(read, 60, clock=lambda: now[0])
    path.write_text('model_config_list { config { name: "b" base_path: "/m/b" } }')
    now[0] = 30
    assert [s.name for s in every_minute()] == ["a"]
    now[0] = 61
    assert [s.name for s in every_minute()] == ["b"]
    assert [s.name for s in never()] == ["a"]
    path.write_text("model_config_list { config { name: ")  # a half-written file keeps the last good list
    now[0] = 200
    assert [s.name for s in every_minute()] == ["b"]

"""The monitoring a platform engineer installs: generated files checked in, rules valid for promtool, and a
real Prometheus scraping the operator through a scenario (runs that fail, a gate that rejects, a drifted
batch, a rollout that rolls back) until every alert fires. With SLIPWAY_UPDATE_CAPTURES=1 the scenario's
metrics are saved for the dashboard picture (`make monitoring-dashboard`)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from fixtures.crds import install_third_party_crd
from fixtures.penguins import resample, shifted
from fixtures.pipelines import local_pipeline
from fixtures.prometheus import Prometheus
from fixtures.waiting import wait_for
from slipway import GROUP, VERSION
from slipway.monitoring.__main__ import files
from slipway.monitoring.dashboard import PANELS, concrete, targets
from slipway.monitoring.render import render, series_from_matrix
from slipway.monitoring.rules import ALERTS, rule_groups

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "manifests" / "monitoring"
CAPTURE = REPO / "tests" / "data" / "monitoring" / "dashboard.json"
TINY = REPO / "tests" / "training" / "pipelines"
# TF Serving's own metrics: no TF Serving runs here (kwok pods run no containers), so nothing exports them.
TF_SERVING = re.compile(r"^:tensorflow:")


def test_the_checked_in_files_are_what_the_generator_writes() -> None:
    for name, text in files().items():
        assert (MONITORING / name).read_text() == text, f"run `make monitoring` ({name} is stale)"


def test_the_alert_rules_pass_promtool(prometheus_binaries: dict[str, str]) -> None:
    result = subprocess.run(
        [prometheus_binaries["promtool"], "check", "rules", str(MONITORING / "rules.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_the_prometheus_rule_is_accepted_by_the_prometheus_operator_crd(
    api_client: client.ApiClient, namespace: str
) -> None:
    install_third_party_crd(api_client, "prometheus-operator", "prometheusrules")
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    created = client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        "monitoring.coreos.com", "v1", namespace, "prometheusrules", rule
    )
    alerts = [r["alert"] for group in created["spec"]["groups"] for r in group["rules"]]
    assert alerts == [alert.name for alert in ALERTS]


def referenced_metrics() -> set[str]:
    exprs = [expr for panel in PANELS for expr, _ in targets(panel)] + [alert.expr for alert in ALERTS]
    return {name for expr in exprs for name in re.findall(r"slipway_[a-z_]+|:tensorflow:[a-z_:]+", expr)}


def test_the_dashboard_renders_from_captured_metrics(tmp_path: Path) -> None:
    capture = json.loads(CAPTURE.read_text())
    drawn = {title for title, series in capture["panels"].items() if series}
    for title in (
        "Pipeline runs by outcome and trigger",
        "Drift score per feature (last batch)",
        "Rollbacks by endpoint and reason",
        "ModelVersions by phase",
    ):
        assert title in drawn, f"the capture has no data for {title!r}: refresh it (see module docstring)"
    out = tmp_path / "dashboard.png"
    render(capture, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 50_000
    assert (REPO / "docs" / "monitoring-dashboard.png").is_file()


class Scenario:
    def __init__(self, api: client.ApiClient, namespace: str, root: Path) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.root = root

    def create(self, plural: str, body: dict[str, Any]) -> None:
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, body)

    def get(self, plural: str, name: str) -> dict[str, Any]:
        body: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, name
        )
        return body

    def patch(self, plural: str, name: str, patch: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name, patch)

    def runs(self) -> list[dict[str, Any]]:
        return (self.get("trainingpipelines", "churn").get("status") or {}).get("runs", [])

    def run(self, token: str, **parameters: str) -> None:
        self.patch(
            "trainingpipelines",
            "churn",
            {"metadata": {"annotations": {f"{GROUP}/run": token}}, "spec": {"parameters": parameters}},
        )
        wait_for(
            lambda: any(
                r["details"].get("triggerKey") == token and r["phase"] not in ("Pending", "Running")
                for r in self.runs()
            ),
            f"run {token} finished",
            timeout=60,
        )

    def served_version(self, version: int, phase: str = "Validated") -> None:
        directory = self.root / "served" / str(version)
        directory.mkdir(parents=True)
        (directory / "saved_model.pb").write_bytes(b"\x08\x01")
        (directory / "slipway-manifest.json").write_text(
            json.dumps({"modelName": "web", "version": version, "sampleRequest": {"instances": [{"x": 1}]}})
        )
        name = f"web-v{version}"
        self.create(
            "modelversions",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ModelVersion",
                "metadata": {"name": name},
                "spec": {"modelName": "web", "version": version, "uri": f"file://{directory}"},
            },
        )
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, "modelversions", name, {"status": {"phase": phase}}
        )


def test_prometheus_scrapes_the_operator_and_every_alert_fires(
    api_client: client.ApiClient,
    namespace: str,
    tmp_path: Path,
    operator_process: Any,
    fake_tfserving: Any,
    prometheus: Prometheus,
) -> None:
    operator_process.env.update(
        {
            "SLIPWAY_PIPELINES_DIR": str(TINY),
            "SLIPWAY_TRAINING_POLL_SECONDS": "1",
            "SLIPWAY_TFSERVING_URL_TEMPLATE": fake_tfserving.url_template,
            "SLIPWAY_RECONCILE_INTERVAL_SECONDS": "1",
            "SLIPWAY_IMAGE": "slipway:test",
        }
    )
    operator_process.start()
    prometheus.start([f"127.0.0.1:{operator_process.metrics_port}"], rule_groups(for_override="0s"))
    scenario = Scenario(api_client, namespace, tmp_path)

    # Training: a model, a rejected one, three failures in a row, then a drifted batch.
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "penguins.csv").write_bytes(resample(344, seed=0))
    (tmp_path / "batches").mkdir()
    scenario.create(
        "trainingpipelines",
        local_pipeline(
            tmp_path,
            "churn",
            gates={"metrics": [{"name": "accuracy", "min": "0.9"}]},
            triggers={
                "onDrift": {"batches": {"uri": f"file://{tmp_path}/batches"}, "pollIntervalSeconds": 5}
            },
        ),
    )
    scenario.run("good")
    scenario.run("weak", accuracy="0.6")
    for attempt in range(3):
        scenario.run(f"broken-{attempt}", fail="true", accuracy="0.95")
    scenario.patch("trainingpipelines", "churn", {"spec": {"parameters": {"fail": "false"}}})
    (tmp_path / "batches" / "day-1.csv").write_bytes(resample(200, seed=1))
    time.sleep(6)
    (tmp_path / "batches" / "day-2.csv").write_bytes(shifted(200, seed=2))
    wait_for(lambda: any(r["trigger"] == "Drift" for r in scenario.runs()), "a Drift run", timeout=60)

    # Serving: v1 stable, v2 fails its analysis and rolls back.
    scenario.served_version(1)
    scenario.create(
        "servingendpoints",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ServingEndpoint",
            "metadata": {"name": "web"},
            "spec": {
                "modelName": "web",
                "replicas": 1,
                "modelVolume": {"mountPath": str(scenario.root), "hostPath": str(scenario.root)},
                "rollout": {"steps": [{"setWeight": 50}, {"analysis": {}}, {"setWeight": 100}]},
            },
        },
    )
    wait_for(
        lambda: (scenario.get("servingendpoints", "web").get("status") or {}).get("stableVersion") == 1, "v1"
    )
    fake_tfserving.broken_versions.add(2)
    scenario.served_version(2)
    wait_for(
        lambda: (scenario.get("servingendpoints", "web").get("status") or {}).get("failedVersions") == [2],
        "v2 rolled back",
        timeout=90,
    )

    firing = wait_for(
        lambda: (f := prometheus.firing()).keys() >= {a.name for a in ALERTS} and f,
        "every alert firing",
        timeout=60,
    )
    assert {"namespace": namespace, "pipeline": "churn"}.items() <= firing["SlipwayTrainingRunsFailing"][
        0
    ].items()
    assert firing["SlipwayRollback"][0]["endpoint"] == "web"
    assert firing["SlipwayDataDrift"][0]["outcome"] == "Drifted"
    assert firing["SlipwayEndpointDegraded"][0]["namespace"] == namespace

    # Every metric the dashboard and the rules name is one the operator exports (TF Serving's aside).
    scrape = operator_process.metrics()
    exported = {s.name for family in text_string_to_metric_families(scrape) for s in family.samples}
    missing = {m for m in referenced_metrics() if not TF_SERVING.match(m)} - exported
    assert not missing, f"named by the dashboard or the rules but not exported: {missing}"
    drift = prometheus.query(f'slipway_drift_score{{namespace="{namespace}",feature="body_mass_g"}}')
    assert drift and float(drift[0]["value"][1]) > 0.1
    assert prometheus.query(f'slipway_model_versions{{namespace="{namespace}",phase="Rejected"}}')

    if os.environ.get("SLIPWAY_UPDATE_CAPTURES") == "1":
        # Let the Drift run finish and a few more scrapes land, so the picture ends on the final state.
        wait_for(
            lambda: any(r["trigger"] == "Drift" and r.get("pushed") for r in scenario.runs()), "the Drift run"
        )
        time.sleep(5)
        end = time.time()
        panels = {}
        for panel in PANELS:
            series = []
            for expr, legend in targets(panel):
                data = prometheus.api(
                    "query_range", query=concrete(expr), start=prometheus.started, end=end, step=2
                )
                series += series_from_matrix(data["result"], legend)
            panels[panel.title] = series
        CAPTURE.parent.mkdir(parents=True, exist_ok=True)
        source = "captured from tests/monitoring (tiny pipeline, kwok, real Prometheus 2.42)"
        CAPTURE.write_text(
            json.dumps({"start": prometheus.started, "end": end, "source": source, "panels": panels}) + "\n"
        )

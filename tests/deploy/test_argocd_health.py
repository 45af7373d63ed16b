"""The Argo CD health checks judged by Argo CD itself (v3.6.1, its `argocd admin settings resource-overrides
health`, the controller's code path: gopher-lua with Argo CD's libraries, then its deletion handling) on the
captured objects and the edge objects of health_cases.py. test_lua51_health.py is the fast tier of the same
cases."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from health_cases import ARGOCD, CASES, Case

from fixtures.argocd import argocd_health
from slipway.argocd import render_config_map


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_health_judged_by_argocd(argocd_bin: Path, case: Case) -> None:
    status, message = argocd_health(argocd_bin, case.object())
    assert status == case.status
    assert message == case.message if case.exact else case.message in message


def test_without_a_deletion_message_argocd_says_only_pending_deletion(
    argocd_bin: Path, tmp_path: Path
) -> None:
    """What the checks' deletionMessage replaces: Argo CD's generic text for a resource being deleted."""
    config_map = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())
    key = "resource.customizations.health.slipway.dev_ServingEndpoint"
    config_map["data"][key] = config_map["data"][key].replace("hs.deletionMessage = hs.message", "")
    stripped = tmp_path / "argocd-cm.yaml"
    stripped.write_text(yaml.safe_dump(config_map))
    deleting = next(case for case in CASES if case.id == "se-deleting").object()
    assert argocd_health(argocd_bin, deleting, stripped) == (
        "Progressing",
        "Pending deletion; blocked by finalizers: slipway.dev/finalizer",
    )


def test_config_map_snippet_matches_the_lua_files() -> None:
    on_disk = (ARGOCD / "argocd-cm.yaml").read_text()
    assert on_disk == render_config_map(ARGOCD), "run `make argocd`"
    data = yaml.safe_load(on_disk)["data"]
    for kind, name in (("ServingEndpoint", "servingendpoint"), ("ModelVersion", "modelversion")):
        assert (
            data[f"resource.customizations.health.slipway.dev_{kind}"]
            == (ARGOCD / "health" / f"{name}.lua").read_text()
        )

"""docs/api.md is generated from the pydantic models (the CRDs' schemas); this fails when it drifts."""

from __future__ import annotations

from pathlib import Path

from slipway.api import apidoc
from slipway.api.common import KubeModel
from slipway.api.crd import KINDS, _cel_rules_by_title

REPO = Path(__file__).resolve().parents[2]


def test_checked_in_api_reference_matches_the_models() -> None:
    assert (REPO / "docs" / "api.md").read_text() == apidoc.render(), "run `make api-docs`"


def row(document: str, path: str) -> list[str]:
    (line,) = [line for line in document.splitlines() if line.startswith(f"| `{path}` |")]
    return [cell.strip() for cell in line.strip("|").split(" | ")]


def test_a_row_carries_type_default_limits_and_description() -> None:
    document = apidoc.render()
    assert row(document, "spec.schedule.concurrencyPolicy") == [
        "`spec.schedule.concurrencyPolicy`",
        "string",
        "`Forbid`",
        "one of `Allow`, `Forbid`, `Replace`",
        "",
    ]
    assert row(document, "spec.schedule.cron")[3:] == [
        "*required*; length 1 to 128",
        "Cron expression, e.g. '0 3 * * *'.",
    ]
    assert row(document, "spec.rollout.steps[].setWeight")[1:4] == ["integer", "", "0 to 100"]
    # A pattern's `|` is escaped, or the table would gain columns.
    assert (
        row(document, "spec.pipeline.specUri")[3]
        == "length ≤ 2048; pattern `^(s3\\|gs\\|az\\|file\\|https)://.+`"
    )


def test_every_cel_rule_message_is_documented() -> None:
    document = apidoc.render()
    models: dict[str, type[KubeModel]] = {}
    for kind in KINDS:
        _cel_rules_by_title(kind.model, models)
    messages = {message for model in models.values() for _, message, _ in model.cel_rules}
    assert len(messages) >= 8
    assert all(f"| {message.replace('|', chr(92) + '|')} |" in document for message in messages)


def test_operator_reference_is_generated_from_the_settings_and_the_command() -> None:
    from slipway import opsdoc

    assert (REPO / "docs" / "operator.md").read_text() == opsdoc.render(), "run `make api-docs`"
    document = opsdoc.render()
    assert "| `SLIPWAY_RECONCILE_INTERVAL_SECONDS` | float | `15.0` |" in document
    assert "### `slipway dev-cluster up`" in document and "| `--node` | `kwok` |" in document
    assert "### `slipway pull`" in document and "| `--workers` | `16` |" in document

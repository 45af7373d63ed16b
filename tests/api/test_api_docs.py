"""docs/api.md is generated from the pydantic models (the CRDs' schemas); this fails when it drifts."""

from __future__ import annotations

from pathlib import Path

from slipway import formats
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
        "*required*; length 1 to 128; a cron expression ([refusals](#cron))",
        "Five-field cron expression as a CronJob takes it, e.g. '0 3 * * *'.",
    ]
    assert row(document, "spec.rollout.steps[].setWeight")[1:4] == ["integer", "", "0 to 100"]
    # A pattern's `|` is escaped, or the table would gain columns.
    assert row(document, "spec.rollout.steps[].pause.duration")[3] == (
        "length ≤ 8; pattern `^(0\\|[1-9][0-9]{0,6})(s\\|m\\|h)$`; refused: must be from 0s to 604800s"
    )
    assert row(document, "spec.pipeline.specUri")[3] == (
        "length ≤ 2048; a storage URI naming an object, or an https:// URL ([refusals](#storage-uris))"
    )


def test_every_refusal_of_a_storage_uri_and_a_cron_is_documented() -> None:
    document = apidoc.render()
    for check in (*formats.URI_CHECKS, formats.KEY_CHECK, *formats.CRON_CHECKS):
        assert check.message in document


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

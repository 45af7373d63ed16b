"""The one sanitizer of messages, and the one decision about failed reconciles (pure functions)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes.client.rest import ApiException
from pydantic import ValidationError

from slipway.api.common import set_condition
from slipway.api.serving_endpoint import ServingEndpointSpec
from slipway.messages import MESSAGE_LIMIT, sanitize
from slipway.refusals import BACKOFF_CAP_SECONDS, Backoff, Refused, backoff_delay, classify
from slipway.training.source import SourceError, parse_ir

T0 = datetime(2026, 11, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("\x1b[31mERROR\x1b[0m step failed", "ERROR step failed"),
        ("\x1b[1;38;5;196mbold red\x1b[m", "bold red"),
        ("title\x1b]0;pwned\x07 end", "title end"),  # OSC: sets the terminal's title
        ("link \x1b]8;;http://x\x1b\\text\x1b]8;;\x1b\\", "link text"),
        ("line one\r\nline two\n\tthree", "line one line two three"),
        ("bell\x07 back\x08space nul\x00 del\x7f", "bell backspace nul del"),
        ("8-bit \x9b31mcsi", "8-bit csi"),
        ("rtl \u202eevil\u202c", "rtl evil"),
        ("naïve café ✓", "naïve café ✓"),
    ],
)
def test_sanitize_removes_escapes_and_controls_and_keeps_text(raw: str, clean: str) -> None:
    assert sanitize(raw) == clean


def test_sanitize_bounds_the_length_and_says_it_cut() -> None:
    cut = sanitize("x" * 10_000)
    assert len(cut) == MESSAGE_LIMIT and cut.endswith("…")
    assert sanitize("short", 100) == "short" and len(sanitize("y" * 50, 10)) == 10


def test_every_condition_message_is_sanitized() -> None:
    (condition,) = set_condition(
        [], "Ready", "False", "RunFailed", "\x1b[31mboom\x1b[0m\n" + "z" * 9000, 1, T0
    )
    assert condition.message.startswith("boom z") and len(condition.message) == MESSAGE_LIMIT
    assert "\x1b" not in condition.message


def test_a_refusal_is_permanent_and_names_its_field() -> None:
    failure = classify(SourceError("spec.pipeline.specUri", "PipelineSpecUnreadable", "cannot read \x1b[2Jx"))
    assert failure.permanent and failure.field == "spec.pipeline.specUri"
    assert failure.reason == "PipelineSpecUnreadable"
    assert failure.message == "spec.pipeline.specUri: cannot read x"


def test_a_spec_the_models_refuse_is_permanent_with_the_wire_field_path() -> None:
    with pytest.raises(ValidationError) as raised:
        ServingEndpointSpec.model_validate({"modelName": "m", "rollout": {"steps": [{"setWeight": "lots"}]}})
    failure = classify(raised.value)
    assert failure.permanent and failure.reason == "InvalidSpec"
    assert failure.field == "spec.rollout.steps[0].setWeight"
    assert failure.message.startswith("spec.rollout.steps[0].setWeight: ")
    assert "lots" not in failure.message, "the input is not echoed"


def api_error(status: int, message: str) -> ApiException:
    error = ApiException(status=status, reason="Reason")
    error.body = json.dumps({"kind": "Status", "message": message})
    error.headers = {"Authorization": "Bearer secret-token"}
    return error


def test_api_errors_quote_the_servers_message_never_headers() -> None:
    invalid = classify(api_error(422, 'Deployment.apps "x" is invalid: metadata.name: Invalid value'))
    assert invalid.permanent and invalid.reason == "ApiRefused"
    assert (
        invalid.message
        == 'the API server answered 422: Deployment.apps "x" is invalid: metadata.name: Invalid value'
    )
    busy = classify(api_error(503, "etcdserver: leader changed"))
    assert not busy.permanent and busy.reason == "ApiError"
    assert "secret-token" not in busy.message + invalid.message


def test_anything_else_is_transient_and_says_what_it_was() -> None:
    failure = classify(KeyError("stableVersion"))
    assert not failure.permanent and failure.reason == "ReconcileError"
    assert failure.message == "KeyError: 'stableVersion'"


def test_backoff_doubles_up_to_its_cap_and_a_permanent_failure_waits_the_cap() -> None:
    assert [backoff_delay(n) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert backoff_delay(40) == BACKOFF_CAP_SECONDS
    now = [100.0]
    backoff = Backoff(clock=lambda: now[0])
    key = ("ServingEndpoint", "ns", "se")
    transient = classify(RuntimeError("boom"))
    assert not backoff.waiting(key)
    assert backoff.failed(key, transient) == 2.0 and backoff.waiting(key)
    now[0] += 2.5
    assert not backoff.waiting(key)
    assert backoff.failed(key, transient) == 4.0 and backoff.failing(key) == 2
    assert backoff.succeeded(key) and not backoff.waiting(key) and not backoff.succeeded(key)
    permanent = classify(Refused("spec.x", "Bad", "no"))
    assert backoff.failed(key, permanent) == BACKOFF_CAP_SECONDS


@pytest.mark.parametrize(
    "content",
    [
        "root:x:0:0:root:/root:/bin/bash\nSECRET_KEY: [unclosed\n",
        "password: hunter2\n  bad: indentation: here\n",
        "{{{ AKIAEXAMPLESECRET",
    ],
)
def test_a_pipeline_file_that_does_not_parse_is_not_echoed(content: str) -> None:
    with pytest.raises(SourceError) as raised:
        parse_ir(content, "spec.pipeline.specUri")
    message = str(raised.value)
    assert message.startswith("spec.pipeline.specUri: not YAML: ") and " at line " in message
    for fragment in ("root:x", "SECRET", "hunter2", "AKIA", "indentation", "unclosed"):
        assert fragment not in message


def test_secret_values_are_redacted_from_every_message_and_log_line() -> None:
    import base64
    import logging

    from slipway.messages import REDACTED, RedactingFilter, redact

    key, account = (
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzEXAMPLEKEY",
        '{"private_key": "-----BEGIN KEY-----abcdef"}',
    )
    redact({"AWS_SECRET_ACCESS_KEY": base64.b64encode(key.encode()).decode()})
    redact({"sa.json": base64.b64encode(account.encode()).decode(), "FLAG": "dHJ1ZQ=="})
    said = sanitize(f"env: AWS_SECRET_ACCESS_KEY={key}\n{account}")
    assert key not in said and "BEGIN KEY" not in said and said.count(REDACTED) == 2
    assert sanitize("flag true") == "flag true", "short values (here 'true') are not redacted"
    record = logging.LogRecord("x", logging.WARNING, "f", 1, "failed with %s", (key,), None)
    assert RedactingFilter().filter(record) and record.getMessage() == f"failed with {REDACTED}"


def test_claims_of_one_version_by_several_objects_name_each_other() -> None:
    from slipway.registry.collisions import colliding

    claims = [("a", 1), ("b", 1), ("c", 2), ("d", 3), ("e", 3), ("f", 3)]
    assert colliding(claims) == {"a": ["b"], "b": ["a"], "d": ["e", "f"], "e": ["d", "f"], "f": ["d", "e"]}
    assert colliding([("a", 1), ("a", 1)]) == {}, "one object seen twice is no collision"


def test_the_unique_condition_is_written_only_when_the_claims_change() -> None:
    from slipway.registry.collisions import unique_conditions

    assert unique_conditions([], "m", 1, [], 1) is None, "never contested: no condition, no write"
    marked = unique_conditions([], "m", 1, ["other"], 1)
    assert marked is not None
    (unique,) = marked
    assert (unique.status, unique.reason) == (
        "False",
        "VersionCollision",
    ) and "ModelVersion other" in unique.message
    assert unique_conditions(marked, "m", 1, ["other"], 1) is None, "already marked: no write"
    cleared = unique_conditions(marked, "m", 1, [], 1)
    assert cleared is not None and (cleared[0].status, cleared[0].reason) == ("True", "Unique")
    assert unique_conditions(cleared, "m", 1, [], 1) is None


class Serial:
    def run(self, kind: str, namespace: str, name: str, reconcile: Any) -> Any:
        return reconcile()


def test_the_guard_records_retries_transient_failures_and_waits_unless_the_user_changed_the_object(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from slipway import refusals

    reported: list[tuple[str, str]] = []
    monkeypatch.setattr(
        refusals, "report", lambda kind, ns, name, failure, sink: reported.append((name, failure.reason))
    )
    now = [0.0]
    retries = refusals.Retries(clock=lambda: now[0])
    scheduled: list[tuple[Any, float]] = []
    monkeypatch.setattr(retries, "at", lambda key, delay, attempt: scheduled.append((key, delay)))
    guard = refusals.Guard(Serial(), lambda *_: None, refusals.Backoff(clock=lambda: now[0]), retries)
    calls: list[str] = []
    key = ("ServingEndpoint", "ns", "se")
    body = {"metadata": {"generation": 1, "annotations": {"slipway.dev/promote": "a"}}, "status": {}}

    def failing() -> None:
        calls.append("x")
        raise ConnectionResetError("peer reset")

    guard.run(*key, failing, retry=lambda: None, change=refusals.user_change(body))
    assert reported == [("se", "ReconcileError")] and scheduled == [(key, 2.0)]
    recorded = {**body, "status": {"conditions": [{"type": "Reconciled", "status": "False"}]}}
    guard.run(*key, failing, change=refusals.user_change(recorded))  # the failure's own status write
    guard.run(*key, failing)  # a resync, a child
    assert calls == ["x"], "what is not the user's change waits out the backoff"
    asked = {**body, "metadata": {"generation": 1, "annotations": {"slipway.dev/promote": "b"}}}
    guard.run(*key, failing, retry=lambda: None, change=refusals.user_change(asked))  # a new request
    assert calls == ["x", "x"] and scheduled[-1][1] == 4.0
    now[0] += 5
    guard.run(*key, lambda: None)
    assert guard.backoff.failing(key) == 0

    def refused() -> None:
        raise SourceError("spec.pipeline.builtin", "UnknownBuiltin", "no such pipeline")

    guard.run("TrainingPipeline", "ns", "tp", refused, retry=lambda: None)
    assert reported[-1] == ("tp", "UnknownBuiltin") and len(scheduled) == 2, (
        "a permanent failure is not retried"
    )


def test_retries_run_each_objects_latest_attempt_once_it_is_due() -> None:
    import threading

    from slipway.refusals import Retries

    done = threading.Event()
    ran: list[str] = []
    retries = Retries()
    retries.at(("K", "ns", "a"), 0.05, lambda: ran.append("first"))
    retries.at(("K", "ns", "a"), 0.05, lambda: (ran.append("second"), done.set()))
    assert done.wait(5) and ran == ["second"] and retries.pending() == []

"""A serving pod's faults, read from its status as the kubelet writes it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from slipway.serving.faults import MESSAGE_LIMIT, deployment_failure, pod_failure, sanitize

PULLER_LOG = (
    "slipway pull: 3 files, 12.0 MiB so far\n"
    "slipway pull: s3://models/penguins/3: failed, /models/penguins/3 left unchanged: "
    "access denied (AccessDenied)\n"
)


def pod(init: list[dict[str, Any]] | None = None, main: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "web-v3-abc", "creationTimestamp": "2026-11-30T10:00:00Z"},
        "status": {
            "startTime": "2026-11-30T10:00:01Z",
            "initContainerStatuses": init or [],
            "containerStatuses": main or [],
        },
    }


def waiting(name: str, reason: str, message: str = "") -> dict[str, Any]:
    return {"name": name, "state": {"waiting": {"reason": reason, "message": message}}}


def test_a_puller_that_exits_non_zero_fails_the_pod_with_its_last_log_line() -> None:
    puller = {
        "name": "pull-model",
        "state": {"terminated": {"exitCode": 1, "reason": "Error", "message": PULLER_LOG}},
    }
    failure = pod(init=[puller], main=[waiting("tensorflow-serving", "PodInitializing")])
    found = pod_failure(failure)
    assert found is not None and found.certain
    assert (found.container, found.reason) == ("pull-model", "Terminated")
    assert found.message == (
        "Error (exit code 1): slipway pull: s3://models/penguins/3: failed, /models/penguins/3 left "
        "unchanged: access denied (AccessDenied)"
    )


def test_a_puller_restarting_after_a_failure_is_still_a_failure() -> None:
    puller = {
        "name": "pull-model",
        "state": {"running": {}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": PULLER_LOG}},
    }
    found = pod_failure(pod(init=[puller]))
    assert found is not None and found.certain and "AccessDenied" in found.message


@pytest.mark.parametrize("reason", ["ErrImageNeverPull", "InvalidImageName"])
def test_an_image_the_node_will_never_have_is_certain_at_once(reason: str) -> None:
    message = 'Container image "tfs:missing" is not present with pull policy of Never'
    found = pod_failure(pod(main=[waiting("tensorflow-serving", reason, message)]))
    assert found is not None and found.certain
    assert found.describe() == f"pod web-v3-abc container tensorflow-serving: {reason}: {message}"


def test_a_crash_loop_reports_the_last_termination() -> None:
    server = {
        "name": "tensorflow-serving",
        "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting"}},
        "lastState": {
            "terminated": {
                "exitCode": 1,
                "reason": "Error",
                "message": "Loading servable...\nFailed to start server: Could not find SavedModel\n",
            }
        },
    }
    found = pod_failure(pod(main=[server]))
    assert found is not None and found.certain and found.reason == "CrashLoopBackOff"
    assert found.message == "Error (exit code 1): Failed to start server: Could not find SavedModel"


def test_an_oom_kill_is_certain() -> None:
    server = {
        "name": "tensorflow-serving",
        "state": {"running": {}},
        "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
    }
    found = pod_failure(pod(main=[server]))
    assert found is not None and found.certain
    assert (found.reason, found.message) == ("OOMKilled", "OOMKilled (exit code 137)")


@pytest.mark.parametrize("reason", ["ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError"])
def test_errors_that_may_be_cured_count_from_the_pods_start(reason: str) -> None:
    found = pod_failure(pod(main=[waiting("tensorflow-serving", reason, 'secret "s3" not found')]))
    assert found is not None and not found.certain
    assert found.since == datetime(2026, 11, 30, 10, 0, 1, tzinfo=UTC)


def test_healthy_starting_and_deleted_pods_have_no_failure() -> None:
    running = {"name": "tensorflow-serving", "state": {"running": {}}, "ready": True}
    done = {"name": "pull-model", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    assert pod_failure(pod(init=[done], main=[running])) is None
    assert pod_failure(pod(main=[waiting("tensorflow-serving", "ContainerCreating")])) is None
    assert pod_failure({"metadata": {"name": "p"}}) is None
    deleted = pod(main=[waiting("tensorflow-serving", "ErrImageNeverPull")])
    deleted["metadata"]["deletionTimestamp"] = "2026-11-30T10:01:00Z"
    assert pod_failure(deleted) is None


def test_messages_are_bounded_and_carry_no_secrets_or_control_characters() -> None:
    text = "connecting\x1b[31m AWS_SECRET_ACCESS_KEY=abc123 token=xyz\x07 to store\n\n"
    assert sanitize(text) == "connecting [31m AWS_SECRET_ACCESS_KEY=*** token=*** to store"
    assert len(sanitize("x" * 5000)) == MESSAGE_LIMIT


def test_pods_the_replica_set_cannot_create_fail_the_deployment_once_it_lasts() -> None:
    message = (
        'pods "web-v3-7d4b9-x" is forbidden: violates PodSecurity "restricted:latest": restricted volume '
        'types (volume "model-store" uses restricted volume type "hostPath")'
    )
    deployment = {
        "metadata": {"name": "web-v3"},
        "status": {
            "conditions": [
                {"type": "Available", "status": "False"},
                {
                    "type": "ReplicaFailure",
                    "status": "True",
                    "reason": "FailedCreate",
                    "message": message,
                    "lastTransitionTime": "2026-11-30T10:00:05Z",
                },
            ]
        },
    }
    found = deployment_failure(deployment)
    assert found is not None and not found.certain
    assert found.since == datetime(2026, 11, 30, 10, 0, 5, tzinfo=UTC)
    assert found.condition_reason == "PodCreationFailed"
    assert found.describe() == f"Deployment web-v3: FailedCreate: {message}"
    assert deployment_failure({"metadata": {"name": "web-v3"}, "status": {"conditions": []}}) is None

"""The kfp executor through the real kfp.Client against the loopback KFP v2beta1 API."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.kfp_api import KfpApi
from slipway.training import kfp_executor
from slipway.training.kfp_executor import KfpError, KfpExecutor, KfpTarget

IR = (Path(__file__).resolve().parent / "pipelines" / "tiny" / "pipeline.yaml").read_text()


def executor(api: KfpApi, token: str | None = "t0ken", name: str = "ns-tiny") -> KfpExecutor:
    return KfpExecutor(
        KfpTarget(
            endpoint=api.url,
            token=token,
            experiment="slipway",
            namespace=None,
            service_account="pipeline-runner",
            ui_url="https://kfp.example.com",
            pipeline_name=name,
        )
    )


def test_uploads_once_per_digest_and_names_runs_deterministically(kfp_api: KfpApi) -> None:
    first = executor(kfp_api)
    state = first.submit("tiny-manual-1", IR, {"model_name": "tiny"}, "s3://bucket/root")
    assert state.phase == "Pending"
    assert state.url is not None and state.url.startswith("https://kfp.example.com/#/runs/details/")
    (run,) = kfp_api.runs_named("tiny-manual-1")
    assert run["runtime_config"] == {
        "pipeline_root": "s3://bucket/root",
        "parameters": {"model_name": "tiny"},
    }
    assert run["service_account"] == "pipeline-runner"
    assert len(kfp_api.pipelines) == 1 and len(kfp_api.versions) == 2  # the pipeline's own + the digest's

    # A restarted operator (a new executor, no memory) asking for the same run adopts it.
    kfp_executor._run_ids.clear()
    again = executor(kfp_api).submit("tiny-manual-1", IR, {"model_name": "tiny"}, "s3://bucket/root")
    assert again.url == state.url
    assert len(kfp_api.runs_named("tiny-manual-1")) == 1

    # Another run of the same IR reuses the version; a changed IR adds exactly one version.
    first.submit("tiny-manual-2", IR, {}, "s3://bucket/root")
    assert len(kfp_api.versions) == 2
    first.submit("tiny-manual-3", IR + "\n# changed\n", {}, "s3://bucket/root")
    assert len(kfp_api.versions) == 3
    assert kfp_api.calls("POST", "/pipelines/upload_version") == 2  # one per digest, never repeated
    assert kfp_api.calls("POST", "/pipelines/upload") == 3  # + the pipeline itself, once
    assert kfp_api.calls("POST", "/experiments") == 1
    assert kfp_api.tokens == {"t0ken"}


def test_states_map_and_terminate_cancels(kfp_api: KfpApi) -> None:
    ex = executor(kfp_api)
    ex.submit("r1", IR, {}, "gs://b/root")
    (run,) = kfp_api.runs_named("r1")
    kfp_api.set_state(run["run_id"], "RUNNING")
    assert ex.state("r1").phase == "Running"
    ex.terminate("r1")
    assert kfp_api.runs[run["run_id"]]["state"] == "CANCELING"
    assert ex.state("r1").phase == "Running"  # still canceling
    kfp_api.set_state(run["run_id"], "CANCELED")
    assert ex.state("r1").phase == "Cancelled"
    ex.terminate("r1")  # finished: no call
    assert kfp_api.calls("POST", f"/runs/{run['run_id']}:terminate") == 1

    ex.submit("r2", IR, {}, "gs://b/root")
    (run2,) = kfp_api.runs_named("r2")
    kfp_api.set_state(run2["run_id"], "FAILED", error="step train failed: OOMKilled")
    kfp_executor._run_ids.clear()
    failed = executor(kfp_api).state("r2")
    assert (failed.phase, failed.message) == ("Failed", "step train failed: OOMKilled")
    assert executor(kfp_api).state("never-submitted").phase == "Failed"
    del kfp_api.runs[run2["run_id"]]  # deleted on the KFP side: the cached id is dropped, not an error
    assert ex.state("r2").phase == "Failed" and "not found" in ex.state("r2").message


def test_unreachable_api_is_a_clear_error_without_the_token(kfp_api: KfpApi) -> None:
    url = kfp_api.url
    kfp_api.stop()
    down = KfpExecutor(KfpTarget(url, "s3cr3t-token", "slipway", None, None, None, "ns-down"))
    with pytest.raises(KfpError) as raised:
        down.submit("r", IR, {}, "s3://b/root")
    assert url in str(raised.value) and "s3cr3t-token" not in str(raised.value)

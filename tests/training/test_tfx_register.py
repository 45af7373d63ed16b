"""The step a TFX pipeline adds after its Pusher (slipway.training.tfx_register): TFX's own push layout
(`<push destination>/<unix seconds>/`, BLESSED / NOT_BLESSED files) becomes what the operator registers.
TFMA's output is read in tests/pipelines/test_penguins.py (the TensorFlow tier), on a real evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.pipelines import training_spec
from slipway.api.training_pipeline import RunRecord
from slipway.training import registration
from slipway.training.local_executor import RunState
from slipway.training.observe import read_push
from slipway.training.tfx_register import (
    EVALUATOR,
    RegistrationError,
    Request,
    blessed,
    main,
    newest_push,
    not_blessed_reason,
    register,
)


def tfx_push(destination: Path, timestamp: int, weights: bytes) -> None:
    """What TFX's Pusher leaves: the serving model copied to <base_directory>/<unix seconds>/."""
    directory = destination / str(timestamp)
    (directory / "variables").mkdir(parents=True)
    (directory / "variables" / "variables.data-00000-of-00001").write_bytes(weights)
    (directory / "saved_model.pb").write_bytes(b"\x08\x01" + weights)


def blessing(directory: Path, mark: str) -> str:
    directory.mkdir(parents=True)
    (directory / mark).touch()
    return str(directory)


def test_tfx_artifacts_are_read_as_tfx_writes_them() -> None:
    assert blessed(["a/BLESSED"], EVALUATOR, "blessing", "x") is True
    assert blessed(["NOT_BLESSED"], EVALUATOR, "blessing", "x") is False
    with pytest.raises(RegistrationError, match="blessing /b: neither BLESSED nor NOT_BLESSED"):
        blessed(["other"], EVALUATOR, "blessing", "/b")
    keys = [
        "1700000000/saved_model.pb",
        "1700000500/saved_model.pb",
        "1700000900/variables/v",
        "x/saved_model.pb",
    ]
    assert newest_push(keys, "s3://push") == "1700000500", "the newest directory that holds a model"
    with pytest.raises(RegistrationError, match=r"no <timestamp>/saved_model\.pb under the push destination"):
        newest_push(["1700000900/variables/v"], "s3://push")
    assert not_blessed_reason(True, True, []) is None
    assert not_blessed_reason(True, None, []) is None
    assert not_blessed_reason(False, True, ["accuracy value 0.4000 fails {lower_bound { value: 0.9 }}"]) == (
        "evaluator did not bless the model: accuracy value 0.4000 fails {lower_bound { value: 0.9 }}"
    )
    assert not_blessed_reason(False, False, []) == (
        "evaluator did not bless the model: NOT_BLESSED"
        " | infra validator did not bless the model: INFRA_NOT_BLESSED"
    )


def test_the_newest_push_becomes_the_version_the_operator_registers(tmp_path: Path) -> None:
    destination, store = tmp_path / "serving", tmp_path / "models"
    tfx_push(destination, 1700000000, b"old")
    tfx_push(destination, 1700000600, b"new")
    argv = [
        f"--push-destination={destination}",  # a local path, as KFP's launcher hands a step
        f"--blessing={blessing(tmp_path / 'blessing', 'BLESSED')}",
        f"--infra-blessing={blessing(tmp_path / 'infra', 'INFRA_BLESSED')}",
        f"--model-store-uri=file://{store}",
        "--model-name=tiny",
        "--model-version=4",
        "--pipeline=tfx-penguins",
        "--pipeline-digest=sha256:abc",
        "--run-id=tp-manual-1",
    ]
    assert main(argv) == 0
    version_dir = store / "tiny" / "4"
    assert (version_dir / "saved_model.pb").read_bytes() == b"\x08\x01new"
    assert (version_dir / "variables" / "variables.data-00000-of-00001").read_bytes() == b"new"
    written = json.loads((version_dir / "slipway-manifest.json").read_text())
    assert written["pushedFrom"] == f"file://{destination}/1700000600"
    assert written["blessings"] == {"evaluator": True, "infraValidator": True}

    # What the operator does with it after a KFP run (no outputs): the ModelVersion it creates.
    spec = training_spec(modelStore={"uri": f"file://{store}"})
    record = RunRecord(id="tp-manual-1", trigger="Manual", phase="Succeeded", details={"version": "4"})
    pushed = read_push(spec, record, RunState("Succeeded"), lambda _: None)
    assert pushed.found is not None, pushed
    body = registration.model_version_body("ns", "tp", spec, record, pushed.found, pushed.uri)
    assert body["metadata"]["name"] == "tiny-v4"
    assert body["spec"]["uri"] == f"file://{store}/tiny/4"
    assert body["spec"]["lineage"]["runId"] == "tp-manual-1"
    assert body["spec"]["blessings"] == {"evaluator": True, "infraValidator": True}

    # A version is never overwritten: a second registration of version 4 fails the step, saying where.
    assert main(argv) == 1
    # Outside Slipway (no version given): the next free integer.
    result = register(Request(str(destination), str(tmp_path / "blessing"), f"file://{store}", "tiny", 0))
    assert result["version"] == 5 and result["pushed"] is True


def test_not_blessed_pushes_nothing_and_tells_the_operator_why(tmp_path: Path) -> None:
    destination, store = tmp_path / "serving", tmp_path / "models"
    tfx_push(destination, 1700000000, b"old")  # an earlier run's push: never registered again
    result = register(
        Request(
            push_destination=f"file://{destination}",
            blessing=f"file://{blessing(tmp_path / 'blessing', 'BLESSED')}",
            infra_blessing=blessing(tmp_path / "infra", "INFRA_NOT_BLESSED"),
            model_store_uri=f"file://{store}",
            model_name="tiny",
            model_version=7,
            run_id="tp-manual-7",
        )
    )
    reason = "infra validator did not bless the model: INFRA_NOT_BLESSED"
    assert result == {"pushed": False, "reason": reason, "version": 7, "runId": "tp-manual-7"}
    assert sorted(p.name for p in (store / "tiny").iterdir()) == ["slipway-push-results"]
    spec = training_spec(modelStore={"uri": f"file://{store}"})
    record = RunRecord(id="tp-manual-7", trigger="Manual", phase="Succeeded", details={"version": "7"})
    assert read_push(spec, record, RunState("Succeeded"), lambda _: None).missing == f"not pushed: {reason}"


def test_a_blessed_run_whose_pusher_pushed_nothing_fails_the_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "serving").mkdir()
    argv = [
        f"--push-destination={tmp_path / 'serving'}",
        f"--blessing={blessing(tmp_path / 'blessing', 'BLESSED')}",
        f"--model-store-uri=file://{tmp_path / 'models'}",
        "--model-name=tiny",
    ]
    assert main(argv) == 1
    assert "no <timestamp>/saved_model.pb under the push destination" in capsys.readouterr().err

"""Loading a module file with TFX's contract (pipelines.penguins.module_file): what is refused, with which
message, before anything of it runs; and what a TFX module needs once its `tfx` import is gone. No
TensorFlow: the modules here import nothing heavy."""

from __future__ import annotations

from pathlib import Path

import pytest
from pipelines.penguins.module_file import (
    call_module_function,
    check_module,
    custom_config_of,
    load_module,
    module_text,
)

from fixtures.storage import BackendLocation

CONTRACT = ["preprocessing_fn", "run_fn"]
TFX_STYLE = """
import json

def preprocessing_fn(inputs):
    return {"x_xf": inputs["x"]}

def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
    epochs = fn_args.custom_config["epochs"]
    return tfx.components.TunerFnResult(tuner="a tuner", fit_kwargs={"epochs": epochs})

def run_fn(fn_args: tfx.components.FnArgs):
    return json.dumps(sorted(vars(fn_args)))
"""


def test_a_syntax_error_names_the_module_and_the_line() -> None:
    with pytest.raises(RuntimeError, match=r"module file s3://m/bad\.py: syntax error at line 3: "):
        check_module(
            "s3://m/bad.py", "def preprocessing_fn(inputs):\n    return inputs\ndef run_fn(:\n", CONTRACT
        )


@pytest.mark.parametrize("missing", CONTRACT)
def test_a_missing_function_is_named(missing: str) -> None:
    source = "".join(f"def {name}(x):\n    pass\n" for name in CONTRACT if name != missing)
    with pytest.raises(RuntimeError, match=rf"module file m\.py: it defines no {missing}\(\)"):
        check_module("m.py", source, CONTRACT)


def test_a_function_without_parameters_is_refused() -> None:
    with pytest.raises(RuntimeError, match=r"m\.py: run_fn\(\) takes no argument"):
        check_module("m.py", "def preprocessing_fn(inputs): pass\ndef run_fn(): pass\n", CONTRACT)


def test_nothing_of_a_module_runs_while_it_is_checked(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    source = f"open({str(marker)!r}, 'w').close()\ndef preprocessing_fn(i): pass\ndef run_fn(a): pass\n"
    assert check_module("m.py", source, CONTRACT) == {"preprocessing_fn", "run_fn"}
    assert not marker.exists()


def test_an_error_while_importing_names_the_module() -> None:
    source = "import no_such_module_anywhere\ndef preprocessing_fn(i): pass\ndef run_fn(a): pass\n"
    with pytest.raises(RuntimeError, match=r"module file m\.py: importing it failed: ModuleNotFoundError"):
        load_module("m.py", source, CONTRACT)


def test_a_tfx_module_works_with_only_its_tfx_import_removed() -> None:
    module = load_module("tfx_style.py", TFX_STYLE, CONTRACT)
    result = call_module_function(
        "tfx_style.py", module, "tuner_fn", module.tfx.components.FnArgs(custom_config={"epochs": 3})
    )
    assert (result.tuner, result.fit_kwargs) == ("a tuner", {"epochs": 3})
    assert type(result).__name__ == "TunerFnResult"


def test_preprocessing_fn_gets_custom_config_only_when_it_names_it() -> None:
    source = (
        "def preprocessing_fn(inputs, custom_config):\n    return {**inputs, **custom_config}\n"
        "def run_fn(a): pass\n"
    )
    with_config = load_module("a.py", source, CONTRACT)
    assert call_module_function("a.py", with_config, "preprocessing_fn", {"x": 1}, {"label": "y"}) == {
        "x": 1,
        "label": "y",
    }
    without = load_module("b.py", TFX_STYLE, CONTRACT)
    assert call_module_function("b.py", without, "preprocessing_fn", {"x": 1}, {"label": "y"}) == {"x_xf": 1}


def test_module_text_reads_a_uri_a_built_in_path_or_the_given_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "user.py").write_text("# user\n")
    (tmp_path / "penguins").mkdir()
    (tmp_path / "penguins" / "model.py").write_text("# built in\n")
    monkeypatch.setenv("SLIPWAY_PIPELINES_DIR", str(tmp_path))
    assert module_text(f"file://{tmp_path}/user.py", "") == "# user\n"
    assert module_text("penguins/model.py", "") == "# built in\n"
    assert module_text("configmap:m/module.py", "# from a ConfigMap\n") == "# from a ConfigMap\n"
    with pytest.raises(RuntimeError, match=rf"module file file://{tmp_path}/gone\.py: cannot read it"):
        module_text(f"file://{tmp_path}/gone.py", "")


def test_the_users_custom_config_wins_over_the_standard_entries() -> None:
    config = custom_config_of("species", 40, 32, 0.01, 16, 7, {"epochs": 5, "extra": "x"})
    assert config == {
        "label": "species",
        "epochs": 5,
        "batch_size": 32,
        "learning_rate": 0.01,
        "hidden_units": 16,
        "seed": 7,
        "extra": "x",
    }


def test_a_module_file_is_read_from_any_store_with_the_runs_credentials(
    network_backend: BackendLocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The steps open every URI with the run's environment: the credentials of data, artifacts and models.
    for name, value in (network_backend.credentials.to_env() if network_backend.credentials else {}).items():
        monkeypatch.setenv(name, value)
    network_backend.store().write_bytes("team/model.py", TFX_STYLE.encode())
    uri = f"{network_backend.uri}/team/model.py"
    assert module_text(uri, "") == TFX_STYLE
    assert check_module(uri, module_text(uri, ""), CONTRACT) == {"preprocessing_fn", "tuner_fn", "run_fn"}

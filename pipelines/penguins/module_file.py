"""A module file with TFX's contract -- `preprocessing_fn(inputs)` (TF Transform), `run_fn(fn_args)` (the
Trainer), optionally `tuner_fn(fn_args)` (the Tuner) -- loaded and called the way TFX's components do.

A module written for TFX runs after removing its `tfx` import: it is compiled with postponed annotations
(PEP 563: `fn_args: tfx.components.FnArgs` is never evaluated), and its globals hold `tfx`, a stand-in with
only what a module file uses of TFX (`tfx.components.FnArgs`, `DataAccessor`, `TunerFnResult`).

Shipped into the steps that call them (see components/base.py): imports inside, nothing module-level."""

from typing import TYPE_CHECKING, Any

from pipelines.penguins.uris import read_uri

if TYPE_CHECKING:
    import types


def module_text(module_file: str, module_source: str) -> str:
    """The module's source: module_source when given (a ConfigMap's text), else module_file read from its
    store (a URI), or, for a relative path such as the default `penguins/model.py`, from the built-in
    pipelines' directory (SLIPWAY_PIPELINES_DIR in the pipelines image)."""
    if module_source:
        return module_source
    try:
        if "://" in module_file or module_file.startswith("/"):
            return read_uri(module_file).decode()
        from slipway.training.source import pipelines_dir

        return (pipelines_dir() / module_file).read_text()
    except Exception as error:
        raise RuntimeError(f"module file {module_file}: cannot read it: {error}") from error


def check_module(name: str, source: str, required: list[str]) -> set[str]:
    """The module's top-level function names; a syntax error, or a required function it does not define
    (or defines with no parameter), is a RuntimeError naming the module and the function. Only parses:
    nothing of the module runs."""
    import ast

    try:
        tree = ast.parse(source, filename=name)
    except SyntaxError as error:
        raise RuntimeError(f"module file {name}: syntax error at line {error.lineno}: {error.msg}") from None
    functions = {
        node.name: node for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    for wanted in required:
        if wanted not in functions:
            raise RuntimeError(f"module file {name}: it defines no {wanted}() (TFX's module-file contract)")
        arguments = functions[wanted].args
        if not (arguments.posonlyargs or arguments.args or arguments.vararg):
            raise RuntimeError(f"module file {name}: {wanted}() takes no argument")
    return set(functions)


def tfx_stand_in() -> "types.SimpleNamespace":
    """`tfx` as a module file uses it (`from tfx import v1 as tfx`): `tfx.components.FnArgs`,
    `DataAccessor` and `TunerFnResult`."""
    import collections
    import types

    class FnArgs(types.SimpleNamespace):
        """TFX's FnArgs: what run_fn and tuner_fn get."""

    class DataAccessor(types.SimpleNamespace):
        """TFX's DataAccessor: tf_dataset_factory, record_batch_factory, data_view_decode_fn."""

    tuner_fn_result = collections.namedtuple("TunerFnResult", ["tuner", "fit_kwargs"])
    components = types.SimpleNamespace(
        FnArgs=FnArgs, DataAccessor=DataAccessor, TunerFnResult=tuner_fn_result
    )
    return types.SimpleNamespace(components=components, v1=types.SimpleNamespace(components=components))


def keras_tuner_on_tf_keras() -> None:
    """Imports KerasTuner so that it drives Keras 2 models. KerasTuner 1.4 picks its Keras when it is
    imported: Keras 3 whenever `import keras` gives 3.x, and then it refuses the models module files build
    with `tf.keras` where that is tf_keras (TF Transform and TFMA switch TensorFlow to Keras 2). Imported
    while `keras` resolves to tf_keras, it takes its `tensorflow.keras` path. A no-op once KerasTuner is
    imported, where tf.keras is Keras 3, or where KerasTuner is not installed."""
    import sys

    import tensorflow as tf

    if "keras_tuner" in sys.modules or not tf.keras.__name__.startswith("tf_keras"):
        return  # imported already, or tf.keras is Keras 3 here: KerasTuner's own choice fits
    try:
        import tf_keras
    except ImportError:
        return
    saved = sys.modules.get("keras")
    sys.modules["keras"] = tf_keras
    try:
        import keras_tuner  # noqa: F401
    except ImportError:
        pass
    finally:
        if saved is not None:
            sys.modules["keras"] = saved
        else:
            sys.modules.pop("keras", None)


def load_module(name: str, source: str, required: list[str]) -> "types.ModuleType":
    """The module, executed in a fresh namespace (checked first: see check_module). An exception while it
    runs is a RuntimeError naming the module."""
    import __future__

    import sys
    import types

    check_module(name, source, required)
    keras_tuner_on_tf_keras()  # before the module's own `import keras_tuner`
    module = types.ModuleType("user_module", f"module file {name}")
    module.__dict__["__file__"] = name
    module.__dict__["tfx"] = tfx_stand_in()
    sys.modules["user_module"] = module  # dataclasses, pickling and keras look a module's classes up here
    try:
        code = compile(source, name, "exec", flags=__future__.annotations.compiler_flag, dont_inherit=True)
        exec(code, module.__dict__)  # running the module file is the contract
    except Exception as error:
        raise RuntimeError(
            f"module file {name}: importing it failed: {type(error).__name__}: {error}"
        ) from error
    return module


def call_module_function(name: str, module: "types.ModuleType", function: str, *args: Any) -> Any:
    """module.<function>(*args); preprocessing_fn gets custom_config too when it names that parameter
    (as TFX's Transform passes it)."""
    import inspect

    target = getattr(module, function)
    if function == "preprocessing_fn" and len(args) == 2:
        parameters = inspect.signature(target).parameters
        if "custom_config" not in parameters:
            args = args[:1]
    return target(*args)


def data_accessor() -> Any:
    """TFX's DataAccessor over TFRecords of tf.Example: `tf_dataset_factory(file_pattern, options,
    schema)` is tfx-bsl's TFExampleRecord(...).TensorFlowDataset(options), as in TFX."""
    from tfx_bsl.public import tfxio

    def tf_dataset_factory(file_pattern: Any, options: Any, schema: Any = None) -> Any:
        return tfxio.TFExampleRecord(file_pattern=file_pattern, schema=schema).TensorFlowDataset(options)

    def record_batch_factory(file_pattern: Any, options: Any, schema: Any = None) -> Any:
        return tfxio.TFExampleRecord(file_pattern=file_pattern, schema=schema).RecordBatches(options)

    return tfx_stand_in().components.DataAccessor(
        tf_dataset_factory=tf_dataset_factory,
        record_batch_factory=record_batch_factory,
        data_view_decode_fn=None,
    )


def fn_args(
    examples_path: str,
    schema_path: str,
    transform_graph_path: str,
    working_dir: str,
    serving_model_dir: str,
    train_steps: int,
    eval_steps: int,
    hyperparameters: dict | None,
    custom_config: dict,
) -> Any:
    """TFX's FnArgs: every attribute TFX sets for run_fn and tuner_fn."""
    import os

    return tfx_stand_in().components.FnArgs(
        working_dir=working_dir,
        model_run_dir=working_dir,
        train_files=[os.path.join(examples_path, "Split-train", "*")],
        eval_files=[os.path.join(examples_path, "Split-eval", "*")],
        train_steps=train_steps or None,
        eval_steps=eval_steps or None,
        schema_path=schema_path,
        schema_file=schema_path,
        transform_graph_path=transform_graph_path,
        transform_output=transform_graph_path,
        data_accessor=data_accessor(),
        serving_model_dir=serving_model_dir,
        eval_model_dir=serving_model_dir,
        base_model=None,
        hyperparameters=hyperparameters,
        custom_config=custom_config,
    )


def custom_config_of(
    label: str,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    hidden_units: int,
    seed: int,
    custom_config: dict,
) -> dict:
    """fn_args.custom_config: the label and the training parameters, under the user's custom_config."""
    standard = {
        "label": label,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "hidden_units": hidden_units,
        "seed": seed,
    }
    return {**standard, **dict(custom_config or {})}

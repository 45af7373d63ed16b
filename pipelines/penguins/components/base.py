"""How a step is built: a KFP lightweight component that ships its function's source together with the
helper functions it calls.

KFP runs a lightweight component from source alone: the step's program is the component function plus
what `additional_funcs` names, nothing of the module around it. `component` finds those helpers itself --
every function from `pipelines` the component calls, and what those call in turn -- so a helper written once
in `pipelines.penguins.records`, `uris` or `model` (or beside the component) reaches every step that uses it.
A shipped function therefore imports inside its body, quotes annotations that name a library's types, and
refers to no module-level name other than other helpers: `component` refuses one that does.

No component installs anything at run time (`install_kfp_package=False`, no `packages_to_install`): under
`kfp.local` (SubprocessRunner(use_venv=False)) they run in the caller's interpreter, which has the
`pipelines` extra; on a cluster they run in BASE_IMAGE, which has the same pins and the `slipway` package
(`slipway.storage` for remote URIs, `slipway.datastats` for statistics, shared with the operator).
"""

import ast
import builtins
import dis
import inspect
import textwrap
import types
import typing
from collections.abc import Callable, Iterator

from kfp import dsl
from kfp.dsl.python_component import PythonComponent

BASE_IMAGE = "ghcr.io/slipway-dev/slipway-pipelines:0.1.0"
SHIPPABLE_PREFIX = "pipelines."
# What the step's program has besides the shipped functions: KFP puts these star imports above them.
STEP_NAMES = frozenset(vars(builtins)) | frozenset(dir(dsl)) | frozenset(typing.__all__) | {"kfp", "dsl"}


def component(func: Callable) -> PythonComponent:
    """A lightweight component that runs as it is (the image has kfp), with the helpers it calls."""
    return dsl.component(
        func, base_image=BASE_IMAGE, install_kfp_package=False, additional_funcs=helpers_of(func) or None
    )


def helpers_of(func: Callable) -> list[Callable]:
    """The functions from `pipelines` that func calls, directly or through each other, sorted by name."""
    found: dict[str, Callable] = {}
    pending = [func]
    while pending:
        current = pending.pop()
        for name in annotation_names(current):
            if name not in STEP_NAMES:
                raise TypeError(
                    f"{current.__module__}.{current.__name__}'s signature names {name!r}, which a step does "
                    "not have: quote the annotation"
                )
        for name in global_names(current.__code__):
            value = current.__globals__.get(name)
            if is_shippable(value):
                if name not in found and value is not func:
                    found[name] = value
                    pending.append(value)
            elif name not in STEP_NAMES:
                raise TypeError(
                    f"{current.__module__}.{current.__name__} uses the module-level name {name!r}, which a "
                    "step does not have: import it inside the function or make it a helper function"
                )
    return [found[name] for name in sorted(found)]


def global_names(code: types.CodeType) -> Iterator[str]:
    """The global names a function's code (and the functions, lambdas and classes inside it) reads."""
    for instruction in dis.get_instructions(code):
        if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
            yield instruction.argval
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from global_names(constant)


def annotation_names(func: Callable) -> set[str]:
    """The names in a function's unquoted annotations (the step evaluates them when it defines it)."""
    (definition,) = ast.parse(textwrap.dedent(inspect.getsource(func))).body
    assert isinstance(definition, ast.FunctionDef)
    signature = definition.args
    parameters = [*signature.posonlyargs, *signature.args, *signature.kwonlyargs]
    parameters += [p for p in (signature.vararg, signature.kwarg) if p is not None]
    annotations = [p.annotation for p in parameters if p.annotation is not None]
    if definition.returns is not None:
        annotations.append(definition.returns)
    return {node.id for a in annotations for node in ast.walk(a) if isinstance(node, ast.Name)}


def is_shippable(value: object) -> bool:
    return isinstance(value, types.FunctionType) and value.__module__.startswith(SHIPPABLE_PREFIX)

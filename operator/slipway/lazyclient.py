"""The kubernetes client's package, imported class by class as it is used.

`import kubernetes` runs `kubernetes/client/__init__.py`, which imports every API class and, through
`kubernetes.client.models`, all ~600 model classes: 23 MiB resident that the operator never gives back
(kopf imports the package too, for three model classes it type-checks against). The operator talks to the
API server in plain JSON (slipway.kube) and uses a handful of these classes. `install()` puts two stand-in
package modules in `sys.modules` before anything imports the client; each imports the submodule that
defines a class the first time the class is asked for, so `from kubernetes.client import ApiClient` and
`client.CoreV1Api` work as before. Submodules (`kubernetes.client.rest`, ...) import from the real files.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import re
import sys
import types
from pathlib import Path

PACKAGES = {"kubernetes.client": "client", "kubernetes.client.models": "client/models"}
_IMPORT = re.compile(r"^from (kubernetes\.client[\w.]*) import (\w+)$", re.M)


def _lazy_package(name: str, directory: Path) -> types.ModuleType:
    """A package module for `directory` whose names (each `from <module> import <Name>` line of its
    `__init__.py`) are imported when first read."""
    where = dict((cls, module) for module, cls in _IMPORT.findall((directory / "__init__.py").read_text()))
    spec = importlib.machinery.ModuleSpec(name, None, origin=str(directory / "__init__.py"), is_package=True)
    spec.submodule_search_locations = [str(directory)]
    package = types.ModuleType(name)
    package.__spec__, package.__file__, package.__path__ = spec, spec.origin, [str(directory)]
    package.__package__ = name

    def __getattr__(attribute: str) -> object:
        if attribute not in where:
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}")
        value = getattr(importlib.import_module(where[attribute]), attribute)
        setattr(package, attribute, value)
        return value

    package.__getattr__ = __getattr__  # type: ignore[method-assign]
    package.__dir__ = lambda: sorted(where)  # type: ignore[method-assign]
    return package


def install() -> bool:
    """Before the first import of `kubernetes`; False (and nothing done) once it has been imported."""
    if any(name in sys.modules for name in ("kubernetes", *PACKAGES)):
        return False
    spec = importlib.util.find_spec("kubernetes")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return False
    root = Path(next(iter(spec.submodule_search_locations)))
    packages = {name: _lazy_package(name, root / relative) for name, relative in PACKAGES.items()}
    packages["kubernetes.client"].models = packages["kubernetes.client.models"]  # type: ignore[attr-defined]
    sys.modules.update(packages)
    return True

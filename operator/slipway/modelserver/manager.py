"""The versions a server serves and their states, TF Serving's way: each model's version policy applied to
the version directories under its base path, polled; new versions load before old ones unload (availability
first); a version that failed to load ends in END with its error; the status API reports every version the
server has seen (newest first) with START, LOADING, AVAILABLE, UNLOADING or END."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from slipway.modelserver import config
from slipway.modelserver.errors import ServingError, invalid_argument, not_found
from slipway.modelserver.metrics import Metrics
from slipway.modelserver.rest import VersionStatus
from slipway.modelserver.servable import Servable

log = logging.getLogger("slipway.modelserver")

START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"


@dataclass
class Version:
    state: str
    error_code: str = "OK"
    error_message: str = ""
    servable: Servable | None = None


class Manager:
    def __init__(
        self,
        models: Callable[[], list[config.ModelSpec]],
        load: Callable[[Path], Servable],
        metrics: Metrics,
        *,
        load_retries: int = 0,
        retry_interval_seconds: float = 0,
    ) -> None:
        self._models_source = models
        self._load = load
        self.metrics = metrics
        self._retries = load_retries
        self._retry_interval = retry_interval_seconds
        self._lock = threading.Lock()
        self._specs: dict[str, config.ModelSpec] = {}
        self._versions: dict[str, dict[int, Version]] = {}

    # --- the control loop -------------------------------------------------------------------------------
    def poll(self) -> None:
        """One pass: re-read the model list, load what the policies ask for, then unload the rest."""
        specs = {spec.name: spec for spec in self._models_source()}
        with self._lock:
            self._specs = specs
        for spec in specs.values():
            available = config.versions_on_disk(spec.base_path)
            aspired = config.aspired_versions(spec, list(available))
            if not available:
                log.debug("No versions of servable %s found under base path %s", spec.name, spec.base_path)
            for version in aspired:
                known = self._versions.get(spec.name, {}).get(version)
                if known is None or (known.state == END and known.error_code == "OK"):
                    self._load_version(spec.name, version, available[version])
            for version, state in list(self._versions.get(spec.name, {}).items()):
                if version not in aspired and state.state == AVAILABLE:
                    self._unload(spec.name, version)
        for name in list(self._versions):
            if name not in specs:
                for version, state in list(self._versions[name].items()):
                    if state.state == AVAILABLE:
                        self._unload(name, version)

    def _set(self, model: str, version: int, state: Version) -> None:
        with self._lock:
            self._versions.setdefault(model, {})[version] = state

    def _load_version(self, model: str, version: int, path: Path) -> None:
        self._set(model, version, Version(START))
        self._set(model, version, Version(LOADING))
        log.info("Loading servable version {name: %s version: %d} from %s", model, version, path)
        for attempt in range(self._retries + 1):
            started = time.perf_counter()
            try:
                servable = self._load(path)
            except Exception as error:
                self.metrics.record_load(str(path), False, 0)
                message = f"{type(error).__name__}: {error}"
                log.error("Loading servable {name: %s version: %d} failed: %s", model, version, message)
                if attempt < self._retries:
                    time.sleep(self._retry_interval)
                    continue
                self._set(model, version, Version(END, "UNKNOWN", message))
                return
            self.metrics.record_load(str(path), True, int((time.perf_counter() - started) * 1_000_000))
            self._set(model, version, Version(AVAILABLE, servable=servable))
            log.info("Successfully loaded servable version {name: %s version: %d}", model, version)
            return

    def _unload(self, model: str, version: int) -> None:
        self._set(model, version, Version(UNLOADING))
        self._set(model, version, Version(END))
        log.info("Unloaded servable version {name: %s version: %d}", model, version)

    def settled(self) -> list[str]:
        """Errors of versions that failed to load; empty once every model has its versions in a final state.
        Raises LookupError while some model still waits for its versions (as TF Serving waits at start)."""
        waiting = []
        with self._lock:
            for name, spec in self._specs.items():
                states = self._versions.get(name, {})
                if not any(v.state in (AVAILABLE, END) for v in states.values()):
                    waiting.append(f"{name} (no version under {spec.base_path} yet)")
            if waiting:
                raise LookupError(", ".join(waiting))
            return [
                f"{name} version {version}: {v.error_message}"
                for name, states in self._versions.items()
                for version, v in states.items()
                if v.state == END and v.error_code != "OK"
            ]

    def run(self, interval_seconds: float, stop: threading.Event) -> None:
        while not stop.wait(interval_seconds):
            try:
                self.poll()
            except Exception:
                log.exception("polling the model config and base paths failed")

    # --- what the API asks --------------------------------------------------------------------------------
    def _resolve(self, model: str, version: int | None, label: str | None) -> int | None:
        if label is None:
            return version
        spec = self._specs.get(model)
        if spec is None or label not in spec.labels:
            raise invalid_argument(f"Unrecognized servable version label: {label}")
        return spec.labels[label]

    def status(self, model: str, version: int | None = None, label: str | None = None) -> list[VersionStatus]:
        with self._lock:
            wanted = self._resolve(model, version, label)
            states = self._versions.get(model, {})
            if wanted is not None and wanted not in states:
                raise not_found(f"Could not find version {wanted} of model {model}")
            if not states:
                raise not_found(f"Could not find any versions of model {model}")
            return [
                VersionStatus(
                    number, states[number].state, states[number].error_code, states[number].error_message
                )
                for number in sorted(states, reverse=True)
                if wanted is None or number == wanted
            ]

    def servable(self, model: str, version: int | None = None, label: str | None = None) -> Servable:
        with self._lock:
            wanted = self._resolve(model, version, label)
            states = self._versions.get(model, {})
            if wanted is None:
                ready = [n for n, s in states.items() if s.state == AVAILABLE]
                wanted = max(ready) if ready else None
                request = f"Latest({model})"
            else:
                request = f"Specific({model}, {wanted})"
            state = states.get(wanted) if wanted is not None else None
            if state is None or state.state != AVAILABLE or state.servable is None:
                raise ServingError("NOT_FOUND", f"Servable not found for request: {request}")
            return state.servable

"""Applies fuzzed objects to the real API server with the operator running, in batches, and checks after each
batch what must hold whatever the input: a refusal names a field, an admitted object is answered, admitted
specs parse, no traceback, no pod for a version that is not Validated, and a known-good object still moves."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException
from pydantic import BaseModel, ValidationError

from fuzz.strategies import PLURALS, UNIQUE, sample
from slipway import GROUP, VERSION
from slipway.api import ModelVersionSpec, ServingEndpointSpec, TrainingPipelineSpec
from slipway.devcluster.operator_process import OperatorProcess

SPECS: dict[str, type[BaseModel]] = {
    "TrainingPipeline": TrainingPipelineSpec,
    "ModelVersion": ModelVersionSpec,
    "ServingEndpoint": ServingEndpointSpec,
}
FIELD_PATH = re.compile(r"\b(spec(\.[A-Za-z]+|\[[0-9]+\])*|metadata\.name)\b")


@dataclass
class Campaign:
    api: client.ApiClient
    operator: OperatorProcess
    answer_timeout: float = 90.0
    counts: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    pending: list[tuple[str, str]] = field(default_factory=list)
    namespace: str = ""
    reported: int = 0
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)
        self.new_namespace()

    def new_namespace(self) -> None:
        self.namespace = f"fuzz-{uuid.uuid4().hex[:8]}"
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=self.namespace)))

    def apply(self, doc: dict[str, Any]) -> None:
        self.counts["cases"] += 1
        kind, plural = doc["kind"], PLURALS[doc["kind"]]
        if doc["metadata"]["name"] == UNIQUE:
            doc["metadata"]["name"] = f"{kind.lower()[:2]}-{self.counts['cases']}"
        try:
            self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, doc)
        except ApiException as error:
            if error.status == 409:
                self.counts["name taken"] += 1
                return
            message = json.loads(error.body).get("message", "") if error.body else ""
            if error.status not in (400, 422) or not FIELD_PATH.search(message):
                self.violations.append(f"refusal without a field path ({error.status}): {message[:500]}")
            self.counts["refused"] += 1
            return
        self.counts["accepted"] += 1
        self.pending.append((plural, doc["metadata"]["name"]))
        try:
            SPECS[kind].model_validate(doc["spec"])
        except ValidationError as error:
            self.violations.append(
                f"{kind} admitted but its model refuses it: {error} in {json.dumps(doc)[:800]}"
            )

    def settle(self) -> None:
        """Waits for every admitted object to be answered, checks the invariants, starts a new namespace."""
        canary = self._canary()
        deadline = time.monotonic() + self.answer_timeout
        waiting = [*self.pending, ("modelversions", canary)]
        while waiting and time.monotonic() < deadline:
            waiting = [(plural, name) for plural, name in waiting if not self._answered(plural, name)]
            if waiting:
                time.sleep(1)
        for plural, name in waiting:
            what = "the known-good ModelVersion" if name == canary else f"{plural}/{name}"
            self.violations.append(f"{what} not answered by a condition within {self.answer_timeout:.0f}s")
        self.counts["answered"] += len(self.pending) + 1 - len(waiting)
        self._check_pods()
        self._check_tracebacks()
        self.core.delete_namespace(self.namespace)
        self.pending = []
        self.new_namespace()
        print(self.summary(), flush=True)
        for violation in self.violations[self.reported :]:
            print("  broken:", violation[:2000], flush=True)
        self.reported = len(self.violations)

    def _canary(self) -> str:
        doc = sample("ModelVersion")[0]
        name = f"canary-{uuid.uuid4().hex[:6]}"
        doc["metadata"] = {"name": name}
        doc["spec"]["modelName"] = name
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, "modelversions", doc)
        return name

    def _answered(self, plural: str, name: str) -> bool:
        try:
            obj = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)
        except ApiException:
            return True  # deleted (nothing left to answer for)
        status = obj.get("status") or {}
        return bool(status.get("conditions") or status.get("phase"))

    def _check_pods(self) -> None:
        validated = {
            (mv["spec"]["modelName"], str(mv["spec"]["version"]))
            for mv in self.custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "modelversions"
            )["items"]
            if (mv.get("status") or {}).get("phase") == "Validated"
        }
        for pod in self.core.list_namespaced_pod(self.namespace).items:
            labels = pod.metadata.labels or {}
            version = labels.get(f"{GROUP}/version")
            if version is not None and (labels.get(f"{GROUP}/model", ""), version) not in validated:
                self.violations.append(
                    f"pod {pod.metadata.name} serves version {version} that is not Validated"
                )

    def _check_tracebacks(self) -> None:
        log = self.operator.logs()
        found = log.count("Traceback (most recent call last)")
        if found > self.counts["tracebacks"]:
            start = log.find("Traceback (most recent call last)")
            self.violations.append(
                f"{found} traceback(s) in the operator's log; the first:\n{log[start : start + 3000]}"
            )
            self.counts["tracebacks"] = found

    def summary(self) -> str:
        seconds, counts = time.monotonic() - self.started, self.counts
        return (
            f"fuzz: {counts['cases']} cases in {seconds:.0f}s: {counts['refused']} refused at admission, "
            f"{counts['accepted']} accepted ({counts['answered']} answered by a condition, known-good "
            f"objects included), {counts['name taken']} names taken; "
            f"{len(self.violations)} invariant(s) broken"
        )

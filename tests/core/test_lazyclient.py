"""The operator imports the kubernetes client's classes as it uses them (slipway.lazyclient)."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import sys
from slipway import lazyclient
assert lazyclient.install()
import slipway.runner  # kopf, the handlers and everything they import
models = [m for m in sys.modules if m.startswith("kubernetes.client.models.")]
assert len(models) < 20, models
from kubernetes import client
from kubernetes.client.rest import ApiException
assert client.CoreV1Api.__module__ == "kubernetes.client.api.core_v1_api"
assert client.models.V1Pod is client.V1Pod
body = client.ApiClient().sanitize_for_serialization(client.V1ObjectMeta(name="x"))
assert body == {"name": "x"}, body
assert not lazyclient.install()  # a second time: the real package is in place, nothing done
try:
    client.NoSuchThing
except AttributeError as error:
    assert "NoSuchThing" in str(error)
else:
    raise AssertionError("an unknown name must raise AttributeError")
print("ok")
"""


def test_classes_are_imported_when_first_used() -> None:
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"

"""A platform engineer's GitOps repository on loopback: a bare Git repository Argo CD's repo server fetches
through file://, a working clone the test commits to, holding Slipway's crds/ and manifests/ (base, samples)
as this checkout has them, and an overlay written the way a user adapts the samples to a cluster."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
OVERLAY = "manifests/overlays/gitops-test"
MODEL = "penguins"
PV = "slipway-store-gitops-test"
SAMPLE_REQUEST = {"instances": [{"island": "Biscoe", "bill_length_mm": 46.1, "body_mass_g": 5200}]}
# The samples the overlay leaves out: training needs TensorFlow or Kubeflow, the HTTPRoute a Gateway API.
LEFT_OUT = [
    ("TrainingPipeline", "penguins"),
    ("TrainingPipeline", "penguins-kfp"),
    ("TrainingPipeline", "penguins-job"),
    ("TrainingPipeline", "body-mass"),
    ("ServingEndpoint", "penguins-pinned"),
]


class GitOpsRepo:
    def __init__(self, root: Path, store: Path) -> None:
        self.bare = root / "slipway.git"
        self.work = root / "work"
        self.store = store
        self.model_versions: list[int] = []
        root.mkdir(parents=True, exist_ok=True)
        self._git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(self.bare))
        self._git(root, "clone", "--quiet", str(self.bare), str(self.work))
        self._git(self.work, "config", "user.name", "Platform Engineer")
        self._git(self.work, "config", "user.email", "platform@example.com")
        for tree in ("crds", "manifests"):
            shutil.copytree(REPO / tree, self.work / tree)
        self._sample_names_exist()

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def _git(self, cwd: Path, *args: str) -> str:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    def commit(self, message: str) -> str:
        self._git(self.work, "add", "-A")
        self._git(self.work, "commit", "--quiet", "-m", message)
        self._git(self.work, "push", "--quiet", "origin", "HEAD:main")
        return self._git(self.work, "rev-parse", "HEAD")

    def _sample_names_exist(self) -> None:
        samples = self.work / "manifests" / "samples"
        names = {
            (doc["kind"], doc["metadata"]["name"])
            for path in samples.glob("*.yaml")
            if path.name != "kustomization.yaml"
            for doc in yaml.safe_load_all(path.read_text())
        }
        missing = [entry for entry in LEFT_OUT if entry not in names]
        assert not missing, f"the samples changed: {missing} are gone; update LEFT_OUT"

    # What the engineer writes ---------------------------------------------------------------------------

    def install_slipway(self) -> None:
        """The overlay with the base alone: CRDs, namespaces, RBAC, the operator's Deployment."""
        self._write_overlay(serve=False)

    def serve_penguins(self, steps: list[dict[str, Any]]) -> None:
        """The samples' ServingEndpoint, adapted to this cluster: the model store is a directory of this
        machine, given to the pods as the samples' `slipway-store` claim. The samples' ModelVersion v1 is
        left out until `push_first_version`: the endpoint waits for a validated version until then."""
        self.model_versions = []
        self._write(
            "model-store.yaml",
            [
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {"name": PV},
                    "spec": {
                        "capacity": {"storage": "1Gi"},
                        "accessModes": ["ReadWriteMany"],
                        "storageClassName": "",
                        "hostPath": {"path": str(self.store)},
                        "claimRef": {"namespace": "ml", "name": "slipway-store"},
                    },
                },
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "slipway-store", "namespace": "ml"},
                    "spec": {
                        "accessModes": ["ReadWriteMany"],
                        "storageClassName": "",
                        "volumeName": PV,
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                },
            ],
        )
        self.steps = steps
        self._write_overlay(serve=True)

    def push_first_version(self) -> None:
        """The samples' ModelVersion v1, its files in the store."""
        self._model_files(1)
        self.model_versions.append(1)
        self._write_overlay(serve=True)

    def push_model_version(self, version: int) -> None:
        """A new ModelVersion as the training side pushes it (its files in the store, its record here)."""
        self._model_files(version)
        sample = yaml.safe_load((self.work / "manifests/samples/modelversion-penguins-v1.yaml").read_text())
        sample["metadata"].update(name=f"{MODEL}-v{version}", namespace="ml")
        sample["spec"].update(version=version, uri=self._uri(version))
        sample["spec"]["lineage"]["runId"] = f"{MODEL}-manual-{version}"
        self._write(f"modelversion-v{version}.yaml", [sample])
        self.model_versions.append(version)
        self._write_overlay(serve=True)

    def edit_v1_accuracy(self, accuracy: str) -> None:
        """An edit of the sample ModelVersion's spec (through the overlay's patch), which is immutable."""
        self.v1_accuracy = accuracy
        self._write_overlay(serve=True)

    # ---------------------------------------------------------------------------------------------------

    v1_accuracy: str | None = None
    steps: list[dict[str, Any]] = []

    def _uri(self, version: int) -> str:
        return f"file://{self.store}/{MODEL}/{version}"

    def _model_files(self, version: int) -> None:
        directory = self.store / MODEL / str(version)
        directory.mkdir(parents=True)
        (directory / "saved_model.pb").write_bytes(b"\x08\x01")
        manifest = {"modelName": MODEL, "version": version, "sampleRequest": SAMPLE_REQUEST}
        (directory / "slipway-manifest.json").write_text(json.dumps(manifest))

    def _write(self, name: str, docs: list[dict[str, Any]]) -> None:
        path = self.work / OVERLAY / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))

    def _write_overlay(self, serve: bool) -> None:
        kustomization: dict[str, Any] = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": ["../../base"],
        }
        if serve:
            kustomization["resources"] += [
                "../../samples",
                "model-store.yaml",
                *(f"modelversion-v{v}.yaml" for v in self.model_versions if v != 1),
            ]
            v1_spec: dict[str, Any] = {"uri": self._uri(1)}
            if self.v1_accuracy is not None:
                v1_spec["metrics"] = {"accuracy": self.v1_accuracy}
            left_out, v1_patches = LEFT_OUT, [_merge_patch("ModelVersion", f"{MODEL}-v1", {"spec": v1_spec})]
            if 1 not in self.model_versions:  # the samples' v1 is not pushed yet
                left_out, v1_patches = [*LEFT_OUT, ("ModelVersion", f"{MODEL}-v1")], []
            kustomization["patches"] = [
                *(
                    {
                        "patch": yaml.safe_dump(
                            {
                                "$patch": "delete",
                                "apiVersion": "slipway.dev/v1alpha1",
                                "kind": kind,
                                "metadata": {"name": name, "namespace": "ml"},
                            }
                        )
                    }
                    for kind, name in left_out
                ),
                *v1_patches,
                _merge_patch(
                    "ServingEndpoint",
                    MODEL,
                    {
                        "spec": {
                            "modelVolume": {
                                "mountPath": str(self.store),
                                "persistentVolumeClaim": {"claimName": "slipway-store"},
                            },
                            "rollout": {"steps": self.steps},
                        }
                    },
                ),
            ]
        self._write("kustomization.yaml", [kustomization])


def _merge_patch(kind: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    patch = {
        "apiVersion": "slipway.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "ml"},
    }
    return {"patch": yaml.safe_dump({**patch, **body})}

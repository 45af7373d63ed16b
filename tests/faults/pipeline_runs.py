"""One TrainingPipeline's runs, driven as a user would (a `slipway.dev/run` request, or a new file in its
data), with the local executor running the tiny KFP pipeline for real; and what the executor itself did,
counted from its own files rather than from status:

- a run id the executor was asked to start is a directory under `<artifacts>/<ns>/<pipeline>/runs/`;
- a start is a line in that directory's `run.log` (every process the executor spawns appends to it);
- a pipeline execution is a directory kfp.local creates under the pipeline root (one per execution)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from kubernetes import client

from fixtures.pipelines import local_pipeline
from slipway import GROUP, VERSION

PIPELINE = "tiny"
PIPELINES = Path(__file__).resolve().parents[1] / "training" / "pipelines"
# Long enough for a fault to strike while the run is in flight, short enough for many runs.
RUN_SECONDS = 2
NEW_DATA_POLL_SECONDS = 5  # the least spec.triggers.onNewData.pollIntervalSeconds admits


def operator_training_env() -> dict[str, str]:
    return {"SLIPWAY_PIPELINES_DIR": str(PIPELINES), "SLIPWAY_TRAINING_POLL_SECONDS": "1"}


class Training:
    def __init__(self, api: client.ApiClient, namespace: str, root: Path) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.namespace, self.root = namespace, root
        self.triggers: list[str] = []  # what asked for a run, in order ("Manual:<token>", "NewData:<file>")
        (root / "data").mkdir(parents=True)
        (root / "data" / "batch-0.csv").write_text("x,y\n1,2\n")

    @property
    def base(self) -> Path:
        return self.root / "artifacts" / self.namespace / PIPELINE

    def create(self) -> None:
        body = local_pipeline(
            self.root,
            PIPELINE,
            parameters={"sleep_seconds": str(RUN_SECONDS)},
            triggers={"onNewData": {"pollIntervalSeconds": NEW_DATA_POLL_SECONDS}},
            successfulRunsHistoryLimit=100,
            failedRunsHistoryLimit=100,
        )
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, "trainingpipelines", body)

    def status(self) -> dict[str, Any]:
        body = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "trainingpipelines", PIPELINE
        )
        return dict(body.get("status") or {})

    def watching_data(self) -> bool:
        """The first poll of the data records its fingerprint: files added after it trigger runs."""
        return bool(self.status().get("dataFingerprint"))

    # --- triggers -------------------------------------------------------------------------------------

    def request(self) -> str:
        token = f"run-{len(self.triggers) + 1}"
        patch = {"metadata": {"annotations": {f"{GROUP}/run": token}}}
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "trainingpipelines", PIPELINE, patch
        )
        self.triggers.append(f"Manual:{token}")
        return token

    def new_data(self) -> str:
        name = f"batch-{len(self.triggers) + 1}.csv"
        (self.root / "data" / name).write_text(f"x,y\n{len(self.triggers)},2\n")
        self.triggers.append(f"NewData:{name}")
        return name

    def trigger(self, index: int) -> str:
        """Every fourth run comes from new data, the others from a request."""
        return self.new_data() if index % 4 == 3 else self.request()

    # --- what status says -----------------------------------------------------------------------------

    def runs(self) -> list[dict[str, Any]]:
        return list(self.status().get("runs", []))

    def running(self, count: int) -> dict[str, Any] | None:
        """The `count`-th run, once status records it in flight (or already over)."""
        runs = self.runs()
        return runs[count - 1] if len(runs) >= count else None

    def recorded(self, count: int) -> dict[str, Any] | None:
        """The `count`-th run once it is over and, if it succeeded, its ModelVersion recorded in status."""
        run = self.running(count)
        if run is None or run["phase"] in ("Pending", "Running"):
            return None
        return run if run["phase"] != "Succeeded" or "pushed" in run else None

    def model_versions(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "modelversions"
        )["items"]
        return items

    def outcome_events(self) -> Counter[str]:
        """The pipeline's RunSucceeded and RunFailed Events, counted by message (which names the run)."""
        core = client.CoreV1Api(self.custom.api_client)
        events = core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={PIPELINE}"
        ).items
        return Counter(e.message for e in events if e.reason in ("RunSucceeded", "RunFailed"))

    # --- what the executor did ------------------------------------------------------------------------

    def run_ids_started(self) -> list[str]:
        runs = self.base / "runs"
        return sorted(p.name for p in runs.iterdir() if p.is_dir()) if runs.exists() else []

    def starts(self) -> Counter[str]:
        """Processes the executor spawned, per run id: each writes its first log line to run.log."""
        counts: Counter[str] = Counter()
        for run_id in self.run_ids_started():
            log = self.base / "runs" / run_id / "run.log"
            text = log.read_text(errors="replace") if log.exists() else ""
            counts[run_id] = max(1, text.count(SPAWN_MARK)) if text else 0
        return counts

    def executions(self) -> int:
        """Pipeline executions kfp.local started, whatever asked for them."""
        root = self.base / "pipeline-root"
        if not root.exists():
            return 0
        return sum(1 for p in root.iterdir() if p.is_dir() and p.name.startswith(f"{PIPELINE}-"))

    def wrong(self) -> list[str]:
        """What breaks "each run started once, each finished run registered once and announced once, none
        lost"."""
        problems: list[str] = []
        started = self.run_ids_started()
        if len(started) != len(self.triggers):
            problems.append(f"{len(self.triggers)} triggers, {len(started)} run ids started: {started}")
        if (executions := self.executions()) != len(self.triggers):
            problems.append(f"{len(self.triggers)} triggers, {executions} pipeline executions")
        problems += [f"run {r} started {n} times" for r, n in self.starts().items() if n != 1]
        runs = self.runs()
        recorded = [r["id"] for r in runs]
        if sorted(recorded) != started:
            problems.append(f"status records {sorted(recorded)}, the executor started {started}")
        if dupes := [r for r, n in Counter(recorded).items() if n > 1]:
            problems.append(f"runs recorded twice: {dupes}")
        versions = self.model_versions()
        registered = Counter(
            ((v["spec"].get("lineage") or {}).get("runId"), v["metadata"]["name"]) for v in versions
        )
        announced = self.outcome_events()
        for run in runs:
            if run["phase"] != "Succeeded":
                problems.append(f"run {run['id']}: {run['phase']}: {run.get('message', '')}")
                continue
            mine = [(name, n) for (run_id, name), n in registered.items() if run_id == run["id"]]
            if [n for _, n in mine] != [1] or run.get("modelVersion") != mine[0][0]:
                problems.append(f"run {run['id']} records {run.get('modelVersion')}; registered: {mine}")
            if (count := announced[f"run {run['id']} succeeded"]) != 1:
                problems.append(f"run {run['id']}: {count} RunSucceeded Events")
        numbers = sorted(int(v["spec"]["version"]) for v in versions)
        if numbers != list(range(1, len(self.triggers) + 1)):
            problems.append(f"ModelVersions {numbers} for {len(self.triggers)} runs")
        return problems


# The first line local_run's kfp.local writes to run.log each time a run process starts.
SPAWN_MARK = "Running pipeline"


def wait_seconds_for_a_trigger(kind: str) -> float:
    """How long a trigger may take to start a run: new data is seen at the next poll."""
    return 30.0 + (NEW_DATA_POLL_SECONDS if kind == "NewData" else 0)

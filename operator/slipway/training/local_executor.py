"""The `local` executor: runs a compiled pipeline with kfp.local in a child process of the operator.

Each run has a directory holding the IR, the request, `state.json` (written atomically by the child) and
the log. The child runs in its own session, so an operator restart neither kills it nor loses it: the new
operator reads the same state file. Submitting a run id twice adopts the existing run."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slipway.messages import sanitize

log = logging.getLogger(__name__)
STATE = "state.json"
REQUEST = "request.json"
PID = "pid"


@dataclass(frozen=True)
class RunState:
    phase: str  # Pending | Running | Succeeded | Failed | Cancelled
    message: str = ""
    started: str | None = None
    finished: str | None = None
    outputs: dict[str, Any] | None = None
    pid: int | None = None
    url: str | None = None


def write_state(run_dir: Path, **state: Any) -> None:
    temporary = run_dir / f".{STATE}.tmp"
    temporary.write_text(json.dumps(state))
    os.replace(temporary, run_dir / STATE)


def read_state(run_dir: Path) -> RunState | None:
    try:
        raw = json.loads((run_dir / STATE).read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return RunState("Running", "state file being written")
    return RunState(
        phase=raw.get("phase", "Running"),
        message=raw.get("message", ""),
        started=raw.get("started"),
        finished=raw.get("finished"),
        outputs=raw.get("outputs"),
        pid=_pid(run_dir),
    )


def _pid(run_dir: Path) -> int | None:
    try:
        return int((run_dir / PID).read_text())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def now_text() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class LocalExecutor:
    def __init__(
        self,
        runs_root: Path,
        environment: dict[str, str] | None = None,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        """`environment`: added to the operator's for the run's process (storage credentials); it is
        never written to disk. `on_exit`: called when a run this executor started ends, so the outcome is
        registered at once instead of at the next poll (runs adopted after a restart are polled)."""
        self.runs_root = runs_root
        self.environment = environment or {}
        self.on_exit = on_exit

    def run_dir(self, run_id: str) -> Path:
        return self.runs_root / run_id

    def submit(self, run_id: str, ir_text: str, arguments: dict[str, Any], pipeline_root: str) -> RunState:
        run_dir = self.run_dir(run_id)
        existing = read_state(run_dir)
        if existing is not None:
            return existing
        Path(pipeline_root).mkdir(parents=True, exist_ok=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "pipeline.yaml").write_text(ir_text)
        request = {"arguments": arguments, "pipelineRoot": pipeline_root}
        (run_dir / REQUEST).write_text(json.dumps(request))
        write_state(run_dir, phase="Pending", started=now_text())
        log = (run_dir / "run.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "slipway.training.local_run", str(run_dir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=run_dir,
            env={**os.environ, **self.environment},
        )
        log.close()
        # The pid goes in a file of its own: the child owns state.json from here on.
        (run_dir / PID).write_text(str(process.pid))
        if self.on_exit is not None:
            # The copied context carries kopf's, so the callback can post Events from this thread.
            waiter = contextvars.copy_context()
            threading.Thread(
                target=waiter.run, args=(self._notify_on_exit, process), name=f"wait-{run_id}", daemon=True
            ).start()
        return RunState("Running", started=now_text(), pid=process.pid)

    def _notify_on_exit(self, process: subprocess.Popen[bytes]) -> None:
        process.wait()
        assert self.on_exit is not None
        try:
            self.on_exit()
        except Exception as error:  # the next poll registers the outcome anyway
            log.warning("reconcile after a run ended failed: %s", sanitize(error))

    def state(self, run_id: str) -> RunState:
        run_dir = self.run_dir(run_id)
        state = read_state(run_dir)
        if state is None:
            return RunState("Failed", "the run's state is gone (artifact root cleared?)")
        if state.phase in ("Pending", "Running") and state.pid is not None and not _alive(state.pid):
            # The child died without recording an outcome (killed, OOM): it will not finish.
            write_state(
                run_dir,
                phase="Failed",
                message="the run process died",
                started=state.started,
                finished=now_text(),
            )
            return RunState("Failed", "the run process died", state.started, now_text())
        return state

    def terminate(self, run_id: str) -> None:
        run_dir = self.run_dir(run_id)
        state = read_state(run_dir)
        if state is None or state.phase not in ("Pending", "Running"):
            return
        if state.pid is not None and _alive(state.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(state.pid, signal.SIGTERM)
        write_state(
            run_dir, phase="Cancelled", message="terminated", started=state.started, finished=now_text()
        )

    def log_tail(self, run_id: str, lines: int = 20) -> str:
        try:
            text = (self.run_dir(run_id) / "run.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

"""The operator as a real process (`python -m slipway.cli run`), restartable: for tests, bench and demo."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from slipway.devcluster.cluster import die_with_parent, free_port


@dataclass
class OperatorProcess:
    kubeconfig: Path
    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    standalone: bool = True
    popen: subprocess.Popen[bytes] | None = None
    metrics_port: int = 0
    liveness_port: int = 0
    starts: int = 0
    live_timeout: float = 60  # start-up handlers (the views' priming) run before liveness answers

    def start(self) -> None:
        self.metrics_port, self.liveness_port = free_port(), free_port()
        self.starts += 1
        log = (self.log_dir / f"operator-{self.starts}.log").open("wb")
        self.popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "slipway.cli",
                "run",
                *(["--standalone"] if self.standalone else []),
                f"--metrics-port={self.metrics_port}",
                f"--liveness-port={self.liveness_port}",
            ],
            env={**os.environ, "KUBECONFIG": str(self.kubeconfig), **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + self.live_timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"operator exited with {self.popen.returncode}:\n{self.logs()[-4000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"operator did not become live:\n{self.logs()[-4000:]}")

    def stop(self, kill: bool = False) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def restart(self, kill: bool = True) -> None:
        self.stop(kill=kill)
        self.start()

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("operator-*.log")))

"""Beam's portable job service (the Job API that Flink's and Spark's Beam job servers speak too), started in
its own process on loopback: what `--runner=PortableRunner --job_endpoint=...` submits the Beam steps to in
the tests and the runner benchmark."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def portable_job_service(log: Path, timeout: float = 300.0) -> Iterator[str]:
    """Yields the service's endpoint (localhost:<port>); its output goes to `log`. `timeout` bounds the
    start: importing Beam takes a minute on a loaded machine."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "apache_beam.runners.portability.local_job_service_main",
                "--port",
                str(port),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                with socket.socket() as client:
                    if client.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"Beam's job service did not start: {log.read_text()[-2000:]}")
                time.sleep(0.2)
            yield f"localhost:{port}"
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

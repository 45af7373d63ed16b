"""A loopback HTTPS proxy in front of kube-apiserver that the operator's kubeconfig points at, so a test can
make the API server misbehave as a client sees it: answer 429, 500 or 503 for a while, cut every open watch
stream, or answer the next watches that resume from a resourceVersion with "410 Gone" (what the API
server says when that version has been compacted away).

It serves the API server's own certificate (valid for 127.0.0.1) and forwards as the admin user."""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from slipway.devcluster import DevCluster
from slipway.devcluster.cluster import free_port

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host", "content-length"}


@dataclass
class Counters:
    requests: int = 0
    errors_injected: int = 0
    watches_cut: int = 0
    gone_injected: int = 0
    by_status: dict[int, int] = field(default_factory=dict)


def _status(code: int, reason: str, message: str) -> dict[str, object]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class ApiProxy:
    def __init__(self, cluster: DevCluster, workdir: Path) -> None:
        assert cluster.pki is not None
        self.cluster, self.port = cluster, free_port()
        self.counters = Counters()
        self._error: tuple[int, float] | None = None  # (status, until monotonic)
        self._gone_budget = 0
        self._watches: dict[int, web.Request] = {}
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        pki = cluster.pki
        self._server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_ssl.load_cert_chain(str(pki.serving_cert), str(pki.serving_key))
        self._client_ssl = ssl.create_default_context(cafile=str(pki.ca_cert))
        self._client_ssl.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        self.kubeconfig = workdir / "through-proxy.kubeconfig"
        config = yaml.safe_load(cluster.kubeconfig.read_text())
        config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{self.port}"
        self.kubeconfig.write_text(yaml.safe_dump(config))

    # --- faults ---------------------------------------------------------------------------------------

    def fail(self, status: int, seconds: float) -> None:
        """Every request answered with `status` (429 with Retry-After: 1, 500, or 503) for `seconds`."""
        self._error = (status, time.monotonic() + seconds)

    def cut_watches(self) -> int:
        """Closes every open watch stream mid-flight, as a load balancer or a network fault would."""
        streams = list(self._watches.values())
        for stream in streams:
            self._loop.call_soon_threadsafe(_abort, stream)
        self.counters.watches_cut += len(streams)
        return len(streams)

    def expire_watches(self, count: int) -> None:
        """The next `count` watches that resume from a resourceVersion get 410 Gone (too old)."""
        self._gone_budget = count
        self.cut_watches()

    # --- plumbing -------------------------------------------------------------------------------------

    def __enter__(self) -> ApiProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _close(self) -> None:
        for request in list(self._watches.values()):
            _abort(request)
        await self._runner.cleanup()
        await self._session.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self) -> None:
        self._session = ClientSession(
            connector=TCPConnector(ssl=self._client_ssl, limit=0),
            timeout=ClientTimeout(total=None, sock_connect=5),
            auto_decompress=False,
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port, ssl_context=self._server_ssl).start()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.counters.requests += 1
        if self._error is not None and time.monotonic() < self._error[1]:
            status = self._error[0]
            self.counters.errors_injected += 1
            headers = {"Retry-After": "1"} if status == 429 else {}
            reason = {429: "TooManyRequests", 503: "ServiceUnavailable"}.get(status, "InternalError")
            return web.json_response(
                _status(status, reason, "injected by the fault proxy"), status=status, headers=headers
            )
        watch = request.query.get("watch") in ("true", "1")
        if watch and self._gone_budget > 0 and request.query.get("resourceVersion") not in (None, "", "0"):
            self._gone_budget -= 1
            self.counters.gone_injected += 1
            rv = request.query["resourceVersion"]
            event = {"type": "ERROR", "object": _status(410, "Expired", f"too old resource version: {rv}")}
            return web.Response(body=json.dumps(event).encode() + b"\n", content_type="application/json")
        upstream = f"{self.cluster.server}{request.rel_url}"
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        body = await request.read()
        try:
            async with self._session.request(
                request.method, upstream, headers=headers, data=body or None
            ) as up:
                self.counters.by_status[up.status] = self.counters.by_status.get(up.status, 0) + 1
                response = web.StreamResponse(
                    status=up.status,
                    headers={k: v for k, v in up.headers.items() if k.lower() not in HOP_BY_HOP},
                )
                await response.prepare(request)
                if watch:
                    self._watches[id(request)] = request
                try:
                    async for chunk in up.content.iter_any():
                        await response.write(chunk)
                finally:
                    self._watches.pop(id(request), None)
                await response.write_eof()
                return response
        except (TimeoutError, OSError) as error:  # the API server is down: as a dead backend answers
            return web.json_response(_status(503, "ServiceUnavailable", str(error)), status=503)


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()

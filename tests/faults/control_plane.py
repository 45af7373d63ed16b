"""The control-plane faults, as the tests inject them: through the DevCluster (its API server and etcd are
processes of the test's own) or the fault proxy the operator talks through."""

from __future__ import annotations

import time
from collections.abc import Callable

from apiproxy import ApiProxy
from scenario import ROLLOUTS

from slipway.devcluster import DevCluster

Fault = Callable[[DevCluster, ApiProxy], None]
ETCD_DOWN = 30.0 if ROLLOUTS else 5.0
ERROR_WINDOW = 5.0
# Longer than kopf's default retries of a failing request (eight, 54 s in all): with them, every watch
# stream gave up and the operator lived on deaf (slipway.handlers.RetryForever).
LONG_OUTAGE = 70.0


def restart_apiserver(cluster: DevCluster, _: ApiProxy) -> None:
    cluster.restart_component("kube-apiserver")


def stop_etcd(cluster: DevCluster, _: ApiProxy) -> None:
    cluster.restart_component("etcd", down_seconds=ETCD_DOWN)


def cut_watches(_: DevCluster, proxy: ApiProxy) -> None:
    assert proxy.cut_watches() > 0, "the operator had no watch open"


def expire_watches(_: DevCluster, proxy: ApiProxy) -> None:
    proxy.expire_watches(50)  # more than the operator's watches: each resumes into a 410 once


def throttle(status: int, seconds: float = ERROR_WINDOW) -> Fault:
    """The API server answering `status` to every new request for `seconds` (open watches go on)."""

    def inject(_: DevCluster, proxy: ApiProxy) -> None:
        proxy.fail(status, seconds)
        time.sleep(seconds)

    return inject


def outage(seconds: float) -> Fault:
    """The API server gone for `seconds`, as the operator sees it: its watch streams break and every request
    is answered 503, as a load balancer answers for a dead backend. Unlike a stopped kube-apiserver, the
    cluster's own components (the fake node's heartbeat) are not affected: a 70 s outage of the real one
    would make the node look dead and its pods unready, which is not the operator's doing."""

    def inject(_: DevCluster, proxy: ApiProxy) -> None:
        proxy.fail(503, seconds)
        proxy.cut_watches()
        time.sleep(seconds)

    return inject

"""The handler threads are all started with the operator, so a long run's thread count cannot creep."""

from __future__ import annotations

import threading
from concurrent import futures

from slipway.handlers import started_pool


def handler_threads() -> int:
    return sum(thread.name.startswith("slipway-handler") for thread in threading.enumerate())


def test_every_handler_thread_is_running_before_the_first_handler() -> None:
    before = handler_threads()
    pool = started_pool(8)
    try:
        assert handler_threads() - before == 8
        everyone = threading.Barrier(8)
        futures.wait([pool.submit(everyone.wait) for _ in range(8)], timeout=10)  # as busy as it gets
        assert handler_threads() - before == 8
    finally:
        pool.shutdown()

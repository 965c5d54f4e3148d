"""Proof that concurrent reconciliations share one 10 req/s budget, counted by the server."""

from __future__ import annotations

import bisect
import multiprocessing
import os
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine

from openphone_pipelines.reconciliation import reconcile_window
from openphone_pipelines.resources import AppDatabase, OpenPhoneResource
from openphone_pipelines.store.rate_budget import PostgresRateLimiter
from openphone_sandbox.testing import start_sandbox

from .conftest import ANCHOR, day_window

RATE = 10


class ArrivalLog:
    """WSGI middleware: the server-side arrival time of every /v1 request (standard WSGI wrapping)."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.arrivals: list[float] = []

    def __call__(self, environ: dict, start_response: Callable):
        if environ.get("PATH_INFO", "").startswith("/v1/"):
            with self.lock:
                self.arrivals.append(time.monotonic())
        return self.app(environ, start_response)

    def busiest(self, seconds: float = 1.0) -> int:
        """The most requests that arrived within any sliding window of `seconds`."""
        times = sorted(self.arrivals)
        return max((bisect.bisect_left(times, t + seconds) - i for i, t in enumerate(times)), default=0)


def reconcile_in_own_process(app_db_url: str, api_key: str, base_url: str, first_day: str) -> tuple[int, int]:
    """One run process: the client built as a run builds it (OpenPhoneResource.client() on the
    PostgresRateLimiter at the default 10 req/s), with its own engine. Returns (API calls, 429s)."""
    app_db = AppDatabase(url=app_db_url)
    openphone = OpenPhoneResource(api_key=api_key, base_url=base_url, app_db=app_db)
    try:
        with openphone.client() as client:
            assert isinstance(client.rate_limiter, PostgresRateLimiter)
            report = reconcile_window(client, app_db.engine, *day_window(first_day), concurrency=4)
        return report.api_calls, report.rate_limited
    finally:
        app_db.engine.dispose()


def test_two_concurrent_reconciliations_never_exceed_ten_per_second(app_db_url: str, db: Engine) -> None:
    # Two processes, as two runs are in production: threads of one process would share its GIL,
    # and a wake-up delayed by another run's parsing is a jitter production does not have.
    spawn = multiprocessing.get_context("spawn")
    with start_sandbox(seed=3, now=ANCHOR, history_days=2, messages_per_day=150, rate_limit=RATE) as sandbox, \
            spawn.Pool(2) as pool:
        log = ArrivalLog(sandbox.server.app.wsgi_app)
        sandbox.server.app.wsgi_app = log
        pool.apply(os.getpid)  # both workers imported and ready before the clock starts
        runs = [pool.apply_async(reconcile_in_own_process, (app_db_url, sandbox.api_key, sandbox.base_url, day))
                for day in ("2026-11-02", "2026-11-03")]
        results = [run.get(timeout=120) for run in runs]

    calls = sum(c for c, _ in results)
    assert len(log.arrivals) == calls > 40
    # The sandbox enforces OpenPhone's 10 req/s per key (token bucket, burst 10): never tripped.
    assert sum(r for _, r in results) == 0
    # Sustained rate across both runs, measured on arrival: at most 10/s over every 3-second window.
    assert log.busiest(3.0) <= 3 * RATE + 1, log.busiest(3.0)
    span = max(log.arrivals) - min(log.arrivals)
    assert span >= (calls - RATE) / RATE  # the budget really throttled them together
    # Counted by the server on arrival: no sliding second ever holds more than 10 requests.
    assert log.busiest(1.0) <= RATE, log.busiest(1.0)

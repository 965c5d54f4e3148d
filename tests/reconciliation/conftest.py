"""Fixtures for the reconciliation suite: a sandbox OpenPhone with history, resources bound to it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from openphone_pipelines.openphone.client import OpenPhoneClient
from openphone_pipelines.openphone.ratelimit import NoLimit
from openphone_sandbox.testing import SandboxHandle, start_sandbox
from tests.support.resources import dagster_resources

# A fixed sandbox clock anchor: history days are 2026-11-01 .. 2026-11-03 plus 11-04 so far.
ANCHOR = "2026-11-04T06:00:00Z"
DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]


def day_window(first: str, last: str | None = None) -> tuple[datetime, datetime]:
    start = datetime.fromisoformat(first).replace(tzinfo=UTC)
    end = datetime.fromisoformat(last or first).replace(tzinfo=UTC) + timedelta(days=1)
    return start, end


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    """History only (no live traffic), generous rate limit: fast, deterministic walks."""
    with start_sandbox(seed=11, now=ANCHOR, history_days=3, messages_per_day=80, rate_limit=1000) as handle:
        yield handle


@pytest.fixture
def fast_client(sandbox: SandboxHandle) -> Iterator[OpenPhoneClient]:
    """A client without client-side throttling (the sandbox's own limit is lifted for these tests)."""
    with OpenPhoneClient(sandbox.api_key, sandbox.base_url, rate_limiter=NoLimit()) as client:
        yield client


@pytest.fixture
def resources(app_db_url: str, db: Engine, sandbox: SandboxHandle, smtp_server) -> dict:
    """Dagster resources on the emptied app database, the module's sandbox and the test's SMTP server."""
    return dagster_resources(app_db_url, smtp_server, sandbox)

"""Fixtures for the sandbox suite: a webhook sink per test and one shared sandbox per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openphone_sandbox.testing import SandboxHandle, WebhookSink, start_sandbox
from tests.sandbox.support import FIXED_NOW


@pytest.fixture
def receiver() -> Iterator[WebhookSink]:
    r = WebhookSink()
    yield r
    r.close()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    """A shared sandbox with a fixed anchor and no rate limit pressure (rate-limit tests make their own)."""
    with start_sandbox(seed=7, now=FIXED_NOW, rate_limit=10_000, history_days=2, messages_per_day=60) as h:
        yield h

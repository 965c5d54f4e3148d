"""Fixtures for the sandbox suite (helpers live in sandbox_helpers.py so tests can import them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sandbox_helpers import FIXED_NOW, Receiver

from openphone_sandbox.testing import SandboxHandle, start_sandbox


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    """A shared sandbox with a fixed anchor and no rate limit pressure (rate-limit tests make their own)."""
    with start_sandbox(seed=7, now=FIXED_NOW, rate_limit=10_000, history_days=2, messages_per_day=60) as h:
        yield h

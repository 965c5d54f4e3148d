"""One OpenPhone request budget shared through Postgres by every process that holds the key.

OpenPhone allows 10 requests/second per API key, counted across every worker. Each request takes
the next free slot with one atomic UPDATE (slots are 1/rate apart), then sleeps until its slot:
runs, sensors and backfills in separate processes can never exceed the rate together.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime

from sqlalchemy import Engine, text

_TAKE_SLOT = text(
    """
    INSERT INTO api_rate_slots AS s (key_hash, next_slot_at)
    VALUES (:key, clock_timestamp() + :interval * interval '1 second')
    ON CONFLICT (key_hash) DO UPDATE
       SET next_slot_at = GREATEST(s.next_slot_at, clock_timestamp()) + :interval * interval '1 second'
    RETURNING next_slot_at - :interval * interval '1 second' AS slot_at, clock_timestamp() AS now
    """
)


def key_fingerprint(api_key: str) -> str:
    """The budget is per key; store a hash so the key itself never lands in the database."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:32]


class PostgresRateLimiter:
    """A `RateLimiter` (acquire() blocks until the caller may send) backed by `api_rate_slots`."""

    def __init__(self, engine: Engine, api_key: str, rate_per_second: float = 10.0) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        self._engine = engine
        self._key = key_fingerprint(api_key)
        self._interval = 1.0 / rate_per_second

    def acquire(self) -> None:
        with self._engine.begin() as conn:
            row = conn.execute(_TAKE_SLOT, {"key": self._key, "interval": self._interval}).one()
        wait = _seconds_between(row.now, row.slot_at)
        if wait > 0:
            time.sleep(wait)


def _seconds_between(now: datetime, slot_at: datetime) -> float:
    return (slot_at - now).total_seconds()

"""One OpenPhone request budget shared through Postgres by every process that holds the key.

OpenPhone allows 10 requests/second per API key, counted across every worker. Each request takes
the next free slot with one atomic UPDATE, then sleeps until its slot: runs, sensors and backfills
in separate processes can never exceed the rate together.

Slots are (1 + headroom)/rate apart. The headroom absorbs the jitter between a request leaving
here and arriving at OpenPhone (a stalled thread can send late, bunching with the next ones):
with the default 10%, eleven requests need at least 1.1 s between their departures, so arrivals
stay within 10 per second unless one is delayed by more than 100 ms relative to the others.
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

    def __init__(self, engine: Engine, api_key: str, rate_per_second: float = 10.0, *,
                 headroom: float = 0.10) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        if not 0 <= headroom < 1:
            raise ValueError("headroom must be in [0, 1)")
        self._engine = engine
        self._key = key_fingerprint(api_key)
        self._interval = (1.0 + headroom) / rate_per_second

    def acquire(self) -> None:
        with self._engine.begin() as conn:
            row = conn.execute(_TAKE_SLOT, {"key": self._key, "interval": self._interval}).one()
        wait = _seconds_between(row.now, row.slot_at)
        if wait > 0:
            time.sleep(wait)


def _seconds_between(now: datetime, slot_at: datetime) -> float:
    return (slot_at - now).total_seconds()

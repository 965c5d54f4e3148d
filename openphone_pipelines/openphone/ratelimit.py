"""Client-side throttling: one 10 requests/second budget per API key (docs/design.md, rule 6;
docs/openphone-api.md, 'Rate limit').

OpenPhone counts requests per key, not per connection, so every thread of a process must draw from
the same budget: `process_limiter(rate)` hands out one shared `TokenBucket` per rate. Budgets shared
across processes implement the same `RateLimiter` protocol elsewhere (store/).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable


@runtime_checkable
class RateLimiter(Protocol):
    """Anything that blocks until one more request may be sent."""

    def acquire(self) -> None: ...


class NoLimit:
    """A limiter that never waits (tests, or a caller that throttles by other means)."""

    def acquire(self) -> None:
        return None


class TokenBucket:
    """Thread-safe GCRA token bucket: `rate_per_second` steady rate, `burst` requests at once.

    With the default `burst=1` requests leave evenly spaced. OpenPhone counts them on *arrival*,
    and network and scheduling delays between our `acquire()` and that arrival can bunch them
    together, so the spacing is widened by `jitter_allowance` seconds per `rate` requests: the first
    and the (rate+1)-th request of any run leave at least `1 + jitter_allowance` seconds apart, and
    any 1-second window of arrivals holds at most `rate` requests as long as those delays vary by
    less than the allowance. The default 0.2 s gives about 8.3 req/s sustained for a 10 req/s limit
    (docs/openphone-api.md, 'Rate limit', suggests about 8). Slots are reserved under a lock and slept
    outside it, so waiting threads are served in order without holding the lock.
    """

    def __init__(
        self,
        rate_per_second: float,
        burst: int | None = None,
        *,
        jitter_allowance: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not (isinstance(rate_per_second, int | float) and math.isfinite(rate_per_second)):
            raise ValueError(f"rate_per_second must be a finite number, got {rate_per_second!r}")
        if rate_per_second <= 0:
            raise ValueError(f"rate_per_second must be positive, got {rate_per_second!r}")
        burst = 1 if burst is None else burst
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        if jitter_allowance < 0:
            raise ValueError(f"jitter_allowance must be >= 0, got {jitter_allowance!r}")
        self.rate = float(rate_per_second)
        self.burst = int(burst)
        self.jitter_allowance = float(jitter_allowance)
        self.interval = (1.0 + self.jitter_allowance) / self.rate
        self._tolerance = (self.burst - 1) * self.interval
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tat = -math.inf  # theoretical arrival time of the next request

    def reserve(self) -> float:
        """Reserve the next slot and return how many seconds the caller must wait for it."""
        with self._lock:
            now = self._clock()
            tat = max(self._tat, now)
            slot = max(now, tat - self._tolerance)
            self._tat = tat + self.interval
            return slot - now

    def acquire(self) -> None:
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)

    def __repr__(self) -> str:
        return f"TokenBucket(rate_per_second={self.rate}, burst={self.burst})"


_registry: dict[float, TokenBucket] = {}
_registry_lock = threading.Lock()


def process_limiter(rate: float) -> TokenBucket:
    """The one `TokenBucket` this process uses for `rate`, created on first use."""
    key = float(rate)
    with _registry_lock:
        limiter = _registry.get(key)
        if limiter is None:
            limiter = _registry[key] = TokenBucket(key)
        return limiter

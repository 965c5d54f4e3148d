"""The gate in front of every /v1 request: raw-key auth, forced 429 bursts, the per-key rate limit,
and injected slowness and 5xx (docs/openphone-api.md, 'Rate limit' and 'Errors').

Order matters and follows the real gateway: a bad key is 401 before anything else; a 429 costs no
work; injected faults apply only to requests that got through.
"""

from __future__ import annotations

import math
import threading
import time

from flask import Flask, Response, current_app, g, request

from .envelope import error_response
from .web import current_sandbox

LIMITER = "openphone_sandbox.limiter"


class TokenBucket:
    """Per-key token bucket: burst of `rate` requests, refilled at `rate` per second."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.last = time.monotonic()

    def take(self) -> tuple[bool, float]:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True, 0.0
        return False, (1 - self.tokens) / self.rate


class RateLimiter:
    """One bucket per API key; a bucket is rebuilt when the rate changes at runtime."""

    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, rate: float) -> tuple[bool, float, int]:
        """(allowed, seconds until a token, tokens left)."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None or bucket.rate != rate:
                bucket = self._buckets[key] = TokenBucket(rate)
            ok, wait = bucket.take()
            return ok, wait, int(bucket.tokens)


def _rate_headers(rate: float, remaining: int) -> dict[str, str]:
    """The IETF-draft headers one third party observed live; Retry-After is added separately."""
    return {"ratelimit-policy": f'"per-second"; q={int(rate)}; w=1', "ratelimit": f'"per-second"; r={remaining}; t=1'}


def _throttle(rate: float) -> Response | None:
    """429 during a forced burst (api_429_until) or when the key's bucket is empty."""
    cfg = current_sandbox().config
    left = cfg.api_429_until - time.time()
    if left > 0:
        headers = _rate_headers(rate, 0)
        if cfg.api_429_retry_after:
            headers["Retry-After"] = str(max(1, math.ceil(left)))
        return error_response(429, "Too many requests, please slow down", headers=headers)
    ok, wait, remaining = current_app.extensions[LIMITER].take(request.headers["Authorization"], rate)
    g.rl_headers = _rate_headers(rate, remaining)
    if ok:
        return None
    headers = dict(g.rl_headers)
    if cfg.retry_after:
        headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return error_response(429, "Too many requests, please slow down", headers=headers)


def gate() -> Response | None:
    """before_request: answer 401/429/500 here, or let the view run (None)."""
    if not request.path.startswith("/v1/"):
        return None
    sandbox = current_sandbox()
    cfg = sandbox.config
    key = request.headers.get("Authorization")
    if not key:
        return error_response(401, "Missing authorization header")
    if key not in {cfg.api_key, *cfg.extra_api_keys}:  # includes "Bearer <key>": the API wants the raw key
        return error_response(401, "Unauthorized")
    refused = _throttle(cfg.rate_limit)
    if refused is not None:
        return refused
    if sandbox.api_fault(cfg.slow_rate):
        time.sleep(cfg.slow_delay_ms / 1000.0)
    if sandbox.api_fault(cfg.error_5xx_rate):
        if request.method == "POST" and request.path == "/v1/messages":
            g.fault_5xx = True  # the view decides whether the text still goes out
            return None
        return error_response(500, "Something went wrong on our end")
    return None


def add_rate_headers(resp: Response) -> Response:
    """after_request: every /v1 answer that passed the limiter carries the rate-limit headers."""
    for key, value in getattr(g, "rl_headers", {}).items():
        resp.headers.setdefault(key, value)
    return resp


def install(app: Flask) -> None:
    """Put the gate in front of app."""
    app.extensions[LIMITER] = RateLimiter()
    app.before_request(gate)
    app.after_request(add_rate_headers)

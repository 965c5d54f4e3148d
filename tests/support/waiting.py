"""The suite's one way to wait for something that happens elsewhere (a process, a server, a webhook)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, what: str = "the condition", *,
               interval: float = 0.05, stop_if: Callable[[], str | None] | None = None,
               detail: Callable[[], str] | None = None) -> T:
    """Poll `predicate` until it returns something truthy, and return that.

    Fails the test (AssertionError naming `what`, plus `detail()` such as a log tail) when `timeout`
    passes, or at once when `stop_if()` says why waiting is pointless (e.g. the process exited).
    Never a blind sleep: the wait ends as soon as the condition holds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        reason = stop_if() if stop_if else None
        if reason or time.monotonic() > deadline:
            message = f"{reason} while waiting for {what}" if reason else f"timed out after {timeout}s waiting for {what}"
            raise AssertionError(message + (f"\n{detail()}" if detail else ""))
        time.sleep(interval)

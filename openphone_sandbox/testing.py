"""Python API for tests: start a sandbox on a free local port and drive its hooks over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from .config import SandboxConfig
from .server import SandboxServer
from .state import Sandbox


class SandboxHandle:
    """What start_sandbox yields: connection facts plus helpers for the /_sandbox hooks."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.sandbox: Sandbox = server.sandbox
        self.base_url = server.base_url
        self.api_url = self.base_url + "/v1"
        self.api_key = self.sandbox.config.api_key
        self.webhook_secret: str = self.sandbox.config.webhook_secret or ""
        self.main_line = self.sandbox.world.main
        self.probe_line = self.sandbox.world.probe
        self._http = httpx.Client(base_url=self.base_url, timeout=30)

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client for the v1 API with the raw key in Authorization (caller closes it)."""
        return httpx.Client(base_url=self.base_url, headers={"Authorization": self.api_key},
                            timeout=kwargs.pop("timeout", 30), **kwargs)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self._http.request(method, path, **kwargs)
        resp.raise_for_status()
        return resp.json()

    def info(self) -> dict[str, Any]:
        return self._json("GET", "/_sandbox/info")

    def ground_truth(self, **filters: str) -> list[dict[str, Any]]:
        """Messages with final statuses; filters: createdAfter, createdBefore, phoneNumberId."""
        return self._json("GET", "/_sandbox/ground-truth", params=filters)["messages"]

    def stats(self) -> dict[str, Any]:
        return self._json("GET", "/_sandbox/stats")

    def events(self, **filters: str) -> list[dict[str, Any]]:
        return self._json("GET", "/_sandbox/events", params=filters)["data"]

    def settle(self) -> int:
        return self._json("POST", "/_sandbox/settle")["settled"]

    def advance(self, seconds: float) -> int:
        return self._json("POST", "/_sandbox/advance", json={"seconds": seconds})["ran"]

    def pending(self) -> int:
        return self._json("GET", "/_sandbox/deliveries/pending")["pending"]

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        """Release reorder buffers and wait until no delivery is queued or in flight."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            out = self._json("POST", "/_sandbox/flush", json={"timeout": max(0.0, min(remaining, 5.0))})
            if out["idle"]:
                return True
            if time.monotonic() >= deadline:
                return False

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        return self._json("POST", "/_sandbox/faults", json=faults)

    def simulate_inbound(self, text: str = "Hello", sender: str | None = None, line: str | None = None,
                         count: int = 1, others: list[str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"text": text, "count": count, "others": others or []}
        if sender:
            body["from"] = sender
        if line:
            body["phoneNumberId"] = line
        return self._json("POST", "/_sandbox/simulate/inbound-message", json=body)

    def close(self) -> None:
        self._http.close()


@contextmanager
def start_sandbox(config: SandboxConfig | None = None, *, host: str = "127.0.0.1", port: int = 0,
                  **options: Any) -> Iterator[SandboxHandle]:
    """Run a sandbox in background threads on a free port for the duration of the block.

    options are SandboxConfig fields, and FaultConfig fields (drop_rate, ...) at top level.
    """
    cfg = config or SandboxConfig.from_options(**options)
    server = SandboxServer(cfg, host=host, port=port).start()
    handle = SandboxHandle(server)
    try:
        yield handle
    finally:
        handle.close()
        server.stop()

"""Python API for tests: start a sandbox on a free local port, drive its hooks over HTTP, and
receive its webhooks on a local sink."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from .config import SandboxConfig
from .server import SandboxServer
from .state import Sandbox
from .traffic import DAY_MS
from .util import iso


def _iso(value: str | datetime | None) -> str | None:
    """ISO text for the hooks: strings pass through, aware datetimes keep their milliseconds."""
    if value is None or isinstance(value, str):
        return value
    return iso(round(value.timestamp() * 1000))


def _midnight_ms(day: str | date) -> int:
    """Epoch ms of 00:00:00.000 UTC on day (a date or YYYY-MM-DD)."""
    d = date.fromisoformat(day) if isinstance(day, str) else day
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)


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

    def faults(self) -> dict[str, Any]:
        """Every runtime setting with its current value (GET /_sandbox/faults)."""
        return self._json("GET", "/_sandbox/faults")

    def set_faults(self, **settings: Any) -> dict[str, Any]:
        """Change runtime settings at once, e.g. drop_rate=0.15, receiver_down_for_s=150,
        api_429_for_s=20, live_rate=0, created_after_inclusive=False; returns them all."""
        return self._json("POST", "/_sandbox/faults", json=settings)

    def day_summary(self, **filters: str) -> list[dict[str, Any]]:
        """Ground-truth counts per UTC day; filters: createdAfter, createdBefore, phoneNumberId."""
        return self._json("GET", "/_sandbox/ground-truth/days", params=filters)["days"]

    def event_summary(self, **filters: str) -> dict[str, int]:
        """Counts over webhook events (events, dropped, duplicated, acknowledged, failed, pending, ...)."""
        return self._json("GET", "/_sandbox/events", params=filters)["summary"]

    def simulate_inbound(self, text: str = "Hello", sender: str | None = None, line: str | None = None,
                         count: int = 1, others: list[str] | None = None, *,
                         participants: list[str] | None = None, created_at: str | datetime | None = None,
                         spacing_ms: int | None = None, webhooks: bool = True) -> dict[str, Any]:
        """Incoming text(s) on line (default main) from sender, or from each of participants in turn.

        created_at (ISO or aware datetime) places the first at that instant, the next spacing_ms later.
        """
        body: dict[str, Any] = {"text": text, "count": count, "webhooks": webhooks}
        optional = {"from": sender, "phoneNumberId": line, "others": others, "participants": participants,
                    "createdAt": _iso(created_at), "spacingMs": spacing_ms}
        body.update({k: v for k, v in optional.items() if v is not None})
        return self._json("POST", "/_sandbox/simulate/inbound-message", json=body)

    def simulate_outbound(self, to: str | list[str], text: str = "Sent from the app", line: str | None = None,
                          count: int = 1, *, created_at: str | datetime | None = None,
                          spacing_ms: int | None = None, final_status: str | None = None,
                          webhooks: bool = True) -> dict[str, Any]:
        """Text(s) a user sends from the app on line (default main); past-dated ones are already final."""
        body: dict[str, Any] = {"to": to, "text": text, "count": count, "webhooks": webhooks}
        optional = {"from": line, "createdAt": _iso(created_at), "spacingMs": spacing_ms,
                    "finalStatus": final_status}
        body.update({k: v for k, v in optional.items() if v is not None})
        return self._json("POST", "/_sandbox/simulate/outbound-message", json=body)

    def busy_conversation(self, day: str | date, count: int = 250, participant: str = "+14155550250",
                          line: str | None = None, webhooks: bool = True) -> list[str]:
        """count messages in one 1:1 conversation, evenly spread inside UTC day `day`, alternating
        incoming and outgoing (delivered); returns their ids. More than 100 makes several pages."""
        start = _midnight_ms(day)
        step = DAY_MS // (count + 1)
        ids = self.simulate_inbound("Busy day", sender=participant, line=line, count=(count + 1) // 2,
                                    created_at=iso(start + step), spacing_ms=2 * step,
                                    webhooks=webhooks)["ids"]
        if count > 1:
            ids += self.simulate_outbound(participant, "Busy reply", line=line, count=count // 2,
                                          created_at=iso(start + 2 * step), spacing_ms=2 * step,
                                          final_status="delivered", webhooks=webhooks)["ids"]
        return ids

    def around_midnight(self, day: str | date, participant: str = "+14155550240", line: str | None = None,
                        webhooks: bool = True) -> dict[str, str]:
        """Two incoming texts: 1 ms before and exactly at 00:00:00.000 UTC of `day`; their ids by name."""
        midnight = _midnight_ms(day)
        ids = self.simulate_inbound("Midnight", sender=participant, line=line, count=2,
                                    created_at=iso(midnight - 1), spacing_ms=1, webhooks=webhooks)["ids"]
        return {"before_midnight": ids[0], "at_midnight": ids[1]}

    def close(self) -> None:
        self._http.close()


class WebhookSink:
    """A local endpoint that records every webhook delivery (lower-cased headers, raw body) and answers
    `status` (settable while running), or 500 to the next `fail_first` deliveries: the receiving side
    for tests of the sandbox's own delivery and retries."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.fail_first = 0
        self._lock = threading.Lock()
        self._requests: list[tuple[dict[str, str], bytes]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with sink._lock:
                    sink._requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    if sink.fail_first > 0:
                        sink.fail_first -= 1
                        code = 500
                    else:
                        code = sink.status
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}/webhooks/openphone"
        threading.Thread(target=self._server.serve_forever, name="webhook-sink", daemon=True).start()

    def requests(self) -> list[tuple[dict[str, str], bytes]]:
        with self._lock:
            return list(self._requests)

    def events(self) -> list[dict[str, Any]]:
        """Every delivered body, parsed, in arrival order (duplicates included)."""
        return [json.loads(body) for _, body in self.requests()]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> WebhookSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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

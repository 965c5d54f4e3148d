"""A scriptable local OpenPhone stand-in, served over real HTTP, for testing the client.

Each test queues replies per (method, path) or installs a handler; the server records every request
(raw query string, headers, body, arrival time on the monotonic clock) *on arrival*, before any
scripted delay, so tests can count requests that the client gave up waiting for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask, Request, Response, request
from flask import json as flask_json
from werkzeug.serving import make_server

from openphone_pipelines.openphone.client import OpenPhoneClient
from openphone_pipelines.openphone.ratelimit import NoLimit

API_KEY = "test-key-0123456789"


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    body: str | bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_type: str = "application/json"


@dataclass
class Recorded:
    method: str
    path: str
    query: str  # raw, exactly as it arrived on the wire
    args: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float


class ScriptedAPI:
    def __init__(self) -> None:
        self.app = Flask("scripted_openphone")
        self.base_url = ""
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._scripts: dict[tuple[str, str], deque[Reply]] = defaultdict(deque)
        self._handlers: dict[tuple[str, str], Callable[[Request], Reply]] = {}
        self.app.add_url_rule(
            "/<path:path>", view_func=self._dispatch, methods=["GET", "POST", "DELETE", "PUT", "PATCH"]
        )

    def script(self, method: str, path: str, *replies: Reply) -> None:
        """Queue replies served once each, in order, before any handler."""
        with self._lock:
            self._scripts[(method, path)].extend(replies)

    def handle(self, method: str, path: str, handler: Callable[[Request], Reply]) -> None:
        self._handlers[(method, path)] = handler

    def count(self, method: str | None = None, path: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method) and (path is None or r.path == path)
            )

    def recorded(self) -> list[Recorded]:
        with self._lock:
            return list(self.requests)

    def _dispatch(self, path: str) -> Response:
        record = Recorded(
            method=request.method,
            path="/" + path,
            query=request.environ.get("QUERY_STRING", ""),
            args={k: request.args.getlist(k) for k in request.args},
            headers={k.lower(): v for k, v in request.headers.items()},
            body=request.get_data(),
            at=time.monotonic(),
        )
        key = (record.method, record.path)
        with self._lock:
            self.requests.append(record)
            queue = self._scripts.get(key)
            reply = queue.popleft() if queue else None
        if reply is None:
            handler = self._handlers.get(key)
            if handler is None:
                reply = Reply(404, body="<html><body>Not Found</body></html>", content_type="text/html")
            else:
                reply = handler(request)
        if reply.delay:
            time.sleep(reply.delay)
        payload = reply.body if reply.json is None else flask_json.dumps(reply.json)
        return Response(
            payload or b"", status=reply.status, headers=reply.headers, content_type=reply.content_type
        )


@pytest.fixture
def api() -> Iterator[ScriptedAPI]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    scripted = ScriptedAPI()
    server = make_server("127.0.0.1", 0, scripted.app, threaded=True)
    scripted.base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="scripted-openphone", daemon=True
    )
    thread.start()
    try:
        yield scripted
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def make_client(api: ScriptedAPI) -> Iterator[Callable[..., OpenPhoneClient]]:
    """Clients against the scripted server: no throttle and millisecond backoff unless overridden."""
    clients: list[OpenPhoneClient] = []

    def factory(**overrides: Any) -> OpenPhoneClient:
        options: dict[str, Any] = {
            "rate_limiter": NoLimit(),
            "timeout": 5.0,
            "backoff_base": 0.005,
            "backoff_cap": 0.02,
        }
        options.update(overrides)
        base_url = options.pop("base_url", api.base_url)
        client = OpenPhoneClient(API_KEY, base_url, **options)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()

"""Serve a Sandbox over HTTP with werkzeug's threaded server in a background thread.

HTTP/1.1 keep-alive is enabled so clients (and the 10 rps limiter) see realistic latencies.
"""

from __future__ import annotations

import logging
import threading

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .api import create_app
from .config import SandboxConfig
from .state import Sandbox


class _QuietHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if logging.getLogger("openphone_sandbox.http").isEnabledFor(logging.DEBUG):
            super().log_request(code, size)


class SandboxServer:
    """A Sandbox plus its HTTP server; start() returns once the port is bound."""

    def __init__(self, config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = Sandbox(config)
        self.app = create_app(self.sandbox)
        self.server: BaseWSGIServer = make_server(host, port, self.app, threaded=True,
                                                  request_handler=_QuietHandler)
        self.server.daemon_threads = True  # type: ignore[attr-defined]
        self.host = host
        self.port = self.server.server_port
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> SandboxServer:
        self.sandbox.start()
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="sandbox-http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Run in the calling thread (CLI)."""
        self.sandbox.start()
        try:
            self.server.serve_forever()
        finally:
            self.sandbox.stop()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        self.sandbox.stop()

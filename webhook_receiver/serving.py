"""Serve the receiver app under granian (Rust HTTP, WSGI threads) with the receiver's settings.

`openphone-receiver` validates the configuration, then execs `python -m webhook_receiver.serving`,
so one pid runs the server: SIGTERM stops accepting, lets requests in flight finish (at most
RECEIVER_TIMEOUT), then exits. Why granian rather than gunicorn is in docs/benchmarks.md
("Receiver HTTP server"): HTTP parsing happens in Rust off the Python threads, so clients that
trickle their headers hold no thread, and it costs less CPU per request.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from openphone_pipelines.settings import Settings, load_settings
from webhook_receiver.logs import logconfig_dict

APP_FACTORY = "webhook_receiver.app:create_app"
RESPAWN_INTERVAL_SECONDS = 1.0  # a crashed worker is replaced this soon (the others keep serving)


def _bind(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def reset_metrics_dir(metrics_dir: str | None) -> None:
    """Counters of a previous run must not leak into this one (prometheus multiprocess files)."""
    if metrics_dir:
        path = Path(metrics_dir)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)


def build_server(settings: Settings):
    """The granian server for `settings` (imported lazily: the Flask test client needs no granian)."""
    from granian import Granian
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings

    host, port = _bind(settings.receiver_bind)
    return Granian(
        APP_FACTORY,
        factory=True,  # each worker builds its own app and database pool after the fork
        interface=Interfaces.WSGI,
        address=host,
        port=port,
        workers=settings.receiver_worker_count,
        # Python threads per worker: a request holds one from its first body byte to its answer.
        blocking_threads=settings.receiver_threads,
        websockets=False,
        http1_settings=HTTP1Settings(header_read_timeout=settings.receiver_header_timeout_seconds * 1000),
        respawn_failed_workers=True,
        respawn_interval=RESPAWN_INTERVAL_SECONDS,
        workers_kill_timeout=settings.receiver_timeout,
        log_dictconfig=logconfig_dict(settings.receiver_log_level),
        log_level=settings.receiver_log_level.lower(),
    )


def main() -> int:
    settings = load_settings()
    reset_metrics_dir(settings.prometheus_multiproc_dir)
    try:
        build_server(settings).serve()
    finally:
        if settings.prometheus_multiproc_dir and settings.receiver_owns_metrics_dir:
            shutil.rmtree(settings.prometheus_multiproc_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Flask app factory for the OpenPhone webhook receiver.

Nothing happens at import time: the server calls `create_app()` in each worker (after the fork),
so every worker gets its own connection pool and metric objects. Configuration comes from the
settings (see README.md), overridable by the `config` dict, and is validated here: a bad value
raises ConfigError naming the variable before the worker serves anything.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from openphone_pipelines.store.db import make_engine

from .config import load_config
from .metrics import ReceiverMetrics
from .views import EXTENSION_KEY, ReceiverState, bp

log = logging.getLogger("webhook_receiver")


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the receiver app. `config` keys are the env variable names (plus `ENGINE` in tests)."""
    overrides = dict(config or {})
    cfg = load_config(overrides)
    # No pre-ping on the hot path: the inbox insert is retried once on a dead pooled connection.
    engine = overrides.get("ENGINE") or make_engine(
        cfg.database_url, pool_size=cfg.db_pool_size, pool_timeout=cfg.db_pool_timeout, pre_ping=False,
        connect_args={"options": cfg.connection_options()},
    )

    app = Flask("webhook_receiver")
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_body_bytes
    metrics = ReceiverMetrics(lambda: engine, cfg.metrics_dir, queue_depth_ttl=cfg.queue_depth_cache_seconds)
    state = ReceiverState(config=cfg, engine=engine, metrics=metrics)
    app.extensions[EXTENSION_KEY] = state
    app.register_blueprint(bp)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_exc: RequestEntityTooLarge) -> Any:
        state.metrics.deliveries.labels("too_large").inc()
        log.warning("webhook refused: body too large", extra={"fields": {"limit": cfg.max_body_bytes}})
        return jsonify(error="payload too large"), 413

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        return jsonify(error=(exc.name or "error").lower()), exc.code or 500

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        # Logged with its bounded traceback (frames, no payload); the client gets no stack trace and,
        # as a 5xx, will retry.
        state.metrics.deliveries.labels("error").inc()
        log.error("unhandled error", exc_info=exc, extra={"fields": {"error": type(exc).__name__}})
        return jsonify(error="internal error"), 500

    return app

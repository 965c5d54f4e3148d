"""What one receiver process needs, taken from the settings (overridable by a dict in tests).

A bad value raises `ConfigError` naming the variable when the app is created, i.e. at worker
boot, never in the middle of a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from openphone_pipelines.settings import load_settings


@dataclass(frozen=True)
class ReceiverConfig:
    """Everything one receiver process needs; built by `load_config`."""

    database_url: str
    secrets: tuple[str, ...]
    max_body_bytes: int
    tolerance_seconds: int
    db_pool_size: int
    retry_after_seconds: int
    metrics_dir: str | None = None  # PROMETHEUS_MULTIPROC_DIR: the server's workers share metrics there
    db_pool_timeout: float = 5.0
    signature_max_entries: int = 5
    signature_max_header_bytes: int = 4096
    lock_timeout_ms: int = 2000
    statement_timeout_ms: int = 5000
    metrics_token: str | None = field(default=None, repr=False)
    queue_depth_cache_seconds: int = 15

    def connection_options(self) -> str:
        """libpq `options` for every receiver connection: no statement waits on a lock or runs longer
        than the configured bounds, so a request ends (and a processing wait falls back to the retry
        queue) long before the sender gives up."""
        return f"-c lock_timeout={self.lock_timeout_ms} -c statement_timeout={self.statement_timeout_ms}"


def load_config(overrides: Mapping[str, Any] | None = None) -> ReceiverConfig:
    """The receiver's settings, with `overrides` (keys named like the variables) over the environment.

    Requires DATABASE_URL and OPENPHONE_WEBHOOK_SECRETS; see README, Configuration for the
    RECEIVER_* variables."""
    settings = load_settings(overrides)
    return ReceiverConfig(
        database_url=settings.require_database_url(),
        secrets=settings.require_webhook_secrets(),
        max_body_bytes=settings.receiver_max_body_bytes,
        tolerance_seconds=settings.receiver_tolerance_seconds,
        db_pool_size=settings.receiver_pool_size,
        retry_after_seconds=settings.receiver_retry_after_seconds,
        metrics_dir=settings.prometheus_multiproc_dir,
        signature_max_entries=settings.receiver_signature_max_entries,
        signature_max_header_bytes=settings.receiver_signature_max_header_bytes,
        lock_timeout_ms=settings.receiver_lock_timeout_ms,
        statement_timeout_ms=settings.receiver_statement_timeout_ms,
        metrics_token=settings.receiver_metrics_token.get_secret_value() if settings.receiver_metrics_token else None,
        queue_depth_cache_seconds=settings.receiver_queue_depth_cache_seconds,
    )

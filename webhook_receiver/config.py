"""What one receiver process needs, taken from the settings (overridable by a dict in tests).

A bad value raises `ConfigError` naming the variable when the app is created, i.e. at worker
boot, never in the middle of a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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
    metrics_dir: str | None = None  # PROMETHEUS_MULTIPROC_DIR: gunicorn workers share metrics there
    db_pool_timeout: float = 5.0


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
    )

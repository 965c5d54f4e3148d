"""Receiver configuration: environment variables, overridable by a dict (tests), validated once.

A bad value raises `ConfigError` naming the variable when the app is created, i.e. at worker
boot, never in the middle of a request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openphone_pipelines.openphone.signatures import SECRETS_ENV_VAR, parse_secrets
from openphone_pipelines.settings import ConfigError, database_url, env_int, parse_int

DEFAULT_MAX_BODY_BYTES = 256 * 1024
DEFAULT_TOLERANCE_SECONDS = 300


@dataclass(frozen=True)
class ReceiverConfig:
    """Everything one receiver process needs; built by `load_config`."""

    database_url: str
    secrets: tuple[str, ...]
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS
    db_pool_size: int = 5
    db_pool_timeout: float = 5.0
    retry_after_seconds: int = 5


def load_config(overrides: Mapping[str, Any] | None = None) -> ReceiverConfig:
    """Merge `overrides` (keys named like the env variables) over the environment and validate.

    Variables: DATABASE_URL, OPENPHONE_WEBHOOK_SECRETS (comma-separated, or a list in overrides),
    RECEIVER_MAX_BODY_BYTES, RECEIVER_SIGNATURE_TOLERANCE_SECONDS, RECEIVER_DB_POOL_SIZE,
    RECEIVER_RETRY_AFTER_SECONDS.
    """
    o = dict(overrides or {})

    url = database_url(str(o["DATABASE_URL"]) if o.get("DATABASE_URL") else None)

    raw_secrets = o.get(SECRETS_ENV_VAR)
    if raw_secrets is None:
        raw_secrets = os.environ.get(SECRETS_ENV_VAR, "")
    if not isinstance(raw_secrets, str):
        raw_secrets = ",".join(raw_secrets)
    try:
        secrets = tuple(parse_secrets(raw_secrets))
    except ValueError as exc:  # the message names the variable, never the secret
        raise ConfigError(str(exc)) from None

    def number(name: str, default: int, minimum: int) -> int:
        if name in o:
            return parse_int(name, o[name], minimum=minimum)
        return env_int(name, default, minimum=minimum)

    threads = env_int("RECEIVER_THREADS", 1, minimum=1)
    return ReceiverConfig(
        database_url=url,
        secrets=secrets,
        max_body_bytes=number("RECEIVER_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1024),
        tolerance_seconds=number("RECEIVER_SIGNATURE_TOLERANCE_SECONDS", DEFAULT_TOLERANCE_SECONDS, 1),
        # one connection per request thread, plus one for /metrics and /healthz
        db_pool_size=number("RECEIVER_DB_POOL_SIZE", threads + 1, 1),
        retry_after_seconds=number("RECEIVER_RETRY_AFTER_SECONDS", 5, 0),
    )

"""Configuration from the environment, validated once at start-up.

A bad value stops the process with a message that names the variable, rather than failing later
in the middle of a request.
"""

from __future__ import annotations

import os


class ConfigError(ValueError):
    """A configuration variable is missing or malformed; the message names it and what to do."""


def env_str(name: str, default: str | None = None, *, required: bool = False) -> str | None:
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if required and default is None:
        raise ConfigError(f"{name} is not set: set it in the environment (see README, Configuration)")
    return default


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def database_url() -> str:
    """The app database (SQLAlchemy URL naming its driver, e.g. postgresql+psycopg://...)."""
    from openphone_pipelines.store.db import normalize_url

    url = env_str("DATABASE_URL", required=True)
    try:
        return normalize_url(url)
    except Exception as exc:
        raise ConfigError(f"DATABASE_URL is not a usable PostgreSQL URL: {exc}") from None

"""Configuration from the environment, validated once at start-up.

A bad value stops the process with a message that names the variable, rather than failing later
in the middle of a request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


class ConfigError(ValueError):
    """A configuration variable is missing or malformed; the message names it and what to do."""


def env_str(name: str, default: str | None = None, *, required: bool = False) -> str | None:
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if required and default is None:
        raise ConfigError(f"{name} is not set: set it in the environment (see README, Configuration)")
    return default


def parse_int(name: str, raw: object, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """`raw` as a whole number within bounds, or ConfigError naming `name` (env or override)."""
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ConfigError(f"{name} must be {bounds}, got {value}")
    return value


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name, "").strip()
    return parse_int(name, raw, minimum=minimum, maximum=maximum) if raw else default


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


def database_url(raw: str | None = None) -> str:
    """The app database (SQLAlchemy URL naming its driver, e.g. postgresql+psycopg://...):
    `raw` when given (a test override), else DATABASE_URL."""
    from openphone_pipelines.store.db import normalize_url

    url = raw or env_str("DATABASE_URL", required=True)
    try:
        return normalize_url(url)
    except Exception as exc:
        raise ConfigError(f"DATABASE_URL is not a usable PostgreSQL URL: {exc}") from None


@dataclass(frozen=True)
class ProbeLines:
    """Where the health probe goes: from a second line (PN id or E.164) to the monitored line's number."""

    from_line: str
    to_number: str

    def __repr__(self) -> str:  # phone numbers stay out of logs and the UI
        return "ProbeLines(<lines hidden>)"


def probe_lines_from_env() -> ProbeLines:
    from_line = env_str("OPENPHONE_PROBE_FROM", required=True)
    to_number = env_str("OPENPHONE_PROBE_TO", required=True)
    assert from_line is not None and to_number is not None
    if not (from_line.startswith("PN") or from_line.startswith("+")):
        raise ConfigError("OPENPHONE_PROBE_FROM must be a PN… phone-number id or an E.164 number")
    if not to_number.startswith("+"):
        raise ConfigError("OPENPHONE_PROBE_TO must be the monitored line's E.164 number (+1…)")
    return ProbeLines(from_line, to_number)

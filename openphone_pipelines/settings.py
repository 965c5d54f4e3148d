"""Every environment variable the product reads, in one validated object (README, "Configuration").

`load_settings()` reads the environment (plus optional overrides named like the variables) and
raises `ConfigError` naming the variable when a value is malformed, so a process stops at start-up
instead of failing later in a request or a run. Secrets are `SecretStr` and never appear in an
error. Variables only some processes need (DATABASE_URL for the receiver, the probe lines for the
probe job) are optional here and demanded by the process that needs them (`require_...`).
Dagster resources still read secrets through `EnvVar` at launch (OPENPHONE_API_KEY, DATABASE_URL,
SMTP_PASSWORD), so they never reach the UI. This is the only module that reads `os.environ`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_VARIABLES = frozenset({"DATABASE_URL", "OPENPHONE_WEBHOOK_SECRETS", "SMTP_PASSWORD", "OPENPHONE_API_KEY",
                              "RECEIVER_METRICS_TOKEN"})


class ConfigError(ValueError):
    """A configuration variable is missing or malformed; the message names it and what to do."""


@dataclass(frozen=True)
class ProbeLines:
    """Where the health probe goes: from a second line (PN id or E.164) to the monitored line's number."""

    from_line: str
    to_number: str

    def __repr__(self) -> str:  # phone numbers stay out of logs and the UI
        return "ProbeLines(<lines hidden>)"


# ------------------------------------------------------------------------------------ cron

_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_CRON_NAMES = re.compile(r"^[A-Za-z]{3}$")  # JAN, MON ...


def _cron_part_ok(part: str, low: int, high: int) -> bool:
    base, _, step = part.partition("/")
    if step and not (step.isdigit() and int(step) > 0):
        return False
    if base == "*":
        return True
    bounds = base.split("-")
    if len(bounds) > 2 or not all(b.isdigit() or _CRON_NAMES.match(b) for b in bounds):
        return False
    values = [int(b) for b in bounds if b.isdigit()]
    return all(low <= v <= high for v in values) and values == sorted(values)


def check_cron(value: str) -> str:
    """`value` if it is a five-field cron expression (numbers, names, *, ranges, lists, steps)."""
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(f"must be a cron expression with 5 fields (minute hour day month weekday), got {value!r}")
    for text, (name, low, high) in zip(fields, _CRON_FIELDS, strict=True):
        if not all(_cron_part_ok(part, low, high) for part in text.split(",")):
            raise ValueError(f"has an invalid {name} field {text!r} in {value!r}")
    return value


# ------------------------------------------------------------------------------------ settings


def _default_workers() -> int:
    """One granian worker per core, at most 4: each runs Python on one core at a time (the GIL),
    its HTTP parsing in Rust, so more workers than cores only add queueing."""
    return max(1, min(os.cpu_count() or 1, 4))


class Settings(BaseSettings):
    """The product's configuration. Attribute docs name each variable; defaults are today's."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    # --- shared: app database, OpenPhone API
    database_url: SecretStr | None = Field(None, alias="DATABASE_URL")
    openphone_base_url: str = Field("https://api.openphone.com", alias="OPENPHONE_BASE_URL")
    rate_limit_rps: float = Field(10.0, alias="OPENPHONE_RATE_LIMIT_RPS", ge=0.1, allow_inf_nan=False)

    # --- reconciliation (the per-run tunables are defaults of the asset's run config)
    reconcile_start_date: date = Field(date(2026, 1, 1), alias="OPENPHONE_RECONCILE_START_DATE")
    reconcile_overlap_minutes: int = Field(10, alias="OPENPHONE_RECONCILE_OVERLAP_MINUTES", ge=0)
    settle_after_minutes: int = Field(120, alias="OPENPHONE_SETTLE_AFTER_MINUTES", ge=0)
    webhook_coverage_min: float = Field(0.95, alias="OPENPHONE_WEBHOOK_COVERAGE_MIN", ge=0.0, allow_inf_nan=False)

    # --- health probe
    probe_from: str | None = Field(None, alias="OPENPHONE_PROBE_FROM")
    probe_to: str | None = Field(None, alias="OPENPHONE_PROBE_TO")
    probe_line_id: str | None = Field(None, alias="OPENPHONE_PROBE_LINE_ID")
    probe_timeout_seconds: int = Field(120, alias="OPENPHONE_PROBE_TIMEOUT_SECONDS", ge=1, le=86400)

    # --- alerts
    alert_failure_rate: float = Field(0.05, alias="OPENPHONE_ALERT_FAILURE_RATE", ge=0.0, allow_inf_nan=False)
    alert_dead_letters: int = Field(1, alias="OPENPHONE_ALERT_DEAD_LETTERS", ge=1)
    smtp_host: str = Field("127.0.0.1", alias="SMTP_HOST")
    smtp_port: int = Field(25, alias="SMTP_PORT", ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "ssl"] = Field("none", alias="SMTP_SECURITY")
    smtp_username: str | None = Field(None, alias="SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(None, alias="SMTP_PASSWORD")
    alert_email_from: str = Field("openphone-pipelines@localhost", alias="ALERT_EMAIL_FROM")
    alert_email_to: str = Field("", alias="ALERT_EMAIL_TO")
    dagster_webserver_url: str = Field("http://127.0.0.1:3000", alias="DAGSTER_WEBSERVER_URL")

    # --- cadences: every schedule's cron (UTC) and every polling sensor's interval
    reconcile_cron: str = Field("0 2 * * *", alias="OPENPHONE_RECONCILE_CRON")
    probe_cron: str = Field("0 * * * *", alias="OPENPHONE_PROBE_CRON")
    probe_history_cron: str = Field("5 * * * *", alias="OPENPHONE_PROBE_HISTORY_CRON")
    retry_sweep_cron: str = Field("*/5 * * * *", alias="OPENPHONE_RETRY_SWEEP_CRON")
    failure_monitor_cron: str = Field("0 * * * *", alias="OPENPHONE_FAILURE_MONITOR_CRON")
    weekly_integrity_cron: str = Field("0 3 * * 0", alias="OPENPHONE_WEEKLY_INTEGRITY_CRON")
    probe_retention_cron: str = Field("0 3 * * *", alias="OPENPHONE_PROBE_RETENTION_CRON")
    retry_retention_cron: str = Field("0 4 * * 0", alias="OPENPHONE_RETRY_RETENTION_CRON")
    probe_sensor_seconds: int = Field(30, alias="OPENPHONE_PROBE_SENSOR_SECONDS", ge=1, le=86400)
    retry_sensor_seconds: int = Field(30, alias="OPENPHONE_RETRY_SENSOR_SECONDS", ge=1, le=86400)
    alert_sensor_seconds: int = Field(60, alias="OPENPHONE_ALERT_SENSOR_SECONDS", ge=1, le=86400)

    # --- webhook receiver
    webhook_secrets: SecretStr | None = Field(None, alias="OPENPHONE_WEBHOOK_SECRETS")
    receiver_bind: str = Field("127.0.0.1:8000", alias="RECEIVER_BIND")
    receiver_workers: int | None = Field(None, alias="RECEIVER_WORKERS", ge=1, le=64)
    # Python threads per worker: a request holds one from its first body byte to its answer, so a
    # few slow uploads cannot occupy them all (headers are read in Rust and hold none).
    receiver_threads: int = Field(32, alias="RECEIVER_THREADS", ge=1, le=256)
    receiver_timeout: int = Field(30, alias="RECEIVER_TIMEOUT", ge=1, le=600)
    receiver_header_timeout_seconds: int = Field(10, alias="RECEIVER_HEADER_TIMEOUT_SECONDS", ge=1, le=60)
    receiver_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field("INFO", alias="RECEIVER_LOG_LEVEL")
    receiver_max_body_bytes: int = Field(256 * 1024, alias="RECEIVER_MAX_BODY_BYTES", ge=1024)
    receiver_tolerance_seconds: int = Field(300, alias="RECEIVER_SIGNATURE_TOLERANCE_SECONDS", ge=1)
    receiver_signature_max_entries: int = Field(5, alias="RECEIVER_SIGNATURE_MAX_ENTRIES", ge=1, le=50)
    receiver_signature_max_header_bytes: int = Field(4096, alias="RECEIVER_SIGNATURE_MAX_HEADER_BYTES",
                                                     ge=256, le=65536)
    receiver_db_pool_size: int | None = Field(None, alias="RECEIVER_DB_POOL_SIZE", ge=1)
    receiver_lock_timeout_ms: int = Field(2000, alias="RECEIVER_LOCK_TIMEOUT_MS", ge=1)
    receiver_statement_timeout_ms: int = Field(5000, alias="RECEIVER_STATEMENT_TIMEOUT_MS", ge=1)
    receiver_retry_after_seconds: int = Field(5, alias="RECEIVER_RETRY_AFTER_SECONDS", ge=0)
    receiver_metrics_token: SecretStr | None = Field(None, alias="RECEIVER_METRICS_TOKEN")
    receiver_queue_depth_cache_seconds: int = Field(15, alias="RECEIVER_QUEUE_DEPTH_CACHE_SECONDS", ge=0, le=3600)
    # The receiver's workers share metrics through files in this folder; openphone-receiver creates one
    # (and marks it as its own, to delete at exit) when none is given.
    prometheus_multiproc_dir: str | None = Field(None, alias="PROMETHEUS_MULTIPROC_DIR")
    receiver_owns_metrics_dir: bool = Field(False, alias="OPENPHONE_RECEIVER_OWNS_METRICS_DIR")

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, data: Any) -> Any:
        """An empty or whitespace-only value means "not set": the default applies."""
        if isinstance(data, Mapping):
            return {k: v.strip() if isinstance(v, str) else v for k, v in data.items()
                    if not (isinstance(v, str) and not v.strip())}
        return data

    @model_validator(mode="after")
    def _waits_under_request_timeout(self) -> Settings:
        """A processing wait must end (and fall back to the retry queue) well before the request
        itself is given up on, or the sender sees a failure for an event that is safe."""
        limit_ms = self.receiver_timeout * 1000
        for name, value in (("RECEIVER_LOCK_TIMEOUT_MS", self.receiver_lock_timeout_ms),
                            ("RECEIVER_STATEMENT_TIMEOUT_MS", self.receiver_statement_timeout_ms)):
            if value * 2 > limit_ms:
                raise ValueError(f"{name} must be at most half of RECEIVER_TIMEOUT ({limit_ms} ms), got {value}")
        return self

    @field_validator("smtp_security", "receiver_log_level", mode="before")
    @classmethod
    def _case_insensitive(cls, value: Any, info) -> Any:
        if not isinstance(value, str):
            return value
        return value.lower() if info.field_name == "smtp_security" else value.upper()

    @field_validator("reconcile_cron", "probe_cron", "probe_history_cron", "retry_sweep_cron", "failure_monitor_cron",
                     "weekly_integrity_cron", "probe_retention_cron", "retry_retention_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return check_cron(value)

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        from openphone_pipelines.store.db import normalize_url

        try:
            return SecretStr(normalize_url(value.get_secret_value()))
        except Exception as exc:  # the URL holds a password: never echo it
            reason = str(exc).split(", ")[-1] if "backend" in str(exc) else "it does not parse as a URL"
            raise ValueError(f"is not a usable PostgreSQL URL ({reason}); expected "
                             "postgresql+psycopg://user:password@host:5432/database") from None

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _secret_list(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            value = ",".join(value)
        if isinstance(value, str):
            from openphone_pipelines.openphone.signatures import parse_secrets

            parse_secrets(value)  # its message names the bad entry by position, never its text
        return value

    @field_validator("probe_from")
    @classmethod
    def _probe_from(cls, value: str | None) -> str | None:
        if value is not None and not (value.startswith("PN") or value.startswith("+")):
            raise ValueError("must be a PN… phone-number id or an E.164 number")
        return value

    @field_validator("probe_to")
    @classmethod
    def _probe_to(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("+"):
            raise ValueError("must be the monitored line's E.164 number (+1…)")
        return value

    # --- what only some processes need

    def require_database_url(self) -> str:
        if self.database_url is None:
            raise ConfigError("DATABASE_URL is not set: set it to the app database's URL, e.g. "
                              "postgresql+psycopg://user:password@host:5432/openphone_app (README, Configuration)")
        return self.database_url.get_secret_value()

    def require_webhook_secrets(self) -> tuple[str, ...]:
        if self.webhook_secrets is None:
            raise ConfigError("OPENPHONE_WEBHOOK_SECRETS is not set: set it to the webhook's signing secret(s), "
                              "comma-separated (README, Configuration)")
        raw = self.webhook_secrets.get_secret_value()
        return tuple(part.strip() for part in raw.split(",") if part.strip())

    def require_probe_lines(self) -> ProbeLines:
        missing = [name for name, value in (("OPENPHONE_PROBE_FROM", self.probe_from),
                                            ("OPENPHONE_PROBE_TO", self.probe_to)) if value is None]
        if missing:
            raise ConfigError(f"{' and '.join(missing)} not set: the health probe needs the probe line "
                              "(OPENPHONE_PROBE_FROM) and the monitored line's number (OPENPHONE_PROBE_TO)")
        assert self.probe_from is not None and self.probe_to is not None
        return ProbeLines(self.probe_from, self.probe_to)

    @property
    def receiver_worker_count(self) -> int:
        return self.receiver_workers or _default_workers()

    @property
    def receiver_pool_size(self) -> int:
        """Database connections per worker, unless set: one per thread up to 8 (two cores gain
        nothing from more concurrent statements), plus one for /metrics and /healthz. A thread
        beyond that waits for a connection (at most 5 s, then 503)."""
        return self.receiver_db_pool_size or min(self.receiver_threads, 8) + 1


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "configuration"
        message = error["msg"].removeprefix("Value error, ").removeprefix(f"{name}: ")
        if name not in SECRET_VARIABLES and error.get("type") != "value_error" and "input" in error:
            message += f", got {error['input']!r}"
        problems.append(f"{name} {message}")
    return "; ".join(problems)


def load_settings(overrides: Mapping[str, object] | None = None) -> Settings:
    """The settings from the environment, with `overrides` (keys named like the variables) on top."""
    try:
        return Settings(**{str(k): v for k, v in (overrides or {}).items()})
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def child_environment(**variables: str | None) -> dict[str, str]:
    """This process's environment with `variables` set (None leaves a variable as it is): what a
    command that re-executes itself (openphone-receiver -> the granian server) hands to its successor."""
    return {**os.environ, **{name: value for name, value in variables.items() if value is not None}}

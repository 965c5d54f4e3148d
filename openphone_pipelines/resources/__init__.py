"""Dagster resources, bound once in definitions.py. Secrets are EnvVars: resolved at launch, never shown."""

from __future__ import annotations

import os

import dagster as dg

from openphone_pipelines.alerting.smtp import SECURITY_MODES
from openphone_pipelines.resources.app_database import AppDatabase
from openphone_pipelines.resources.notifier import NotifierResource
from openphone_pipelines.resources.openphone_api import OpenPhoneResource
from openphone_pipelines.settings import ConfigError, env_float, env_int

DEFAULT_BASE_URL = "https://api.openphone.com"


def _smtp_security() -> str:
    value = (os.environ.get("SMTP_SECURITY") or "none").strip().lower()
    if value not in SECURITY_MODES:
        raise ConfigError(f"SMTP_SECURITY must be one of {', '.join(SECURITY_MODES)}, got {value!r}")
    return value


def build_resources() -> dict[str, dg.ConfigurableResource]:
    """Resources for the deployed code location, from the environment (README, Configuration).

    Malformed values raise ConfigError naming the variable, so the code location fails to load
    with that message instead of failing later inside a run."""
    app_db = AppDatabase(url=dg.EnvVar("DATABASE_URL"))
    openphone = OpenPhoneResource(
        api_key=dg.EnvVar("OPENPHONE_API_KEY"),
        base_url=os.environ.get("OPENPHONE_BASE_URL") or DEFAULT_BASE_URL,
        rate_limit_rps=env_float("OPENPHONE_RATE_LIMIT_RPS", 10.0, minimum=0.1),
        app_db=app_db,
    )
    notifier = NotifierResource(
        host=os.environ.get("SMTP_HOST") or "127.0.0.1",
        port=env_int("SMTP_PORT", 25, minimum=1, maximum=65535),
        security=_smtp_security(),
        username=os.environ.get("SMTP_USERNAME") or None,
        password=dg.EnvVar("SMTP_PASSWORD") if os.environ.get("SMTP_PASSWORD") else None,
        sender=os.environ.get("ALERT_EMAIL_FROM") or "openphone-pipelines@localhost",
        recipients=os.environ.get("ALERT_EMAIL_TO") or "",
        webserver_base_url=os.environ.get("DAGSTER_WEBSERVER_URL") or "http://127.0.0.1:3000",
    )
    return {"app_db": app_db, "openphone": openphone, "notifier": notifier}


__all__ = ["AppDatabase", "NotifierResource", "OpenPhoneResource", "build_resources"]

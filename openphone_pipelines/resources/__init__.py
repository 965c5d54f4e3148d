"""Dagster resources, built from the settings and bound once in definitions.py.

Secrets are EnvVars (OPENPHONE_API_KEY, DATABASE_URL, SMTP_PASSWORD): resolved at launch, never shown.
"""

import dagster as dg

from openphone_pipelines.resources.app_database import AppDatabase
from openphone_pipelines.resources.notifier import NotifierResource
from openphone_pipelines.resources.openphone_api import OpenPhoneResource
from openphone_pipelines.settings import Settings


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The deployed code location's resources (README, Configuration)."""
    app_db = AppDatabase(url=dg.EnvVar("DATABASE_URL"))
    openphone = OpenPhoneResource(
        api_key=dg.EnvVar("OPENPHONE_API_KEY"),
        base_url=settings.openphone_base_url,
        rate_limit_rps=settings.rate_limit_rps,
        app_db=app_db,
    )
    notifier = NotifierResource(
        host=settings.smtp_host,
        port=settings.smtp_port,
        security=settings.smtp_security,
        username=settings.smtp_username,
        password=dg.EnvVar("SMTP_PASSWORD") if settings.smtp_password is not None else None,
        sender=settings.alert_email_from,
        recipients=settings.alert_email_to,
        webserver_base_url=settings.dagster_webserver_url,
    )
    return {"app_db": app_db, "openphone": openphone, "notifier": notifier}


__all__ = ["AppDatabase", "NotifierResource", "OpenPhoneResource", "build_resources"]

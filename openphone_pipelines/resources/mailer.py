"""SMTP alerts as a Dagster resource; settings come from the environment through EnvVar."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from openphone_pipelines.mailer import SmtpSettings, send_email


class MailerResource(dg.ConfigurableResource):
    host: str = "127.0.0.1"
    port: int = 25
    security: str = "none"  # none | starttls | ssl
    username: str | None = None
    password: str | None = None
    sender: str = "openphone-pipelines@localhost"
    recipients: str = Field(default="", description="comma-separated addresses")
    webserver_base_url: str = "http://127.0.0.1:3000"

    def settings(self) -> SmtpSettings:
        recipients = [r.strip() for r in self.recipients.split(",") if r.strip()]
        return SmtpSettings(self.host, self.port, self.sender, recipients, self.security,
                            self.username, self.password)

    def send(self, subject: str, body: str) -> None:
        send_email(self.settings(), subject, body)

    def run_url(self, run_id: str) -> str:
        return f"{self.webserver_base_url.rstrip('/')}/runs/{run_id}"

"""Where operator alerts go, as a Dagster resource: today email over SMTP; the password is an EnvVar."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from openphone_pipelines.alerting.delivery import AlertChannel
from openphone_pipelines.alerting.smtp import EmailChannel, SmtpSettings


class NotifierResource(dg.ConfigurableResource):
    """The alert channel plus the webserver's base URL, for links back to the failing run."""

    host: str = "127.0.0.1"
    port: int = 25
    security: str = "none"  # none | starttls | ssl
    username: str | None = None
    password: str | None = None
    sender: str = "openphone-pipelines@localhost"
    recipients: str = Field(default="", description="comma-separated addresses")
    webserver_base_url: str = "http://127.0.0.1:3000"

    def channel(self) -> AlertChannel:
        recipients = [r.strip() for r in self.recipients.split(",") if r.strip()]
        return EmailChannel(SmtpSettings(self.host, self.port, self.sender, recipients, self.security,
                                         self.username, self.password))

    def run_url(self, run_id: str) -> str:
        return f"{self.webserver_base_url.rstrip('/')}/runs/{run_id}"

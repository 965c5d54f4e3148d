"""Alerts by email: plain SMTP (STARTTLS, implicit SSL or plain, optional login)."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage

SECURITY_MODES = ("none", "starttls", "ssl")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    recipients: Sequence[str]
    security: str = "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 15.0

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ValueError(f"SMTP security must be one of {SECURITY_MODES}, got {self.security!r}")


def send_email(settings: SmtpSettings, subject: str, body: str) -> None:
    """Send one message to every recipient; raises on failure so the caller's tick retries."""
    if not settings.recipients:
        raise ValueError("no alert recipients configured (ALERT_EMAIL_TO)")
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message.set_content(body)
    context = ssl.create_default_context()
    if settings.security == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=context)
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    with client:
        if settings.security == "starttls":
            client.starttls(context=context)
        if settings.username:
            client.login(settings.username, settings.password or "")
        client.send_message(message)


@dataclass(frozen=True)
class EmailChannel:
    """The email `AlertChannel`: every alert to the configured recipients."""

    settings: SmtpSettings

    def send(self, subject: str, body: str) -> None:
        send_email(self.settings, subject, body)

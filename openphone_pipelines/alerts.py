"""Operator alerts that go out once per failure, not on every sensor tick.

The alert key (e.g. "check:completeness:2026-11-01:<evaluation id>") is recorded in `alert_log`
in the same breath as the email; a key already present means the email went out before.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, text

from openphone_pipelines.mailer import SmtpSettings, send_email

log = logging.getLogger(__name__)


def send_alert_once(engine: Engine, smtp: SmtpSettings, *, alert_key: str, kind: str, subject: str,
                    body: str) -> bool:
    """Email the alert unless `alert_key` was already sent. Returns True when an email went out.

    The key is claimed first and released if SMTP fails, so a failed send is tried again on the
    next tick instead of being silently forgotten."""
    with engine.begin() as conn:
        claimed = conn.execute(
            text(
                "INSERT INTO alert_log (alert_key, kind, subject) VALUES (:key, :kind, :subject)"
                " ON CONFLICT (alert_key) DO NOTHING RETURNING id"
            ),
            {"key": alert_key, "kind": kind, "subject": subject},
        ).first()
    if claimed is None:
        return False
    try:
        send_email(smtp, subject, body)
    except Exception:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM alert_log WHERE id = :id"), {"id": claimed.id})
        raise
    log.info("alert sent: %s (%s)", kind, alert_key)
    return True

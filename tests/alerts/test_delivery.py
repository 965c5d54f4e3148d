"""Alerts go through a real SMTP server, once per key, and a failed send releases its key for a retry."""

import pytest

from openphone_pipelines.alerting.delivery import Alert, send_alert_once
from openphone_pipelines.alerting.smtp import EmailChannel, SmtpSettings, send_email


def test_send_email_reaches_real_smtp_server(smtp_server):
    send_email(SmtpSettings(smtp_server.host, smtp_server.port, "alerts@example.com", ["ops@example.com"]),
               "subject line", "body text")
    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == "subject line"
    assert message["To"] == "ops@example.com"
    assert "body text" in message.get_payload()


def test_alert_is_sent_once_per_key(db, smtp_server):
    smtp = EmailChannel(SmtpSettings(smtp_server.host, smtp_server.port, "alerts@example.com", ["ops@example.com"]))
    assert send_alert_once(db, smtp, Alert("k1", "test", "s", "b")) is True
    assert send_alert_once(db, smtp, Alert("k1", "test", "s", "b")) is False
    assert len(smtp_server.wait_for(1)) == 1


def test_failed_send_is_retried_on_the_next_call(db, smtp_server):
    from openphone_local.localpg import free_port

    unreachable = EmailChannel(SmtpSettings("127.0.0.1", free_port(), "alerts@example.com", ["ops@example.com"], timeout=2))
    with pytest.raises(OSError):
        send_alert_once(db, unreachable, Alert("k2", "test", "s", "b"))
    smtp = EmailChannel(SmtpSettings(smtp_server.host, smtp_server.port, "alerts@example.com", ["ops@example.com"]))
    assert send_alert_once(db, smtp, Alert("k2", "test", "s", "b")) is True
    assert len(smtp_server.wait_for(1)) == 1

"""The webhook health probe in plain Python: send one probe SMS, verify its webhook came back or
time it out, alert on failures and outages, and summarise the probe history.

The hourly job sends; the verification sensor checks; the receiver marks a probe received
(store/processing.py). All of them go through these functions and store/health_checks.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import Engine

from openphone_pipelines import reporting
from openphone_pipelines.alerting.delivery import Alert, AlertChannel, send_alert_once
from openphone_pipelines.openphone.client import OpenPhoneClient
from openphone_pipelines.openphone.errors import SendOutcomeUnknown
from openphone_pipelines.openphone.probes import new_probe_nonce, probe_text
from openphone_pipelines.settings import ProbeLines
from openphone_pipelines.store import health_checks

log = logging.getLogger(__name__)

OUTAGE_AFTER_SECONDS = 2 * 3600
PROBE_RETENTION_DAYS = 30
HISTORY_WINDOWS_HOURS = (24, 168)


@dataclass(frozen=True)
class ProbeSendResult:
    probe_id: int
    nonce: str
    status: str  # sent | failed
    message_id: str | None = None
    error: str | None = None


def send_probe(engine: Engine, client: OpenPhoneClient, lines: ProbeLines,
               nonce: str | None = None) -> ProbeSendResult:
    """Send one probe SMS, exactly once.

    The row is committed before the API call so a webhook that beats the response still finds its
    probe (matched by nonce). Any send failure marks the row failed; nothing here resends, because
    POST /v1/messages has no idempotency key (a timeout may already have texted the line)."""
    nonce = nonce or new_probe_nonce()
    with engine.begin() as conn:
        probe_id = health_checks.create_probe(conn, nonce=nonce, from_line=lines.from_line,
                                              to_number=lines.to_number)
    try:
        message = client.send_message(from_=lines.from_line, to=[lines.to_number], content=probe_text(nonce))
    except SendOutcomeUnknown as exc:
        error = f"send outcome unknown ({exc.reason}); not resent"
    except Exception as exc:  # every failure is recorded on the row, none is retried
        error = f"send failed: {type(exc).__name__}: {str(exc)[:300]}"
    else:
        with engine.begin() as conn:
            health_checks.record_probe_sent(conn, probe_id, message.id)
        log.info("health probe %s sent (nonce %s)", probe_id, nonce)
        return ProbeSendResult(probe_id, nonce, "sent", message_id=message.id)
    with engine.begin() as conn:
        health_checks.mark_probe_failed(conn, probe_id, error)
    log.warning("health probe %s failed to send: %s", probe_id, error)
    return ProbeSendResult(probe_id, nonce, "failed", error=error)


@dataclass
class ProbeCheck:
    """What one verification tick did."""

    expired: list[int] = field(default_factory=list)  # probes failed by the timeout on this tick
    alerted: list[int] = field(default_factory=list)  # failed probes alerted on this tick
    outage_alerted: bool = False
    outage: health_checks.ProbeOutage | None = None
    pending: int = 0


def alert_failed_probes(engine: Engine, channel: AlertChannel, *, context_url: str | None = None) -> list[int]:
    """Alert each failed probe once (send failure or timeout), then stamp it alerted.

    Driven by the table, not by whoever failed the probe, so an alert that could not go out is
    retried on the next tick; the alert key keeps a retried tick from alerting twice."""
    with engine.connect() as conn:
        failed = health_checks.unalerted_failed_probes(conn)
    sent: list[int] = []
    for probe in failed:
        subject, body = reporting.probe_failed_alert(probe, context_url)
        if send_alert_once(engine, channel, Alert(f"health:probe-failed:{probe.id}", "health_probe", subject, body)):
            sent.append(probe.id)
        with engine.begin() as conn:
            health_checks.mark_probe_alerted(conn, probe.id)
    return sent


def check_probes(engine: Engine, channel: AlertChannel, *, timeout_seconds: int,
                 outage_after_seconds: int = OUTAGE_AFTER_SECONDS, context_url: str | None = None) -> ProbeCheck:
    """Fail probes past the timeout, alert each failure once, and alert once per outage."""
    check = ProbeCheck()
    with engine.begin() as conn:
        check.expired = [p.id for p in health_checks.fail_overdue_probes(conn, timeout_seconds)]
    check.alerted = alert_failed_probes(engine, channel, context_url=context_url)
    with engine.connect() as conn:
        check.outage = health_checks.probe_outage(conn, outage_after_seconds)
        check.pending = health_checks.count_pending_probes(conn)
    if check.outage is not None:
        # One key per outage: the outage is identified by the last success it follows.
        key = f"health:no-success-since:{check.outage.last_success_id or 'never'}"
        subject, body = reporting.probe_outage_alert(check.outage, context_url)
        check.outage_alerted = send_alert_once(engine, channel, Alert(key, "health_outage", subject, body))
    return check


def probe_history(engine: Engine, windows_hours: tuple[int, ...] = HISTORY_WINDOWS_HOURS
                  ) -> list[health_checks.ProbeStats]:
    """Success rate and latency percentiles of the probes sent in each window."""
    with engine.connect() as conn:
        return [health_checks.probe_stats(conn, hours) for hours in windows_hours]


def current_outage(engine: Engine) -> health_checks.ProbeOutage | None:
    """The outage going on now (no probe succeeded for OUTAGE_AFTER_SECONDS), if any."""
    with engine.connect() as conn:
        return health_checks.probe_outage(conn, OUTAGE_AFTER_SECONDS)

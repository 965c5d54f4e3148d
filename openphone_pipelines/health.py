"""Webhook pipeline health in plain Python: the hourly probe (send, verify, alert, stats) and the
error-recovery chores around the retry queue (due-work fingerprint, failure-rate monitor, replay).

Dagster jobs, sensors and the replay CLI are thin shells over these functions, so the Launchpad,
the daemon and a shell on the database host all do exactly the same thing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, text

from openphone_pipelines.alerts import send_alert_once
from openphone_pipelines.mailer import SmtpSettings
from openphone_pipelines.openphone.client import OpenPhoneClient
from openphone_pipelines.openphone.errors import SendOutcomeUnknown
from openphone_pipelines.openphone.probes import new_probe_nonce, probe_text
from openphone_pipelines.settings import ConfigError, env_float, env_int, env_str
from openphone_pipelines.store import health_checks, retry_queue
from openphone_pipelines.store.processing import SweepCounts, sweep_due_retries
from openphone_pipelines.store.webhook_events import events_without_outcome

log = logging.getLogger(__name__)

DEFAULT_PROBE_TIMEOUT_SECONDS = 120
OUTAGE_AFTER_SECONDS = 2 * 3600
PROBE_RETENTION_DAYS = 30
RESOLVED_RETENTION_DAYS = 7
ADOPT_AFTER_SECONDS = 300


# ------------------------------------------------------------------------------------ probe settings


@dataclass(frozen=True)
class ProbeSettings:
    """Where the probe goes: from a second line (PN id or E.164) to the monitored line's number."""

    from_line: str
    to_number: str

    def __repr__(self) -> str:  # phone numbers stay out of logs and the UI
        return "ProbeSettings(<lines hidden>)"


def probe_settings_from_env() -> ProbeSettings:
    from_line = env_str("OPENPHONE_PROBE_FROM", required=True)
    to_number = env_str("OPENPHONE_PROBE_TO", required=True)
    assert from_line is not None and to_number is not None
    if not (from_line.startswith("PN") or from_line.startswith("+")):
        raise ConfigError("OPENPHONE_PROBE_FROM must be a PN… phone-number id or an E.164 number")
    if not to_number.startswith("+"):
        raise ConfigError("OPENPHONE_PROBE_TO must be the monitored line's E.164 number (+1…)")
    return ProbeSettings(from_line, to_number)


def probe_timeout_from_env() -> int:
    return env_int("OPENPHONE_PROBE_TIMEOUT_SECONDS", DEFAULT_PROBE_TIMEOUT_SECONDS, minimum=1, maximum=86400)


# ------------------------------------------------------------------------------------ sending


@dataclass(frozen=True)
class ProbeSendResult:
    probe_id: int
    nonce: str
    status: str  # sent | failed
    message_id: str | None = None
    error: str | None = None


def send_probe(engine: Engine, client: OpenPhoneClient, settings: ProbeSettings,
               nonce: str | None = None) -> ProbeSendResult:
    """Send one probe SMS, exactly once.

    The row is committed before the API call so a webhook that beats the response still finds its
    probe (matched by nonce). Any send failure marks the row failed; nothing here resends, because
    POST /v1/messages has no idempotency key (a timeout may already have texted the line)."""
    nonce = nonce or new_probe_nonce()
    with engine.begin() as conn:
        probe_id = health_checks.create_probe(conn, nonce=nonce, from_line=settings.from_line,
                                              to_number=settings.to_number)
    try:
        message = client.send_message(from_=settings.from_line, to=[settings.to_number],
                                      content=probe_text(nonce))
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


# ------------------------------------------------------------------------------------ verifying


@dataclass
class ProbeCheck:
    """What one verification tick did."""

    expired: list[int] = field(default_factory=list)  # probes failed by the timeout on this tick
    alerted: list[int] = field(default_factory=list)  # failed probes emailed on this tick
    outage_alerted: bool = False
    outage: health_checks.ProbeOutage | None = None
    pending: int = 0


def alert_failed_probes(engine: Engine, smtp: SmtpSettings, *, context_url: str | None = None) -> list[int]:
    """Email each failed probe once (send failure or timeout), then stamp it alerted.

    Driven by the table, not by whoever failed the probe, so an email that could not go out is
    retried on the next tick; the alert key keeps a retried tick from emailing twice."""
    with engine.connect() as conn:
        failed = health_checks.unalerted_failed_probes(conn)
    sent: list[int] = []
    for probe in failed:
        body = (
            f"Webhook health probe {probe.id} failed.\n\n"
            f"Reason: {probe.error or 'unknown'}\n"
            f"Sent at: {probe.sent_at.isoformat()}\n"
            f"Nonce: {probe.nonce}\n\n"
            "A failed probe is never resent; the next hourly probe checks again.\n"
            "Check that the webhook receiver is reachable and that OpenPhone's webhook is enabled.\n"
        )
        if context_url:
            body += f"\nDagster: {context_url}\n"
        if send_alert_once(engine, smtp, alert_key=f"health:probe-failed:{probe.id}", kind="health_probe",
                           subject=f"[openphone-pipelines] webhook health probe {probe.id} failed", body=body):
            sent.append(probe.id)
        with engine.begin() as conn:
            health_checks.mark_probe_alerted(conn, probe.id)
    return sent


def check_probes(engine: Engine, smtp: SmtpSettings, *, timeout_seconds: int,
                 outage_after_seconds: int = OUTAGE_AFTER_SECONDS, context_url: str | None = None) -> ProbeCheck:
    """Fail probes past the timeout, email each failure once, and email once per outage."""
    check = ProbeCheck()
    with engine.begin() as conn:
        check.expired = [p.id for p in health_checks.fail_overdue_probes(conn, timeout_seconds)]
    check.alerted = alert_failed_probes(engine, smtp, context_url=context_url)
    with engine.connect() as conn:
        check.outage = health_checks.probe_outage(conn, outage_after_seconds)
        check.pending = conn.execute(
            text("SELECT count(*) FROM webhook_health_checks WHERE status = 'sent'")
        ).scalar_one()
    if check.outage is not None:
        # One key per outage: the outage is identified by the last success it follows.
        key = f"health:no-success-since:{check.outage.last_success_id or 'never'}"
        hours = check.outage.silent_seconds / 3600
        body = (
            f"No webhook health probe has succeeded for {hours:.1f} hours "
            f"(since {check.outage.since.isoformat()}).\n\n"
            "Webhooks from OpenPhone may not be reaching the receiver; the daily reconciliation will\n"
            "back-fill missed messages, but live delivery needs attention.\n"
        )
        if context_url:
            body += f"\nDagster: {context_url}\n"
        check.outage_alerted = send_alert_once(
            engine, smtp, alert_key=key, kind="health_outage",
            subject=f"[openphone-pipelines] no successful webhook health probe for {hours:.0f}+ hours",
            body=body,
        )
    return check


def probe_history(engine: Engine, windows_hours: tuple[int, ...] = (24, 168)) -> list[health_checks.ProbeStats]:
    with engine.connect() as conn:
        return [health_checks.probe_stats(conn, hours) for hours in windows_hours]


def _fmt_ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _fmt_rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def probe_history_markdown(stats: list[health_checks.ProbeStats]) -> str:
    lines = [
        "| window | probes | received | failed | pending | success rate | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in stats:
        label = f"{s.window_hours // 24} d" if s.window_hours % 24 == 0 and s.window_hours > 24 else f"{s.window_hours} h"
        lines.append(
            f"| {label} | {s.probes} | {s.received} | {s.failed} | {s.pending} | {_fmt_rate(s.success_rate)} "
            f"| {_fmt_ms(s.latency_p50_ms)} | {_fmt_ms(s.latency_p95_ms)} | {_fmt_ms(s.latency_p99_ms)} "
            f"| {_fmt_ms(s.latency_max_ms)} |"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ retry queue


@dataclass(frozen=True)
class DueWork:
    due_rows: int
    fingerprint: str  # changes whenever the set of due rows (or their attempt counts) changes


def due_retry_work(conn: Connection) -> DueWork | None:
    """The due rows as a run key: one sweep per distinct due set, none when nothing is due."""
    row = conn.execute(
        text(
            """
            SELECT count(*) AS n,
                   md5(coalesce(string_agg(id::text || ':' || attempts::text, ',' ORDER BY id), '')) AS fp
              FROM failed_webhook_queue
             WHERE status = 'pending' AND next_retry_at <= now()
            """
        )
    ).one()
    if not row.n:
        return None
    return DueWork(row.n, row.fp[:20])


def orphaned_event_count(conn: Connection, adopt_after_seconds: int = ADOPT_AFTER_SECONDS) -> int:
    return len(events_without_outcome(conn, adopt_after_seconds))


def alert_dead_letters(engine: Engine, smtp: SmtpSettings, counts: SweepCounts, *, alert_key: str,
                       context_url: str | None = None) -> bool:
    """One email for the rows a sweep gave up on (their fifth failure, or a permanent error)."""
    if not counts.dead:
        return False
    ids = ", ".join(str(i) for i in counts.dead_event_ids[:50])
    body = (
        f"{counts.dead} webhook event(s) were dead-lettered by the retry sweep.\n\n"
        f"webhook_events ids: {ids}\n\n"
        "They stay in failed_webhook_queue (status dead) until replayed or discarded:\n"
        "  openphone-pipelines replay --all-dead        (after fixing the cause)\n"
        "  openphone-pipelines replay --discard IDS --note TEXT\n"
    )
    if context_url:
        body += f"\nDagster: {context_url}\n"
    return send_alert_once(engine, smtp, alert_key=alert_key, kind="dead_letter",
                           subject=f"[openphone-pipelines] {counts.dead} webhook event(s) dead-lettered",
                           body=body)


@dataclass(frozen=True)
class FailureRate:
    window_minutes: int
    events: int
    failed: int
    new_dead: int
    queue: dict[str, int]

    @property
    def rate(self) -> float:
        return self.failed / self.events if self.events else 0.0


def failure_rate(conn: Connection, window_minutes: int = 60) -> FailureRate:
    """The real failure rate: events received in the window whose first processing failed (they
    have a queue row, whatever happened next) over all events received in it."""
    row = conn.execute(
        text(
            """
            SELECT count(*) AS events, count(q.id) AS failed
              FROM webhook_events e LEFT JOIN failed_webhook_queue q ON q.webhook_event_id = e.id
             WHERE e.received_at > now() - :minutes * interval '1 minute'
            """
        ),
        {"minutes": window_minutes},
    ).one()
    new_dead = conn.execute(
        text(
            "SELECT count(*) FROM failed_webhook_queue WHERE status = 'dead'"
            " AND updated_at > now() - :minutes * interval '1 minute'"
        ),
        {"minutes": window_minutes},
    ).scalar_one()
    return FailureRate(window_minutes, row.events, row.failed, new_dead, retry_queue.queue_depth(conn))


@dataclass(frozen=True)
class MonitorThresholds:
    failure_rate: float = 0.05
    dead_letters: int = 1


def monitor_thresholds_from_env() -> MonitorThresholds:
    return MonitorThresholds(
        failure_rate=env_float("OPENPHONE_ALERT_FAILURE_RATE", 0.05, minimum=0.0),
        dead_letters=env_int("OPENPHONE_ALERT_DEAD_LETTERS", 1, minimum=1),
    )


def monitor_failures(engine: Engine, smtp: SmtpSettings, thresholds: MonitorThresholds, *,
                     window_key: str, window_minutes: int = 60,
                     context_url: str | None = None) -> tuple[FailureRate, list[str]]:
    """Compute the window's failure rate and new dead letters; email what crosses a threshold,
    once per window (`window_key`, e.g. the hour)."""
    with engine.connect() as conn:
        stats = failure_rate(conn, window_minutes)
    sent: list[str] = []
    suffix = f"\nDagster: {context_url}\n" if context_url else ""
    if stats.events and stats.rate > thresholds.failure_rate and send_alert_once(
        engine, smtp, alert_key=f"monitor:failure-rate:{window_key}", kind="failure_rate",
        subject=f"[openphone-pipelines] webhook failure rate {stats.rate:.1%} in the last {window_minutes} min",
        body=(
            f"{stats.failed} of {stats.events} webhook events received in the last {window_minutes} minutes "
            f"failed their first processing ({stats.rate:.1%}; threshold {thresholds.failure_rate:.1%}).\n"
            f"Queue now: {stats.queue}\n{suffix}"
        ),
    ):
        sent.append("failure_rate")
    if stats.new_dead >= thresholds.dead_letters and send_alert_once(
        engine, smtp, alert_key=f"monitor:dead-letters:{window_key}", kind="dead_letter",
        subject=f"[openphone-pipelines] {stats.new_dead} new dead letter(s) in the last {window_minutes} min",
        body=(
            f"{stats.new_dead} webhook event(s) became dead letters in the last {window_minutes} minutes "
            f"(threshold {thresholds.dead_letters}).\nQueue now: {stats.queue}\n"
            "Replay after fixing the cause: openphone-pipelines replay --all-dead\n" + suffix
        ),
    ):
        sent.append("dead_letters")
    return stats, sent


# ------------------------------------------------------------------------------------ replay


@dataclass(frozen=True)
class QueueRowState:
    id: int
    webhook_event_id: int
    status: str
    attempts: int
    last_error: str | None


@dataclass
class ReplayResult:
    requested_ids: list[int]
    reset_ids: list[int]
    sweep: SweepCounts
    rows: list[QueueRowState]

    @property
    def resolved(self) -> list[int]:
        return [r.id for r in self.rows if r.status == "resolved"]

    @property
    def unresolved(self) -> list[QueueRowState]:
        return [r for r in self.rows if r.status != "resolved"]


def queue_rows(conn: Connection, ids: list[int]) -> list[QueueRowState]:
    rows = conn.execute(
        text(
            "SELECT id, webhook_event_id, status, attempts, last_error FROM failed_webhook_queue"
            " WHERE id = ANY(:ids) ORDER BY id"
        ),
        {"ids": list(ids)},
    ).all()
    return [QueueRowState(r.id, r.webhook_event_id, r.status, r.attempts, r.last_error) for r in rows]


def parse_when(value: str | datetime | None) -> datetime | None:
    """ISO 8601 (a naive time is UTC); empty means unbounded."""
    if value is None or value == "":
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def replay(engine: Engine, *, queue_ids: list[int] | None = None, received_from: datetime | None = None,
           received_to: datetime | None = None, all_dead: bool = False, batch_size: int = 100) -> ReplayResult:
    """Reset the selected rows (fresh attempt budget, due now) and reprocess them at once.

    Resolved rows are never reset, so replaying them is a no-op. The reprocessing is an ordinary
    sweep (SKIP LOCKED claims), so a scheduled sweep running at the same moment cannot double-process."""
    reset = retry_queue.reset_for_replay(engine, queue_ids=queue_ids, received_from=received_from,
                                         received_to=received_to, all_dead=all_dead)
    counts = sweep_due_retries(engine, batch_size=batch_size) if reset else SweepCounts()
    with engine.connect() as conn:
        rows = queue_rows(conn, reset)
    log.info("replay: %d row(s) reset, %d resolved", len(reset), sum(r.status == "resolved" for r in rows))
    return ReplayResult(list(queue_ids or []), reset, counts, rows)

"""Health-probe history: one row per probe SMS, resolved when its webhook arrives or times out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, text

from openphone_pipelines.openphone.probes import RecordedProbes


def create_probe(conn: Connection, *, nonce: str, from_line: str, to_number: str) -> int:
    return conn.execute(
        text(
            "INSERT INTO webhook_health_checks (nonce, from_line, to_number, status)"
            " VALUES (:nonce, :from_line, :to, 'sent') RETURNING id"
        ),
        {"nonce": nonce, "from_line": from_line, "to": to_number},
    ).scalar_one()


def record_probe_sent(conn: Connection, probe_id: int, message_id: str) -> None:
    conn.execute(
        text("UPDATE webhook_health_checks SET sent_message_id = :mid WHERE id = :id"),
        {"id": probe_id, "mid": message_id},
    )


def mark_probe_failed(conn: Connection, probe_id: int, error: str) -> None:
    conn.execute(
        text("UPDATE webhook_health_checks SET status = 'failed', error = :err WHERE id = :id AND status = 'sent'"),
        {"id": probe_id, "err": error},
    )


LATE_ARRIVAL_WINDOW_HOURS = 24  # a probe failed (timed out, or its send outcome unknown) may still arrive


def mark_probe_received(conn: Connection, *, nonce: str | None, message_id: str | None,
                        to_numbers: list[str] | tuple[str, ...] = (), from_number: str | None = None,
                        line_id: str | None = None, direction: str | None = None) -> bool:
    """The probe's webhook arrived: record when and the latency. Returns whether a probe matched.

    A message is a probe of ours when its id is a recorded probe send, or when its nonce belongs to
    a probe still waiting (or failed within a day: the arrival is recorded late) and it went from the
    probe line to the monitored line (the same rule as openphone/probes.py::on_probe_pair). A
    customer text that merely quotes the marker matches nothing and is a normal message. A probe
    already failed keeps its failure but gains its arrival time."""
    row = conn.execute(
        text(
            f"""
            UPDATE webhook_health_checks
               SET received_at = COALESCE(received_at, now()),
                   latency_ms = COALESCE(latency_ms, (extract(epoch FROM now() - sent_at) * 1000)::int),
                   status = CASE WHEN status = 'sent' THEN 'received' ELSE status END
             WHERE sent_message_id = :mid
                OR (nonce = :nonce
                    AND (status = 'sent' OR (status = 'failed' AND received_at IS NULL
                                             AND sent_at > now() - interval '{LATE_ARRIVAL_WINDOW_HOURS} hours'))
                    AND to_number = ANY(CAST(:to_numbers AS text[]))
                    AND (CASE WHEN from_line LIKE 'PN%'
                              THEN from_line = :line_id OR :direction = 'incoming'
                              ELSE from_line = :from_number END))
            RETURNING id
            """
        ),
        {"nonce": nonce, "mid": message_id, "to_numbers": list(to_numbers), "from_number": from_number,
         "line_id": line_id, "direction": direction},
    ).first()
    return row is not None


@dataclass(frozen=True)
class ExpiredProbe:
    id: int
    nonce: str
    sent_at: datetime


def fail_overdue_probes(conn: Connection, timeout_seconds: int) -> list[ExpiredProbe]:
    """Probes still waiting after the timeout become failed (returned once, for alerting)."""
    rows = conn.execute(
        text(
            """
            UPDATE webhook_health_checks
               SET status = 'failed', error = 'no webhook within ' || :timeout || ' s'
             WHERE status = 'sent' AND sent_at < now() - :timeout * interval '1 second'
            RETURNING id, nonce, sent_at
            """
        ),
        {"timeout": timeout_seconds},
    ).all()
    return [ExpiredProbe(r.id, r.nonce, r.sent_at) for r in rows]


def count_pending_probes(conn: Connection) -> int:
    """Probes sent and still waiting for their webhook."""
    return conn.execute(text("SELECT count(*) FROM webhook_health_checks WHERE status = 'sent'")).scalar_one()


def delete_probes_older_than(engine: Engine, days: int) -> int:
    with engine.begin() as conn:
        return conn.execute(
            text("DELETE FROM webhook_health_checks WHERE sent_at < now() - :days * interval '1 day'"),
            {"days": days},
        ).rowcount


@dataclass(frozen=True)
class FailedProbe:
    id: int
    nonce: str
    sent_at: datetime
    error: str | None


def unalerted_failed_probes(conn: Connection, within_hours: int = 24) -> list[FailedProbe]:
    """Failed probes nobody was told about yet: alerting reads this, not the timeout's return value,
    so an alert whose email failed is tried again on the next tick instead of being lost."""
    rows = conn.execute(
        text(
            "SELECT id, nonce, sent_at, error FROM webhook_health_checks"
            " WHERE status = 'failed' AND alerted_at IS NULL"
            " AND sent_at > now() - :hours * interval '1 hour' ORDER BY id"
        ),
        {"hours": within_hours},
    ).all()
    return [FailedProbe(r.id, r.nonce, r.sent_at, r.error) for r in rows]


def mark_probe_alerted(conn: Connection, probe_id: int) -> None:
    conn.execute(
        text("UPDATE webhook_health_checks SET alerted_at = COALESCE(alerted_at, now()) WHERE id = :id"),
        {"id": probe_id},
    )


@dataclass(frozen=True)
class ProbeOutage:
    """No probe has succeeded since `since` (the last success, or the first probe when none ever did)."""

    last_success_id: int | None
    since: datetime
    silent_seconds: float


def probe_outage(conn: Connection, threshold_seconds: int) -> ProbeOutage | None:
    """An outage when no probe succeeded for `threshold_seconds` while probes were being sent.

    Measured from the last success, or from the first probe when none ever succeeded, so a fresh
    install with no history does not alert before the check has had a chance to run."""
    row = conn.execute(
        text(
            """
            SELECT (SELECT id FROM webhook_health_checks WHERE status = 'received'
                     ORDER BY received_at DESC LIMIT 1) AS last_id,
                   (SELECT max(received_at) FROM webhook_health_checks WHERE status = 'received') AS last_at,
                   (SELECT min(sent_at) FROM webhook_health_checks) AS first_sent,
                   now() AS now
            """
        )
    ).one()
    since = row.last_at or row.first_sent
    if since is None:
        return None
    silent = (row.now - since).total_seconds()
    if silent < threshold_seconds:
        return None
    return ProbeOutage(row.last_id, since, silent)


@dataclass(frozen=True)
class ProbeStats:
    """Success rate and latency over a window; pending probes are not counted either way."""

    window_hours: int
    probes: int
    received: int
    failed: int
    pending: int
    success_rate: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    latency_max_ms: int | None


def probe_stats(conn: Connection, window_hours: int) -> ProbeStats:
    row = conn.execute(
        text(
            """
            SELECT count(*) AS probes,
                   count(*) FILTER (WHERE status = 'received') AS received,
                   count(*) FILTER (WHERE status = 'failed') AS failed,
                   count(*) FILTER (WHERE status = 'sent') AS pending,
                   percentile_cont(0.50) WITHIN GROUP (ORDER BY latency_ms)
                       FILTER (WHERE status = 'received') AS p50,
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)
                       FILTER (WHERE status = 'received') AS p95,
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms)
                       FILTER (WHERE status = 'received') AS p99,
                   max(latency_ms) FILTER (WHERE status = 'received') AS max_ms
              FROM webhook_health_checks
             WHERE sent_at > now() - :hours * interval '1 hour'
            """
        ),
        {"hours": window_hours},
    ).one()
    decided = row.received + row.failed
    return ProbeStats(
        window_hours=window_hours,
        probes=row.probes,
        received=row.received,
        failed=row.failed,
        pending=row.pending,
        success_rate=(row.received / decided) if decided else None,
        latency_p50_ms=row.p50,
        latency_p95_ms=row.p95,
        latency_p99_ms=row.p99,
        latency_max_ms=row.max_ms,
    )


def recorded_probes_around(engine: Engine, start: datetime, end: datetime) -> RecordedProbes:
    """Probes sent within a day of [start, end): the synthetic traffic reconciliation must neither
    write nor count as missed (docs/design.md, rule 7), by send id and by nonce with its line pair."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT nonce, from_line, to_number, sent_message_id FROM webhook_health_checks"
                " WHERE sent_at >= :start AND sent_at < :end"
            ),
            {"start": start - timedelta(days=1), "end": end + timedelta(days=1)},
        ).all()
    return RecordedProbes(frozenset(r.sent_message_id for r in rows if r.sent_message_id),
                          {r.nonce: (r.from_line, r.to_number) for r in rows})

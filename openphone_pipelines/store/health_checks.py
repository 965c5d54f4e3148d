"""Health-probe history: one row per probe SMS, resolved when its webhook arrives or times out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, text


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


def is_probe_message_id(conn: Connection, message_id: str) -> bool:
    return conn.execute(
        text("SELECT 1 FROM webhook_health_checks WHERE sent_message_id = :mid"), {"mid": message_id}
    ).first() is not None


def mark_probe_received(conn: Connection, *, nonce: str | None, message_id: str | None) -> bool:
    """The probe's webhook arrived: record when and the latency. A probe already failed by the
    timeout keeps its failure (it was late) but gains its arrival time. Returns whether a probe matched."""
    row = conn.execute(
        text(
            """
            UPDATE webhook_health_checks
               SET received_at = COALESCE(received_at, now()),
                   latency_ms = COALESCE(latency_ms, (extract(epoch FROM now() - sent_at) * 1000)::int),
                   status = CASE WHEN status = 'sent' THEN 'received' ELSE status END
             WHERE (nonce = :nonce OR sent_message_id = :mid)
            RETURNING id
            """
        ),
        {"nonce": nonce, "mid": message_id},
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


def delete_probes_older_than(engine: Engine, days: int) -> int:
    with engine.begin() as conn:
        return conn.execute(
            text("DELETE FROM webhook_health_checks WHERE sent_at < now() - :days * interval '1 day'"),
            {"days": days},
        ).rowcount

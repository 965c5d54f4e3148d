"""The webhook inbox: every signed delivery, committed byte-for-byte before anyone answers 2xx."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, text


@dataclass(frozen=True)
class StoredEvent:
    id: int
    event_id: str
    created: bool  # False: a redelivery of an event we already hold
    processing_status: str


_INSERT = text(
    """
    INSERT INTO webhook_events (event_id, event_type, api_version, signature_scheme, raw_body)
    VALUES (:event_id, :event_type, :api_version, :signature_scheme, :raw_body)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING id, processing_status
    """
)
_EXISTING = text("SELECT id, processing_status FROM webhook_events WHERE event_id = :event_id")


def record_webhook_event(
    engine: Engine,
    *,
    event_id: str,
    raw_body: bytes,
    signature_scheme: str,
    event_type: str | None = None,
    api_version: str | None = None,
) -> StoredEvent:
    """Commit the raw event in its own short transaction; a redelivery changes nothing."""
    with engine.begin() as conn:
        row = conn.execute(
            _INSERT,
            {
                "event_id": event_id,
                "event_type": event_type,
                "api_version": api_version,
                "signature_scheme": signature_scheme,
                "raw_body": raw_body,
            },
        ).one_or_none()
        if row is not None:
            return StoredEvent(row.id, event_id, True, row.processing_status)
        existing = conn.execute(_EXISTING, {"event_id": event_id}).one()
        return StoredEvent(existing.id, event_id, False, existing.processing_status)


@dataclass(frozen=True)
class EventRecord:
    id: int
    event_id: str
    signature_scheme: str
    raw_body: bytes
    processing_status: str = "pending"
    received_at: datetime | None = None


def load_event(conn: Connection, webhook_event_id: int) -> EventRecord:
    row = conn.execute(
        text(
            "SELECT id, event_id, signature_scheme, raw_body, processing_status, received_at"
            " FROM webhook_events WHERE id = :id"
        ),
        {"id": webhook_event_id},
    ).one()
    return EventRecord(row.id, row.event_id, row.signature_scheme, bytes(row.raw_body),
                       row.processing_status, row.received_at)


def mark_event(conn: Connection, webhook_event_id: int, status: str, error: str | None = None) -> None:
    """Record the processing outcome (processed | probe | ignored | failed)."""
    conn.execute(
        text(
            "UPDATE webhook_events SET processing_status = :status, error = :error,"
            " processed_at = CASE WHEN :status = 'failed' THEN processed_at ELSE now() END"
            " WHERE id = :id"
        ),
        {"id": webhook_event_id, "status": status, "error": error},
    )


def events_without_outcome(conn: Connection, older_than_seconds: int) -> list[int]:
    """Events still `pending` after `older_than_seconds`: the receiver died between commit and
    processing. The retry sweep adopts them; the integrity check reports them."""
    rows = conn.execute(
        text(
            "SELECT id FROM webhook_events WHERE processing_status = 'pending'"
            " AND received_at < now() - :age * interval '1 second' ORDER BY id"
        ),
        {"age": older_than_seconds},
    )
    return [row.id for row in rows]


def pending_events(engine: Engine, *, received_before: datetime,
                   received_since: datetime | None = None) -> list[tuple[str, datetime]]:
    """(event_id, received_at) of events still `pending`, received in [received_since,
    received_before), oldest first."""
    sql = "SELECT event_id, received_at FROM webhook_events WHERE processing_status = 'pending' AND received_at < :before"
    params: dict[str, datetime] = {"before": received_before}
    if received_since is not None:
        sql += " AND received_at >= :since"
        params["since"] = received_since
    with engine.connect() as conn:
        return [(r.event_id, r.received_at) for r in conn.execute(text(sql + " ORDER BY received_at"), params)]

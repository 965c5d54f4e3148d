"""Batch upsert of messages with the forward-only status rule; the one write path for every source.

The receiver, the retry sweep, reconciliation and the sender all call `upsert_messages`, so they
can never disagree on what a newer status is. The rule lives in SQL (the conflict `WHERE`), which
makes concurrent writers the database's problem: rows are locked in id order, never lost.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, Engine, bindparam, text

from openphone_pipelines.openphone.models import STATUS_RANK, UNSETTLED_STATUSES, Message

SEEN_VIA = ("webhook", "reconciliation", "send")
BATCH_SIZE = 1000  # rows per statement: one round trip each, one array of 1,000 per column


@dataclass(frozen=True)
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    inserted_ids: tuple[str, ...] = ()

    def __add__(self, other: UpsertCounts) -> UpsertCounts:
        return UpsertCounts(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            self.inserted_ids + other.inserted_ids,
        )


def _wins(candidate: Message, current: Message) -> bool:
    """The same rule as the SQL below, for collapsing duplicates inside one batch."""
    rank_new, rank_old = STATUS_RANK[candidate.status], STATUS_RANK[current.status]
    if rank_new != rank_old:
        return rank_new > rank_old
    return candidate.effective_updated_at > current.effective_updated_at


def _dedupe(messages: Iterable[Message]) -> list[Message]:
    """One row per id (Postgres refuses to update a row twice in one statement), sorted by id so
    concurrent batches lock rows in the same order and cannot deadlock."""
    best: dict[str, Message] = {}
    for message in messages:
        current = best.get(message.id)
        if current is None or _wins(message, current):
            best[message.id] = message
    return [best[key] for key in sorted(best)]


def _columns(messages: Sequence[Message]) -> dict[str, list]:
    """The batch as one array per column: the statement below unnests them server-side."""
    return {
        "ids": [m.id for m in messages],
        "line_ids": [m.phone_number_id for m in messages],
        "conversation_ids": [m.conversation_id for m in messages],
        "directions": [m.direction for m in messages],
        "from_numbers": [m.from_number for m in messages],
        "to_numbers": [json.dumps(list(m.to_numbers)) for m in messages],
        "texts": [m.text for m in messages],
        "media": [json.dumps(list(m.media)) for m in messages],
        "statuses": [m.status for m in messages],
        "user_ids": [m.user_id for m in messages],
        "created": [m.created_at for m in messages],
        "updated": [m.effective_updated_at for m in messages],
    }


# A status advances when its rank is higher, or equal with a newer provider updatedAt
# (delivered vs undelivered); a terminal status therefore never regresses.
_ADVANCES = """(message_status_rank(excluded.status) > message_status_rank(m.status)
   OR (message_status_rank(excluded.status) = message_status_rank(m.status)
       AND excluded.status <> m.status
       AND excluded.updated_at > COALESCE(m.updated_at, m.created_at)))"""

_FILLS_GAP = """((m.phone_number_id IS NULL AND excluded.phone_number_id IS NOT NULL)
   OR (m.conversation_id IS NULL AND excluded.conversation_id IS NOT NULL)
   OR (m.from_number IS NULL AND excluded.from_number IS NOT NULL)
   OR (m.text IS NULL AND excluded.text IS NOT NULL)
   OR (m.user_id IS NULL AND excluded.user_id IS NOT NULL)
   OR (m.to_numbers = '{}' AND excluded.to_numbers <> '{}')
   OR (m.media = '[]'::jsonb AND excluded.media <> '[]'::jsonb))"""

_UPSERT = text(
    f"""
    INSERT INTO messages AS m (id, phone_number_id, conversation_id, direction, from_number, to_numbers,
                               text, media, status, user_id, created_at, updated_at, first_seen_via,
                               first_seen_at, last_synced_at)
    SELECT r.id, r.line_id, r.conversation_id, r.direction, r.from_number,
           ARRAY(SELECT jsonb_array_elements_text(r.to_numbers::jsonb)), r.text, r.media::jsonb,
           r.status, r.user_id, r.created_at, r.updated_at, :via,
           COALESCE(CAST(:now AS timestamptz), now()), COALESCE(CAST(:now AS timestamptz), now())
      FROM unnest(CAST(:ids AS text[]), CAST(:line_ids AS text[]), CAST(:conversation_ids AS text[]),
                  CAST(:directions AS text[]), CAST(:from_numbers AS text[]), CAST(:to_numbers AS text[]),
                  CAST(:texts AS text[]), CAST(:media AS text[]), CAST(:statuses AS text[]),
                  CAST(:user_ids AS text[]), CAST(:created AS timestamptz[]), CAST(:updated AS timestamptz[]))
           AS r(id, line_id, conversation_id, direction, from_number, to_numbers, text, media, status,
                user_id, created_at, updated_at)
    ON CONFLICT (id) DO UPDATE SET
        status = CASE WHEN {_ADVANCES} THEN excluded.status ELSE m.status END,
        updated_at = CASE WHEN {_ADVANCES} THEN excluded.updated_at ELSE m.updated_at END,
        phone_number_id = COALESCE(m.phone_number_id, excluded.phone_number_id),
        conversation_id = COALESCE(m.conversation_id, excluded.conversation_id),
        from_number = COALESCE(m.from_number, excluded.from_number),
        text = COALESCE(m.text, excluded.text),
        user_id = COALESCE(m.user_id, excluded.user_id),
        to_numbers = CASE WHEN m.to_numbers = '{{}}' THEN excluded.to_numbers ELSE m.to_numbers END,
        media = CASE WHEN m.media = '[]'::jsonb THEN excluded.media ELSE m.media END,
        last_synced_at = excluded.last_synced_at
    WHERE {_ADVANCES} OR {_FILLS_GAP}
    RETURNING m.id, (m.xmax = 0) AS inserted
    """
)


def upsert_messages(
    db: Engine | Connection, messages: Iterable[Message], *, via: str, now: datetime | None = None
) -> UpsertCounts:
    """Insert new messages and move existing ones forward; one statement per batch of 1,000.

    `via` is recorded only on insert (first_seen_via never changes). Returns how many rows were
    inserted, updated (status advanced or a missing field filled) and left unchanged.
    """
    if via not in SEEN_VIA:
        raise ValueError(f"via must be one of {SEEN_VIA}, got {via!r}")
    unique = _dedupe(messages)
    if not unique:
        return UpsertCounts()
    if isinstance(db, Engine):
        with db.begin() as conn:
            return _upsert_batches(conn, unique, via, now)
    return _upsert_batches(db, unique, via, now)


def _upsert_batches(conn: Connection, unique: Sequence[Message], via: str, now: datetime | None) -> UpsertCounts:
    counts = UpsertCounts()
    for start in range(0, len(unique), BATCH_SIZE):
        batch = unique[start : start + BATCH_SIZE]
        rows = conn.execute(_UPSERT, {**_columns(batch), "via": via, "now": now}).all()
        inserted_ids = tuple(row.id for row in rows if row.inserted)
        changed = len(rows)
        counts += UpsertCounts(
            inserted=len(inserted_ids),
            updated=changed - len(inserted_ids),
            unchanged=len(batch) - changed,
            inserted_ids=inserted_ids,
        )
    return counts


def stored_direction(conn: Connection, message_id: str) -> str | None:
    """The direction a stored message was written with (it never changes), or None if not stored."""
    return conn.execute(text("SELECT direction FROM messages WHERE id = :id"), {"id": message_id}).scalar()


def message_ids_between(db: Engine | Connection, start: datetime, end: datetime) -> set[str]:
    """Ids of stored messages created in [start, end): what completeness compares with the API."""
    stmt = text("SELECT id FROM messages WHERE created_at >= :start AND created_at < :end").bindparams(
        bindparam("start"), bindparam("end")
    )
    if isinstance(db, Engine):
        with db.connect() as conn:
            return {row.id for row in conn.execute(stmt, {"start": start, "end": end})}
    return {row.id for row in db.execute(stmt, {"start": start, "end": end})}


def unsettled_outgoing_ids(engine: Engine, start: datetime, end: datetime, created_before: datetime) -> list[str]:
    """Outgoing messages created in [start, end) and before `created_before` whose status may still
    change (UNSETTLED_STATUSES)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id FROM messages WHERE direction = 'outgoing' AND status = ANY(:unsettled)"
                " AND created_at >= :start AND created_at < :end AND created_at < :before ORDER BY id"
            ),
            {"unsettled": list(UNSETTLED_STATUSES), "start": start, "end": end, "before": created_before},
        )
        return [row.id for row in rows]


def first_seen_counts(engine: Engine, start: datetime, end: datetime) -> list[tuple[date, str, int]]:
    """(UTC day, first_seen_via, messages) for the messages created in [start, end)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, first_seen_via AS via, count(*) AS n"
                " FROM messages WHERE created_at >= :start AND created_at < :end GROUP BY 1, 2"
            ),
            {"start": start, "end": end},
        ).all()
    return [(r.day, r.via, r.n) for r in rows]

"""Batch upsert of messages with the forward-only status rule; the one write path for every source.

The receiver, the retry sweep, reconciliation and the sender all call `upsert_messages`, so they
can never disagree on what a newer status is. The rule lives in SQL (the conflict `WHERE`), which
makes concurrent writers the database's problem: rows are locked in id order, never lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, case, func, or_, text
from sqlalchemy.dialects.postgresql import insert

from openphone_pipelines.openphone.models import STATUS_RANK, Message
from openphone_pipelines.store.schema import MessageRow

SEEN_VIA = ("webhook", "reconciliation", "send")
BATCH_SIZE = 1000  # 15 columns a row stays well under Postgres' 65,535 bind parameters


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

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged


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


def _row(message: Message, via: str, now: datetime | None) -> dict:
    row = {
        "id": message.id,
        "phone_number_id": message.phone_number_id,
        "conversation_id": message.conversation_id,
        "direction": message.direction,
        "from_number": message.from_number,
        "to_numbers": list(message.to_numbers),
        "text": message.text,
        "media": list(message.media),
        "status": message.status,
        "user_id": message.user_id,
        "created_at": message.created_at,
        "updated_at": message.effective_updated_at,
        "first_seen_via": via,
    }
    if now is not None:
        row["first_seen_at"] = now
        row["last_synced_at"] = now
    return row


def _upsert_statement():
    table = MessageRow.__table__
    stmt = insert(table)
    new, old = stmt.excluded, table.c
    rank = func.message_status_rank
    status_advances = or_(
        rank(new.status) > rank(old.status),
        (rank(new.status) == rank(old.status))
        & (new.updated_at > func.coalesce(old.updated_at, old.created_at))
        & (new.status != old.status),
    )
    fills_gap = or_(
        *[
            old_col.is_(None) & new_col.is_not(None)
            for old_col, new_col in (
                (old.phone_number_id, new.phone_number_id),
                (old.conversation_id, new.conversation_id),
                (old.from_number, new.from_number),
                (old.text, new.text),
                (old.user_id, new.user_id),
            )
        ],
        (old.to_numbers == text("'{}'::text[]")) & (new.to_numbers != text("'{}'::text[]")),
    )
    return stmt.on_conflict_do_update(
        index_elements=[old.id],
        set_={
            "status": case((status_advances, new.status), else_=old.status),
            "updated_at": case((status_advances, new.updated_at), else_=old.updated_at),
            "phone_number_id": func.coalesce(old.phone_number_id, new.phone_number_id),
            "conversation_id": func.coalesce(old.conversation_id, new.conversation_id),
            "from_number": func.coalesce(old.from_number, new.from_number),
            "text": func.coalesce(old.text, new.text),
            "user_id": func.coalesce(old.user_id, new.user_id),
            "to_numbers": text(
                "CASE WHEN messages.to_numbers = '{}'::text[] THEN excluded.to_numbers"
                " ELSE messages.to_numbers END"
            ),
            "media": text(
                "CASE WHEN messages.media = '[]'::jsonb THEN excluded.media ELSE messages.media END"
            ),
            "last_synced_at": func.now(),
        },
        where=or_(status_advances, fills_gap),
    ).returning(old.id, text("(xmax = 0) AS inserted"))


_UPSERT = _upsert_statement()


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
        rows = conn.execute(_UPSERT.values([_row(m, via, now) for m in batch])).all()
        inserted_ids = tuple(row.id for row in rows if row.inserted)
        changed = len(rows)
        counts += UpsertCounts(
            inserted=len(inserted_ids),
            updated=changed - len(inserted_ids),
            unchanged=len(batch) - changed,
            inserted_ids=inserted_ids,
        )
    return counts


def message_ids_between(db: Engine | Connection, start: datetime, end: datetime) -> set[str]:
    """Ids of stored messages created in [start, end): what completeness compares with the API."""
    stmt = text("SELECT id FROM messages WHERE created_at >= :start AND created_at < :end").bindparams(
        bindparam("start"), bindparam("end")
    )
    if isinstance(db, Engine):
        with db.connect() as conn:
            return {row.id for row in conn.execute(stmt, {"start": start, "end": end})}
    return {row.id for row in db.execute(stmt, {"start": start, "end": end})}

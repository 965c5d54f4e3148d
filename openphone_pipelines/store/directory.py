"""Lines and conversations as reconciliation last saw them: what referential integrity checks against."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, text
from sqlalchemy.dialects.postgresql import insert

from openphone_pipelines.openphone.models import Conversation, PhoneNumber
from openphone_pipelines.store.messages import BATCH_SIZE
from openphone_pipelines.store.schema import ConversationRow, PhoneNumberRow


def upsert_phone_numbers(engine: Engine, numbers: Sequence[PhoneNumber]) -> None:
    """Keep `phone_numbers` as the API lists them (one statement; a workspace has few lines)."""
    if not numbers:
        return
    table = PhoneNumberRow.__table__
    stmt = insert(table).values([{"id": n.id, "number": n.number, "name": n.name} for n in numbers])
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.id],
        set_={"number": stmt.excluded.number, "name": stmt.excluded.name, "last_synced_at": text("now()")},
    )
    with engine.begin() as conn:
        conn.execute(stmt)


def upsert_conversations(engine: Engine, conversations: Sequence[Conversation]) -> None:
    """Upsert conversations by id, one statement per 1,000, in id order (no deadlocks)."""
    table = ConversationRow.__table__
    unique = {c.id: c for c in conversations}
    rows = [
        {
            "id": c.id,
            "phone_number_id": c.phone_number_id,
            "participants": list(c.participants),
            "name": c.name,
            "last_activity_at": c.last_activity_at,
            "created_at": c.created_at,
            "updated_at": c.updated_at,
        }
        for c in sorted(unique.values(), key=lambda c: c.id)
    ]
    with engine.begin() as conn:
        for i in range(0, len(rows), BATCH_SIZE):
            stmt = insert(table).values(rows[i : i + BATCH_SIZE])
            new = stmt.excluded
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[table.c.id],
                    set_={
                        "phone_number_id": new.phone_number_id,
                        "participants": new.participants,
                        "name": new.name,
                        "last_activity_at": new.last_activity_at,
                        "created_at": new.created_at,
                        "updated_at": new.updated_at,
                        "last_synced_at": text("now()"),
                    },
                )
            )


@dataclass(frozen=True)
class DirectoryGaps:
    """Messages created in a window that name a line or conversation the directory does not know."""

    messages: int
    unknown_lines: list[tuple[str | None, int]]  # (line id or None, rows), most rows first
    unknown_conversations: list[tuple[str, int]]  # (conversation id, rows), most rows first
    without_conversation: int


def directory_gaps(engine: Engine, start: datetime, end: datetime) -> DirectoryGaps:
    params = {"start": start, "end": end}
    window = "m.created_at >= :start AND m.created_at < :end"
    with engine.connect() as conn:
        total = conn.execute(text(f"SELECT count(*) FROM messages m WHERE {window}"), params).scalar_one()
        lines = conn.execute(
            text(
                f"SELECT m.phone_number_id AS id, count(*) AS n FROM messages m"
                f" LEFT JOIN phone_numbers p ON p.id = m.phone_number_id"
                f" WHERE {window} AND (m.phone_number_id IS NULL OR p.id IS NULL) GROUP BY 1 ORDER BY 2 DESC"
            ),
            params,
        ).all()
        convs = conn.execute(
            text(
                f"SELECT m.conversation_id AS id, count(*) AS n FROM messages m"
                f" LEFT JOIN conversations c ON c.id = m.conversation_id"
                f" WHERE {window} AND m.conversation_id IS NOT NULL AND c.id IS NULL GROUP BY 1 ORDER BY 2 DESC"
            ),
            params,
        ).all()
        no_conv = conn.execute(
            text(f"SELECT count(*) FROM messages m WHERE {window} AND m.conversation_id IS NULL"), params
        ).scalar_one()
    return DirectoryGaps(total, [(r.id, r.n) for r in lines], [(r.id, r.n) for r in convs], no_conv)

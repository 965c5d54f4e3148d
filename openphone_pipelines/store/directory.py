"""Lines and conversations as reconciliation last saw them: what referential integrity checks against."""

from __future__ import annotations

from collections.abc import Sequence

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

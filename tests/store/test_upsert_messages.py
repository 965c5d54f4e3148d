"""Upsert semantics on real Postgres: insert, forward-only status, updatedAt ties, concurrency."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from openphone_pipelines.openphone.models import Message
from openphone_pipelines.store.messages import upsert_messages

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def msg(mid: str, status: str, *, minutes: int = 0, direction: str = "outgoing", **extra) -> Message:
    data = {
        "id": mid,
        "direction": direction,
        "from": "+15550000001",
        "to": ["+15550000002"],
        "text": "hello",
        "status": status,
        "phoneNumberId": "PNline0001",
        "createdAt": T0.isoformat(),
        "updatedAt": (T0 + timedelta(minutes=minutes)).isoformat(),
    }
    data.update(extra)
    return Message.model_validate(data)


def stored(fresh, mid: str):
    with fresh.connect() as conn:
        return conn.execute(text("SELECT * FROM messages WHERE id = :id"), {"id": mid}).mappings().one()


def test_insert_records_source_and_counts(db, fresh):
    counts = upsert_messages(db, [msg("ACa", "queued"), msg("ACb", "received", direction="incoming")], via="webhook")
    assert (counts.inserted, counts.updated, counts.unchanged) == (2, 0, 0)
    assert set(counts.inserted_ids) == {"ACa", "ACb"}
    row = stored(fresh, "ACa")
    assert row["status"] == "queued"
    assert row["first_seen_via"] == "webhook"
    assert row["to_numbers"] == ["+15550000002"]


def test_status_moves_forward_only(db, fresh):
    upsert_messages(db, [msg("ACa", "sent", minutes=1)], via="send")
    assert upsert_messages(db, [msg("ACa", "delivered", minutes=2)], via="webhook").updated == 1
    # a late "sent" (even with a newer updatedAt) never regresses a terminal status
    counts = upsert_messages(db, [msg("ACa", "sent", minutes=9)], via="reconciliation")
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 0, 1)
    row = stored(fresh, "ACa")
    assert row["status"] == "delivered"
    assert row["first_seen_via"] == "send"


def test_older_updated_at_is_ignored_between_equal_ranks(db, fresh):
    upsert_messages(db, [msg("ACa", "undelivered", minutes=10)], via="webhook")
    assert upsert_messages(db, [msg("ACa", "delivered", minutes=5)], via="reconciliation").unchanged == 1
    assert stored(fresh, "ACa")["status"] == "undelivered"
    assert upsert_messages(db, [msg("ACa", "delivered", minutes=20)], via="reconciliation").updated == 1
    assert stored(fresh, "ACa")["status"] == "delivered"


def test_out_of_order_arrival_ends_in_final_state(db, fresh):
    upsert_messages(db, [msg("ACa", "delivered", minutes=3)], via="webhook")
    upsert_messages(db, [msg("ACa", "queued", minutes=0)], via="webhook")
    upsert_messages(db, [msg("ACa", "sent", minutes=1)], via="webhook")
    assert stored(fresh, "ACa")["status"] == "delivered"


def test_missing_fields_are_filled_without_status_change(db, fresh):
    upsert_messages(db, [msg("ACa", "delivered", minutes=3)], via="webhook")
    counts = upsert_messages(db, [msg("ACa", "delivered", minutes=3, conversationId="CNx")], via="reconciliation")
    assert counts.updated == 1
    assert stored(fresh, "ACa")["conversation_id"] == "CNx"
    assert upsert_messages(db, [msg("ACa", "delivered", minutes=3, conversationId="CNy")], via="reconciliation").unchanged == 1
    assert stored(fresh, "ACa")["conversation_id"] == "CNx"


def test_duplicates_within_one_batch_collapse_to_the_winner(db, fresh):
    counts = upsert_messages(
        db, [msg("ACa", "queued"), msg("ACa", "delivered", minutes=2), msg("ACa", "sent", minutes=1)], via="webhook"
    )
    assert counts.inserted == 1
    assert stored(fresh, "ACa")["status"] == "delivered"


def test_unknown_source_is_rejected(db):
    with pytest.raises(ValueError, match="via"):
        upsert_messages(db, [msg("ACa", "queued")], via="carrier-pigeon")


def test_two_concurrent_upserts_of_the_same_1000_ids(db, fresh):
    ids = [f"AC{i:05d}" for i in range(1000)]
    # writer A brings every message to "sent"; writer B brings even ones to "delivered", odd ones "queued"
    batch_a = [msg(i, "sent", minutes=1) for i in ids]
    batch_b = [msg(i, "delivered" if n % 2 == 0 else "queued", minutes=2) for n, i in enumerate(ids)]
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run(batch, via):
        try:
            barrier.wait()
            results.append(upsert_messages(db, list(reversed(batch)) if via == "reconciliation" else batch, via=via))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(batch_a, "webhook")),
               threading.Thread(target=run, args=(batch_b, "reconciliation"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r.inserted for r in results) == 1000
    with fresh.connect() as conn:
        rows = dict(conn.execute(text("SELECT id, status FROM messages")).all())
    assert len(rows) == 1000
    for n, i in enumerate(ids):
        assert rows[i] == ("delivered" if n % 2 == 0 else "sent"), i

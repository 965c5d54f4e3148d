"""The integrity computations on a real Postgres, each made to pass and to fail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

from openphone_pipelines import integrity
from openphone_pipelines.openphone.client import OpenPhoneClient
from openphone_pipelines.openphone.models import Message
from openphone_pipelines.reporting import coverage_markdown
from openphone_pipelines.store.messages import upsert_messages
from openphone_sandbox.testing import SandboxHandle

from .conftest import day_window


def _message(**overrides) -> Message:
    base = {"id": "ACfake0001", "direction": "outgoing", "from": "+15555550100", "to": ["+15555550101"],
            "text": "hi", "status": "sent", "phoneNumberId": "PNunknown1", "conversationId": "CNunknown1",
            "createdAt": "2026-11-02T10:00:00Z", "updatedAt": "2026-11-02T10:00:00Z"}
    return Message.model_validate({**base, **overrides})


def test_settled_statuses_repolls_stale_sends_and_reports_the_rest(
    sandbox: SandboxHandle, fast_client: OpenPhoneClient, db: Engine
) -> None:
    start, end = day_window("2026-11-02")
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    delivered = next(r for r in sandbox.ground_truth(createdAfter=start.strftime(fmt), createdBefore=end.strftime(fmt))
                     if r["direction"] == "outgoing" and r["status"] == "delivered")
    upsert_messages(db, [Message.model_validate({**delivered, "status": "sent", "updatedAt": delivered["createdAt"]}),
                         _message()], via="send")

    result = integrity.settle_statuses(fast_client, db, start, end, settle_after=timedelta(0))

    assert (result.polled, result.repaired, result.not_found) == (1, 1, 1)
    assert result.still_unsettled_ids == ["ACfake0001"] and not result.passed
    with db.connect() as conn:
        assert conn.execute(text("SELECT status FROM messages WHERE id = :id"), {"id": delivered["id"]}).scalar() \
            == "delivered"
    recent = integrity.settle_statuses(fast_client, db, start, end, settle_after=timedelta(days=3650))
    assert recent.passed and recent.polled == 0  # younger than the settle delay: not judged yet


def test_referential_integrity_flags_unknown_lines_and_conversations(db: Engine) -> None:
    start, end = day_window("2026-11-02")
    upsert_messages(db, [_message(status="delivered")], via="webhook")
    result = integrity.referential_integrity(db, start, end)
    assert not result.passed
    assert (result.rows_with_unknown_line, result.rows_with_unknown_conversation) == (1, 1)
    with db.begin() as conn:
        conn.execute(text("INSERT INTO phone_numbers (id) VALUES ('PNunknown1')"))
        conn.execute(text("INSERT INTO conversations (id, phone_number_id, participants)"
                          " VALUES ('CNunknown1', 'PNunknown1', ARRAY['+15555550101'])"))
    assert integrity.referential_integrity(db, start, end).passed


def test_pending_webhook_events_older_than_fifteen_minutes_fail(db: Engine) -> None:
    now = datetime.now(UTC)
    with db.begin() as conn:
        for event_id, age in (("EVold", 20), ("EVnew", 5)):
            conn.execute(text("INSERT INTO webhook_events (event_id, signature_scheme, raw_body, received_at)"
                              " VALUES (:id, 'legacy', '\\x7b7d', :at)"), {"id": event_id, "at": now - timedelta(minutes=age)})
    result = integrity.stale_pending_events(db, now=now)
    assert (result.stale, result.sample_event_ids) == (1, ["EVold"]) and not result.passed
    with db.begin() as conn:
        conn.execute(text("UPDATE webhook_events SET processing_status = 'processed' WHERE event_id = 'EVold'"))
    assert integrity.stale_pending_events(db, now=now).passed


def test_coverage_counts_webhook_share_per_day(db: Engine) -> None:
    start, end = day_window("2026-11-02", "2026-11-03")
    upsert_messages(db, [_message(id="AC1", status="delivered")], via="webhook")
    upsert_messages(db, [_message(id="AC2", status="delivered", createdAt="2026-11-03T01:00:00Z")],
                    via="reconciliation")
    upsert_messages(db, [_message(id="AC3", status="delivered")], via="send")
    result = integrity.webhook_coverage(db, start, end, threshold=0.95)
    assert (result.via_webhook, result.via_reconciliation, result.via_send) == (1, 1, 1)
    assert result.coverage == 0.5 and not result.passed
    assert "| 2026-11-02 | 1 | 0 | 1 | 100.0% |" in coverage_markdown(result.by_day)

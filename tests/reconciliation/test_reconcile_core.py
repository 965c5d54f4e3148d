"""reconcile_window against the sandbox over HTTP and a real Postgres: parity, idempotency, repair."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, text

from openphone_pipelines import integrity
from openphone_pipelines.openphone.client import OpenPhoneClient
from openphone_pipelines.openphone.models import Message
from openphone_pipelines.openphone.probes import new_probe_nonce, probe_text
from openphone_pipelines.reconciliation import reconcile_window
from openphone_pipelines.store.messages import upsert_messages
from openphone_sandbox.testing import SandboxHandle

from .conftest import day_window


def stored(db: Engine) -> dict[str, dict]:
    with db.connect() as conn:
        rows = conn.execute(text("SELECT id, status, first_seen_via, conversation_id, phone_number_id FROM messages"))
        return {r.id: r._asdict() for r in rows}


def truth(sandbox: SandboxHandle, start: datetime, end: datetime) -> dict[str, dict]:
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    rows = sandbox.ground_truth(createdAfter=start.strftime(fmt), createdBefore=end.strftime(fmt))
    return {r["id"]: r for r in rows}


def test_reconcile_two_days_matches_ground_truth_and_is_idempotent(
    sandbox: SandboxHandle, fast_client: OpenPhoneClient, db: Engine
) -> None:
    start, end = day_window("2026-11-01", "2026-11-02")
    expected = truth(sandbox, start, end)
    lines: list[str] = []

    report = reconcile_window(fast_client, db, start, end, progress=lines.append)

    rows = stored(db)
    assert set(rows) == set(expected)  # every id, no extra row (edges at midnight included)
    assert {i: r["status"] for i, r in rows.items()} == {i: r["status"] for i, r in expected.items()}
    assert {r["conversation_id"] for r in rows.values()} == {r["conversationId"] for r in expected.values()}
    assert report.inserted == len(expected) == report.messages_seen
    assert {str(d): f.inserted for d, f in report.days.items()} == {
        day: sum(1 for r in expected.values() if r["createdAt"].startswith(day)) for day in ("2026-11-01", "2026-11-02")
    }
    assert sum(report.misses.values()) == report.inserted
    assert all(r["first_seen_via"] == "reconciliation" for r in rows.values())
    assert report.api_calls >= report.conversations_scanned + 1 and report.rate_limited == 0
    assert any("conversations page" in line for line in lines) and any("message pages" in line for line in lines)

    again = reconcile_window(fast_client, db, start, end)
    assert (again.inserted, again.repaired, again.unchanged) == (0, 0, len(expected))
    assert stored(db) == rows


def test_repairs_stale_status_keeps_webhook_rows_and_counts_only_misses(
    sandbox: SandboxHandle, fast_client: OpenPhoneClient, db: Engine
) -> None:
    start, end = day_window("2026-11-03")
    expected = truth(sandbox, start, end)
    outgoing = [r for r in expected.values() if r["direction"] == "outgoing" and r["status"] == "delivered"]
    stale, webhook_seen = outgoing[0], outgoing[1]
    for row, status in ((stale, "sent"), (webhook_seen, "delivered")):
        payload = {**row, "status": status, "updatedAt": row["createdAt"]}
        upsert_messages(db, [Message.model_validate(payload)], via="webhook")

    report = reconcile_window(fast_client, db, start, end)

    rows = stored(db)
    assert rows[stale["id"]]["status"] == "delivered" and rows[stale["id"]]["first_seen_via"] == "webhook"
    assert report.repaired == 1 and report.unchanged == 1
    assert report.inserted == len(expected) - 2
    coverage = integrity.webhook_coverage(db, start, end)
    assert (coverage.via_webhook, coverage.via_reconciliation) == (2, len(expected) - 2)
    assert not coverage.passed


def test_probe_messages_are_never_written_nor_counted(sandbox: SandboxHandle, fast_client: OpenPhoneClient,
                                                       db: Engine) -> None:
    # A probe sent the real way (POST /v1/messages from the probe line), plus its id in the history table.
    nonce = new_probe_nonce()
    sent = fast_client.send_message(from_=sandbox.probe_line.id, to=[sandbox.main_line.number],
                                    content=probe_text(nonce))
    with db.begin() as conn:
        conn.execute(text("INSERT INTO webhook_health_checks (nonce, from_line, to_number, sent_message_id, status)"
                          " VALUES (:nonce, :line, :to, :id, 'sent')"),
                     {"nonce": nonce, "line": sandbox.probe_line.id, "to": sandbox.main_line.number, "id": sent.id})
    sandbox.settle()  # delivered, and the main line receives the probe text as an incoming message
    day = sent.created_at.astimezone(UTC).date().isoformat()
    start, end = day_window(day)
    customer = {i for i, r in truth(sandbox, start, end).items() if "health probe" not in (r["text"] or "")}

    report = reconcile_window(fast_client, db, start, end)

    assert set(stored(db)) == customer
    assert report.probes_skipped >= 2  # the send (probe line) and its incoming copy (main line)
    skipped = reconcile_window(fast_client, db, start, end, probe_line_id=sandbox.probe_line.id)
    assert skipped.lines_skipped == 1 and skipped.probes_skipped == 1  # only the incoming copy remains


def test_429_storm_slows_the_walk_but_it_completes(db: Engine) -> None:
    from openphone_pipelines.openphone.ratelimit import NoLimit
    from openphone_sandbox.testing import start_sandbox

    from .conftest import ANCHOR

    with start_sandbox(seed=5, now=ANCHOR, history_days=1, messages_per_day=60, rate_limit=4,
                       retry_after=False) as storm:
        start, end = day_window("2026-11-03")
        with OpenPhoneClient(storm.api_key, storm.base_url, rate_limiter=NoLimit(), backoff_base=0.05,
                             backoff_cap=0.5, max_retries=20) as client:
            report = reconcile_window(client, db, start, end, concurrency=4)
        assert report.rate_limited > 0
        assert set(stored(db)) == set(truth(storm, start, end))
